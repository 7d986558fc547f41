"""archie's JetStream queue layer against real nats-servers.

The worker under test is build/tests/queue_worker (ARCHIE_QUEUE_WORKER overrides): archie's
real queue layer with a scripted handler. Each message body is a JSON command and the worker
appends "stream_seq deliveries outcome unix_ms" to its record file for every message it settles
(written when the handler decides, before the acknowledgement goes out).

Servers: one standalone nats-server shared by QueueTest (one stream per test), and a 3-node
JetStream cluster for ClusterFailoverTest. Run with /usr/bin/python3.
"""
import collections
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import unittest

from testkit.archie_process import LoggedProcess, write_config
from testkit.config_builder import archie_config, queue_section
from testkit.metrics import metric
from testkit.nats_client import JetStreamError, NatsClient, NatsError, connect_any
from testkit.nats_server import NatsCluster, NatsServer
from testkit.paths import QUEUE_WORKER
from testkit.waiting import wait_until as _wait_until


def note(text):
    """Measurements worth seeing in the test output (stderr, next to unittest's -v lines)."""
    sys.stderr.write("    [measured] %s\n" % text)
    sys.stderr.flush()


def wait_until(pred, timeout, what, interval=0.05):
    # Servers mid-election answer errors for a while.
    return _wait_until(pred, timeout, what, interval=interval, retry_on=(NatsError, OSError))


def worker_config(urls, stream, subjects, durable="archie", concurrency=4, shutdown_wait="5s",
                  ack_wait="2s", log_level="info", queue=None, stream_extra=None,
                  consumer_extra=None, nak_backoff=None):
    q = dict({"ack_mode": "sync"}, **(queue or {}))
    return archie_config(urls, http_port=0, log_level=log_level, concurrency=concurrency,
                         shutdown_wait=shutdown_wait,
                         queue=queue_section(subjects, stream=stream, durable=durable, ack_wait=ack_wait,
                                             nak_backoff=nak_backoff,
                                             stream_extra=dict({"retention": "workqueue"}, **(stream_extra or {})),
                                             consumer_extra=consumer_extra, **q))


# --------------------------------------------------------------------------- worker process

Record = collections.namedtuple("Record", "seq deliveries outcome ms")


def read_record(path):
    out = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 4:
                    out.append(Record(int(parts[0]), int(parts[1]), parts[2], int(parts[3])))
    except FileNotFoundError:
        pass
    return out


class QueueWorker(LoggedProcess):
    """queue_worker in the background: archie's queue layer with a scripted handler, which
    appends a Record line to its record file for every message it settles."""

    log_timeout = 15
    stop_timeout = 20

    def __init__(self, config_text, workdir, tag):
        self.config_path = write_config(config_text, path=os.path.join(workdir, "%s.toml" % tag))
        self.record_path = os.path.join(workdir, "%s.record" % tag)
        self.tag = tag
        # The log is kept with ARCHIE_KEEP_RIG=1.
        super().__init__([QUEUE_WORKER, "--config", self.config_path, "--record", self.record_path],
                         raw_log_path=os.path.join(workdir, "%s.log" % tag), name="worker " + tag)

    def record(self):
        return read_record(self.record_path)


def cmd(action, **kw):
    body = {"do": action}
    body.update(kw)
    return json.dumps(body).encode()


def consumer_settled(nc, stream, durable, last_seq):
    info = nc.consumer_info(stream, durable)
    return (info["num_pending"] == 0 and info["num_ack_pending"] == 0
            and info["ack_floor"]["stream_seq"] >= last_seq) and info


# --------------------------------------------------------------------------- single server

