"""A rotated NATS token file applies at the next reconnect, without restarting archie.

Servers: nats-server (token authentication, restarted with a new token)."""
import os
import shutil
import tempfile
import time
import unittest

from testkit.archie_process import ArchieProcess
from testkit.nats_server import NatsServer
from testkit.net import free_port, http_get


class TokenNatsServer(NatsServer):
    """nats-server that accepts only clients presenting `token`."""

    token = ""

    def command(self):
        return super().command() + ["--auth", self.token]


class NatsTokenRotation(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="archie-nats-token-")
        self.nats = TokenNatsServer(os.path.join(self.dir, "nats"))
        self.nats.token = "first-token-0123456789"
        self.nats.start()
        self.token_file = os.path.join(self.dir, "nats-token")
        self.write_token("first-token-0123456789")
        self.http_port = free_port()
        self.archie = ArchieProcess(f"""
[http]
address = "127.0.0.1"
port = {self.http_port}
[nats]
urls = ["{self.nats.url}"]
token_file = "{self.token_file}"
reconnect_wait = "200ms"
reconnect_wait_max = "1s"
[queue]
fetch_expires = "1s"
""")

    def tearDown(self):
        self.archie.stop()
        self.nats.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def write_token(self, token):
        tmp = self.token_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(token + "\n")
        os.replace(tmp, self.token_file)

    def connected(self):
        _, _, body = http_get(f"http://127.0.0.1:{self.http_port}/metrics")
        return "archie_nats_connected 1" in body.decode()

    def test_a_rotated_token_file_is_used_when_archie_reconnects(self):
        self.archie.wait_for_log("consuming", timeout=60)
        self.write_token("second-token-9876543210")
        self.nats.stop()
        self.nats.token = "second-token-9876543210"
        self.nats.start()
        self.archie.wait_for_log("NATS connection re-established", timeout=30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not self.connected():
            time.sleep(0.2)
        self.assertTrue(self.connected())
        status, connz = self.nats.monitor("/connz")
        self.assertEqual(status, 200)
        self.assertGreaterEqual(connz["num_connections"], 1)
        logs = "".join(str(e) for e in self.archie.logs())
        self.assertNotIn("first-token-0123456789", logs)
        self.assertNotIn("second-token-9876543210", logs)
        self.assertIsNone(self.archie.proc.poll())


if __name__ == "__main__":
    unittest.main()
