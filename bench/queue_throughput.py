#!/usr/bin/env python3
"""Fetch+ack throughput of archie's queue layer against the rig's nats-server, for pull batch
sizes 1, 32 and 256 and both ack modes. Prints a table; never fails on a slow machine.

Uses the queue test worker (archie's real queue layer with an ack-everything handler):
ARCHIE_QUEUE_WORKER (default build-release/tests/queue_worker, then build/tests/queue_worker).
Usage: bench/queue_throughput.py [--messages N]"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from testkit.archie_process import write_config  # noqa: E402
from testkit.config_builder import archie_config, queue_section  # noqa: E402
from testkit.nats_client import NatsClient  # noqa: E402
from testkit.nats_server import NatsServer  # noqa: E402


def worker_binary():
    for candidate in (os.environ.get("ARCHIE_QUEUE_WORKER"), os.path.join(REPO, "build-release/tests/queue_worker"),
                      os.path.join(REPO, "build/tests/queue_worker")):
        if candidate and os.path.exists(candidate):
            return candidate
    sys.exit("no queue_worker binary: build with -Dtests=true")


def run(server, nats, binary, work, batch, ack_mode, n):
    stream = f"bench-{batch}-{ack_mode}"
    subject = f"bench.{batch}.{ack_mode}"
    nats.js_api(f"STREAM.CREATE.{stream}", {"name": stream, "subjects": [subject], "retention": "workqueue",
                                           "storage": "file"})
    nats.js_publish_many(subject, [b'{"do":"ack"}'] * n)
    config = write_config(archie_config(
        [server.url], log_level="warn", concurrency=batch,
        queue=queue_section([subject], stream=stream, durable="bench", ack_mode=ack_mode, max_fetch_batch=batch,
                            stream_extra={"provision": False}, consumer_extra={"max_ack_pending": 100000})),
        path=os.path.join(work, f"{stream}.toml"))
    record = os.path.join(work, f"{stream}.rec")
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
    proc = subprocess.Popen([binary, "--config", config, "--record", record], env=env, stderr=subprocess.DEVNULL)
    # Provisioning creates the consumer; time from the first to the last recorded message.
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            info = nats.consumer_info(stream, "bench")
            if info["num_pending"] == 0 and info["num_ack_pending"] == 0 and info["delivered"]["stream_seq"] >= n:
                break
        except Exception:
            pass
        time.sleep(0.05)
    proc.terminate()
    proc.wait()
    with open(record) as f:
        stamps = [int(line.split()[3]) for line in f]
    seconds = (max(stamps) - min(stamps)) / 1000 if len(stamps) > 1 else float("nan")
    nats.js_api(f"STREAM.DELETE.{stream}")
    return len(stamps), seconds


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--messages", type=int, default=20000)
    args = ap.parse_args()
    binary = worker_binary()
    work = tempfile.mkdtemp(prefix="archie-qbench-")
    server = NatsServer(work)
    server.start()
    try:
        nats = NatsClient([server.url])
        print(f"queue_worker: {binary}; {args.messages} messages per run; nats-server {server.url}")
        print(f"{'batch':>5} {'ack mode':>8} {'messages':>9} {'seconds':>8} {'msg/s':>9}")
        for ack_mode in ("sync", "async"):
            for batch in (1, 32, 256):
                count, seconds = run(server, nats, binary, work, batch, ack_mode, args.messages)
                print(f"{batch:>5} {ack_mode:>8} {count:>9} {seconds:>8.2f} {count / seconds:>9.0f}", flush=True)
        nats.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
