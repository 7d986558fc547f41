"""The six scenarios: each one's source data (written locally, uploaded with rclone, not
measured), its runs (archie, and for 1-3 rclone and the AWS CLI on the same objects) and what it
adds to the report (fan-out, latency and skip-only summaries). bench/README.md has the method."""
import os
import shutil
import subprocess
import time
import traceback

from testkit.ceph_rgw import RCLONE
from testkit.events import minio_event

from .archie import event_for
from .archie_log import parse_ts, scrape_metrics, stage_breakdown
from .common import KiB, MiB, Part, RunError, failed, log, redact
from .measurement import pct, proc_cpu, proc_status_kib, timeout_for
from .report import fanout_text, new_row, print_header, print_latency, skip_only_text
from .servers import medium_objects


class Scenarios(Part):
    """The scenarios asked for (args.scenario_set) on `servers`, with `archie` and the `peers`;
    every row and summary goes to `report`."""

    def __init__(self, args, work, servers, meter, report, archie, peers):
        super().__init__(args, work, servers, meter, report)
        self.archie = archie
        self.peers = peers

    def run(self):
        """Every scenario asked for, in order; one whose setup fails is reported and the others go on."""
        sc = self.args.scenario_set
        self.archie.provision()
        steps = []
        if 1 in sc:
            steps.append(("1", self.scenario_small))
        if 2 in sc:
            steps.append(("2", self.scenario_big))
        if 3 in sc or 4 in sc:
            def medium():
                entries = self.medium_source()
                self.warm_up("s3")
                try:
                    if 3 in sc:
                        self.scenario_medium(entries)
                    if 4 in sc:
                        self.scenario_fanout(entries)
                finally:
                    self.servers.drop_source("s3/")
            steps.append(("3/4", medium))
        if 5 in sc:
            steps.append(("5", self.scenario_latency))
        if 6 in sc:
            steps.append(("6", self.scenario_skip_only))
        if 7 in sc:
            steps.append(("7", self.scenario_scale_out))
        print_header()
        for label, fn in steps:
            if self.servers.dead_servers():
                self.report.problems.append("scenario %s skipped: server process died: %s"
                                            % (label, ", ".join(self.servers.dead_servers())))
                continue
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - setup of one scenario failed; go on
                self.report.problems.append("scenario %s: %s: %s" % (label, type(e).__name__, e))
                traceback.print_exc()
                self.report.save()

    # ---- source data -------------------------------------------------------------------
    def upload(self, local_dir, prefix, expect):
        """Setup (not measured): rclone copy a local directory to the source bucket."""
        srv = self.servers
        log("uploading %d source objects to %s/%s" % (expect, srv.src_bucket, prefix))
        srv.src.delete_prefix(srv.src_bucket, prefix)
        env = self.peers.rclone_env()
        argv = [RCLONE, "copy", local_dir, "src:%s/%s" % (srv.src_bucket, prefix.rstrip("/"))] + \
            self.peers.rclone_flags(self.args.concurrency) + ["--no-check-dest"]
        cp = subprocess.run(argv, env=env, capture_output=True, text=True,
                            timeout=timeout_for(self.args.timeout_scale, 0, expect) * 4)
        if cp.returncode != 0:
            raise RunError("uploading the source objects failed: %s" % redact(cp.stderr[-2000:], srv.secrets))
        entries = srv.src.list(srv.src_bucket, prefix)
        if len(entries) != expect:
            raise RunError("source holds %d of %d objects after upload" % (len(entries), expect))
        return sorted(entries)

    def small_source(self, tag, count, size):
        """`count` objects of `size` random bytes under <tag>/ in the source bucket: their listing."""
        local = os.path.join(self.work, "%s-local" % tag)
        os.makedirs(local)
        for i in range(count):
            with open(os.path.join(local, "obj-%06d" % i), "wb") as f:
                f.write(os.urandom(size))
        entries = self.upload(local, tag + "/", count)
        shutil.rmtree(local)
        return entries

    def medium_source(self):
        """The --medium-mib objects scenarios 3 and 4 share, under s3/ (the same bytes each)."""
        a = self.args
        count = medium_objects(a)
        local = os.path.join(self.work, "s3-local")
        os.makedirs(local)
        first = os.path.join(local, "obj-000000")
        with open(first, "wb") as f:
            for _ in range(a.medium_mib):
                f.write(os.urandom(MiB))
        for i in range(1, count):
            os.link(first, os.path.join(local, "obj-%06d" % i))  # same bytes, distinct objects
        entries = self.upload(local, "s3/", count)
        shutil.rmtree(local)
        return entries

    # ---- scenarios 1 to 3: archie, rclone and the AWS CLI ------------------------------
    def scenario_small(self):
        a = self.args
        n = a.objects
        name = "1: %d x %d KiB" % (n, a.small_kib)
        entries = self.small_source("s1", n, a.small_kib * KiB)
        self.compare(name, entries, "s1", a.concurrency)
        self.servers.drop_source("s1/")

    def scenario_big(self):
        a = self.args
        size = a.big_mib * MiB
        name = "2: 1 x %d MiB" % a.big_mib
        local = os.path.join(self.work, "s2-local")
        os.makedirs(local)
        with open(os.path.join(local, "big.bin"), "wb") as f:
            left = size
            while left:
                chunk = min(left, 16 * MiB)
                f.write(os.urandom(chunk))
                left -= chunk
        entries = self.upload(local, "s2/", 1)
        shutil.rmtree(local)
        self.warm_up("s2")
        self.compare(name, entries, "s2", a.concurrency, single=True)
        self.servers.drop_source("s2/")

    def warm_up(self, tag):
        """Untimed: the scenario's bytes written once more on the servers and deleted, so that
        the first tool timed does not pay alone for the servers' first use of that much memory
        (Ceph memstore: page faults in the OSD; measured 40 % more server CPU and wall time for
        whichever tool went first). A server-side copy within the source endpoint: no bytes
        through this machine's client side."""
        srv, peers = self.servers, self.peers
        argv = [RCLONE, "copy", "src:%s/%s" % (srv.src_bucket, tag), "src:%s/warm-up-%s" % (srv.src_bucket, tag)] + \
            peers.rclone_flags(self.args.concurrency)
        log("warming the servers up for %s (untimed)" % tag)
        done = subprocess.run(argv, env=peers.rclone_env(), capture_output=True, text=True,
                              timeout=600 * self.args.timeout_scale, check=False)
        if done.returncode != 0:
            self.report.problems.append("warm-up for %s failed (%d): %s" % (tag, done.returncode, done.stderr[-300:]))
        srv.drop_source("warm-up-%s/" % tag)

    def scenario_medium(self, entries):
        a = self.args
        self.compare("3: %d x %d MiB" % (a.medium_count, a.medium_mib), entries[:a.medium_count], "s3", a.concurrency)

    def scenario_scale_out(self):
        """The same small objects copied by 1, 2, 4... `archie run` processes sharing the one
        durable consumer: throughput and CPU per object per process count, and every event
        replicated exactly once between them (no loss, no duplicate)."""
        a = self.args
        n = a.scale_objects
        entries = self.small_source("s7", n, a.small_kib * KiB)
        try:
            targets = self.archie.targets([self.servers.dst_buckets[0]])
            nbytes = sum(s for _, s, _ in entries)
            bodies = [event_for(self.servers.src_bucket, k, s, e, a.part_size_mib) for k, s, e in entries]
            for procs in a.scale_processes:
                m = self.archie.timed("7: scale-out %d x %d KiB" % (n, a.small_kib), "archie x%d" % procs, bodies,
                                      n, nbytes, targets, "replicated", "archie/s7/", processes=procs,
                                      notes="%d archie run processes, one durable consumer" % procs)
                if m.get("ok") and m.get("done_total", n) != n:
                    failed(m, RunError("%d events replicated between the processes for %d published: %s"
                                       % (m["done_total"], n, "duplicates" if m["done_total"] > n else "lost")))
                self.servers.clean_dst(targets[0][2], "archie/s7/")
                self.servers.gc()
                self.report.record(m)
        finally:
            self.servers.drop_source("s7/")

    def compare(self, name, entries, tag, concurrency, single=False):
        """archie, then rclone, then the AWS CLI, on the same source objects."""
        a = self.args
        srv, peers = self.servers, self.peers
        nobj, nbytes = len(entries), sum(s for _, s, _ in entries)
        dst = srv.dst_buckets[0]
        if "archie" in a.tool_set:
            self.archie.run(name, entries, self.archie.targets([dst]))
            if a.archie_baseline:
                self.archie.run_baseline(name, entries, self.archie.targets([dst]))
        src_prefix = "%s/%s" % (srv.src_bucket, tag)
        if "rclone" in a.tool_set:
            env = peers.rclone_env()
            if single:
                key = entries[0][0]
                argv = [RCLONE, "copyto", "src:%s/%s" % (srv.src_bucket, key),
                        "dst:%s/rclone/%s" % (dst, key)] + peers.rclone_flags(concurrency)
                tool = "rclone copyto"
            else:
                argv = [RCLONE, "copy", "src:" + src_prefix, "dst:%s/rclone/%s" % (dst, tag)] + \
                    peers.rclone_flags(concurrency)
                tool = "rclone copy"
            peers.run(name, tool, nobj, nbytes, [[(argv, env)]], [(dst, "rclone/%s/" % tag)],
                      notes="streams src->dst through rclone")
        if "aws" in a.tool_set:
            # awscli cannot copy between two endpoints in one command: down to local disk, then up.
            local = os.path.join(self.work, "aws-%s" % tag)
            os.makedirs(local, exist_ok=True)
            c = a.parts_in_flight if single else concurrency
            senv, denv = peers.aws_env(srv.src, c), peers.aws_env(srv.dst, c)
            if single:
                key = entries[0][0]
                fpath = os.path.join(local, os.path.basename(key))
                steps = [[(peers.aws_argv(srv.src, "s3", "cp", "--only-show-errors",
                                          "s3://%s/%s" % (srv.src_bucket, key), fpath), senv)],
                         [(peers.aws_argv(srv.dst, "s3", "cp", "--only-show-errors", fpath,
                                          "s3://%s/aws/%s" % (dst, key)), denv)]]
                tool = "aws s3 cp (2 hops)"
            else:
                steps = [[(peers.aws_argv(srv.src, "s3", "sync", "--only-show-errors", "s3://" + src_prefix, local),
                           senv)],
                         [(peers.aws_argv(srv.dst, "s3", "sync", "--only-show-errors", local,
                                          "s3://%s/aws/%s" % (dst, tag)), denv)]]
                tool = "aws s3 sync (2 hops)"
            peers.run(name, tool, nobj, nbytes, steps, [(dst, "aws/%s/" % tag)],
                      notes="down to local disk, then up; both commands timed")
            shutil.rmtree(local, ignore_errors=True)
            if single:
                key, size = entries[0][0], entries[0][1]
                steps = [[(peers.aws_argv(srv.src, "s3", "cp", "--only-show-errors",
                                          "s3://%s/%s" % (srv.src_bucket, key), "-"), senv),
                          (peers.aws_argv(srv.dst, "s3", "cp", "--only-show-errors", "--expected-size", str(size),
                                          "-", "s3://%s/aws-pipe/%s" % (dst, key)), denv)]]
                peers.run(name, "aws s3 cp (pipe)", nobj, nbytes, steps, [(dst, "aws-pipe/%s/" % tag)],
                          notes="one GET stream piped into a multipart upload")

    # ---- scenario 4: fan-out -----------------------------------------------------------
    def scenario_fanout(self, entries):
        """The same objects to 1 and to 3 destinations, each destination its own [stores.X]
        behind its own --fanout-mbps link (0: no links, three buckets on the destination endpoint)."""
        a = self.args
        mbps = a.fanout_mbps
        entries = entries[:a.fanout_count]
        name = "4: fan-out %d x %d MiB" % (len(entries), a.medium_mib)  # the links: in the lines under it
        nbytes = sum(s for _, s, _ in entries)
        buckets = self.servers.dst_buckets
        links = self.servers.start_links(3, mbps) if mbps else []
        try:
            def targets(n):
                if links:
                    return [("dst%d" % (i + 1), links[i].endpoint, buckets[i]) for i in range(n)]
                return self.archie.targets(buckets[:n])
            one = self.archie.run(name, entries, targets(1), tool="archie -> 1 dest")
            three = self.archie.run(name, entries, targets(3), tool="archie -> 3 dests")
        finally:
            self.servers.stop_links(links)
        keys = ("wall_s", "cpu_s", "peak_rss_mib", "mb_per_s", "link_cpu_s")
        f = self.report.fanout = {"link_mbps": mbps or None, "object_bytes": nbytes,
                                  "one": {k: one.get(k) for k in keys}, "three": {k: three.get(k) for k in keys}}
        for label, m in (("one", one), ("three", three)):
            read = (m.get("server_requests") or {}).get("source_bytes_read")
            f[label]["source_bytes_read"] = read
            f[label]["source_read_ratio"] = read / nbytes if read is not None and nbytes else None
            if m.get("link_cpu_s") is not None and m.get("wall_s"):
                f[label]["link_cores_busy"] = m["link_cpu_s"] / m["wall_s"]
        if mbps:
            f["link_bound_wall_s"] = nbytes / (mbps * 1e6)  # the least time one link needs for the bytes
        if one.get("ok") and three.get("ok"):
            f.update(wall_ratio=three["wall_s"] / one["wall_s"], cpu_ratio=three["cpu_s"] / one["cpu_s"],
                     written_mb_per_s_one=one["bytes"] / 1e6 / one["wall_s"],
                     written_mb_per_s_three=3 * three["bytes"] / 1e6 / three["wall_s"])
        print(fanout_text(f), flush=True)
        self.report.save()

    # ---- scenario 5: latency -----------------------------------------------------------
    def scenario_latency(self):
        a = self.args
        count = max(1, int(round(a.latency_rate * a.latency_seconds)))
        size = a.small_kib * KiB
        name = "5: latency %g ev/s x %gs" % (a.latency_rate, a.latency_seconds)
        entries = self.small_source("s5", count, size)
        dst = self.servers.dst_buckets[0]
        m = new_row(name, "archie", count, count * size, notes="steady load; latency from publish to 'replicated'")
        log("%s: archie" % name)
        proc = lt = None
        try:
            self.archie.ensure_idle_stream()
            self.meter.settle()
            proc, lt = self.archie.start("s5", self.archie.targets([dst]), "archie/")
            self.archie.wait_consuming(proc, lt)
            if proc.poll() is not None:
                raise RunError("archie exited at start (%s); log %s" % (proc.returncode, lt.path))
            time.sleep(0.5)
            cpu0, mark = proc_cpu(proc.pid) or (0, 0), self.meter.mark()
            t0 = time.monotonic()
            published, late = self.publish_steadily(entries, t0)
            publish_s = time.monotonic() - t0
            deadline = time.monotonic() + timeout_for(a.timeout_scale, count * size, count)
            while True:
                lt.poll()
                state = self.archie.consumer_state()
                if lt.count("replicated") >= count and state and state[0] == 0 and state[1] == 0:
                    break
                if proc.poll() is not None:
                    raise RunError("archie exited (%s); log %s" % (proc.returncode, lt.path))
                self.servers.check_servers()
                if time.monotonic() > deadline:
                    raise RunError("timed out: %d of %d replicated (%s)" % (lt.count("replicated"), count, lt.summary()))
                time.sleep(0.05)
            wall = time.monotonic() - t0
            cpu1 = proc_cpu(proc.pid) or (0, 0)
            m["archie_metrics"] = am = scrape_metrics(lt)
            lat = []
            for entry in lt.entries("replicated"):
                k = entry.get("key")
                if k in published and entry.get("ts"):
                    lat.append(parse_ts(entry["ts"]) - published[k])
            lat.sort()
            m.update(wall_s=wall, cpu_user_s=cpu1[0] - cpu0[0], cpu_sys_s=cpu1[1] - cpu0[1],
                     cpu_s=(cpu1[0] + cpu1[1]) - (cpu0[0] + cpu0[1]),
                     peak_rss_mib=(proc_status_kib(proc.pid, "VmHWM") or 0) / 1024, log=lt.path)
            self.meter.use(m, mark)
            self.archie.stop(proc, lt)
            proc = None
            self.servers.verify(m, dst, "archie/s5/", count, count * size)
            self.report.latency = {
                "events": count, "rate_target": a.latency_rate, "rate_achieved": count / publish_s if publish_s else None,
                "publish_s": publish_s, "late_publishes": late, "samples": len(lat),
                "p50_ms": pct(lat, 50) * 1e3, "p90_ms": pct(lat, 90) * 1e3, "p99_ms": pct(lat, 99) * 1e3,
                "max_ms": lat[-1] * 1e3, "min_ms": lat[0] * 1e3, "mean_ms": sum(lat) / len(lat) * 1e3,
                "cpu_cores_busy": m["cpu_s"] / wall if wall else None,
                "server_cores_busy": m["server_cpu_s"] / wall if wall and m["server_cpu_s"] is not None else None,
                "archie_queue_wait_avg_ms": am.get("queue_latency_avg_ms"),
                "archie_request_avg_ms": am.get("request_avg_ms"),
                "stages": stage_breakdown(lt.entries("replicated"), am),
                "method": "time.time() just before each JetStream publish; archie's 'replicated' log line "
                          "(written after every destination completed) 'ts' field, ms resolution, same host clock",
            }
            m["latency"] = self.report.latency
            m["ok"] = len(lat) == count
            if not m["ok"]:
                m["error"] = "only %d of %d latency samples" % (len(lat), count)
        except Exception as e:  # noqa: BLE001 - a broken run must not stop the others
            failed(m, e)
        finally:
            if proc is not None:
                self.archie.stop(proc, lt)
        self.servers.clean_dst(dst, "archie/s5/")
        self.report.record(m)
        if self.report.latency:
            print_latency(self.report.latency)
        self.servers.drop_source("s5/")

    def publish_steadily(self, entries, t0):
        """Scenario 5's load: the event of each entry in turn, one every 1/--latency-rate s from
        t0. Returns {key: time.time() just before its publish} and how many went out late."""
        a = self.args
        interval = 1.0 / a.latency_rate
        published = {}
        late = 0
        for i, (key, sz, etag) in enumerate(entries):
            due = t0 + i * interval
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            elif now - due > interval:
                late += 1
            body = event_for(self.servers.src_bucket, key, sz, etag, a.part_size_mib)
            published[key] = time.time()
            self.archie.publish_one(body)
        return published, late

    # ---- scenario 6: skip-only ---------------------------------------------------------
    def scenario_skip_only(self):
        """A burst of events archie acknowledges without any store request: access events, lifecycle
        expiries and keys its route excludes, in turn. Timed until the consumer is drained."""
        a = self.args
        n = a.skip_events
        name = "6: skip-only %d events" % n
        bucket = self.servers.src_bucket
        excluded = "s6/excluded/"
        kinds = (lambda i: minio_event("s3:ObjectAccessed:Get", bucket, "s6/read/obj-%06d" % i, size=4096),
                 lambda i: minio_event("s3:ObjectRemoved:Delete", bucket, "s6/expired/obj-%06d" % i,
                                       user_agent="Internal: [ILM-Expiry]", host="minio-0:9000"),
                 lambda i: minio_event("s3:ObjectCreated:Put", bucket, excluded + "obj-%06d" % i, size=4096,
                                       etag="0" * 32))
        bodies = [kinds[i % len(kinds)](i) for i in range(n)]
        m = self.archie.timed(name, "archie", bodies, n, 0, self.archie.targets(self.servers.dst_buckets[:1]),
                              "event skipped", "archie/s6/", exclude_copy=["^" + excluded],
                              notes="ObjectAccessed:Get, lifecycle expiry, excluded key in turn; no store request")
        self.report.record(m)
        if m.get("ok"):
            drain = m["wall_s"] - (m.get("startup_s") or 0)
            cpu = m["cpu_s"] - (m.get("startup_cpu_s") or 0)
            k = self.report.skip_only = {
                "events": n, "wall_s": m["wall_s"], "startup_s": m.get("startup_s"), "drain_s": drain,
                "msgs_per_s": n / drain if drain > 0 else None, "cpu_s_after_startup": cpu,
                "cpu_us_per_msg": cpu / n * 1e6,
                "server_requests": (m.get("server_requests") or {}).get("total"),
                "log_span_s": m.get("log_span_s"),
                "outcomes": m.get("outcomes"),
                "method": "all events published before archie starts; drain_s runs from archie's "
                          "'consuming' log line to the consumer having nothing pending or ack-pending"}
            m["skip_only"] = k
            print(skip_only_text(k), flush=True)
            self.report.save()