class QueueTest(unittest.TestCase):
    """One nats-server for the class; every test has its own stream and subjects."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="archie-queue-test-")
        cls.server = NatsServer(os.path.join(cls.dir, "nats"))
        cls.server.start()
        cls.nc = NatsClient(cls.server.url)

    @classmethod
    def tearDownClass(cls):
        cls.nc.close()
        cls.server.stop()
        if os.environ.get("ARCHIE_KEEP_RIG") != "1":
            shutil.rmtree(cls.dir, ignore_errors=True)

    def setUp(self):
        self.name = re.sub(r"[^A-Za-z0-9]", "", self._testMethodName.replace("test_", ""))[:40].upper()
        self.subject = self.name.lower() + ".events"
        self._n = 0

    def config(self, **kw):
        kw.setdefault("stream", self.name)
        kw.setdefault("subjects", [self.name.lower() + ".>"])
        return worker_config([self.server.url], **kw)

    def start_worker(self, config_text, tag=None):
        self._n += 1
        w = QueueWorker(config_text, self.dir, "%s-%s" % (self.name, tag or self._n))
        self.addCleanup(w.stop)
        return w

    def publish(self, bodies):
        return [a["seq"] for a in self.nc.js_publish_many(self.subject, bodies)]

    # ---- a. provisioning
    def test_provisioning_creates_then_keeps_then_updates_stream_and_consumer(self):
        dlq = "dead." + self.name.lower()
        base = dict(ack_wait="2s", consumer_extra={"max_ack_pending": 50}, queue={"dead_letter_subject": dlq})

        w = self.start_worker(self.config(**base))
        done = w.wait_for_log("JetStream provisioning done")
        self.assertEqual((done["stream_action"], done["consumer_action"]), ("created", "created"))
        w.wait_for_log("consuming")
        s = self.nc.stream_info(self.name)["config"]
        self.assertEqual(s["subjects"], [self.name.lower() + ".>"])
        self.assertEqual((s["retention"], s["storage"], s["num_replicas"]), ("workqueue", "file", 1))
        c = self.nc.consumer_info(self.name, "archie")["config"]
        self.assertEqual(c["durable_name"], "archie")
        self.assertEqual(c["ack_policy"], "explicit")
        self.assertEqual(c["ack_wait"], 2_000_000_000)
        self.assertEqual(c["max_ack_pending"], 50)
        self.assertEqual(c["deliver_policy"], "all")
        d = self.nc.stream_info(self.name + "-dead-letter")["config"]
        self.assertEqual((d["subjects"], d["retention"]), ([dlq], "limits"))
        w.signal(signal.SIGTERM)
        self.assertEqual(w.wait(), 0)

        w = self.start_worker(self.config(**base))
        done = w.wait_for_log("JetStream provisioning done")
        self.assertEqual((done["stream_action"], done["consumer_action"]), ("unchanged", "unchanged"))
        w.wait_for_log("consuming")
        self.assertEqual(w.logs("stream config drifted") + w.logs("consumer config drifted"), [])
        w.signal(signal.SIGTERM)
        self.assertEqual(w.wait(), 0)

        changed = dict(base, ack_wait="5s", stream_extra={"max_age": "1h"})
        w = self.start_worker(self.config(**changed))
        done = w.wait_for_log("JetStream provisioning done")
        self.assertEqual((done["stream_action"], done["consumer_action"]), ("updated", "updated"))
        self.assertEqual([e["difference"] for e in w.logs("stream config drifted")],
                         ["stream.max_age_ns: 0 -> 3600000000000"])
        self.assertEqual([e["difference"] for e in w.logs("consumer config drifted")],
                         ["consumer.ack_wait_ns: 2000000000 -> 5000000000"])
        self.assertEqual(self.nc.stream_info(self.name)["config"]["max_age"], 3600 * 10**9)
        c = self.nc.consumer_info(self.name, "archie")["config"]
        self.assertEqual((c["ack_wait"], c["max_ack_pending"]), (5 * 10**9, 50))
        w.wait_for_log("consuming")
        w.signal(signal.SIGTERM)
        self.assertEqual(w.wait(), 0)

    def test_refused_provisioning_exits_1_with_the_servers_reason(self):
        # An existing workqueue stream cannot become a limits stream. Ask the server the same
        # question first, to know its words.
        self.nc.add_stream({"name": self.name, "subjects": [self.name.lower() + ".>"],
                            "retention": "workqueue", "storage": "file"})
        current = self.nc.stream_info(self.name)["config"]
        with self.assertRaises(JetStreamError) as refused:
            self.nc.update_stream(dict(current, retention="limits"))
        server_text = refused.exception.description
        cases = [
            ("retention", self.config(stream_extra={"retention": "limits"}), server_text),
            # A new stream with 3 replicas on a lone server.
            ("replicas", self.config(stream=self.name + "R3", subjects=[self.name.lower() + "r3.>"],
                                     stream_extra={"replicas": 3}), "replicas > 1 not supported"),
        ]
        for label, config_text, expected in cases:
            with self.subTest(label):
                w = self.start_worker(config_text, tag=label)
                self.assertEqual(w.wait(timeout=20), 1, w.tail())
                error = w.wait_for_log("cannot start consuming")["error"]
                note("%s refused: %s" % (label, error))
                self.assertIn(expected, error)
                self.assertEqual(w.logs("consuming"), [])
        self.assertEqual(self.nc.stream_info(self.name)["config"]["retention"], "workqueue")
        self.assertNotIn(self.name + "R3", self.nc.stream_names())

    # ---- b. exactly one ack per message
    def test_every_message_gets_exactly_one_ack(self):
        n = 500
        self.nc.add_stream({"name": self.name, "subjects": [self.name.lower() + ".>"],
                            "retention": "workqueue", "storage": "file"})
        seqs = self.publish([cmd("ack")] * n)
        self.assertEqual(seqs, list(range(1, n + 1)))
        t0 = time.monotonic()
        w = self.start_worker(self.config(concurrency=16))
        info = wait_until(lambda: consumer_settled(self.nc, self.name, "archie", n), 30, "all acked")
        took = time.monotonic() - t0
        self.assertEqual(info["delivered"]["stream_seq"], n)
        self.assertEqual(info["num_redelivered"], 0)
        rec = w.record()
        per_seq = collections.Counter(r.seq for r in rec)
        self.assertEqual(sorted(per_seq), list(range(1, n + 1)))
        self.assertEqual([s for s, c in per_seq.items() if c != 1], [])
        self.assertEqual({(r.deliveries, r.outcome) for r in rec}, {(1, "ack")})
        m = w.metrics()
        self.assertEqual(metric(m, "archie_queue_fetched_messages_total"), n)
        self.assertEqual(metric(m, "archie_queue_outcomes_total", outcome="ack", code="ok"), n)
        self.assertEqual(metric(m, "archie_queue_outcomes_total", outcome="ack_failed"), 0)
        self.assertEqual(metric(m, "archie_nats_connected"), 1)
        # workqueue retention: acked messages leave the stream
        self.assertEqual(self.nc.stream_info(self.name)["state"]["messages"], 0)
        note("%d messages acked in %.2fs (worker start included)" % (n, took))

    # ---- c. nak backoff
    def test_nak_redelivers_with_exponential_backoff(self):
        # concurrency 1: every pull asks for exactly one message, so the gaps measure the nak
        # delay alone (with more free slots a partial batch is held until fetch_expires, see
        # test_idle_worker_handles_a_lone_message_at_once_and_once).
        w = self.start_worker(self.config(concurrency=1, ack_wait="10s",
                                          nak_backoff={"base": "300ms", "multiplier": 2.0,
                                                       "ceiling": "5s", "jitter": 0.0}))
        w.wait_for_log("consuming")
        [seq] = self.publish([cmd("succeed_on", delivery=4)])
        wait_until(lambda: len(w.record()) >= 4, 15, "4 deliveries")
        time.sleep(0.3)
        rec = w.record()
        self.assertEqual([(r.seq, r.deliveries, r.outcome) for r in rec],
                         [(seq, 1, "nak"), (seq, 2, "nak"), (seq, 3, "nak"), (seq, 4, "ack")])
        gaps = [(b.ms - a.ms) / 1000 for a, b in zip(rec, rec[1:])]
        note("nak redelivery gaps %s s (nominal 0.3, 0.6, 1.2)" % ["%.3f" % g for g in gaps])
        for gap, nominal in zip(gaps, (0.3, 0.6, 1.2)):
            self.assertGreaterEqual(gap, nominal * 0.9, gaps)
            self.assertLess(gap, nominal + 1.5, gaps)
        info = wait_until(lambda: consumer_settled(self.nc, self.name, "archie", seq), 5, "acked")
        self.assertEqual(info["delivered"]["consumer_seq"], 4)
        self.assertEqual(metric(w.metrics(), "archie_queue_outcomes_total", outcome="nak", code="scripted"), 3)

    # ---- d. term -> dead letter
    def test_term_dead_letters_with_reason_and_is_not_redelivered(self):
        dlq = "dead." + self.name.lower()
        # concurrency 1 keeps the message from waiting in a partial batch (see the lone-message
        # test) while the 1 s AckWait runs.
        w = self.start_worker(self.config(concurrency=1, ack_wait="1s", queue={"dead_letter_subject": dlq}))
        w.wait_for_log("consuming")
        body = cmd("term", reason="bad event xyz")
        [seq] = self.publish([body])
        dl_stream = self.name + "-dead-letter"
        wait_until(lambda: self.nc.stream_info(dl_stream)["state"]["messages"] >= 1, 10, "a dead letter")
        [dead] = self.nc.stream_messages(dl_stream)
        self.assertEqual(dead["subject"], dlq)
        self.assertEqual(dead["data"], body)
        h = dead["headers"]
        self.assertEqual(h.get("Archie-Term-Code"), "scripted")
        self.assertEqual(h.get("Archie-Term-Reason"), "bad event xyz")
        self.assertEqual(h.get("Archie-Stream"), self.name)
        self.assertEqual(h.get("Archie-Stream-Sequence"), str(seq))
        self.assertEqual(h.get("Archie-Deliveries"), "1")
        self.assertEqual(h.get("Archie-Original-Subject"), self.subject)
        time.sleep(2.5)  # well past ack_wait (1s)
        self.assertEqual([(r.seq, r.deliveries, r.outcome) for r in w.record()], [(seq, 1, "term")])
        info = self.nc.consumer_info(self.name, "archie")
        self.assertEqual((info["delivered"]["consumer_seq"], info["num_redelivered"], info["num_ack_pending"]),
                         (1, 0, 0))
        self.assertEqual(self.nc.stream_info(dl_stream)["state"]["messages"], 1)
        m = w.metrics()
        self.assertEqual(metric(m, "archie_queue_outcomes_total", outcome="dead_lettered", code="scripted"), 1)
        self.assertEqual(metric(m, "archie_queue_outcomes_total", outcome="term", code="scripted"), 1)

    # ---- e. kill -9
    def test_kill_9_with_messages_in_flight_loses_nothing(self):
        n, conc, sleep_ms, ack_wait = 40, 8, 1000, 4.0
        self.nc.add_stream({"name": self.name, "subjects": [self.name.lower() + ".>"],
                            "retention": "workqueue", "storage": "file"})
        self.publish([cmd("sleep", ms=sleep_ms)] * n)
        # ack_wait 4s > sleep: no heartbeat (every ack_wait/3) fires, so the server's timer for
        # each delivery starts at the delivery itself.
        w1 = self.start_worker(self.config(concurrency=conc, ack_wait="4s"), tag="first")
        # Two rounds done and acked (a slot fetches again only after its ack is confirmed), and
        # third-round messages delivered and working (the worker refills free slots in small
        # batches, so how many varies); kill before any of them can finish (they sleep 1 s).
        wait_until(lambda: len(w1.record()) >= 2 * conc, 15, "two rounds")
        info = wait_until(lambda: (lambda i: i["num_ack_pending"] >= 1 and i)(
                              self.nc.consumer_info(self.name, "archie")), 5, "third round delivered",
                          interval=0.01)
        killed_at = w1.kill9()
        since_start = killed_at - w1.started
        first = w1.record()
        self.assertGreaterEqual(len(first), 2 * conc)
        info = self.nc.consumer_info(self.name, "archie")  # the dead worker fetches nothing more
        in_flight = set(range(1, info["delivered"]["stream_seq"] + 1)) - {r.seq for r in first}
        self.assertEqual(len(in_flight), info["num_ack_pending"])
        self.assertGreaterEqual(len(in_flight), 1)

        w2 = self.start_worker(self.config(concurrency=32, ack_wait="4s"), tag="second")
        # The second worker takes the never-delivered messages at once (consumer_seq up to n);
        # the next deliveries (consumer_seq > n) are the redeliveries. Watch the server for them.
        wait_until(lambda: self.nc.consumer_info(self.name, "archie")["delivered"]["consumer_seq"] > n,
                   ack_wait + 5, "the first redelivery", interval=0.02)
        redelivered_after = time.time() - killed_at
        settled = wait_until(lambda: consumer_settled(self.nc, self.name, "archie", n), 30, "all acked")
        second = w2.record()
        self.assertEqual({r.outcome for r in first + second}, {"ack"})
        self.assertEqual(sorted({r.seq for r in first} | {r.seq for r in second}), list(range(1, n + 1)))
        # A record is written just before its ack: only a message settled in the last moment
        # before the kill may come back (its ack never left); anything earlier must not.
        came_back = {r.seq for r in first} & {r.seq for r in second}
        for r in first:
            if r.seq in came_back:
                self.assertGreater(r.ms / 1000, killed_at - 0.3, "a message acked before the kill came back")
        per_seq = collections.Counter(r.seq for r in second)
        self.assertEqual([s for s, c in per_seq.items() if c != 1], [], "second worker settled a seq twice")
        redelivered = {r.seq: r for r in second if r.deliveries > 1}
        self.assertEqual(set(redelivered), in_flight | came_back)
        self.assertEqual({r.deliveries for r in redelivered.values()}, {2})
        self.assertEqual(settled["num_redelivered"], 0)
        # Redelivery came after AckWait, not sooner (server side: consumer_seq moved past n), and
        # the handlers of the second worker started soon after (record time - sleep).
        started_after = sorted((r.ms - sleep_ms) / 1000 - killed_at for r in redelivered.values())
        note("kill -9 %.2fs after worker start; in-flight %s redelivered by the server %.2fs after the kill, "
             "handlers started %.2f..%.2fs after it (ack_wait %.0fs)"
             % (since_start, sorted(in_flight), redelivered_after, started_after[0], started_after[-1], ack_wait))
        # A slot refills as soon as its message is acked, so third-round messages were delivered
        # over the last handler duration before the kill; AckWait runs from each delivery.
        earliest = ack_wait - sleep_ms / 1000 - 0.2
        self.assertGreaterEqual(redelivered_after, earliest)
        self.assertLess(redelivered_after, ack_wait + 2.0)
        self.assertGreaterEqual(started_after[0], earliest)
        self.assertLess(started_after[-1], ack_wait + 2.0)

    # ---- fetch: a message must not wait for a batch to fill
    def test_idle_worker_handles_a_lone_message_at_once_and_once(self):
        # An idle worker with 4 free slots pulls a batch of 4. A single message that arrives must
        # go to a handler at once, not sit in the client until the pull expires (fetch_expires),
        # while the server's AckWait clock runs and no heartbeat protects it.
        w = self.start_worker(self.config(concurrency=4, ack_wait="2s", queue={"fetch_expires": "3s"}))
        w.wait_for_log("consuming")
        time.sleep(0.3)  # the fetcher is now inside its 3 s pull request
        published = time.time()
        [seq] = self.publish([cmd("ack")])
        wait_until(lambda: w.record(), 6, "the message to be handled")
        latency = w.record()[0].ms / 1000 - published
        time.sleep(0.5)
        rec = [(r.seq, r.deliveries, r.outcome) for r in w.record()]
        note("lone message: publish -> handler %.3fs with fetch_expires 3s; record %s" % (latency, rec))
        with self.subTest("latency"):
            self.assertLess(latency, 0.5, "the message waited for the pull request to expire")
        with self.subTest("exactly once"):
            self.assertEqual(rec, [(seq, 1, "ack")])

    # ---- f. graceful shutdown
    def test_sigterm_naks_unfinished_messages_for_prompt_redelivery(self):
        w1 = self.start_worker(self.config(concurrency=4, ack_wait="60s", shutdown_wait="1s",
                                           log_level="debug"), tag="first")
        w1.wait_for_log("consuming")
        short = self.publish([cmd("sleep", ms=400)])
        long = self.publish([cmd("sleep", ms=3000)] * 3)
        wait_until(lambda: self.nc.consumer_info(self.name, "archie")["num_ack_pending"] == 4, 5,
                   "all four in flight")
        # The server counts a message as pending once it is sent; give the worker a moment to
        # start all four, or a SIGTERM in between hands the late ones straight back.
        time.sleep(0.2)
        t_term = time.monotonic()
        w1.signal(signal.SIGTERM)
        self.assertEqual(w1.wait(timeout=15), 0, w1.tail())
        drain_s = time.monotonic() - t_term
        exited_at = time.time()
        # The short one finished within shutdown_wait and was acked; the long ones were handed
        # back with no delay (the handler was cancelled, so the record does not show them).
        self.assertEqual([(r.seq, r.deliveries, r.outcome) for r in w1.record()], [(short[0], 1, "ack")])
        exceeded = w1.wait_for_log("shutdown wait exceeded; returning unfinished messages to the queue")
        self.assertEqual(exceeded["in_flight"], 3)
        naks = w1.logs("nak", code="shutdown")
        self.assertEqual(sorted(e["seq"] for e in naks), long)
        self.assertEqual({e["delay_ms"] for e in naks}, {0})
        for msg in ("drained", "shutdown complete", "archie stopped"):
            w1.wait_for_log(msg)
        self.assertLess(drain_s, 1.0 + 2.0)
        # (nats-server 2.9 keeps a nak'ed message in num_ack_pending until it is redelivered, so
        # the consumer state cannot tell "nak'ed" from "abandoned"; the next worker can.)

        w2 = self.start_worker(self.config(concurrency=4, ack_wait="60s"), tag="second")
        wait_until(lambda: consumer_settled(self.nc, self.name, "archie", long[-1]), 15, "redelivered and acked")
        second = w2.record()
        self.assertEqual(sorted((r.seq, r.deliveries, r.outcome) for r in second),
                         [(s, 2, "ack") for s in long])
        lag = max((r.ms - 3000) / 1000 - exited_at for r in second)
        note("SIGTERM drain took %.2fs (shutdown_wait 1s); redelivered to the next worker %.2fs after exit"
             % (drain_s, lag))
        self.assertLess(lag, 5.0, "redelivery must not wait for ack_wait (60s)")

    def test_second_sigint_during_drain_exits_at_once_with_130(self):
        w = self.start_worker(self.config(concurrency=2, ack_wait="60s", shutdown_wait="30s"))
        w.wait_for_log("consuming")
        self.publish([cmd("sleep", ms=20000)])
        wait_until(lambda: self.nc.consumer_info(self.name, "archie")["num_ack_pending"] == 1, 5, "in flight")
        w.signal(signal.SIGINT)
        w.wait_for_log("draining: fetching stopped")
        time.sleep(0.2)
        self.assertIsNone(w.proc.poll(), "the first SIGINT must drain, not exit")
        t0 = time.monotonic()
        w.signal(signal.SIGINT)
        self.assertEqual(w.wait(timeout=5), 130)
        self.assertLess(time.monotonic() - t0, 2.0)
        w.wait_for_log("second SIGINT: exiting immediately without draining")
        self.assertEqual(w.logs("drained"), [])
        self.assertEqual(w.record(), [])

    # ---- g. heartbeats
    def test_in_progress_heartbeats_keep_a_long_message_from_redelivery(self):
        # concurrency 1: the handler starts when the server delivers (no partial-batch wait).
        w = self.start_worker(self.config(concurrency=1, ack_wait="3s"))
        w.wait_for_log("consuming")
        [seq] = self.publish([cmd("sleep", ms=8000)])
        time.sleep(4.5)  # past one ack_wait: without heartbeats it would be out again by now
        info = self.nc.consumer_info(self.name, "archie")
        self.assertEqual((info["delivered"]["consumer_seq"], info["num_redelivered"]), (1, 0), info)
        self.assertGreaterEqual(metric(w.metrics(), "archie_queue_in_progress_heartbeats_total"), 3)
        wait_until(lambda: w.record(), 8, "the sleep to finish")
        info = wait_until(lambda: consumer_settled(self.nc, self.name, "archie", seq), 5, "acked")
        self.assertEqual([(r.seq, r.deliveries, r.outcome) for r in w.record()], [(seq, 1, "ack")])
        self.assertEqual(info["delivered"]["consumer_seq"], 1)
        beats = metric(w.metrics(), "archie_queue_in_progress_heartbeats_total")
        note("8s message under ack_wait 3s: %d heartbeats, 1 delivery" % beats)
        self.assertGreaterEqual(beats, 6)


# --------------------------------------------------------------------------- cluster

class ClusterFailoverTest(unittest.TestCase):
    STREAM = "FAILOVER"
    N = 5000

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="archie-queue-cluster-")
        cls.cluster = NatsCluster(os.path.join(cls.dir, "cluster"), n=3)
        cls.cluster.start()

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()
        if os.environ.get("ARCHIE_KEEP_RIG") != "1":
            shutil.rmtree(cls.dir, ignore_errors=True)

    def client(self, exclude=None):
        urls = [n.url for n in self.cluster.nodes if n.running and n is not exclude]
        nc = connect_any(urls)
        self.addCleanup(nc.close)
        return nc

    def node(self, name):
        return next(node for node in self.cluster.nodes if node.name == name)

    def move_leader(self, nc, info, stepdown, target, timeout=30):
        """Step the leader down until `target` (a node name) leads; stepdown picks at random."""
        deadline = time.monotonic() + timeout
        while True:
            leader = wait_until(lambda: info()["cluster"].get("leader"), 15, "a leader")
            if leader == target:
                return
            if time.monotonic() > deadline:
                raise AssertionError("could not move leadership to %s" % target)
            try:
                nc.js_api(stepdown)
            except NatsError:
                pass
            wait_until(lambda: info()["cluster"].get("leader") not in (None, leader), 15, "a new leader")

    def test_killing_the_stream_leader_loses_no_message(self):
        # Worst case on purpose: the node killed is the stream leader, the consumer leader and the
        # server the worker is connected to, so in-flight acks and pull requests die with it.
        n = self.N
        nc = self.client()
        wait_until(lambda: nc.add_stream({"name": self.STREAM, "subjects": ["failover.>"], "retention": "workqueue",
                                          "storage": "file", "num_replicas": 3, "max_bytes": -1,
                                          "max_age": 0}), 20, "R3 stream created", interval=0.5)
        # ack_wait (15s) well above a JetStream leader election (~6s here): an ack that reaches
        # the new consumer leader in time is still accepted.
        config = worker_config(self.cluster.urls, self.STREAM, ["failover.>"], concurrency=16, ack_wait="15s",
                               stream_extra={"replicas": 3})
        w = QueueWorker(config, self.dir, "failover")
        self.addCleanup(w.stop)
        connected = w.wait_for_log("connected to NATS")["url"]
        self.assertEqual(w.wait_for_log("JetStream provisioning done")["stream_action"], "unchanged")
        w.wait_for_log("consuming")
        victim = next(node for node in self.cluster.nodes if node.url == connected)
        self.move_leader(nc, lambda: nc.stream_info(self.STREAM), "STREAM.LEADER.STEPDOWN." + self.STREAM,
                         victim.name)
        self.move_leader(nc, lambda: nc.consumer_info(self.STREAM, "archie"),
                         "CONSUMER.LEADER.STEPDOWN.%s.archie" % self.STREAM, victim.name)

        t0 = time.monotonic()
        seqs = [a["seq"] for a in nc.js_publish_many("failover.events", [cmd("ack")] * n, timeout=60)]
        self.assertEqual(seqs, list(range(1, n + 1)))
        note("published %d messages to the R3 stream in %.2fs" % (n, time.monotonic() - t0))
        wait_until(lambda: len(w.record()) >= 1500, 60, "1500 messages consumed", interval=0.01)
        self.assertEqual(nc.stream_info(self.STREAM)["cluster"]["leader"], victim.name)
        self.assertEqual(nc.consumer_info(self.STREAM, "archie")["cluster"]["leader"], victim.name)
        victim.kill()
        killed_at = time.time()
        t_kill = time.monotonic()
        at_kill = len(w.record())

        nc2 = self.client(exclude=victim)
        wait_until(lambda: len(w.record()) >= at_kill + 500, 60, "progress after the kill", interval=0.05)
        t_progress = time.monotonic() - t_kill
        new_leader = wait_until(lambda: nc2.stream_info(self.STREAM)["cluster"].get("leader"), 30, "new leader")
        victim.restart()
        t_restart = time.monotonic() - t_kill
        info = wait_until(lambda: consumer_settled(nc2, self.STREAM, "archie", n), 90, "all messages acked",
                          interval=0.2)
        t_done = time.monotonic() - t_kill

        rec = w.record()
        acks = collections.Counter(r.seq for r in rec if r.outcome == "ack")
        missing = [s for s in range(1, n + 1) if acks[s] == 0]
        dups = sorted(s for s, c in acks.items() if c > 1)
        after = sorted(r.ms / 1000 - killed_at for r in rec if r.ms / 1000 > killed_at)
        ack_failed = w.logs("ack failed; the message will be redelivered after ack_wait")
        unconfirmed = {e.get("seq") for e in ack_failed}
        reconnected = w.logs("NATS connection re-established")
        m = w.metrics()
        note("killed %s (stream leader, consumer leader, worker's server) after %d of %d records; "
             "first record after the kill at +%.2fs, 500 more by +%.2fs; new stream leader %s; "
             "worker reconnected to %s; victim restarted at +%.2fs; all acked at +%.2fs"
             % (victim.name, at_kill, n, after[0] if after else -1, t_progress, new_leader,
                [e.get("url") for e in reconnected], t_restart, t_done))
        confirmed_lost = sorted(set(dups) - unconfirmed)
        note("%d record lines, %d seqs acked twice %s; of these %d had 'ack failed' logged %s (error %s) and "
             "%d had their AckSync confirmed and still came back %s; fetch errors %d; consumer num_redelivered %d"
             % (len(rec), len(dups), dups[:40], len(set(dups) & unconfirmed), sorted(set(dups) & unconfirmed)[:40],
                sorted({e.get("error") for e in ack_failed})[:3], len(confirmed_lost), confirmed_lost[:40],
                metric(m, "archie_queue_fetch_requests_total", result="error"), info["num_redelivered"]))
        for s in dups[:20]:
            note("duplicate seq %d: %s" % (s, [(r.deliveries, r.outcome, round(r.ms / 1000 - killed_at, 3))
                                               for r in rec if r.seq == s]))
        self.assertEqual(missing, [])
        self.assertTrue(all(r.outcome == "ack" for r in rec))
        self.assertEqual(metric(m, "archie_nats_connected"), 1)
        self.assertGreaterEqual(metric(m, "archie_nats_reconnects_total"), 1)
        self.assertEqual(nc2.stream_info(self.STREAM)["state"]["messages"], 0)
        # Duplicates are the acks in flight when the leader died: a few, first settled just
        # before the kill. Whether their AckSync was confirmed is reported above: nats-server
        # 2.9 answers an ack before its consumer group has replicated it, so even a confirmed
        # ack can be lost with the leader, and the new leader may then redeliver the message
        # with a delivery count of 1 (seen in CI). Handlers must be idempotent; archie's are.
        self.assertLessEqual(len(dups), n // 100, "more than 1% of messages were processed twice")
        for s in dups:
            lines = [r for r in rec if r.seq == s]
            self.assertGreater(min(r.ms for r in lines) / 1000, killed_at - 2.0,
                               "seq %d was settled long before the kill and still came back: %s" % (s, lines))


if __name__ == "__main__":
    unittest.main()
