#!/usr/bin/python3
"""The browser driver tests/browser/status_page.mjs (headless Chromium through puppeteer-core)
against a static copy of the /status page, tests/browser/fixture_status.html, served on
127.0.0.1 by a standard-library HTTP server in a thread: no archie, no NATS.

- the page as it is: every number the driver prints is the fixture's, the screenshot is a PNG;
- the placeholder first (as the admin server answers before its first read of NATS), which
  reloads itself after 1 s through <meta http-equiv="refresh">: the driver waits through it;
- a page that breaks the contract (a count that is not a whole number, a missing element):
  exit status 1 and a message naming the element.

Skipped when /usr/bin/chromium, node or tests/browser/node_modules/puppeteer-core is missing:
scripts/install-deps installs them. Run from the repo root with the system Python:

    /usr/bin/python3 -m unittest -v tests.integration.test_browser_driver
"""

import http.server
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BROWSER_DIR = os.path.join(REPO, "tests", "browser")
DRIVER = os.path.join(BROWSER_DIR, "status_page.mjs")
FIXTURE = os.path.join(BROWSER_DIR, "fixture_status.html")
CHROMIUM = "/usr/bin/chromium"

# What src/fleet/status_page.cpp answers before the first read of NATS.
PLACEHOLDER = (b'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="1">'
               b'<title>archie: reading</title></head><body><p>Reading the fleet\'s state from NATS&hellip;</p>'
               b'</body></html>\n')

# The fixture's numbers, as a person reads them.
EXPECTED = {
    "title": "archie: degraded",
    "state": "degraded",
    "data_state": "degraded",
    "problems": ["1 dead letter on fleet.dead: see the codes below", "oldest unacked message is 95 s old"],
    "backlog": {"pending": 42, "ack_pending": 3, "oldest_seconds": 95},
    "workers_count": 2,
    "workers": [
        {"id": "host-a-1234", "version": "0.9.0", "transfers": 4, "messages": 2},
        {"id": "host-b-77", "version": "0.9.1-rc1", "transfers": 0, "messages": 1},
    ],
    "stores": {
        "local": {"bytes": 614400, "bytes_text": "600.0 KiB", "requests": 18, "failed": 0},
        "rgw-dr": {"bytes": 1610612736, "bytes_text": "1.5 GiB", "requests": 1207, "failed": 5},
    },
    "outcomes": {"ack/copied": 6, "ack/removed": 2, "nak/source_unavailable": 3, "term/access_denied": 1},
    "dead_letters": {"total": 1, "by_code": {"access_denied": 1}},
    "refresh_seconds": 5,
    "external_requests": [],
}


class PageServer:
    """/status: the fixture; /slow: the placeholder twice, then the fixture; /broken-count and
    /broken-missing: the fixture with one thing wrong. Everything else 404 (as the admin server)."""

    def __init__(self):
        with open(FIXTURE, "rb") as f:
            self.page = f.read()
        self.slow_hits = 0
        self.paths = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                owner.paths.append(self.path)
                body = owner.body(self.path)
                self.send_response(200 if body is not None else 404)
                body = body if body is not None else b"not found\n"
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def body(self, path):
        if path == "/status":
            return self.page
        if path == "/slow":
            self.slow_hits += 1
            return PLACEHOLDER if self.slow_hits <= 2 else self.page
        if path == "/broken-count":
            return self.page.replace(b'<td class="n requests">1207</td>', b'<td class="n requests">1,207</td>')
        if path == "/broken-missing":
            return self.page.replace(b'<span id="backlog-oldest">95</span>', b"95")
        return None

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.httpd.server_address[1], path)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class BrowserDriverTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.node = shutil.which("node")
        missing = [what for what, there in (
            (CHROMIUM, os.access(CHROMIUM, os.X_OK)),
            ("node", cls.node),
            ("tests/browser/node_modules/puppeteer-core",
             os.path.isfile(os.path.join(BROWSER_DIR, "node_modules", "puppeteer-core", "package.json"))),
        ) if not there]
        if missing:
            raise unittest.SkipTest("%s missing: run scripts/install-deps" % ", ".join(missing))
        cls.server = PageServer()
        cls.tmp = tempfile.mkdtemp(prefix="archie-browser-")

    @classmethod
    def tearDownClass(cls):
        cls.server.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def drive(self, path):
        shot = os.path.join(self.tmp, path.strip("/") + ".png")
        started = time.monotonic()
        r = subprocess.run([self.node, DRIVER, self.server.url(path), shot], capture_output=True, text=True,
                           timeout=90, cwd=BROWSER_DIR)
        sys.stderr.write(" [%s %.1fs] " % (path, time.monotonic() - started))
        return r, shot

    def assert_png(self, shot):
        with open(shot, "rb") as f:
            data = f.read()
        self.assertEqual(data[:8], b"\x89PNG\r\n\x1a\n")
        self.assertGreater(len(data), 1024)
        width, height = struct.unpack(">II", data[16:24])  # IHDR
        self.assertEqual(width, 1280)  # the driver's viewport; full page: at least its height
        self.assertGreaterEqual(height, 800)

    def test_page_as_a_person_sees_it(self):
        r, shot = self.drive("/status")
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assertEqual(len(r.stdout.splitlines()), 1, r.stdout)  # one JSON object, nothing else
        self.assertEqual(json.loads(r.stdout), EXPECTED)
        self.assert_png(shot)

    def test_waits_through_the_placeholder(self):
        r, shot = self.drive("/slow")
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assertEqual(json.loads(r.stdout), EXPECTED)
        self.assertGreaterEqual(self.server.slow_hits, 3)  # the placeholder reloaded itself twice
        self.assert_png(shot)

    def test_contract_broken(self):
        for path, message in (("/broken-count", '#stores row "rgw-dr" requests: expected a whole number'),
                              ("/broken-missing", "#backlog-oldest is missing")):
            with self.subTest(path):
                r, _ = self.drive(path)
                self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
                self.assertEqual(r.stdout, "")
                self.assertIn(message, r.stderr)


if __name__ == "__main__":
    unittest.main()
