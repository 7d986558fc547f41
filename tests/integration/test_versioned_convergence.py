"""Convergence on a versioned source: random puts, deletes (delete markers), permanent
deletions of versions and markers, and tag changes on a few shared keys of a Ceph RGW bucket
with versioning on; their MinIO-format events published (some twice, some replayed late and
out of order) and handled by two `archie run` processes, while a proxy holds every request to
the S3 destinations back by a random delay. Once the consumer is quiet:

* versions = "all" (a versioned bucket): per key, the versions archie wrote, by the source
  version ID each records, are exactly the source's versions in the source's order, and the
  current state agrees (the same version, with the same bytes, or a delete marker);
* versions = "all" with deletes = "ignore" (a backup): every version that ever existed is
  there (except those deleted for good at the source before the backup held them, which
  nothing could copy; the workload notes them as it deletes), and where the source has a
  current version it is the backup's current one too;
* versions = "current" (an unversioned S3 bucket and a local directory): the source's current
  bytes and, at S3, its tags, or nothing where the key looks absent;
* versions = "all" at GCS (archie's test server, a bucket with object versioning): the
  generations archie wrote, oldest first, are copies of exactly the source's versions in its
  order, and the live generation holds the source's current bytes, or none is live where the
  source's latest entry is a delete marker (GCS has no delete markers to copy).

Knobs (environment), for a longer soak: ARCHIE_VCONVERGENCE_OPS (default 200),
ARCHIE_VCONVERGENCE_RATE (per second, default 12), ARCHIE_VCONVERGENCE_SEED,
ARCHIE_VCONVERGENCE_DELAY (the proxy's maximum delay per request in seconds, default 0.2).
"""
import hashlib
import os
import urllib.parse
import random
import sys
import tempfile
import time
import unittest
import xml.etree.ElementTree as ElementTree

from testkit.archie_process import ArchieProcess
from testkit.config_builder import archie_config as build_config, fs_store, gcs_store, queue_section, rgw_store, route
from testkit.events import minio_event
from testkit.fixtures import close_all, start_rig
from testkit.gcs_server.launcher import GcsTestServer
from testkit.nats_client import NatsClient
from testkit.proxies.delay_proxy import DelayProxy
from testkit.rgw_user import RgwUser
from testkit.waiting import wait_for_quiet_consumer

SUBJECT, STREAM, DURABLE, DLQ_SUBJECT = "minio.events", "minio-events", "archie", "archie.dead"
SOURCE, ALL, BACKUP, CURRENT, MIRROR = "vconv-source", "vconv-all", "vconv-backup", "vconv-current", "vconv-mirror"
GCS_ALL = "vconv-gcs-all"
KEYS = [f"v{i:02d}" for i in range(11)] + ["dir/nested key+plus"]
TAGGING = ('<Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet>'
           '<Tag><Key>tier</Key><Value>%s</Value></Tag></TagSet></Tagging>')

rig = None
gcs = None
workdir = None


def setUpModule():
    global rig, gcs, workdir
    rig = start_rig([(SOURCE, "archie", 0), (ALL, "other", 1), (BACKUP, "other", 1), (CURRENT, "other", 1)])
    RgwUser(rig, "archie", 0).set_versioning(SOURCE)
    for bucket in (ALL, BACKUP):
        RgwUser(rig, "other", 1).set_versioning(bucket)
    workdir = tempfile.mkdtemp(prefix="archie-vconv-")
    gcs = GcsTestServer()
    gcs.start()
    gcs.create_bucket(GCS_ALL, versioning=True)


def tearDownModule():
    close_all(gcs, rig, workdir)


def archie_config(dst_endpoint, fs_root):
    r = route("src", SOURCE, [("dst", ALL), ("dst", BACKUP), ("dst", CURRENT), ("local", MIRROR), ("gcs", GCS_ALL)])
    r["destinations"][0]["versions"] = "all"
    r["destinations"][1].update(versions="all", deletes="ignore")
    r["destinations"][4]["versions"] = "all"
    return build_config(
        [rig.nats.url], log_level="info", concurrency=16, shutdown_wait="5s",
        queue=queue_section([SUBJECT], stream=STREAM, dead_letter_subject=DLQ_SUBJECT, ack_wait="15s",
                            nak_backoff={"base": "100ms", "ceiling": "1s"}),
        replication={"part_size_mib": 5, "buffer_budget_mib": 160, "max_retries": 2},
        stores={"src": rgw_store(rig, "archie", 0),
                "dst": rgw_store(rig, "other", 1, endpoint=dst_endpoint),
                "local": fs_store(fs_root, fsync=False),
                "gcs": gcs_store(gcs)},
        routes=[r])


