"""Convergence under concurrency: random puts, overwrites and deletes on a few shared keys at
a Ceph RGW source, their MinIO-format events published (some twice, some replayed late and
out of order), handled by two `archie run` processes with many workers each, while a proxy
holds every request to the S3 destination back by up to a second. Once the consumer is quiet,
every destination (an S3 store behind the delay proxy, a local directory, and a bucket of
the source store itself, written by server-side copy) must equal the source key by key: existence, bytes, content-type and user
metadata. Servers: nats-server, Ceph (mon, osd, two radosgw).

Knobs (environment), used by scripts/soak-convergence for the long version:
  ARCHIE_CONVERGENCE_OPS      source operations (default 700)
  ARCHIE_CONVERGENCE_RATE     operations per second (default 16)
  ARCHIE_CONVERGENCE_KILL     1: kill -9 one worker half way and start a new one
  ARCHIE_CONVERGENCE_SEED     random seed (default: time-based, printed)
  ARCHIE_CONVERGENCE_DELAY    the proxy's maximum delay per request in seconds (default 1.0)
"""
import hashlib
import os
import random
import sys
import tempfile
import time
import unittest

from testkit.archie_process import ArchieProcess
from testkit.config_builder import archie_config as build_config, fs_store, queue_section, rgw_store, route
from testkit.events import minio_event
from testkit.fixtures import close_all, start_rig
from testkit.nats_client import NatsClient
from testkit.proxies.delay_proxy import DelayProxy
from testkit.rgw_user import RgwUser
from testkit.waiting import wait_for_quiet_consumer

SUBJECT, STREAM, DURABLE, DLQ_SUBJECT = "minio.events", "minio-events", "archie", "archie.dead"
SRC_BUCKET, DST_BUCKET, FS_BUCKET, SAME_BUCKET = "conv-source", "conv-replica", "conv-mirror", "conv-same-store"
KEYS = [f"k{i:02d}" for i in range(28)] + ["dir/nested key+plus", "ü-nfc-\u00e9"]
CONTENT_TYPES = ["application/octet-stream", "text/plain", "image/png", "application/x-archie-test"]

rig = None
workdir = None


def setUpModule():
    global rig, workdir
    rig = start_rig([(SRC_BUCKET, "archie", 0), (DST_BUCKET, "other", 1), (SAME_BUCKET, "archie", 0)])
    workdir = tempfile.mkdtemp(prefix="archie-conv-")


def tearDownModule():
    close_all(rig, workdir)


def s3(user, index, method, bucket, key, **kw):
    return RgwUser(rig, user, index).request(method, bucket, key, **kw)


def archie_config(dst_endpoint, fs_root):
    return build_config(
        [rig.nats.url], log_level="info", concurrency=16, shutdown_wait="5s",
        queue=queue_section([SUBJECT], stream=STREAM, dead_letter_subject=DLQ_SUBJECT, ack_wait="15s",
                            nak_backoff={"base": "100ms", "ceiling": "1s"}),
        replication={"part_size_mib": 5, "buffer_budget_mib": 160, "max_retries": 2},
        stores={"src": rgw_store(rig, "archie", 0),
                "dst": rgw_store(rig, "other", 1, endpoint=dst_endpoint),
                "local": fs_store(fs_root, fsync=False)},
        routes=[route("src", SRC_BUCKET, [("dst", DST_BUCKET), ("local", FS_BUCKET), ("src", SAME_BUCKET)])])


class Workload:
    """Source operations and the events MinIO would publish for them."""

    def __init__(self, nats, rng):
        self.nats, self.rng = nats, rng
        self.history = []  # every event published, for late replays
        self.generation = 0

    def publish(self, body):
        self.nats.js_publish(SUBJECT, body)
        self.history.append(body)

    def put(self, key):
        self.generation += 1
        size = self.rng.choice([0, 1, 100, 4096, 20000, self.rng.randrange(1, 64 << 10)])
        body = self.rng.randbytes(size)
        ctype = self.rng.choice(CONTENT_TYPES)
        status, headers, _ = s3("archie", 0, "PUT", SRC_BUCKET, key, body=body,
                                headers={"content-type": ctype, "x-amz-meta-generation": str(self.generation)})
        assert status == 200, status
        etag = headers.get("etag", "").strip('"')
        return minio_event("s3:ObjectCreated:Put", SRC_BUCKET, key, size=size, etag=etag, content_type=ctype)

    def delete(self, key):
        status, _, _ = s3("archie", 0, "DELETE", SRC_BUCKET, key)
        assert status in (200, 204), status
        return minio_event("s3:ObjectRemoved:Delete", SRC_BUCKET, key)

    def step(self):
        key = self.rng.choice(KEYS)
        event = self.put(key) if self.rng.random() < 0.65 else self.delete(key)
        self.publish(event)
        if self.rng.random() < 0.10:  # MinIO retried its publish: the same event twice
            self.publish(event)
        if self.history and self.rng.random() < 0.05:  # an old event arriving late
            self.publish(self.rng.choice(self.history))


def source_objects():
    out = {}
    for key in KEYS:
        status, headers, body = s3("archie", 0, "GET", SRC_BUCKET, key)
        if status == 200:
            out[key] = describe(headers, body)
        else:
            assert status == 404, (key, status)
    return out


