"""archie under test: its config for a run, starting and stopping it, the JetStream stream and
consumer it reads (provisioned by archie itself, then purged), and a timed run: publish the
events, start archie, wait until it has handled each one and the consumer is drained."""
import json
import os
import signal
import threading
import time

from testkit.daemons import killpg, reap, tail
from testkit.events import minio_event
from testkit.nats_client import NatsError
from testkit.net import free_port
from testkit.waiting import wait_until

from .archie_log import LogTail, scrape_metrics
from .common import MiB, Part, RunError, failed, log, start
from .measurement import proc_cpu, proc_status_kib, timeout_for
from .report import new_row


def event_for(bucket, key, size, etag, part_mib):
    """The MinIO event of an object in the source bucket (a multipart upload's above part_mib)."""
    name = "s3:ObjectCreated:CompleteMultipartUpload" if size > part_mib * MiB else "s3:ObjectCreated:Put"
    return minio_event(name, bucket, key, size=size, etag=etag or None)


class Archie(Part):
    """Runs archie against the servers; rows go to `report`, the servers' share to `meter`."""

    def __init__(self, args, work, servers, meter, report):
        super().__init__(args, work, servers, meter, report)
        self.last_seq = 0  # the stream sequence of the last event published
        self.binary = args.archie  # the build under test (--archie-baseline swaps it for a run)

    def targets(self, buckets):
        """archie destinations on the destination side: [(store name, endpoint, bucket)]."""
        return [("dst", self.servers.dst.endpoint, b) for b in buckets]

    def config(self, targets, dest_prefix, exclude_copy=()):
        """targets: [(store name, endpoint, bucket)]; each distinct store name becomes one
        [stores.X] with the destination side's credentials, each target one route destination."""
        a = self.args
        q = json.dumps
        ca = ('ca_file = %s\n' % q(self.servers.src.ca_file)) if self.servers.src.ca_file else ""
        conns = max(64, a.concurrency)
        stores = {}
        for store, endpoint, _ in targets:
            stores.setdefault(store, endpoint)
        dst_stores = "".join(f"""[stores.{store}]
type = "s3"
endpoint = {q(endpoint)}
region = {q(self.servers.dst.region)}
access_key_id = {q(self.servers.dst.access_key)}
secret_access_key_env = "ARCHIE_BENCH_DST_SECRET"
max_connections = {conns}
{ca}""" for store, endpoint in stores.items())
        dests = "".join('[[route.destinations]]\nstore = %s\nbucket = %s\nprefix = %s\n' % (q(store), q(b), q(dest_prefix))
                        for store, _, b in targets)
        exclude = "exclude_copy = %s\n" % q(list(exclude_copy)) if exclude_copy else ""
        # Only for the build under test: a baseline from before the key would refuse it.
        parts_per_get = ("parts_per_get = %d\n" % a.parts_per_get
                         if a.parts_per_get and self.binary == a.archie else "")
        return f"""# written by bench/replication_bench.py
[log]
level = "info"
[http]
address = "127.0.0.1"
port = {free_port()}
[worker]
concurrency = {a.concurrency}
shutdown_wait = "10s"
[nats]
urls = {q(self.servers.nats_url.split(","))}
name = "archie-bench"
[queue]
fetch_expires = {q(a.fetch_expires)}
[queue.stream]
name = {q(self.servers.stream)}
subjects = [{q(self.servers.subject)}]
[queue.consumer]
durable = {q(self.servers.durable)}
max_ack_pending = {max(1000, 4 * a.concurrency)}
[replication]
part_size_mib = {a.part_size_mib}
buffer_budget_mib = {a.buffer_budget_mib}
parts_in_flight = {a.parts_in_flight}
[stores.src]
type = "s3"
endpoint = {q(self.servers.src.endpoint)}
region = {q(self.servers.src.region)}
access_key_id = {q(self.servers.src.access_key)}
secret_access_key_env = "ARCHIE_BENCH_SRC_SECRET"
max_connections = {conns}
{parts_per_get}{ca}{dst_stores}[[route]]
source = {{ store = "src", bucket = {q(self.servers.src_bucket)} }}
{exclude}{dests}"""

    def start(self, label, targets, dest_prefix, exclude_copy=()):
        cfg = os.path.join(self.work, "archie-%s.toml" % label)
        with open(cfg, "w") as f:
            f.write(self.config(targets, dest_prefix, exclude_copy))
        log_path = os.path.join(self.work, "archie-%s.log" % label)
        open(log_path, "w").close()
        env = {k: v for k, v in os.environ.items() if k not in ("ARCHIE_CONFIG", "ARCHIE_LOG_LEVEL")}
        env.update(ARCHIE_BENCH_SRC_SECRET=self.servers.src.secret_key,
                   ARCHIE_BENCH_DST_SECRET=self.servers.dst.secret_key)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=0")
        proc = start([self.binary, "run", "--config", cfg], env, stderr_path=log_path)
        return proc, LogTail(log_path)

    def stop(self, proc, logtail):
        """SIGTERM (graceful drain), SIGKILL after a while; scan the log for sanitizer reports."""
        if proc.poll() is None and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            watchdog = threading.Timer(60, lambda: killpg(proc))
            watchdog.daemon = True
            watchdog.start()
            code, ru = reap(proc)
            watchdog.cancel()
        else:
            code, ru = proc.returncode, None
        logtail.poll()
        if logtail.sanitizer:
            self.report.problems.append("archie log %s has a sanitizer report: %s"
                                        % (logtail.path, logtail.sanitizer[:300]))
        if code not in (0, None):
            self.report.problems.append("archie exited with %s after SIGTERM (log %s)" % (code, logtail.path))
        return code, ru

    def provision(self):
        """Let archie create the stream and the durable consumer (a start and a stop), then make
        sure the stream is empty: it must be dedicated to this benchmark."""
        log("archie provisions stream %s / consumer %s" % (self.servers.stream, self.servers.durable))
        proc, lt = self.start("provision", self.targets(self.servers.dst_buckets[:1]), "archie/")
        try:
            self.wait_consuming(proc, lt)
            if proc.poll() is not None:
                raise SystemExit("archie exited at start (%s); log %s:\n%s"
                                 % (proc.returncode, lt.path, tail(lt.path, 15)))
        finally:
            self.stop(proc, lt)
        self.servers.nats.js_api("STREAM.PURGE." + self.servers.stream)

    def wait_consuming(self, proc, lt):
        """Until archie logs 'consuming' or exits (RunError after 120 s, times --timeout-scale)."""
        wait_until(lambda: lt.poll() or lt.seen("consuming") or proc.poll() is not None,
                   120 * self.args.timeout_scale, "archie to start consuming", error=RunError)

    def consumer_state(self):
        try:
            info = self.servers.nats.consumer_info(self.servers.stream, self.servers.durable)
        except NatsError:
            return None
        return info.get("num_pending", 0), info.get("num_ack_pending", 0), info["delivered"]["stream_seq"]

    def ensure_idle_stream(self):
        st = self.consumer_state()
        if st and (st[0] or st[1]):
            log("stream %s still holds work from an earlier run: purging" % self.servers.stream)
            self.servers.nats.js_api("STREAM.PURGE." + self.servers.stream)
            time.sleep(0.5)

    def publish(self, bodies):
        acks = self.servers.nats.js_publish_many(self.servers.subject, bodies, window=512, timeout=300)
        self.last_seq = acks[-1]["seq"]

    def publish_one(self, body):
        self.last_seq = self.servers.nats.js_publish(self.servers.subject, body)["seq"]

    def run_baseline(self, scenario, entries, targets):
        """The same run with the --archie-baseline build, in the same rig and the same hour."""
        self.binary = self.args.archie_baseline
        try:
            return self.run(scenario, entries, targets, tool=self.args.baseline_label,
                            notes="the build --archie-baseline names")
        finally:
            self.binary = self.args.archie

    def run(self, scenario, entries, targets, tool="archie", notes=""):
        """Copy `entries` (from the source listing) to every target through archie, timed."""
        nbytes = sum(s for _, s, _ in entries)
        prefix = "archie/%s/" % entries[0][0].split("/")[0]  # what this run writes: archie/<s1..s5>/
        bodies = [event_for(self.servers.src_bucket, k, s, e, self.args.part_size_mib) for k, s, e in entries]
        m = self.timed(scenario, tool, bodies, len(entries), nbytes, targets, "replicated", prefix, notes=notes)
        for _, _, b in targets:
            self.servers.clean_dst(b, prefix)
        self.servers.gc()
        return self.report.record(m)

    def timed(self, scenario, tool, bodies, nobj, nbytes, targets, done_msg, prefix, exclude_copy=(), notes="",
              processes=1):
        """Publish every event, start `processes` archie processes on the one durable consumer,
        time until they have logged `done_msg` once per object between them and the consumer
        has nothing pending or ack-pending; then verify the destinations hold `nobj` objects and
        `nbytes` bytes under prefix (when nbytes)."""
        m = new_row(scenario, tool, nobj, nbytes, destinations=len(targets), notes=notes)
        log("%s: %s (%d objects, %d destination%s%s)" % (scenario, tool, nobj, len(targets),
                                                         "s" if len(targets) > 1 else "",
                                                         ", %d processes" % processes if processes > 1 else ""))
        procs = []  # [(proc, logtail)]
        try:
            self.ensure_idle_stream()
            self.publish(bodies)
            self.meter.settle()
            mark = self.meter.mark()
            t0 = time.monotonic()
            for i in range(processes):
                label = "%s-%d" % (scenario.split(":")[0], len(targets)) + ("-p%d" % i if processes > 1 else "")
                procs.append(self.start(label, targets, "archie/", exclude_copy))
            deadline = t0 + timeout_for(self.args.timeout_scale, nbytes * len(targets), nobj)
            startup = None
            state = None

            def total(count):
                return sum(count(lt) for _, lt in procs)
            while True:
                for _, lt in procs:
                    lt.poll()
                if startup is None and all(lt.seen("consuming") for _, lt in procs):
                    startup = time.monotonic() - t0
                    m["startup_cpu_s"] = sum(sum(proc_cpu(p.pid) or (0, 0)) for p, _ in procs)
                for p, lt in procs:
                    if p.poll() is not None:
                        raise RunError("archie exited (%s); log %s:\n%s" % (p.returncode, lt.path, tail(lt.path, 8)))
                self.servers.check_servers()
                if total(lambda lt: lt.count(done_msg)) >= nobj:
                    state = self.consumer_state()
                    if state and state[0] == 0 and state[1] == 0 and state[2] >= self.last_seq:
                        break
                elif total(lambda lt: lt.settled()) >= nobj:
                    state = self.consumer_state()
                    if state and state[0] == 0 and state[1] == 0 and state[2] >= self.last_seq:
                        raise RunError("the consumer is drained but only %d of %d events were %s; logs %s"
                                       % (total(lambda lt: lt.count(done_msg)), nobj, done_msg,
                                          [lt.path for _, lt in procs]))
                if time.monotonic() > deadline:
                    raise RunError("timed out after %.0f s: %d of %d %s, consumer %s"
                                   % (deadline - t0, total(lambda lt: lt.count(done_msg)), nobj, done_msg, state))
                time.sleep(0.02)
            m["wall_s"] = time.monotonic() - t0
            cpus = [proc_cpu(p.pid) or (0.0, 0.0) for p, _ in procs]
            user, system = sum(c[0] for c in cpus), sum(c[1] for c in cpus)
            m.update(cpu_user_s=user, cpu_sys_s=system, cpu_s=user + system,
                     peak_rss_mib=max((proc_status_kib(p.pid, "VmHWM") or 0) for p, _ in procs) / 1024,
                     startup_s=startup, log=procs[0][1].path, outcomes=procs[0][1].summary(),
                     nak_or_term=total(lambda lt: lt.count("event not done")))
            if processes > 1:
                m["processes"] = processes
                m["per_process_done"] = [lt.count(done_msg) for _, lt in procs]
                m["done_total"] = total(lambda lt: lt.count(done_msg))
            self.meter.use(m, mark)
            m["archie_metrics"] = scrape_metrics(procs[0][1])
            last_ts = max((lt.last_ts(done_msg) or 0) for _, lt in procs)
            if last_ts:
                m["last_%s_after_s" % done_msg.replace(" ", "_")] = last_ts - (time.time() - (time.monotonic() - t0))
                # archie's own view: from its 'consuming' line to its last done_msg line
                lt0 = procs[0][1]
                m["log_span_s"] = last_ts - lt0.first_ts("consuming") if lt0.seen("consuming") else None
            shutdown_cpu = 0.0
            while procs:
                p, lt = procs.pop()
                code, ru = self.stop(p, lt)
                if ru is not None:
                    shutdown_cpu += ru.ru_utime + ru.ru_stime
            m["cpu_s_including_shutdown"] = shutdown_cpu or None
            if nbytes:
                for _, _, b in targets:
                    self.servers.verify(m, b, prefix, nobj, nbytes)
            m["ok"] = True
        except Exception as e:  # noqa: BLE001 - a broken run must not stop the others
            failed(m, e)
        finally:
            for p, lt in procs:
                self.stop(p, lt)
        return m