class Workload:
    """Source operations on a versioned bucket and the events MinIO would publish for them."""

    def __init__(self, nats, rng):
        self.nats, self.rng = nats, rng
        self.src = RgwUser(rig, "archie", 0)
        self.history = []
        self.ever = {k: set() for k in KEYS}  # every object version each key ever had
        # Versions deleted for good before the backup had them: nothing can copy those later.
        self.gone_unseen = {k: set() for k in KEYS}

    def publish(self, body):
        self.nats.js_publish(SUBJECT, body)
        self.history.append(body)

    def put(self, key):
        body = self.rng.randbytes(self.rng.choice([0, 10, 3000, self.rng.randrange(1, 40000)]))
        status, headers, _ = self.src.request("PUT", SOURCE, key, body=body)
        assert status == 200, status
        version = headers["x-amz-version-id"]
        self.ever[key].add(version)
        return minio_event("s3:ObjectCreated:Put", SOURCE, key, size=len(body),
                           etag=headers.get("etag", "").strip('"'), version_id=version)

    def delete(self, key):
        status, headers, _ = self.src.request("DELETE", SOURCE, key)
        assert status in (200, 204), status
        return minio_event("s3:ObjectRemoved:DeleteMarkerCreated", SOURCE, key,
                           version_id=headers.get("x-amz-version-id"))

    def delete_version(self, key):
        versions = self.src.history(SOURCE, key)
        if not versions:
            return None
        chosen = self.rng.choice(versions)
        version = chosen["version_id"]
        if not chosen["delete_marker"]:
            backed_up = {v.get("source_version_id") for v in RgwUser(rig, "other", 1).history(BACKUP, key)}
            if version not in backed_up:
                self.gone_unseen[key].add(version)
        status, _, _ = self.src.request("DELETE", SOURCE, key, query={"versionId": version})
        assert status in (200, 204), status
        return minio_event("s3:ObjectRemoved:Delete", SOURCE, key, version_id=version)

    def tag(self, key):
        status, headers, _ = self.src.request("HEAD", SOURCE, key)
        if status != 200:
            return None
        tier = self.rng.choice(["gold", "silver", "bronze"])
        status, _, body = self.src.request("PUT", SOURCE, key, query={"tagging": ""}, body=(TAGGING % tier).encode())
        assert status == 200, body
        return minio_event("s3:ObjectCreated:PutTagging", SOURCE, key, version_id=headers.get("x-amz-version-id"))

    def step(self):
        key = self.rng.choice(KEYS)
        roll = self.rng.random()
        op = self.put if roll < 0.55 else self.delete if roll < 0.7 else self.delete_version if roll < 0.85 else self.tag
        event = op(key)
        if event is None:
            return
        self.publish(event)
        if self.rng.random() < 0.10:  # MinIO retried its publish: the same event twice
            self.publish(event)
        if self.history and self.rng.random() < 0.05:  # an old event arriving late
            self.publish(self.rng.choice(self.history))


def tags_of(user, bucket, key):
    status, _, body = user.request("GET", bucket, key, query={"tagging": ""})
    if status != 200:
        return None
    ns = "{http://s3.amazonaws.com/doc/2006-03-01/}"
    return sorted((t.findtext(ns + "Key"), t.findtext(ns + "Value")) for t in ElementTree.fromstring(body).iter(ns + "Tag"))


def gcs_current_sha256(key):
    status, _, body = gcs.request("GET", "/storage/v1/b/%s/o/%s" % (GCS_ALL, urllib.parse.quote(key, safe="")),
                                  query={"alt": "media"})
    if status == 404:
        return None
    assert status == 200, (key, status)
    return hashlib.sha256(body).hexdigest()


def current(user, bucket, key):
    """(sha256, tags) of the current version, or None when the key looks absent."""
    status, _, body = user.request("GET", bucket, key)
    if status == 404:
        return None
    assert status == 200, (bucket, key, status)
    return hashlib.sha256(body).hexdigest(), tags_of(user, bucket, key)


