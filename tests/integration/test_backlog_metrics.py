"""archie's own view of the consumer backlog (src/queue/backlog_monitor.cpp): the
archie_consumer_* gauges on /metrics agree with what JetStream reports for the consumer,
and the oldest unacked event's age grows while nothing can be replicated.
Servers: nats-server (the source store is a closed port, so every event is nak'ed)."""
import re
import time
import unittest

from testkit.archie_process import ArchieProcess
from testkit.config_builder import archie_config, fs_store, queue_section, route, s3_store
from testkit.events import publish_event
from testkit.metrics import scrape
from testkit.nats_client import NatsClient
from testkit.net import free_port
from testkit.rig import Rig
from testkit.waiting import wait_until

SUBJECT = "minio.events"
STREAM, DURABLE = "minio-events", "archie"
EVENTS = 5


def gauges(port):
    """{metric name: value} of the archie_consumer_* and archie_stream_* series."""
    return {name: value for name, labels, value in scrape(port)
            if re.fullmatch(r"archie_(?:consumer|stream)_[a-z_]+", name) and labels.get("stream") == STREAM}


class BacklogMetricsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rig = Rig(nats=True, ceph=False)
        cls.rig.start()

    @classmethod
    def tearDownClass(cls):
        cls.rig.close()

    def config(self, port):
        return archie_config(
            [self.rig.nats.url], http_port=port, concurrency=2, shutdown_wait="2s",
            queue=queue_section([SUBJECT], stream=STREAM, durable=DURABLE,
                                nak_backoff={"base": "30s", "ceiling": "30s"}),
            stores={"src": s3_store(f"http://127.0.0.1:{free_port()}", "AKIDEXAMPLE", "not-a-real-secret-key",
                                    connect_timeout="1s"),
                    "dst": fs_store("/tmp")},
            routes=[route("src", "photos", [("dst", "archie-backlog-test")])])

    def test_gauges_match_jetstream_and_the_oldest_event_ages(self):
        port = free_port()
        # A first run provisions the stream and the consumer; events then wait for the next.
        first = ArchieProcess(self.config(port))
        first.wait_ready()
        first.stop()
        with NatsClient([self.rig.nats.url]) as nc:
            for i in range(EVENTS):
                publish_event(nc, "s3:ObjectCreated:Put", "photos", f"k{i}", subject=SUBJECT, size=1, etag="e")
        published = time.monotonic()
        time.sleep(1.5)

        archie = ArchieProcess(self.config(port))
        try:
            archie.wait_ready()
            # The first poll runs as consuming starts; no event can be acked (source refused).
            # (The gauges exist, at 0, from the moment the monitor starts: wait for the poll.)
            def polled():
                g = gauges(port)
                return g if g.get("archie_stream_last_sequence", 0) > 0 else None
            g = wait_until(polled, 20, "the first backlog poll", interval=0.2)
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
