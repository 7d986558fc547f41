"""`archie verify`, `archie backfill` and `archie dead-letters` on the real servers: a Ceph RGW
source bucket, an RGW destination on another endpoint (other credentials), archie's GCS test
server (with a destination prefix) and a local directory. Servers: nats-server, Ceph (mon,
osd, two radosgw), the GCS test server.

The issue's figure is 5,000 objects; CI runs 600 (the same 100 missing / 50 different / 30
extra per destination, on disjoint keys) to stay within its time budget.
ARCHIE_DIVERGENCE_OBJECTS=5000 runs the full size."""
import base64
import concurrent.futures
import hashlib
import json
import os
import pty
import select
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.parse

from testkit.aws_credential_servers import FixedKeyIssuer, StsServer
from testkit.archie_process import ArchieProcess, run_cli, write_config
from testkit.config_builder import archie_config, fs_store, gcs_store, queue_section, rgw_store, route, s3_store
from testkit.events import minio_event
from testkit.gcs_server.launcher import GcsTestServer
from testkit.metrics import metric
from testkit.nats_client import NatsClient
from testkit.proxies.forward_proxy import ForwardProxy
from testkit.proxies.tls_front import TlsFront
from testkit.paths import ARCHIE_BIN
from testkit.rgw_user import RgwUser
from testkit.rig import Rig
from testkit.sigv4 import s3_request

N = int(os.environ.get("ARCHIE_DIVERGENCE_OBJECTS", "600"))
MISSING, DIFFERENT, EXTRA = 100, 50, 30
SUBJECT, STREAM, DLQ_SUBJECT = "minio.events", "minio-events", "archie.dead"
SRC_BUCKET, DST_BUCKET, FS_BUCKET, GCS_BUCKET, LATE_BUCKET = "div-source", "div-replica", "div-mirror", "div-gcs", "late"
EDGE_BUCKET = "edge-source"
GCS_PREFIX = "copy/"
EXCLUDED = ["tmp/scratch-1", "tmp/scratch-2"]  # exclude_copy = ["^tmp/"]: never compared
DESTS = ["dst:" + DST_BUCKET, "local:" + FS_BUCKET, "gcs:" + GCS_BUCKET + "/" + GCS_PREFIX]

rig = gcs = workdir = None


def awkward_key(i):
    # Mixed shapes: nested paths, spaces, '+', '%', UTF-8, '-' vs '/' ordering, query-like text.
    shapes = ["k/%05d", "sp ace/%05d", "plus+%05d", "pct%%25/%05d", "uni/\u00e9t\u00e9-%05d", "a-b/%05d", "a/b%05d",
              "q?x=%05d&y", "deep/1/2/3/4/%05d"]
    return shapes[i % len(shapes)] % i