class VersionedConvergenceTest(unittest.TestCase):
    def test_every_destination_holds_what_the_versioned_source_holds_after_racing_events(self):
        ops = int(os.environ.get("ARCHIE_VCONVERGENCE_OPS", "200"))
        rate = float(os.environ.get("ARCHIE_VCONVERGENCE_RATE", "12"))
        seed = int(os.environ.get("ARCHIE_VCONVERGENCE_SEED", str(int(time.time()))))
        max_delay = float(os.environ.get("ARCHIE_VCONVERGENCE_DELAY", "0.2"))
        sys.stderr.write(f"    [versioned convergence] seed {seed}, {ops} operations at {rate}/s, "
                         f"delay <= {max_delay}s\n")
        rng = random.Random(seed)
        host, port = rig.ceph.endpoints[1].split("//")[1].split(":")
        proxy = DelayProxy(host, int(port), max_delay=max_delay, seed=seed).start()
        self.addCleanup(proxy.stop)
        fs_root = tempfile.mkdtemp(prefix="fs-", dir=workdir)
        nats = NatsClient([rig.nats.url])
        self.addCleanup(nats.close)
        workers = []
        for _ in range(2):
            w = ArchieProcess(archie_config(proxy.endpoint, fs_root))
            self.addCleanup(w.stop)
            w.wait_ready()
            workers.append(w)

        load = Workload(nats, rng)
        started = time.monotonic()
        for i in range(ops):
            load.step()
            ahead = started + (i + 1) / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        published = time.monotonic() - started
        wait_for_quiet_consumer(nats, STREAM, DURABLE, timeout=300)
        quiet = time.monotonic() - started

        src, dst = RgwUser(rig, "archie", 0), RgwUser(rig, "other", 1)
        problems = {"all": [], "backup": [], "current": [], "fs": [], "gcs-all": []}
        for key in KEYS:
            source = src.history(SOURCE, key)
            objects = [v["version_id"] for v in source if not v["delete_marker"]]
            source_now = current(src, SOURCE, key)
            top_is_marker = bool(source) and source[-1]["delete_marker"]

            mirror = dst.history(ALL, key)
            copies = [v.get("source_version_id") for v in mirror if not v["delete_marker"]]
            if copies != objects:
                problems["all"].append(f"{key}: versions {copies} != source {objects}")
            if (current(dst, ALL, key) or (None,))[0] != (source_now or (None,))[0]:
                problems["all"].append(f"{key}: current version differs")
            if top_is_marker and not (mirror and mirror[-1]["delete_marker"]):
                problems["all"].append(f"{key}: no delete marker on top")

            backup = dst.history(BACKUP, key)
            kept = {v.get("source_version_id") for v in backup if not v["delete_marker"]}
            lost = load.ever[key] - load.gone_unseen[key] - kept
            if lost:
                problems["backup"].append(f"{key}: lost {sorted(lost)}")
            if objects and not top_is_marker and (not backup or backup[-1].get("source_version_id") != objects[-1]):
                problems["backup"].append(f"{key}: current is not the source's")

            if current(dst, CURRENT, key) != source_now:
                problems["current"].append(f"{key}: {current(dst, CURRENT, key)} != {source_now}")
            path = os.path.join(fs_root, MIRROR, key)
            on_disk = None
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    on_disk = hashlib.sha256(f.read()).hexdigest()
            if on_disk != (source_now or (None,))[0]:
                problems["fs"].append(f"{key}: differs")

            generations = gcs.generations(GCS_ALL, key)
            copies = [(g.get("metadata") or {}).get("archie-source-version-id") for g in generations]
            if copies != objects:
                problems["gcs-all"].append(f"{key}: generations copy {copies} != source {objects}")
            live = [g["generation"] for g in generations if "timeDeleted" not in g]
            if len(live) > 1 or (live and live[0] != generations[-1]["generation"]):
                problems["gcs-all"].append(f"{key}: live generations {live}")
            if gcs_current_sha256(key) != (source_now or (None,))[0]:
                problems["gcs-all"].append(f"{key}: live bytes differ from the source's current version")

        logs = [line for w in workers for line in w.logs()]
        codes = {}
        for line in logs:
            if line.get("msg") in ("event skipped", "event not done"):
                codes[line.get("code")] = codes.get(line.get("code"), 0) + 1
        copied = sum(line.get("versions_copied", 0) for line in logs if line.get("msg") == "versions replicated")
        dead = nats.stream_info(STREAM + "-dead-letter")["state"]["messages"]
        unseen = sum(len(v) for v in load.gone_unseen.values())
        sys.stderr.write(
            f"    [versioned convergence] {unseen} versions deleted before the backup could copy them; "
            f"{len(load.history)} events in {published:.0f}s, quiet after {quiet:.0f}s; "
            f"{proxy.requests} destination requests; {copied} versions copied; dead letters {dead}; "
            f"settled codes {codes}\n")
        for dest, found in problems.items():
            sys.stderr.write(f"    [versioned convergence] {dest}: {len(found)} problems {found}\n")
        for dest, found in problems.items():
            with self.subTest(destination=dest):
                self.assertEqual(found, [], f"seed {seed}: {dest} differs from the source")
        self.assertEqual(dead, 0, "churn must not fill the dead-letter stream")


if __name__ == "__main__":
    unittest.main()
