"""`archie status`, the admin server's /status page and /status.json, and the worker registry
(src/fleet, src/cli/status_command.cpp), against a real nats-server and Ceph RGW: two
`archie run` processes register in the JetStream key-value bucket; status shows each worker,
the backlog, the bytes each store was written, the messages settled by code and the dead
letters by code, all checked against what the test did, in the terminal, as JSON and in a
real browser (Debian's chromium driven by puppeteer-core: tests/browser/status_page.mjs,
which reads what a person sees and keeps a screenshot, in $ARCHIE_TEST_ARTIFACTS or the
build folder's test-artifacts/); a worker killed with SIGKILL leaves the registry within fleet.ttl, one stopped
cleanly at once; messages waiting with no worker make status degraded (exit 1)."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

from testkit.archie_process import ARCHIE_BIN, ArchieProcess, run_cli, write_config
from testkit.config_builder import archie_config, fs_store, queue_section, rgw_store, route
from testkit.events import minio_event
from testkit.fixtures import close_all, start_rig
from testkit.nats_client import NatsClient
from testkit.net import http_get
from testkit.rgw_user import RgwUser
from testkit.waiting import wait_for_quiet_consumer, wait_until

SUBJECT, STREAM, DURABLE, DLQ_SUBJECT = "minio.events", "fleet-events", "fleet", "fleet.dead"
BUCKET = "fleet-source"
OBJECTS, SIZE = 6, 100 * 1024
TTL = 3  # seconds: fleet.ttl below
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BROWSER_DRIVER = os.path.join(REPO, "tests", "browser", "status_page.mjs")
CHROMIUM = "/usr/bin/chromium"

rig = None
workdir = None


def setUpModule():
    global rig, workdir
    rig = start_rig([(BUCKET, "archie", 0)])
    workdir = tempfile.mkdtemp(prefix="archie-fleet-")
    os.makedirs(os.path.join(workdir, "fs", "mirror"))


def tearDownModule():
    close_all(rig, workdir)


def config_text():
    text = archie_config(
        [rig.nats.url], concurrency=4, shutdown_wait="3s",
        queue=queue_section([SUBJECT], stream=STREAM, durable=DURABLE, dead_letter_subject=DLQ_SUBJECT,
                            nak_backoff={"base": "100ms", "ceiling": "500ms"}),
        stores={"src": rgw_store(rig, "archie", 0), "local": fs_store(os.path.join(workdir, "fs"), fsync=False,
                                                                      max_transfers=8)},
        routes=[route("src", BUCKET, [("local", "mirror")])])
    return text + '\n[fleet]\nheartbeat = "1s"\nttl = "%ds"\n' % TTL


class FleetStatusTest(unittest.TestCase):
    def status(self, path, *extra):
        done = run_cli("status", "--config", path, "--json", *extra)
        self.assertIn(done.returncode, (0, 1), done.stderr)
        return done.returncode, json.loads(done.stdout)

    def test_status_shows_the_workers_and_what_they_did_and_forgets_the_dead(self):
        path = write_config(config_text(), workdir)
        src = RgwUser(rig, "archie", 0)
        workers = [ArchieProcess(config_text()) for _ in range(2)]
        for w in workers:
            self.addCleanup(w.stop)
            w.wait_ready()
        nats = NatsClient([rig.nats.url])
        self.addCleanup(nats.close)

        code, view = wait_until(lambda: (lambda r: r if len(r[1]["workers"]) == 2 else None)(self.status(path)),
                                10, "both workers registered", interval=0.3)
        self.assertEqual(code, 0, view)
        self.assertEqual(view["state"], "healthy")
        self.assertEqual(view["dead_letters"]["total"], 0)
        self.assertEqual({w["pid"] for w in view["workers"]}, {w.proc.pid for w in workers})

        for i in range(OBJECTS):
            key = f"obj-{i}"
            status, headers, _ = src.request("PUT", BUCKET, key, body=os.urandom(SIZE))
            self.assertEqual(status, 200)
            nats.js_publish(SUBJECT, minio_event("s3:ObjectCreated:Put", BUCKET, key, size=SIZE,
                                                 etag=headers["etag"].strip('"')))
        nats.js_publish(SUBJECT, b"{not an event")  # dead-lettered: it can never be handled
        wait_for_quiet_consumer(nats, STREAM, DURABLE, timeout=60)

        def settled():  # the workers' next heartbeats carry the numbers
            code, v = self.status(path)
            done = v["outcomes"].get("ack/copied", 0) == OBJECTS and v["dead_letters"]["total"] == 1
            return (code, v) if done and v["stores"].get("local", {}).get("bytes") == OBJECTS * SIZE else None
        code, view = wait_until(settled, 10, "status to show the replication", interval=0.3,
                                context=lambda: self.status(path))
        self.assertEqual(view["backlog"]["pending"], 0)
        self.assertEqual(view["backlog"]["ack_pending"], 0)
        (dead_code, count), = view["dead_letters"]["by_code"].items()
        self.assertEqual(count, 1)
        self.assertEqual(sum(n for c, n in view["outcomes"].items() if c.startswith("term/")), 1, view["outcomes"])
        self.assertTrue(any(dead_code in c for c in view["outcomes"]), (dead_code, view["outcomes"]))
        # A dead letter needs an operator: degraded, exit 1, and the text view says why.
        self.assertEqual((code, view["state"]), (1, "degraded"))
        text = run_cli("status", "--config", path)
        self.assertEqual(text.returncode, 1, text.stderr)
        self.assertIn("workers: 2", text.stdout)
        self.assertIn("dead letters: 1", text.stdout)
        self.assertIn("transfers 8", text.stdout)  # the local store's fleet budget
        self.assertIn(dead_code, text.stdout)
        self.assertNotIn(rig.ceph.users["archie"][1], text.stdout)  # no secret anywhere
        self.check_last_verify_is_shown(path)
        self.check_status_page(workers[0].admin_port(), view, dead_code)

        # SIGKILL: no goodbye, so the entry goes when the bucket's TTL drops it.
        killed = time.monotonic()
        workers[0].kill9()
        wait_until(lambda: len(self.status(path)[1]["workers"]) == 1, TTL + 5, "the killed worker to vanish",
                   interval=0.3)
        self.assertGreater(time.monotonic() - killed, 1.0)  # its last heartbeat was still live for a while
        # SIGTERM: the worker deletes its own entry as it stops.
        workers[1].signal(signal.SIGTERM)
        workers[1].wait(30)
        self.assertEqual(self.status(path)[1]["workers"], [])

        # Work waiting and nobody to do it.
        nats.js_publish(SUBJECT, minio_event("s3:ObjectCreated:Put", BUCKET, "obj-0", size=SIZE, etag="x"))
        code, view = self.status(path)
        self.assertEqual(code, 1)
        self.assertIn("1 message waits and no worker is registered", view["problems"])

    def check_last_verify_is_shown(self, path):
        """`archie verify` records its result per route (fleet.runs_bucket, no TTL): status shows
        the last one, with the counts of what it compared."""
        done = run_cli("verify", "--config", path, timeout=60)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertNotIn("was not recorded", done.stderr)
        runs = self.status(path)[1]["runs"]
        self.assertEqual(len(runs), 1, runs)
        run = runs[0]
        self.assertEqual((run["command"], run["route"], run["complete"]), ("verify", 1, True))
        self.assertEqual((run["compared"], run["missing"], run["different"], run["extra"]), (OBJECTS, 0, 0, 0))
        self.assertEqual(run["result"], "everything is equal")
        self.assertLessEqual(abs(run["finished"] - time.time()), 30)
        text = run_cli("status", "--config", path).stdout
        self.assertIn(f"verify 0s ago: {OBJECTS} compared, 0 missing, 0 different, 0 extra; everything is equal",
                      text.replace("1s ago", "0s ago").replace("2s ago", "0s ago"))

    def check_status_page(self, port, view, dead_code):
        """/status.json says what `archie status --json` said; /status shows it to a person."""
        def caught_up():
            status, _, body = http_get(f"http://127.0.0.1:{port}/status.json")
            served = json.loads(body) if status == 200 else None
            return served if served and served["outcomes"] == view["outcomes"] and len(served["workers"]) == 2 else None
        served = wait_until(caught_up, 10, "/status.json to show the replication", interval=0.3)
        for part in ("state", "stores", "dead_letters", "backlog"):
            self.assertEqual(served[part], view[part], part)
        status, headers, body = http_get(f"http://127.0.0.1:{port}/status")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/html"), headers)
        self.assertIn(b'id="archie-status" data-state="degraded"', body)
        self.assertIn(b'data-run="verify.route-1"', body)  # the last verify (check_last_verify_is_shown)
        # The store's fleet budget, in the JSON and on the page.
        self.assertEqual(served["stores"]["local"]["budget"], "transfers 8")
        self.assertIn(b'<td class="budget">transfers 8</td>', body)
        self.assertNotIn(rig.ceph.users["archie"][1].encode(), body)

        node = shutil.which("node")
        modules = os.path.join(REPO, "tests", "browser", "node_modules", "puppeteer-core")
        if not (node and os.access(CHROMIUM, os.X_OK) and os.path.isdir(modules)):
            if os.environ.get("CI"):
                self.fail("chromium or puppeteer-core is missing: scripts/install-deps installs them")
            sys.stderr.write("    [status page] browser check skipped: run scripts/install-deps\n")
            return
        # Kept after the run: $ARCHIE_TEST_ARTIFACTS, else test-artifacts/ in the build folder.
        artifacts = os.environ.get("ARCHIE_TEST_ARTIFACTS") or os.path.join(
            os.path.dirname(os.path.dirname(os.path.abspath(ARCHIE_BIN))), "test-artifacts")
        os.makedirs(artifacts, exist_ok=True)
        shot = os.path.join(artifacts, "status-page.png")
        seen = subprocess.run([node, BROWSER_DRIVER, f"http://127.0.0.1:{port}/status", shot],
                              capture_output=True, text=True, timeout=90)
        self.assertEqual(seen.returncode, 0, seen.stderr[-3000:])
        page = json.loads(seen.stdout)
        sys.stderr.write(f"    [status page] screenshot: {shot}\n")
        self.assertEqual(page["state"], "degraded")
        self.assertEqual(page["external_requests"], [])  # nothing loaded from elsewhere
        self.assertEqual(page["refresh_seconds"], 5)
        self.assertEqual(sorted(w["id"] for w in page["workers"]), sorted(w["id"] for w in view["workers"]))
        self.assertEqual(page["stores"]["local"]["bytes"], OBJECTS * SIZE)
        self.assertEqual(page["stores"]["local"]["bytes_text"], "600.0 KiB")
        self.assertEqual(page["outcomes"]["ack/copied"], OBJECTS)
        self.assertEqual(page["dead_letters"], {"total": 1, "by_code": {dead_code: 1}})
        self.assertEqual(page["backlog"]["pending"], 0)
        self.assertIn("1 dead letter waits for an operator (archie dead-letters list)", page["problems"])
        with open(shot, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")


if __name__ == "__main__":
    unittest.main()