def describe(headers, body):
    meta = {k[len("x-amz-meta-"):]: v for k, v in headers.items()
            if k.startswith("x-amz-meta-") and k != "x-amz-meta-archie-source-etag"}
    return {"sha256": hashlib.sha256(body).hexdigest(), "content_type": headers.get("content-type"), "meta": meta}


def s3_replica_objects(user="other", index=1, bucket=DST_BUCKET):
    out = {}
    for key in KEYS:
        status, headers, body = s3(user, index, "GET", bucket, key)
        if status == 200:
            out[key] = describe(headers, body)
    return out


def fs_replica_objects(root):
    out = {}
    for key in KEYS:
        path = os.path.join(root, FS_BUCKET, key)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                body = f.read()
            try:
                ctype = os.getxattr(path, "user.mime_type").decode()
            except OSError:
                ctype = None
            out[key] = {"sha256": hashlib.sha256(body).hexdigest(), "content_type": ctype}
    return out


def compare(source, replica, fields):
    """missing: at the source, not at the destination; resurrected: the reverse; stale: both,
    but different."""
    missing = sorted(k for k in source if k not in replica)
    resurrected = sorted(k for k in replica if k not in source)
    stale = sorted(f"{k} ({','.join(f for f in fields if source[k][f] != replica[k][f])})"
                   for k in source if k in replica and any(source[k][f] != replica[k][f] for f in fields))
    return {"missing": missing, "resurrected": resurrected, "stale": stale}


class ConvergenceTest(unittest.TestCase):
    def test_destinations_equal_the_source_after_racing_events_from_two_workers(self):
        ops = int(os.environ.get("ARCHIE_CONVERGENCE_OPS", "700"))
        rate = float(os.environ.get("ARCHIE_CONVERGENCE_RATE", "16"))
        kill = os.environ.get("ARCHIE_CONVERGENCE_KILL") == "1"
        seed = int(os.environ.get("ARCHIE_CONVERGENCE_SEED", str(int(time.time()))))
        max_delay = float(os.environ.get("ARCHIE_CONVERGENCE_DELAY", "1.0"))
        sys.stderr.write(f"    [convergence] seed {seed}, {ops} operations at {rate}/s, delay <= {max_delay}s, "
                         f"kill -9: {kill}\n")
        rng = random.Random(seed)
        host, port = rig.ceph.endpoints[1].split("//")[1].split(":")
        proxy = DelayProxy(host, int(port), max_delay=max_delay, seed=seed).start()
        self.addCleanup(proxy.stop)
        fs_root = tempfile.mkdtemp(prefix="fs-", dir=workdir)
        nats = NatsClient([rig.nats.url])
        self.addCleanup(nats.close)

        workers = []

        def start_worker():
            w = ArchieProcess(archie_config(proxy.endpoint, fs_root))  # each its own admin port
            self.addCleanup(w.stop)
            w.wait_ready()
            workers.append(w)
            return w

        start_worker()
        start_worker()
        load = Workload(nats, rng)
        started = time.monotonic()
        for i in range(ops):
            load.step()
            if kill and i == ops // 2:
                victim = workers.pop(0)
                victim.kill9()  # SIGKILL: no drain; its messages come back after ack_wait
                victim.wait()
                start_worker()
            # Pace by the clock so that slow S3 calls do not stretch the run.
            ahead = started + (i + 1) / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        published = time.monotonic() - started
        wait_for_quiet_consumer(nats, STREAM, DURABLE, timeout=240)
        quiet = time.monotonic() - started

        source = source_objects()
        results = {
            "s3": compare(source, s3_replica_objects(), ("sha256", "content_type", "meta")),
            "fs": compare(source, fs_replica_objects(fs_root), ("sha256", "content_type")),
            # server-side CopyObject within the source store
            "same-store": compare(source, s3_replica_objects("archie", 0, SAME_BUCKET), ("sha256", "content_type", "meta")),
        }
        logs = [l for w in workers for l in w.logs()]
        codes = {}
        for l in logs:
            if l.get("msg") in ("event skipped", "event not done"):
                codes[l.get("code")] = codes.get(l.get("code"), 0) + 1
        repairs = sum(1 for l in logs if l.get("msg") == "source changed while replicating; converging")
        dead = nats.stream_info(STREAM + "-dead-letter")["state"]["messages"]
        sys.stderr.write(
            f"    [convergence] {len(load.history)} events in {published:.0f}s, quiet after {quiet:.0f}s; "
            f"{proxy.requests} destination requests; {len(source)} keys at the source; repairs {repairs}; "
            f"dead letters {dead}; settled codes {codes}\n")
        for dest, r in results.items():
            sys.stderr.write(f"    [convergence] {dest}: missing {len(r['missing'])}, "
                             f"resurrected {len(r['resurrected'])}, stale {len(r['stale'])} {r}\n")
        for dest, r in results.items():
            with self.subTest(destination=dest):
                self.assertEqual(r, {"missing": [], "resurrected": [], "stale": []},
                                 f"seed {seed}: {dest} differs from the source")
        self.assertEqual(dead, 0, "churn must not fill the dead-letter stream")


if __name__ == "__main__":
    unittest.main()
