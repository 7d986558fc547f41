"""archie's Python test kit: the servers, clients and builders that the integration tests
(tests/integration), the demo (scripts/demo.py) and the benches (bench/) share. Python 3
standard library only; run with /usr/bin/python3 from the repository root.

Servers on 127.0.0.1:
  rig.py                     Rig: nats-server, a NATS cluster and Ceph RGW together (and a CLI)
  nats_server.py             NatsServer, NatsCluster
  ceph_rgw.py                CephRgw: one mon, one memstore OSD, n radosgw endpoints (with
                             SSE-KMS on a testing key store and storage class STANDARD_IA)
  aws_credential_servers.py  STS, IMDSv2 and container-credential test servers
  gcs_server/                the GCS JSON-API test server (its __init__.py describes it)
  proxies/                   delay, throttle (a script), half-range and fault-injection proxies
  daemons.py                 child processes that die with their owner
  net.py                     free ports, readiness GETs, plain HTTP
  paths.py                   the repository, the binaries under test, system tools

Clients:
  nats_client.py             a small synchronous NATS / JetStream client
  sigv4.py                   the test kit's own S3 SigV4 signer (s3_request)
  rgw_user.py                RgwUser: a reference S3 client on that signer
  probes.py                  archie's own S3 / GCS clients through s3_probe and gcs_probe

archie:
  archie_process.py          `archie run` and other JSON-logging binaries in the background
  config_builder.py          archie.toml text
  events.py                  MinIO bucket events
  metrics.py                 Prometheus text format

Tests:
  fixtures.py                setUpModule / tearDownModule helpers
  waiting.py                 wait_until
  files.py                   random files, SHA-256
"""