def body_for(i, salt=""):
    size = 0 if i % 97 == 0 else (6 << 20) + 1 if i in (5, 6) else 1 + (i * 7919) % 3000
    block = hashlib.sha256(f"{i}{salt}".encode()).digest()
    return (block * (size // 32 + 1))[:size]


def setUpModule():
    global rig, gcs, workdir
    rig = Rig(nats=True, ceph=True)
    rig.start()
    workdir = tempfile.mkdtemp(prefix="archie-divergence-")
    gcs = GcsTestServer()
    gcs.start()
    gcs.create_bucket(GCS_BUCKET)
    rig.ceph.make_bucket(SRC_BUCKET, user="archie", endpoint_index=0)
    rig.ceph.make_bucket(LATE_BUCKET, user="archie", endpoint_index=0)
    rig.ceph.make_bucket(EDGE_BUCKET, user="archie", endpoint_index=0)
    rig.ceph.make_bucket(DST_BUCKET, user="other", endpoint_index=1)


def tearDownModule():
    if gcs:
        gcs.stop()
    if rig:
        rig.stop()
    if workdir:
        shutil.rmtree(workdir, ignore_errors=True)


def s3(user, index, method, bucket, key="", body=b"", query=None):
    access, secret = rig.ceph.users[user]
    path = "/" + bucket + ("/" + key if key else "")
    status, headers, data = s3_request(rig.ceph.endpoints[index], method, path, access, secret, body=body, query=query)
    if status >= 300 and not (method == "DELETE" and status == 404):
        raise AssertionError(f"{method} {path}: {status} {data[:200]}")
    return headers, data


def gcs_put(key, body):
    status, _, data = gcs.request("POST", f"/upload/storage/v1/b/{GCS_BUCKET}/o", body=body,
                                  query={"uploadType": "media", "name": key})
    assert status == 200, (status, data[:200])


def gcs_delete(key):
    status, _, _ = gcs.request("DELETE", f"/storage/v1/b/{GCS_BUCKET}/o/{urllib.parse.quote(key, safe='')}")
    assert status in (204, 404), status


def config_text(fs_root, extra=""):
    copy = route("src", SRC_BUCKET, [("dst", DST_BUCKET), ("local", FS_BUCKET), ("gcs", GCS_BUCKET)],
                 exclude_copy=["^tmp/"])
    copy["destinations"][2]["prefix"] = GCS_PREFIX
    return archie_config(
        [rig.nats.url], log_level="info", concurrency=8, shutdown_wait="5s",
        queue=queue_section([SUBJECT], stream=STREAM, dead_letter_subject=DLQ_SUBJECT, ack_wait="10s",
                            nak_backoff={"base": "200ms", "ceiling": "2s"}),
        replication={"part_size_mib": 5, "buffer_budget_mib": 64, "max_retries": 3, "unrouted_events": "term"},
        stores={"src": rgw_store(rig, "archie", 0), "dst": rgw_store(rig, "other", 1),
                "local": fs_store(fs_root, fsync=False), "gcs": gcs_store(gcs)},
        routes=[copy], extra=extra)


def archie(config_path, *args, timeout=600, env=None):
    return run_cli(*args, "--config", config_path, env=env, timeout=timeout)


def verify_report(config_path, *extra):
    r = archie(config_path, "verify", "--json", "--max-diffs", "1000", *extra)
    assert r.returncode in (0, 1), (r.returncode, r.stderr[-2000:])
    return r.returncode, json.loads(r.stdout.strip().splitlines()[-1])


def counts(report):
    return {d["destination"]: {k: d[k] for k in ("equal", "missing", "different", "extra", "excluded")}
            for d in report["routes"][0]["destinations"]}


class DivergenceTest(unittest.TestCase):
    """One scenario in order: fill, damage, verify, dry run, publish, direct, delete extras."""

    @classmethod
    def setUpClass(cls):
        cls.fs_root = os.path.join(workdir, "fs")
        os.makedirs(cls.fs_root)
        cls.config_path = write_config(config_text(cls.fs_root), workdir)
        cls.keys = [awkward_key(i) for i in range(N)]
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda i: s3("archie", 0, "PUT", SRC_BUCKET, cls.keys[i], body_for(i)), range(N)))
            list(pool.map(lambda k: s3("archie", 0, "PUT", SRC_BUCKET, k, b"scratch"), EXCLUDED))

    def damage(self):
        """Per destination a disjoint set of keys: MISSING deleted, DIFFERENT overwritten, EXTRA added."""
        plan = {}
        for j, dest in enumerate(DESTS):
            base = j * (MISSING + DIFFERENT)
            plan[dest] = (self.keys[base:base + MISSING], self.keys[base + MISSING:base + MISSING + DIFFERENT],
                          [f"extra/{j}/{n:03d}" for n in range(EXTRA)])
        missing, different, extra = plan[DESTS[0]]
        for k in missing:
            s3("other", 1, "DELETE", DST_BUCKET, k)
        for k in different:  # same size, other bytes, no marker: only the recorded ETag can tell
            i = self.keys.index(k)
            s3("other", 1, "PUT", DST_BUCKET, k, body_for(i, salt="x"))
        for k in extra:
            s3("other", 1, "PUT", DST_BUCKET, k, b"extra")
        missing, different, extra = plan[DESTS[1]]
        mirror = os.path.join(self.fs_root, FS_BUCKET)
        for k in missing:
            os.remove(os.path.join(mirror, k))
        for k in different:  # rewritten in place: the xattr marker stays, the size changes
            with open(os.path.join(mirror, k), "ab") as f:
                f.write(b"tail")
        for k in extra:
            os.makedirs(os.path.dirname(os.path.join(mirror, k)), exist_ok=True)
            with open(os.path.join(mirror, k), "wb") as f:
                f.write(b"extra")
        missing, different, extra = plan[DESTS[2]]
        for k in missing:
            gcs_delete(GCS_PREFIX + k)
        for k in different:
            gcs_put(GCS_PREFIX + k, b"other content")
        for k in extra:
            gcs_put(GCS_PREFIX + k, b"extra")
        return plan

    def assert_all_equal(self):
        code, report = verify_report(self.config_path)
        self.assertEqual(code, 0, counts(report))
        for dest, c in counts(report).items():
            self.assertEqual(c["equal"], N, dest)
            self.assertEqual(c["missing"] + c["different"] + c["extra"], 0, dest)
            self.assertEqual(c["excluded"], len(EXCLUDED), dest)

    def test_1_backfill_direct_fills_empty_destinations_and_verify_then_finds_them_equal(self):
        code, report = verify_report(self.config_path)
        self.assertEqual(code, 1)
        for dest, c in counts(report).items():
            self.assertEqual(c["missing"], N, dest)
        r = archie(self.config_path, "backfill", "--direct", "--json")
        self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr[-3000:])
        result = json.loads(r.stdout.strip().splitlines()[-1])
        self.assertEqual((result["copies"], result["repaired"], result["failed"]), (N, N, 0))
        self.assert_all_equal()

    def test_2_verify_reports_exactly_the_damage_per_destination_and_backfill_repairs_it(self):
        plan = self.damage()
        code, report = verify_report(self.config_path)
        self.assertEqual(code, 1)
        c = counts(report)
        for dest in DESTS:
            self.assertEqual(c[dest], {"equal": N - MISSING - DIFFERENT, "missing": MISSING, "different": DIFFERENT,
                                       "extra": EXTRA, "excluded": len(EXCLUDED)}, dest)
        listed = {(d["destination"], d["state"], d["key"]) for d in report["differences"]}
        missing, different, extra = plan[DESTS[2]]
        self.assertIn((DESTS[2], "missing", GCS_PREFIX + missing[0]), listed)
        self.assertIn((DESTS[2], "different", GCS_PREFIX + different[0]), listed)
        self.assertIn((DESTS[2], "extra", GCS_PREFIX + extra[0]), listed)
        self.assertEqual(report["differences_total"], 3 * (MISSING + DIFFERENT + EXTRA))
        # The S3 replicas rewritten with other bytes have ETags the listing cannot judge: each was
        # decided by reading its marker (the reads run concurrently, the report stays in key order).
        (dst,) = [d for d in report["routes"][0]["destinations"] if d["destination"] == DESTS[0]]
        self.assertGreaterEqual(dst["marker_reads"], DIFFERENT)
        at_dst = [d["key"] for d in report["differences"] if d["destination"] == DESTS[0]]
        self.assertEqual(at_dst, sorted(at_dst))  # code point order is S3's (UTF-8 byte) order

        # --dry-run prints the plan and changes nothing.
        r = archie(self.config_path, "backfill", "--dry-run", "--delete-extra")
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        planned = [line.split("\t") for line in r.stdout.splitlines() if line.startswith("would ")]
        self.assertEqual(sum(1 for p in planned if p[0] == "would copy"), 3 * (MISSING + DIFFERENT))
        self.assertEqual(sum(1 for p in planned if p[0] == "would remove"), 3 * EXTRA)
        self.assertEqual(counts(verify_report(self.config_path)[1]), c)

        # Default mode: events for the worker fleet; extras stay without --delete-extra.
        worker = ArchieProcess(config_text(self.fs_root))
        try:
            worker.wait_for_log("consuming", timeout=60)
            r = archie(self.config_path, "backfill", "--json")
            self.assertEqual(r.returncode, 0, r.stderr[-2000:])
            result = json.loads(r.stdout.strip().splitlines()[-1])
            self.assertEqual((result["mode"], result["copies"], result["repaired"], result["removals"]),
                             ("publish", 3 * (MISSING + DIFFERENT), 3 * (MISSING + DIFFERENT), 0))
            self.assertEqual(result["extras_kept"], 3 * EXTRA)
            deadline = time.time() + 180
            while True:
                code, report = verify_report(self.config_path)
                now = counts(report)
                if all(now[d]["missing"] == 0 and now[d]["different"] == 0 for d in DESTS) or time.time() > deadline:
                    break
                time.sleep(1)
            for dest in DESTS:
                self.assertEqual((now[dest]["missing"], now[dest]["different"], now[dest]["extra"]), (0, 0, EXTRA), dest)
            self.assertEqual(code, 1)
            marked = [l for l in worker.logs() if l.get("msg") == "replicated"]
            self.assertTrue(marked, "the worker copied the backfill events")
            # The worker tells repairs from live changes: a log line and a metric per event.
            backfilled = [l for l in worker.logs() if l.get("msg") == "backfill event"]
            self.assertGreaterEqual(len(backfilled), 3 * (MISSING + DIFFERENT) // 3)
            acked = metric(worker.metrics(), "archie_backfill_events_total", state="ack")
            self.assertGreaterEqual(acked, len([l for l in backfilled if l.get("outcome") == "ack"]))
            self.assertGreater(acked, 0)
        finally:
            worker.stop()

        # --direct --delete-extra removes the extras: everything equal.
        r = archie(self.config_path, "backfill", "--direct", "--delete-extra", "--json")
        self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr[-2000:])
        result = json.loads(r.stdout.strip().splitlines()[-1])
        self.assertEqual((result["copies"], result["removals"], result["failed"]), (0, 3 * EXTRA, 0))
        self.assert_all_equal()

        # Direct mode repairs missing and different keys too.
        self.damage()
        r = archie(self.config_path, "backfill", "--direct", "--delete-extra")
        self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr[-2000:])
        self.assert_all_equal()

    def test_3_progress_is_a_live_line_on_a_terminal(self):
        env = dict(os.environ, ARCHIE_PROGRESS_INTERVAL="20ms")
        pid, fd = pty.fork()
        if pid == 0:
            os.execve(ARCHIE_BIN, [ARCHIE_BIN, "verify", "--config", self.config_path], env)
        out = b""
        while True:
            ready, _, _ = select.select([fd], [], [], 60)
            if not ready:
                break
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0, out[-2000:])
        text = out.decode(errors="replace")
        updates = text.count("\r\x1b[K")
        self.assertGreaterEqual(updates, 2, text[-2000:])
        self.assertIn("\r\x1b[Kdone: route 1", text)
        # The live line is rewritten in place: no newline between updates, then the summary.
        live = text[text.index("\r\x1b[K"):text.rindex("\r\x1b[K")]
        self.assertNotIn("\n", live)
        self.assertTrue(text.rstrip().endswith("s)"), text[-300:])
        self.assertIn("everything is equal", text)

    def test_4_progress_is_json_lines_on_stderr_when_not_a_terminal(self):
        r = archie(self.config_path, "verify", "--json", env={"ARCHIE_PROGRESS_INTERVAL": "20ms"})
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        lines = [json.loads(line) for line in r.stderr.splitlines() if line.startswith("{")]
        self.assertGreaterEqual(len(lines), 2, r.stderr[-2000:])
        self.assertEqual(lines[-1]["progress"], "done")
        self.assertEqual(lines[-1]["compared"], N + len(EXCLUDED))
        self.assertEqual(lines[-1]["source_listed"], N + len(EXCLUDED))
        self.assertEqual(json.loads(r.stdout)["differences_total"], 0)

    def test_5_ctrl_c_stops_a_backfill_cleanly_and_says_how_far_it_got(self):
        for k in self.keys[:40]:
            s3("other", 1, "DELETE", DST_BUCKET, k)
        proc = subprocess.Popen([ARCHIE_BIN, "backfill", "--direct", "--max-rps", "5", "--config", self.config_path],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(3)
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            self.fail("no clean stop after SIGINT: " + err[-3000:])
        self.assertEqual(proc.returncode, 130, err[-2000:])
        self.assertIn("interrupted after", err)
        self.assertIn("last key:", err)
        code, report = verify_report(self.config_path)
        left = counts(report)["dst:" + DST_BUCKET]["missing"]
        self.assertTrue(0 < left < 40, left)  # some were repaired before the stop, not all
        r = archie(self.config_path, "backfill", "--direct")
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        self.assert_all_equal()

    def test_6_usage_and_config_errors_have_their_exit_codes(self):
        self.assertEqual(archie(self.config_path, "verify", "--route", "7").returncode, 2)
        self.assertEqual(archie(self.config_path, "verify", "--bogus").returncode, 2)
        bad = write_config("[[route]]\nsource = 3\n", workdir)
        self.assertEqual(archie(bad, "verify").returncode, 3)
        r = archie(self.config_path, "verify", "--prefix", "k/")
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        self.assertIn(": equal %d," % sum(1 for k in self.keys if k.startswith("k/")), r.stdout)

    def test_7_checksum_finds_a_replica_rewritten_in_place_with_the_same_size(self):
        k = self.keys[1]
        path = os.path.join(self.fs_root, FS_BUCKET, k)
        size = os.path.getsize(path)
        with open(path, "r+b") as f:  # same size, same xattr marker, other bytes
            f.write(bytes(b ^ 0xFF for b in f.read(1)))
        self.assertEqual(os.path.getsize(path), size)
        self.assertEqual(verify_report(self.config_path)[0], 0)  # markers and sizes cannot see it
        code, report = verify_report(self.config_path, "--checksum", "--prefix", "sp ace/")
        self.assertEqual(code, 1)
        self.assertEqual([(d["destination"], d["key"], d["state"]) for d in report["differences"]],
                         [(DESTS[1], k, "different")])
        self.assertIn("content differs", report["differences"][0]["reason"])
        dest = {d["destination"]: d for d in report["routes"][0]["destinations"]}
        self.assertGreater(dest[DESTS[0]]["content_bytes"], 0)
        os.remove(path)
        self.assertEqual(archie(self.config_path, "backfill", "--direct").returncode, 0)
        self.assertEqual(verify_report(self.config_path, "--checksum", "--prefix", "sp ace/")[0], 0)


class DeadLetterTest(unittest.TestCase):
    """A malformed message and an event for a bucket no route covered yet are dead-lettered with
    their reasons, listed, and (once the config routes the bucket) replayed and replicated."""

    def test_dead_letters_are_listed_with_reasons_replayed_after_the_fix_and_purged(self):
        fs_root = os.path.join(workdir, "fs-dl")
        os.makedirs(fs_root)
        before = config_text(fs_root)
        late_route = f"""
[[route]]
source = {{ store = "src", bucket = "{LATE_BUCKET}" }}
[[route.destinations]]
store = "local"
bucket = "late-copy"
"""
        after_path = write_config(config_text(fs_root, late_route), workdir)
        s3("archie", 0, "PUT", LATE_BUCKET, "late object.txt", b"arrived late")
        nats = NatsClient([rig.nats.url])
        worker = ArchieProcess(before)
        try:
            worker.wait_for_log("consuming", timeout=60)
            nats.js_publish(SUBJECT, b"this is not json")
            nats.js_publish(SUBJECT, minio_event("s3:ObjectCreated:Put", LATE_BUCKET, "late object.txt", size=12))
            deadline = time.time() + 60
            while time.time() < deadline:
                r = archie(after_path, "dead-letters", "list", "--json")
                listed = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
                if len(listed) >= 2:
                    break
                time.sleep(0.5)
        finally:
            worker.stop()
        self.assertEqual(r.returncode, 0, r.stderr)
        codes = {d["code"]: d for d in listed}
        self.assertIn("unrouted", codes, listed)
        malformed = [d for d in listed if d["data"] == "this is not json"]
        self.assertEqual(len(malformed), 1, listed)
        self.assertTrue(malformed[0]["reason"], malformed[0])
        self.assertIn(LATE_BUCKET, codes["unrouted"]["reason"])
        self.assertEqual(codes["unrouted"]["original_subject"], SUBJECT)

        r = archie(after_path, "dead-letters", "list", "--code", "unrouted")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(r.stdout.strip().splitlines()), 1, r.stdout)

        r = archie(after_path, "dead-letters", "replay", "--code", "unrouted", "--dry-run")
        self.assertIn("would replay", r.stdout)
        self.assertEqual(len(json_lines(archie(after_path, "dead-letters", "list", "--json").stdout)), len(listed))

        # The operator routes the bucket, restarts the worker, and replays.
        worker = ArchieProcess(open(after_path).read())
        try:
            worker.wait_for_log("consuming", timeout=60)
            r = archie(after_path, "dead-letters", "replay", "--code", "unrouted")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("replayed", r.stdout)
            target = os.path.join(fs_root, "late-copy", "late object.txt")
            deadline = time.time() + 60
            while not os.path.exists(target) and time.time() < deadline:
                time.sleep(0.2)
            with open(target, "rb") as f:
                self.assertEqual(f.read(), b"arrived late")
        finally:
            worker.stop()
        left = json_lines(archie(after_path, "dead-letters", "list", "--json").stdout)
        self.assertNotIn("unrouted", [d["code"] for d in left])

        seq = str(malformed[0]["sequence"])
        r = archie(after_path, "dead-letters", "purge", "--seq", seq)
        self.assertEqual(r.returncode, 0, r.stderr)
        left = json_lines(archie(after_path, "dead-letters", "list", "--json").stdout)
        self.assertNotIn(malformed[0]["sequence"], [d["sequence"] for d in left])
        nats.close()


