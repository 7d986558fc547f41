"""bench/replication_bench.py, the end-to-end replication benchmark, in parts (the entry point
holds its command line; bench/README.md the method):

  harness.py      the parts put together: set up, run, close
  servers.py      the rig or external servers, buckets, health, cleanup, fan-out links
  s3_side.py      one S3 endpoint and credentials: bucket, list, batch delete (testkit/sigv4.py)
  environment.py  the machine, the archie build and the peers' versions (the JSON's meta)
  scenarios.py    scenarios 1 to 6: source data, runs, summaries
  archie.py       archie's config, start and stop, its stream and consumer, a timed run
  archie_log.py   archie's JSON log, /metrics and per-stage times
  peers.py        rclone and the AWS CLI: settings and a timed run of their commands
  measurement.py  CPU and memory of processes, timed pipelines, the servers' CPU and requests
  report.py       the table, the summaries and the JSON
  common.py       units, the log line, RunError, starting a child

Modules import the test kit (testkit/) and each other relatively; the entry point puts the
repository on sys.path."""
