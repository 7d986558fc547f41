"""The archie binary as an operator meets it: CLI, config errors, admin HTTP endpoints,
signals. Servers: none beyond archie itself (its admin HTTP server on 127.0.0.1)."""
import json
import re
import os
import signal
import socket
import time
import unittest

from testkit.archie_process import ArchieProcess, run_cli, write_config
from testkit.config_builder import archie_config
from testkit.net import free_port, http_get
from testkit.waiting import wait_until


def service_config(port):
    # nats points at a closed port: these tests are about the process, not the queue.
    return archie_config([f"nats://127.0.0.1:{free_port()}"], http_port=port, shutdown_wait="5s")


class CommandLineTest(unittest.TestCase):
    def test_version_prints_the_version_commit_and_build_date(self):
        for args in (["version"], ["--version"], ["-V"]):
            r = run_cli(*args)
            self.assertEqual(r.returncode, 0, args)
            self.assertRegex(r.stdout, r"^archie \d+\.\d+\.\d+ \(commit ([0-9a-f]{12}|unknown), built "
                                       r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ|unknown)\)\n$")

    def test_no_arguments_prints_usage_and_exits_2(self):
        r = run_cli()
        self.assertEqual(r.returncode, 2)
        self.assertIn("Usage: archie", r.stderr)
        self.assertEqual(r.stdout, "")

    def test_every_command_has_help(self):
        for cmd in ("run", "check-config", "version"):
            r = run_cli(cmd, "--help")
            self.assertEqual(r.returncode, 0, cmd)
            self.assertIn(f"Usage: archie {cmd}", r.stdout)
        top = run_cli("--help")
        self.assertIn("check-config", top.stdout)

    def test_unknown_command_is_a_usage_error(self):
        r = run_cli("frobnicate")
        self.assertEqual(r.returncode, 2)
        self.assertIn('unknown command "frobnicate"', r.stderr)

    def test_run_without_config_says_how_to_give_one(self):
        r = run_cli("run")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--config", r.stderr)