class EdgeSafetyTest(unittest.TestCase):
    """Configs and keys at the edges: nothing archie does may delete what it should keep."""

    def edge_config(self, fs_root, routes, stores=None):
        return archie_config(
            [rig.nats.url], log_level="info", concurrency=4, shutdown_wait="5s",
            queue=queue_section([SUBJECT], stream=STREAM, dead_letter_subject=DLQ_SUBJECT),
            replication={"part_size_mib": 5},
            stores=stores or {"src": rgw_store(rig, "archie", 0), "local": fs_store(fs_root, fsync=False)},
            routes=routes)

    def test_overlapping_routes_are_refused_before_delete_extra_can_touch_the_other_routes_replicas(self):
        fs_root = tempfile.mkdtemp(dir=workdir)
        # Route 1 mirrors EDGE_BUCKET into all of "shared"; route 2 writes LATE_BUCKET's keys there too.
        late = route("src", LATE_BUCKET, [("local", "shared")])
        late["destinations"][0]["prefix"] = "late/"
        path = write_config(self.edge_config(fs_root, [route("src", EDGE_BUCKET, [("local", "shared")]), late]),
                            workdir)
        replica = os.path.join(fs_root, "shared", "late", "only-route-2-writes-this")
        os.makedirs(os.path.dirname(replica))
        with open(replica, "wb") as f:
            f.write(b"route 2's replica")
        for command in (["check-config"], ["backfill", "--direct", "--delete-extra"], ["verify"]):
            r = archie(path, *command)
            self.assertEqual(r.returncode, 3, (command, r.stdout[-1000:], r.stderr[-1000:]))
            self.assertIn("route[2].destinations[1]: writes into the same keys as route[1].destinations[1]", r.stderr)
        self.assertTrue(os.path.exists(replica), "a replica of another route was deleted")
        # A destination inside its own source range is a copy loop: refused too.
        loop = write_config(self.edge_config(fs_root, [route("src", EDGE_BUCKET, [("src", EDGE_BUCKET)])]), workdir)
        r = archie(loop, "check-config")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("lies inside the route's own source range", r.stderr)

    def test_a_key_named_like_a_temp_file_is_replicated_kept_across_restarts_and_verified(self):
        fs_root = tempfile.mkdtemp(dir=workdir)
        path = write_config(self.edge_config(fs_root, [route("src", EDGE_BUCKET, [("local", "edge-mirror")])]),
                            workdir)
        keys = ["logs/.archie-x.tmp", ".archie-123.tmp", "logs/plain.txt"]
        for k in keys:
            s3("archie", 0, "PUT", EDGE_BUCKET, k, k.encode())
        r = archie(path, "backfill", "--direct")
        self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr[-2000:])
        old = time.time() - 3600  # well past any age a sweep of leftovers waits for
        for k in keys:
            os.utime(os.path.join(fs_root, "edge-mirror", k), (old, old))
        for _ in range(2):  # each start builds the fs destination, which sweeps leftovers
            worker = ArchieProcess(open(path).read())
            worker.wait_for_log("consuming", timeout=60)
            time.sleep(1)
            worker.stop()
        for k in keys:
            with open(os.path.join(fs_root, "edge-mirror", k), "rb") as f:
                self.assertEqual(f.read(), k.encode(), k)
        code, report = verify_report(path)
        self.assertEqual(code, 0, report)
        self.assertEqual(report["routes"][0]["destinations"][0]["equal"], len(keys), report)
        # Copies in progress are unnamed files: nothing of archie's is left in the bucket directory.
        found = sorted(os.path.relpath(os.path.join(d, f), os.path.join(fs_root, "edge-mirror"))
                       for d, _, files in os.walk(os.path.join(fs_root, "edge-mirror")) for f in files)
        self.assertEqual(found, sorted(keys))

    def test_a_destination_that_ignores_deletes_keeps_every_copy_live_and_through_delete_extra(self):
        fs_root = tempfile.mkdtemp(dir=workdir)
        keep = route("src", EDGE_BUCKET, [("local", "kept"), ("local", "mirrored")])
        keep["source"]["prefix"] = "deletes/"
        keep["destinations"][0]["deletes"] = "ignore"
        path = write_config(self.edge_config(fs_root, [keep]), workdir)
        keys = ["deletes/live", "deletes/walk"]
        for k in keys:
            s3("archie", 0, "PUT", EDGE_BUCKET, k, k.encode())
        r = archie(path, "backfill", "--direct")
        self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr[-2000:])
        def kept(k):
            return os.path.exists(os.path.join(fs_root, "kept", k[len("deletes/"):]))

        def mirrored(k):
            return os.path.exists(os.path.join(fs_root, "mirrored", k[len("deletes/"):]))
        self.assertTrue(all(kept(k) and mirrored(k) for k in keys))
        # A live delete: removed from the mirror, kept in the backup.
        s3("archie", 0, "DELETE", EDGE_BUCKET, keys[0])
        worker = ArchieProcess(open(path).read())
        nats = NatsClient([rig.nats.url])
        try:
            worker.wait_for_log("consuming", timeout=60)
            nats.js_publish(SUBJECT, minio_event("s3:ObjectRemoved:Delete", EDGE_BUCKET, keys[0]))
            worker.wait_for_log("removed", key=keys[0], timeout=60)
        finally:
            nats.close()
            worker.stop()
        self.assertFalse(mirrored(keys[0]))
        self.assertTrue(kept(keys[0]))
        # A walk with --delete-extra: the backup's keys the source lacks are not extras.
        s3("archie", 0, "DELETE", EDGE_BUCKET, keys[1])
        r = archie(path, "backfill", "--direct", "--delete-extra")
        self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr[-2000:])
        self.assertFalse(mirrored(keys[1]))
        self.assertTrue(kept(keys[0]) and kept(keys[1]))
        code, report = verify_report(path)
        self.assertEqual(code, 0, report)
        self.assertEqual(counts(report)["local:kept"]["excluded"], 2, report)
        self.assertEqual(counts(report)["local:kept"]["extra"], 0, report)

    def test_a_destination_writes_with_its_own_acl_storage_class_and_kms_key_single_and_multipart(self):
        fs_root = tempfile.mkdtemp(dir=workdir)
        stores = {"src": rgw_store(rig, "archie", 0), "local": fs_store(fs_root, fsync=False),
                  "dst": rgw_store(rig, "other", 1), "gcs": gcs_store(gcs)}
        r = route("src", EDGE_BUCKET, [("dst", DST_BUCKET), ("gcs", GCS_BUCKET)])
        r["source"]["prefix"] = "opts/"
        # STANDARD_IA: the rig's RGW offers it besides STANDARD (testkit/ceph_rgw.py).
        r["destinations"][0].update(prefix="edge-opts/", acl="public-read", storage_class="STANDARD_IA",
                                    server_side_encryption="aws:kms", sse_kms_key_id="testkey-1")
        kms = "projects/p/locations/global/keyRings/r/cryptoKeys/archie"
        r["destinations"][1].update(prefix="edge-opts/", storage_class="COLDLINE", kms_key_name=kms)
        path = write_config(self.edge_config(fs_root, [r], stores=stores), workdir)
        s3("archie", 0, "PUT", EDGE_BUCKET, "opts/small", b"s" * 100)
        s3("archie", 0, "PUT", EDGE_BUCKET, "opts/large", body_for(5))  # 6 MiB + 1: multipart at 5 MiB parts
        for k in ("opts/small", "opts/large"):  # other tests here walk the whole bucket
            self.addCleanup(s3, "archie", 0, "DELETE", EDGE_BUCKET, k)
        done = archie(path, "backfill", "--direct")
        self.assertEqual(done.returncode, 0, done.stdout[-2000:] + done.stderr[-2000:])
        for key in ("edge-opts/small", "edge-opts/large"):
            _, acl = s3("other", 1, "GET", DST_BUCKET, key, query={"acl": ""})
            self.assertIn(b"http://acs.amazonaws.com/groups/global/AllUsers", acl, key)
            headers, _ = s3("other", 1, "HEAD", DST_BUCKET, key)
            self.assertEqual(headers.get("x-amz-storage-class"), "STANDARD_IA", key)
            # The large replica was written in parts: the class came with CreateMultipartUpload.
            self.assertEqual(headers["etag"].strip('"').endswith("-2"), key == "edge-opts/large", headers["etag"])
            # RGW's testing KMS backend (testkit/ceph_rgw.py) holds testkey-1.
            self.assertEqual(headers.get("x-amz-server-side-encryption"), "aws:kms", key)
            self.assertEqual(headers.get("x-amz-server-side-encryption-aws-kms-key-id"), "testkey-1", key)
            status, _, body = gcs.request("GET", f"/storage/v1/b/{GCS_BUCKET}/o/{urllib.parse.quote(key, safe='')}")
            self.assertEqual(status, 200, body)
            resource = json.loads(body)
            self.assertEqual(resource["storageClass"], "COLDLINE", key)
            self.assertEqual(resource["kmsKeyName"], kms + "/cryptoKeyVersions/1", key)
        # A class the destination's zonegroup lacks passes the config check (classes are the
        # store's business) and is refused at write time, PutObject and CreateMultipartUpload
        # alike, as a permanent failure: nothing is written, nothing is retried.
        r = route("src", EDGE_BUCKET, [("dst", DST_BUCKET)])
        r["source"]["prefix"] = "opts/"
        r["destinations"][0].update(prefix="edge-glacier/", storage_class="GLACIER")
        glacier = archie(write_config(self.edge_config(fs_root, [r], stores=stores), workdir), "backfill", "--direct")
        self.assertEqual(glacier.returncode, 1, glacier.stdout[-2000:] + glacier.stderr[-2000:])
        failed = {line.split("\t")[1]: line.split("\t")[2] for line in glacier.stdout.splitlines()
                  if line.startswith("  failed\t")}
        self.assertEqual(sorted(failed), ["opts/large", "opts/small"], glacier.stdout)
        for key, call in (("small", "PutObject"), ("large", "CreateMultipartUpload")):
            self.assertTrue(failed["opts/" + key].startswith("destination_permanent: store dst: " + call), failed)
            self.assertIn("HTTP 400 InvalidArgument", failed["opts/" + key])  # RGW 16's code (AWS: InvalidStorageClass)
            self.assertEqual(RgwUser(rig, "other", 1).head(DST_BUCKET, "edge-glacier/" + key)[0], 404)
        # A store kind without the option is refused at load, naming the key.
        bad = route("src", EDGE_BUCKET, [("local", "opts")])
        bad["destinations"][0]["acl"] = "public-read"
        refused = archie(write_config(self.edge_config(fs_root, [bad]), workdir), "check-config")
        self.assertEqual(refused.returncode, 3, refused.stderr)
        self.assertIn("route[1].destinations[1].acl: applies to s3 destinations only", refused.stderr)

    def test_retention_and_legal_hold_reach_a_locked_bucket_and_a_hold_change_copies_no_bytes(self):
        fs_root = tempfile.mkdtemp(dir=workdir)
        for user, index, bucket in (("archie", 0, "locked-src"), ("other", 1, "locked-dst")):
            status, _, body = RgwUser(rig, user, index).request(
                "PUT", bucket, headers={"x-amz-bucket-object-lock-enabled": "true"})
            self.assertEqual(status, 200, body)
        stores = {"src": rgw_store(rig, "archie", 0), "local": fs_store(fs_root, fsync=False),
                  "dst": rgw_store(rig, "other", 1)}
        # The directory cannot hold a lock: it keeps the default object_lock = "ignore".
        path = write_config(self.edge_config(fs_root, [route("src", "locked-src", [("dst", "locked-dst"),
                                                                                   ("local", "unlocked")])],
                                             stores=stores), workdir)
        src = RgwUser(rig, "archie", 0)
        status, headers, body = src.request("PUT", "locked-src", "contract.pdf", body=b"signed" * 100, headers={
            "x-amz-object-lock-mode": "GOVERNANCE", "x-amz-object-lock-retain-until-date": "2031-01-01T00:00:00Z",
            "x-amz-object-lock-legal-hold": "ON"})
        self.assertEqual(status, 200, body)
        done = archie(path, "backfill", "--direct")
        self.assertEqual(done.returncode, 0, done.stdout[-2000:] + done.stderr[-2000:])
        dst = RgwUser(rig, "other", 1)
        _, at_dst, _ = dst.head("locked-dst", "contract.pdf")
        self.assertEqual(at_dst.get("x-amz-object-lock-mode"), "GOVERNANCE")
        self.assertTrue(at_dst.get("x-amz-object-lock-retain-until-date", "").startswith("2031-01-01T00:00:00"))
        self.assertEqual(at_dst.get("x-amz-object-lock-legal-hold"), "ON")
        self.assertTrue(os.path.exists(os.path.join(fs_root, "unlocked", "contract.pdf")))
        # The legal hold lifted at the source: only the hold travels.
        status, _, body = src.request("PUT", "locked-src", "contract.pdf", query={"legal-hold": ""},
                                      body=b'<LegalHold xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                                           b'<Status>OFF</Status></LegalHold>')
        self.assertEqual(status, 200, body)
        worker = ArchieProcess(open(path).read())
        nats = NatsClient([rig.nats.url])
        try:
            worker.wait_for_log("consuming", timeout=60)
            nats.js_publish(SUBJECT, minio_event("s3:ObjectCreated:PutLegalHold", "locked-src", "contract.pdf"))
            worker.wait_for_log("replicated", key="contract.pdf", bytes_copied=0, tag_writes=1, timeout=60)
        finally:
            nats.close()
            worker.stop()
        _, at_dst, _ = dst.head("locked-dst", "contract.pdf")
        self.assertEqual(at_dst.get("x-amz-object-lock-legal-hold"), "OFF")
        self.assertEqual(at_dst.get("x-amz-object-lock-mode"), "GOVERNANCE")

    def test_an_object_encrypted_with_a_customer_key_is_dead_lettered_by_name_never_copied(self):
        fs_root = tempfile.mkdtemp(dir=workdir)
        r = route("src", EDGE_BUCKET, [("local", "sse-c")])
        r["source"]["prefix"] = "ssec/"
        path = write_config(self.edge_config(fs_root, [r]), workdir)
        key = b"k" * 32
        status, _, body = RgwUser(rig, "archie", 0).request("PUT", EDGE_BUCKET, "ssec/secret", body=b"ciphertext?", headers={
            "x-amz-server-side-encryption-customer-algorithm": "AES256",
            "x-amz-server-side-encryption-customer-key": base64.b64encode(key).decode(),
            "x-amz-server-side-encryption-customer-key-md5": base64.b64encode(hashlib.md5(key).digest()).decode()})
        self.assertEqual(status, 200, body)
        self.addCleanup(s3, "archie", 0, "DELETE", EDGE_BUCKET, "ssec/secret")
        worker = ArchieProcess(open(path).read())
        nats = NatsClient([rig.nats.url])
        try:
            worker.wait_for_log("consuming", timeout=60)
            # Size 11 fits one part: the first read is a GET. A redelivery asks with a HEAD.
            nats.js_publish(SUBJECT, minio_event("s3:ObjectCreated:Put", EDGE_BUCKET, "ssec/secret", size=11))
            refused = worker.wait_for_log("event not done", key="ssec/secret", timeout=60)
        finally:
            nats.close()
            worker.stop()
        self.assertEqual((refused["outcome"], refused["code"]), ("term", "source_customer_key"), refused)
        self.assertIn("SSE-C", refused["reason"])
        self.assertNotIn(key.decode(), refused["reason"])
        self.assertFalse(os.path.exists(os.path.join(fs_root, "sse-c", "secret")))
        listed = json_lines(archie(path, "dead-letters", "list", "--json", "--code", "source_customer_key").stdout)
        self.assertEqual([d["code"] for d in listed], ["source_customer_key"], listed)
        # A walk meets it with a HEAD: the same reason, and nothing written.
        walked = archie(path, "backfill", "--direct")
        self.assertNotEqual(walked.returncode, 0, walked.stdout[-2000:])
        self.assertIn("source_customer_key", walked.stdout + walked.stderr)
        self.assertFalse(os.path.exists(os.path.join(fs_root, "sse-c", "secret")))

    def test_versions_all_copies_the_whole_history_in_order_whatever_order_the_events_come_in(self):
        fs_root = tempfile.mkdtemp(dir=workdir)
        src, dst = RgwUser(rig, "archie", 0), RgwUser(rig, "other", 1)
        for user, bucket in ((src, "hist-src"), (dst, "hist-mirror"), (dst, "hist-backup"), (dst, "hist-plain")):
            status, _, body = user.request("PUT", bucket)
            self.assertEqual(status, 200, body)
            if bucket != "hist-plain":
                user.set_versioning(bucket)
        gcs.create_bucket("hist-gcs", versioning=True)
        stores = {"src": rgw_store(rig, "archie", 0), "local": fs_store(fs_root, fsync=False),
                  "dst": rgw_store(rig, "other", 1), "gcs": gcs_store(gcs)}
        r = route("src", "hist-src", [("dst", "hist-mirror"), ("dst", "hist-backup"), ("local", "current"),
                                      ("gcs", "hist-gcs")])
        r["destinations"][0]["versions"] = "all"
        r["destinations"][1].update(versions="all", deletes="ignore")
        r["destinations"][3]["versions"] = "all"

        def generations():  # at GCS: (source version, live) oldest first; no delete markers there
            return [(g["metadata"]["archie-source-version-id"], "timeDeleted" not in g)
                    for g in gcs.generations("hist-gcs", key)]
        path = write_config(self.edge_config(fs_root, [r], stores=stores), workdir)
        key = "ledger.csv"
        bodies = [b"first" * 100, body_for(5), b"third" * 100]  # the second is multipart (5 MiB parts)
        ids = []
        for body in bodies[:2]:
            _, headers, _ = src.request("PUT", "hist-src", key, body=body)
            ids.append(headers["x-amz-version-id"])
        _, headers, _ = src.request("DELETE", "hist-src", key)
        marker = headers["x-amz-version-id"]
        _, headers, _ = src.request("PUT", "hist-src", key, body=bodies[2])
        ids.append(headers["x-amz-version-id"])

        worker = ArchieProcess(open(path).read())
        nats = NatsClient([rig.nats.url])
        try:
            worker.wait_for_log("consuming", timeout=60)
            # Newest first, the marker last: each event levels the whole history.
            for name, version in (("s3:ObjectCreated:Put", ids[2]), ("s3:ObjectCreated:Put", ids[0]),
                                  ("s3:ObjectCreated:CompleteMultipartUpload", ids[1]),
                                  ("s3:ObjectRemoved:DeleteMarkerCreated", marker)):
                nats.js_publish(SUBJECT, minio_event(name, "hist-src", key, version_id=version))
            first = worker.wait_for_log("versions replicated", key=key, timeout=60)
            self.assertEqual((first["versions_copied"], first["delete_markers"]), (9, 1), first)
            deadline = time.monotonic() + 60
            while len(worker.logs("already replicated", key=key, versions="all")) < 3:
                self.assertLess(time.monotonic(), deadline, worker.tail())
                time.sleep(0.1)
            mirror, backup = dst.history("hist-mirror", key), dst.history("hist-backup", key)
            self.assertEqual([v.get("source_version_id") or "DM" for v in mirror], [ids[0], ids[1], "DM", ids[2]], mirror)
            self.assertEqual([v["source_version_id"] for v in backup], ids, backup)
            self.assertEqual(generations(), [(ids[0], False), (ids[1], False), (ids[2], True)])
            for copy, want in zip([v for v in mirror if not v["delete_marker"]], bodies):
                _, _, got = dst.request("GET", "hist-mirror", key, query={"versionId": copy["version_id"]})
                self.assertEqual(hashlib.sha256(got).hexdigest(), hashlib.sha256(want).hexdigest())
            with open(os.path.join(fs_root, "current", key), "rb") as f:
                self.assertEqual(f.read(), bodies[2])  # versions = "current" next to them

            # Tags set on an old version: only that version's copies get them, no bytes move.
            tagging = (b'<Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet><Tag><Key>audit</Key>'
                       b'<Value>2026</Value></Tag></TagSet></Tagging>')
            status, _, body = src.request("PUT", "hist-src", key, query={"tagging": "", "versionId": ids[1]},
                                          body=tagging)
            self.assertEqual(status, 200, body)
            nats.js_publish(SUBJECT, minio_event("s3:ObjectCreated:PutTagging", "hist-src", key, version_id=ids[1]))
            tagged = worker.wait_for_log("versions replicated", key=key, tag_writes=3, timeout=60)
            self.assertEqual(tagged["versions_copied"], 0, tagged)
            for bucket in ("hist-mirror", "hist-backup"):
                copy = [v for v in dst.history(bucket, key) if v.get("source_version_id") == ids[1]][0]
                _, _, tags = dst.request("GET", bucket, key, query={"tagging": "", "versionId": copy["version_id"]})
                self.assertIn(b"<Key>audit</Key>", tags, bucket)
                _, _, current_tags = dst.request("GET", bucket, key, query={"tagging": ""})
                self.assertNotIn(b"audit", current_tags, bucket)
            tags = {g["metadata"]["archie-source-version-id"]: g["metadata"].get("archie-tags")
                    for g in gcs.generations("hist-gcs", key)}
            self.assertEqual(tags, {ids[0]: None, ids[1]: "audit=2026", ids[2]: None})

            # The first version deleted for good: gone from the mirror, kept in the backup.
            src.request("DELETE", "hist-src", key, query={"versionId": ids[0]})
            nats.js_publish(SUBJECT, minio_event("s3:ObjectRemoved:Delete", "hist-src", key, version_id=ids[0]))
            gone = worker.wait_for_log("versions replicated", key=key, versions_removed=2, timeout=60)
            self.assertEqual(gone["versions_copied"], 0, gone)
            self.assertEqual([v.get("source_version_id") or "DM" for v in dst.history("hist-mirror", key)],
                             [ids[1], "DM", ids[2]])
            self.assertEqual(len(dst.history("hist-backup", key)), 3)
            self.assertEqual(generations(), [(ids[1], False), (ids[2], True)])
            # A delete now: a marker on the mirror; the backup's current version stays readable.
            _, headers, _ = src.request("DELETE", "hist-src", key)
            nats.js_publish(SUBJECT, minio_event("s3:ObjectRemoved:DeleteMarkerCreated", "hist-src", key,
                                                 version_id=headers["x-amz-version-id"]))
            worker.wait_for_log("versions replicated", key=key, delete_markers=2, versions_copied=0, timeout=60)
            self.assertTrue(dst.history("hist-mirror", key)[-1]["delete_marker"])
            self.assertEqual(generations(), [(ids[1], False), (ids[2], False)])  # nothing live
            status, _, got = dst.request("GET", "hist-backup", key)
            self.assertEqual((status, got), (200, bodies[2]))
        finally:
            nats.close()
            worker.stop()
        # verify --versions finds the histories level; a copy lost at each destination makes
        # them differ, and backfill levels them again (the key's latest is a delete marker:
        # a walk of current objects alone would never see it).
        verified = archie(path, "verify", "--versions")
        self.assertEqual(verified.returncode, 0, verified.stdout[-2000:] + verified.stderr[-2000:])
        for bucket, lost in (("hist-mirror", ids[1]), ("hist-backup", ids[2])):
            copy = [v for v in dst.history(bucket, key) if v.get("source_version_id") == lost][0]
            status, _, body = dst.request("DELETE", bucket, key, query={"versionId": copy["version_id"]})
            self.assertIn(status, (200, 204), body)
        lost = [g for g in gcs.generations("hist-gcs", key) if g["metadata"]["archie-source-version-id"] == ids[1]][0]
        status, _, _ = gcs.request("DELETE", "/storage/v1/b/hist-gcs/o/%s" % key, query={"generation": lost["generation"]})
        self.assertEqual(status, 204)
        damaged = archie(path, "verify", "--versions", "--json")
        self.assertEqual(damaged.returncode, 1, damaged.stdout[-2000:] + damaged.stderr[-2000:])
        report = json.loads(damaged.stdout)
        found = {(d["destination"], d["state"]) for d in report["differences"]}
        self.assertEqual(found, {("dst:hist-mirror", "different"), ("dst:hist-backup", "different"),
                                 ("gcs:hist-gcs", "different")}, report)
        self.assertTrue(all(d["reason"].startswith("versions: ") for d in report["differences"]), report)
        self.assertEqual(archie(path, "verify").returncode, 0)  # the current versions alone look fine
        repaired = archie(path, "backfill", "--direct")
        self.assertEqual(repaired.returncode, 0, repaired.stdout[-2000:] + repaired.stderr[-2000:])
        verified = archie(path, "verify", "--versions")
        self.assertEqual(verified.returncode, 0, verified.stdout[-2000:] + verified.stderr[-2000:])
        mirror = dst.history("hist-mirror", key)
        self.assertEqual([v.get("source_version_id") for v in mirror if not v["delete_marker"]], ids[1:])
        self.assertTrue(mirror[-1]["delete_marker"])
        self.assertEqual({v.get("source_version_id") for v in dst.history("hist-backup", key)}, set(ids))
        self.assertEqual(generations(), [(ids[1], False), (ids[2], False)])

        # A destination bucket without versioning is refused by name, not filled with overwrites.
        src.request("PUT", "hist-src", key, body=b"again")  # a walk lists current versions
        plain = route("src", "hist-src", [("dst", "hist-plain")])
        plain["destinations"][0]["versions"] = "all"
        refused = archie(write_config(self.edge_config(fs_root, [plain], stores=stores), workdir),
                         "backfill", "--direct")
        self.assertNotEqual(refused.returncode, 0, refused.stdout[-2000:])
        self.assertIn("VersioningNotEnabled", refused.stdout + refused.stderr)
        self.assertEqual(dst.history("hist-plain", key), [])
        gcs.create_bucket("hist-gcs-plain")
        plain = route("src", "hist-src", [("gcs", "hist-gcs-plain")])
        plain["destinations"][0]["versions"] = "all"
        refused = archie(write_config(self.edge_config(fs_root, [plain], stores=stores), workdir),
                         "backfill", "--direct")
        self.assertNotEqual(refused.returncode, 0, refused.stdout[-2000:])
        self.assertIn("VersioningNotEnabled", refused.stdout + refused.stderr)
        self.assertEqual(gcs.generations("hist-gcs-plain", key), [])

    def test_stores_are_reached_through_https_proxy_and_http_proxy_and_no_proxy_is_honoured(self):
        # The endpoints' names exist only in the proxy's map: a request that bypassed it
        # could not even resolve them.
        fs_root = tempfile.mkdtemp(dir=workdir)
        rgw_src = ("127.0.0.1", int(rig.ceph.endpoints[0].rsplit(":", 1)[1]))
        front = TlsFront("127.0.0.1", int(rig.ceph.endpoints[1].rsplit(":", 1)[1]), fs_root).start()
        self.addCleanup(front.stop)
        plain = f"plain.archie.test:{rgw_src[1]}"
        proxy = ForwardProxy({plain: rgw_src, front.authority: front.address},
                             credentials=("svc", "pr0xy-s3cret")).start()
        self.addCleanup(proxy.stop)
        stores = {"src": rgw_store(rig, "archie", 0, endpoint=f"http://{plain}"),
                  "dst": rgw_store(rig, "other", 1, endpoint=front.url, ca_file=front.ca_file),
                  "local": fs_store(fs_root, fsync=False)}
        r = route("src", EDGE_BUCKET, [("dst", DST_BUCKET), ("local", "proxied")])
        r["source"]["prefix"] = r["destinations"][0]["prefix"] = "proxied/"
        path = write_config(self.edge_config(fs_root, [r], stores=stores), workdir)
        s3("archie", 0, "PUT", EDGE_BUCKET, "proxied/one", b"through the proxy")
        self.addCleanup(s3, "archie", 0, "DELETE", EDGE_BUCKET, "proxied/one")
        env = {"HTTPS_PROXY": proxy.url("svc", "pr0xy-s3cret"), "http_proxy": proxy.url("svc", "pr0xy-s3cret"),
               "NO_PROXY": "nats.archie.test"}
        done = archie(path, "backfill", "--direct", "--log-level", "info", env=env)
        self.assertEqual(done.returncode, 0, done.stdout[-2000:] + done.stderr[-2000:])
        self.assertEqual(s3("other", 1, "GET", DST_BUCKET, "proxied/one")[1], b"through the proxy")
        seen = {(q["method"], q["authority"]) for q in proxy.requests}
        self.assertIn(("CONNECT", front.authority), seen)  # https: a tunnel, TLS end to end
        self.assertIn(("GET", plain), seen)  # http: absolute-form requests
        self.assertTrue(all(q["proxy_authorization"] == proxy.authorization() for q in proxy.requests), proxy.requests)
        self.assertNotIn("pr0xy-s3cret", done.stdout + done.stderr)
        self.assertIn("connecting through a proxy", done.stderr)
        # NO_PROXY names the source: archie goes direct, and the name does not resolve.
        env["NO_PROXY"] = "plain.archie.test"
        direct = archie(path, "verify", env=env)
        self.assertEqual(direct.returncode, 4, direct.stdout[-2000:] + direct.stderr[-2000:])
        self.assertIn("resolve plain.archie.test", direct.stderr)
        # Wrong proxy credentials: a clear refusal naming the proxy, never the password.
        env = {"HTTPS_PROXY": proxy.url("svc", "wrong-pass"), "HTTP_PROXY": proxy.url("svc", "wrong-pass")}
        refused = archie(path, "verify", env=env)
        self.assertEqual(refused.returncode, 4, refused.stdout[-2000:] + refused.stderr[-2000:])
        self.assertIn("407", refused.stderr)
        self.assertNotIn("wrong-pass", refused.stdout + refused.stderr)

    def test_profiles_with_an_assumed_role_and_a_credential_process_give_a_store_its_keys(self):
        fs_root = tempfile.mkdtemp(dir=workdir)
        other_key, other_secret = rig.ceph.users["other"]
        # STS hands out the "other" user's keys (RGW checks the signature, not the token) to a
        # caller that signs AssumeRole with the base profile's keys.
        sts = StsServer(FixedKeyIssuer(other_key, other_secret),
                        keys={"BASEPROFILEKEY0000001": "base-profile-s3cret"}).start()
        self.addCleanup(sts.stop)
        runs = os.path.join(fs_root, "process-runs")
        helper = os.path.join(fs_root, "print-credentials.py")
        with open(helper, "w") as f:
            f.write("import json, sys\n"
                    f"open({runs!r}, 'a').write(sys.argv[1] + '\\n')\n"
                    f"print(json.dumps({{'Version': 1, 'AccessKeyId': {other_key!r}, "
                    f"'SecretAccessKey': {other_secret!r}, 'Expiration': '2099-01-01T00:00:00Z'}}))\n")
        aws_config = os.path.join(fs_root, "aws-config")
        with open(aws_config, "w") as f:
            f.write("[profile base]\naws_access_key_id = BASEPROFILEKEY0000001\n"
                    "aws_secret_access_key = base-profile-s3cret\n\n"
                    "[profile writer]\nrole_arn = arn:aws:iam::210987654321:role/cross-account-writer\n"
                    "source_profile = base\nexternal_id = archie-ext-7\nrole_session_name = archie-backfill\n\n"
                    f"[profile tool]\ncredential_process = /usr/bin/python3 {helper} 'one word'\n")
        endpoint = rig.ceph.endpoints[1]
        stores = {"src": rgw_store(rig, "archie", 0), "local": fs_store(fs_root, fsync=False),
                  "role": {"type": "s3", "endpoint": endpoint, "credentials": "profile", "profile": "writer",
                           "sts_endpoint": sts.url},
                  "process": {"type": "s3", "endpoint": endpoint, "credentials": "profile", "profile": "tool"}}
        r = route("src", EDGE_BUCKET, [("role", DST_BUCKET), ("process", DST_BUCKET)])
        r["source"]["prefix"] = "profiles/"
        r["destinations"][0]["prefix"] = "by-role/"
        r["destinations"][1]["prefix"] = "by-process/"
        path = write_config(self.edge_config(fs_root, [r], stores=stores), workdir)
        s3("archie", 0, "PUT", EDGE_BUCKET, "profiles/a", b"assumed")
        self.addCleanup(s3, "archie", 0, "DELETE", EDGE_BUCKET, "profiles/a")
        env = {"AWS_CONFIG_FILE": aws_config, "AWS_SHARED_CREDENTIALS_FILE": os.path.join(fs_root, "none"),
               "AWS_EC2_METADATA_DISABLED": "true"}
        done = archie(path, "backfill", "--direct", "--log-level", "info", env=env)
        self.assertEqual(done.returncode, 0, done.stdout[-2000:] + done.stderr[-2000:])
        for prefix in ("by-role/", "by-process/"):
            self.assertEqual(s3("other", 1, "GET", DST_BUCKET, prefix + "a")[1], b"assumed")
        self.assertEqual(sts.assumed, [("arn:aws:iam::210987654321:role/cross-account-writer", "archie-backfill",
                                        "archie-ext-7", "BASEPROFILEKEY0000001")])
        with open(runs) as f:
            self.assertEqual(f.read().splitlines(), ["one word"])  # run once, its argument unsplit
        for secret in ("base-profile-s3cret", other_secret):
            self.assertNotIn(secret, done.stdout + done.stderr)
        # A base profile with a wrong secret: STS refuses the signature, and the error says
        # which role and profile, not the secret.
        with open(aws_config) as f:
            text = f.read()
        with open(aws_config, "w") as f:
            f.write(text.replace("base-profile-s3cret", "wrong-profile-s3cret"))
        refused = archie(path, "verify", env=env)
        self.assertEqual(refused.returncode, 4, refused.stdout[-2000:] + refused.stderr[-2000:])
        self.assertIn("SignatureDoesNotMatch", refused.stderr)
        self.assertIn("profile writer", refused.stderr)
        self.assertNotIn("wrong-profile-s3cret", refused.stdout + refused.stderr)

    def test_verify_that_cannot_list_a_store_says_incomplete_with_its_own_exit_code(self):
        fs_root = tempfile.mkdtemp(dir=workdir)
        access, _ = rig.ceph.users["other"]
        stores = {"src": rgw_store(rig, "archie", 0), "local": fs_store(fs_root, fsync=False),
                  "locked": s3_store(rig.ceph.endpoints[1], access, "not-the-secret")}
        s3("archie", 0, "PUT", EDGE_BUCKET, "verify/one", b"1")
        path = write_config(self.edge_config(fs_root, [route("src", EDGE_BUCKET, [("locked", DST_BUCKET)])],
                                             stores=stores), workdir)
        r = archie(path, "verify")
        self.assertEqual(r.returncode, 4, r.stdout[-2000:] + r.stderr[-2000:])
        self.assertNotIn("everything is equal", r.stdout)
        self.assertIn("incomplete", r.stdout)
        self.assertIn("verify stopped", r.stderr)


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


if __name__ == "__main__":
    unittest.main()
