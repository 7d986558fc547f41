"""archie's own view of the consumer backlog (src/queue/backlog_monitor.cpp): the
archie_consumer_* gauges on /metrics agree with what JetStream reports for the consumer,
and the oldest unacked event's age grows while nothing can be replicated.
Servers: nats-server (the source store is a closed port, so every event is nak'ed)."""
import re
import socket
import time
import unittest

from tests.integration.archie_process import ArchieProcess, http_get
from tests.integration.minio_events import minio_event
from tests.rig.nats_client import NatsClient
from tests.rig.rig import Rig, free_port

SUBJECT = "minio.events"
STREAM, DURABLE = "minio-events", "archie"
EVENTS = 5


def closed_port():
    """A loopback port nothing listens on: connections are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gauges(port):
    """{metric name: value} of the archie_consumer_* and archie_stream_* series."""
    _, _, body = http_get(f"http://127.0.0.1:{port}/metrics")
    found = {}
    for line in body.decode().splitlines():
        m = re.match(r"(archie_(?:consumer|stream)_[a-z_]+)\{([^}]*)\} (\S+)$", line)
        if m and f'stream="{STREAM}"' in m.group(2):
            found[m.group(1)] = float(m.group(3))
    return found


class BacklogMetricsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rig = Rig(nats=True, ceph=False)
        cls.rig.start()

    @classmethod
    def tearDownClass(cls):
        cls.rig.close()

    def config(self, port):
        return f"""
[http]
address = "127.0.0.1"
port = {port}
[worker]
concurrency = 2
shutdown_wait = "2s"
[nats]
urls = ["{self.rig.nats.url}"]
[queue]
fetch_expires = "1s"
[queue.stream]
name = "{STREAM}"
subjects = ["{SUBJECT}"]
[queue.consumer]
durable = "{DURABLE}"
[queue.nak_backoff]
base = "30s"
ceiling = "30s"
[stores.src]
type = "s3"
endpoint = "http://127.0.0.1:{closed_port()}"
access_key_id = "AKIDEXAMPLE"
secret_access_key = "not-a-real-secret-key"
connect_timeout = "1s"
[stores.dst]
type = "fs"
root = "/tmp"
[[route]]
source = {{ store = "src", bucket = "photos" }}
[[route.destinations]]
store = "dst"
bucket = "archie-backlog-test"
"""

    def test_gauges_match_jetstream_and_the_oldest_event_ages(self):
        port = free_port()
        # A first run provisions the stream and the consumer; events then wait for the next.
        first = ArchieProcess(self.config(port))
        first.wait_for_log("consuming", timeout=60)
        first.stop()
        with NatsClient([self.rig.nats.url]) as nc:
            for i in range(EVENTS):
                nc.js_publish(SUBJECT, minio_event("s3:ObjectCreated:Put", "photos", f"k{i}", size=1, etag="e"))
        published = time.monotonic()
        time.sleep(1.5)

        archie = ArchieProcess(self.config(port))
        try:
            archie.wait_for_log("consuming", timeout=60)
            # The first poll runs as consuming starts; no event can be acked (source refused).
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and "archie_consumer_pending_messages" not in gauges(port):
                time.sleep(0.2)
            g = gauges(port)
            self.assertEqual(g["archie_consumer_pending_messages"] + g["archie_consumer_ack_pending_messages"],
                             EVENTS, g)
            self.assertEqual(g["archie_stream_last_sequence"], EVENTS)
            self.assertLessEqual(g["archie_consumer_delivered_stream_sequence"], EVENTS)
            age = g["archie_consumer_oldest_unacked_age_seconds"]
            self.assertGreaterEqual(age, 1.0)
            self.assertLessEqual(age, time.monotonic() - published + 1)
            with NatsClient([self.rig.nats.url]) as nc:
                info = nc.consumer_info(STREAM, DURABLE)
            # JetStream's own numbers, read a moment later: nothing was acked meanwhile.
            self.assertEqual(info["num_pending"] + info["num_ack_pending"], EVENTS)
            self.assertEqual(info["ack_floor"]["stream_seq"], 0)
        finally:
            archie.stop()


if __name__ == "__main__":
    unittest.main()