class CheckConfigTest(unittest.TestCase):
    def check(self, text, env=None):
        path = write_config(text)
        try:
            return run_cli("check-config", "--config", path, env=env), path
        finally:
            os.unlink(path)

    def test_each_bad_config_is_rejected_naming_the_key(self):
        cases = {
            "[worker]\nconcurrency = 0\n": "worker.concurrency: must be between 1 and 4096",
            "[worker]\nconcurrency = 'x'\n": "worker.concurrency: expected an integer, got a string",
            "[http]\nprot = 1\n": 'http.prot: unknown key (did you mean "port"?)',
            "[queue.consumer]\nack_wait = '10'\n": "queue.consumer.ack_wait: \"10\" is not a duration",
            "[nats]\nurls = []\n": "nats.urls: needs at least one server URL",
            "[stores.a]\ntype = 's3'\nendpoint = 'http://h'\ncredentials = 'static'\n":
                "stores.a.access_key_id: is required",
            "[log]\nlevel = 'chatty'\n": "log.level: must be one of",
            "this is not toml": "(syntax)",
        }
        for text, expected in cases.items():
            with self.subTest(text=text):
                r, path = self.check(text)
                self.assertEqual(r.returncode, 3, r.stderr)
                self.assertIn(expected, r.stderr)
                self.assertIn(path, r.stderr)

    def test_effective_config_redacts_every_secret(self):
        secret_file = write_config("file-secret-value\n")
        try:
            text = f"""
[nats]
token_env = "ARCHIE_IT_TOKEN"
[stores.dst]
type = "s3"
endpoint = "http://127.0.0.1:1"
access_key_id = "AKIDVISIBLEONLYASREDACTED"
secret_access_key_file = "{secret_file}"
session_token = "inline-session-token"
"""
            r, _ = self.check(text, env={"ARCHIE_IT_TOKEN": "env-token-value"})
        finally:
            os.unlink(secret_file)
        self.assertEqual(r.returncode, 0, r.stderr)
        for leaked in ("env-token-value", "file-secret-value", "inline-session-token", "AKIDVISIBLEONLYASREDACTED"):
            self.assertNotIn(leaked, r.stdout + r.stderr)
        self.assertIn("<redacted, env ARCHIE_IT_TOKEN>", r.stdout)
        self.assertIn(f"<redacted, file {secret_file}>", r.stdout)
        self.assertIn("concurrency = 16", r.stdout)  # defaults are filled in

    def test_config_path_can_come_from_the_environment(self):
        path = write_config("[worker]\nconcurrency = 3\n")
        try:
            r = run_cli("check-config", env={"ARCHIE_CONFIG": path})
        finally:
            os.unlink(path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("concurrency = 3", r.stdout)


class AdminServerTest(unittest.TestCase):
    def setUp(self):
        self.port = free_port()
        self.archie = ArchieProcess(service_config(self.port))
        self.addCleanup(self.archie.stop)
        self.archie.wait_for_log("admin server listening", port=self.port)
        self.base = f"http://127.0.0.1:{self.port}"

    def test_live_answers_ok(self):
        status, _, body = http_get(self.base + "/live")
        self.assertEqual((status, body), (200, b"ok\n"))

    def test_ready_is_503_with_the_failing_checks_named_while_nats_is_unreachable(self):
        # No NATS server here: the worker keeps retrying and is not ready.
        status, headers, body = http_get(self.base + "/ready")
        self.assertEqual(status, 503)
        self.assertEqual(headers["Content-Type"], "application/json")
        report = json.loads(body)
        self.assertEqual(report["ready"], False)
        # A state per check for whoever reaches the port; the detail is in the log only.
        self.assertEqual(report["checks"], {"nats": "failing", "consumer": "failing"})
        self.assertNotIn(b"not connected", body)
        self.archie.wait_for_log("readiness check failing", check="nats", detail="not connected yet")
        # /live stays up: an unreachable NATS must not get the pod restarted.
        self.assertEqual(http_get(self.base + "/live")[0], 200)

    def test_metrics_are_prometheus_text_from_our_registry(self):
        http_get(self.base + "/live")
        status, headers, body = http_get(self.base + "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/plain; version=0.0.4"))
        text = body.decode()
        self.assertRegex(text, r'archie_build_info\{build_date="[^"]+",commit="[^"]+",version="\d+\.\d+\.\d+"\} 1')
        for name in ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
                     "process_max_fds", "process_start_time_seconds"):
            self.assertRegex(text, r"(?m)^%s [0-9.e+]+$" % name)
        rss = float(re.search(r"(?m)^process_resident_memory_bytes ([0-9.e+]+)$", text).group(1))
        self.assertGreater(rss, 1 << 20)
        self.assertRegex(text, r'archie_admin_http_requests_total\{code="200",path="/live"\} [1-9]')

    def test_connections_beyond_the_cap_are_closed_at_once_and_probes_work_again_after(self):
        held = [socket.create_connection(("127.0.0.1", self.port), timeout=5) for _ in range(80)]
        closed = set()

        def count_closed():
            for i, s in enumerate(held):
                if i in closed:
                    continue
                s.setblocking(False)
                try:
                    if s.recv(1) == b"":  # closed by the server without a word
                        closed.add(i)
                except BlockingIOError:
                    pass  # still open, waiting for its request
                except ConnectionResetError:
                    closed.add(i)
            return len(closed)

        try:
            wait_until(lambda: count_closed() >= 80 - 64, 10, "connections past the cap of 64 were not closed")
            time.sleep(0.3)
            self.assertEqual(count_closed(), 80 - 64, "the admin server must hold 64 idle connections, no fewer")
        finally:
            for s in held:
                s.close()
        wait_until(lambda: http_get(self.base + "/live")[0] == 200, 10, "/live after the idle connections closed")

    def test_unknown_path_is_404_and_post_is_405(self):
        self.assertEqual(http_get(self.base + "/nope")[0], 404)
        self.assertEqual(http_get(self.base + "/live", method="POST")[0], 405)

    def test_head_advertises_length_without_body(self):
        status, headers, body = http_get(self.base + "/live", method="HEAD")
        self.assertEqual((status, headers["Content-Length"], body), (200, "3", b""))

    def test_sigterm_drains_and_exits_zero(self):
        self.archie.signal(signal.SIGTERM)
        self.assertEqual(self.archie.wait(timeout=30), 0)
        msgs = [l.get("msg") for l in self.archie.logs()]
        self.assertIn("shutdown requested", msgs)
        self.assertIn("shutdown complete", msgs)

    def test_every_log_line_is_structured_json(self):
        http_get(self.base + "/live")
        self.archie.stop()
        lines = self.archie.logs()
        self.assertTrue(lines)
        for entry in lines:
            self.assertNotEqual(entry.get("msg"), "(not json)", entry)
            self.assertIn("ts", entry)
            self.assertIn(entry["level"], ("trace", "debug", "info", "warn", "error"))


class StartupFailureTest(unittest.TestCase):
    def test_busy_admin_port_fails_with_a_clear_error(self):
        port = free_port()
        first = ArchieProcess(service_config(port))
        self.addCleanup(first.stop)
        first.wait_for_log("admin server listening")
        second = ArchieProcess(service_config(port))
        self.addCleanup(second.stop)
        self.assertEqual(second.wait(timeout=30), 1)
        entry = second.wait_for_log("cannot start admin HTTP server")
        self.assertEqual(entry["port"], port)
        self.assertIn("in use", entry["error"])


if __name__ == "__main__":
    unittest.main()
