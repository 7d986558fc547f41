"""What archie says about a run: its JSON log (its stderr), read as it grows (LogTail), its
/metrics (scrape_metrics) and where an event's time went, stage by stage (stage_breakdown)."""
import datetime
import http.client
import json

from .measurement import pct


def parse_ts(ts):
    return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()


# Where an event's time goes, from fields of archie's `replicated` line (when the binary logs them).
STAGES = (("queue wait", "queued_ms", "JetStream publish -> a worker starts handling"),
          ("source read", "source_ms", "time in source requests"),
          ("destination write", "write_ms", "time writing the destinations"),
          ("convergence check", "check_ms", "the re-read of the source after writing"),
          ("copy duration", "duration_ms", "archie's duration_ms, whole ms: the copy rounds and their checks"))
STAGE_FIELDS = tuple(field for _, field, _ in STAGES)


def stage_breakdown(entries, metrics):
    """p50/p99/mean of each stage over the `replicated` lines (None where the binary does not log
    that field), and the mean time to send the ack from archie_settle_duration_seconds."""
    out = {}
    for label, field, meaning in STAGES:
        values = sorted(float(e[field]) for e in entries if e.get(field) is not None)
        out[field] = {"stage": label, "meaning": meaning, "samples": len(values),
                      "p50_ms": pct(values, 50) if values else None, "p99_ms": pct(values, 99) if values else None,
                      "mean_ms": sum(values) / len(values) if values else None}
    out["settle"] = {"stage": "ack", "meaning": "sending the ack/nak (archie_settle_duration_seconds, mean only)",
                     "samples": int(metrics.get("settle_count") or 0), "p50_ms": None, "p99_ms": None,
                     "mean_ms": metrics.get("settle_avg_ms")}
    return out


def scrape_metrics(lt):
    """A few of archie's own figures from its /metrics: publish -> fetch latency and the mean
    duration of each kind of S3 request (store:operation). {} if unavailable."""
    lt.poll()
    if not lt.admin_port:
        return {}
    try:
        conn = http.client.HTTPConnection("127.0.0.1", lt.admin_port, timeout=5)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode("utf-8", "replace")
        conn.close()
    except (OSError, http.client.HTTPException):
        return {}
    sums, counts, out = {}, {}, {}
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        name, _, value = line.rpartition(" ")
        try:
            v = float(value)
        except ValueError:
            continue
        if name == "archie_queue_latency_seconds_sum":
            out["queue_latency_sum_s"] = v
        elif name == "archie_queue_latency_seconds_count":
            out["queue_latency_count"] = v
        elif name.startswith("archie_store_request_duration_seconds_"):
            labels = dict(kv.split("=", 1) for kv in name[name.find("{") + 1:-1].split(",") if "=" in kv)
            key = "%s:%s" % (labels.get("store", "?").strip('"'), labels.get("operation", "?").strip('"'))
            if name.startswith("archie_store_request_duration_seconds_sum"):
                sums[key] = sums.get(key, 0.0) + v
            elif name.startswith("archie_store_request_duration_seconds_count"):
                counts[key] = counts.get(key, 0.0) + v
        elif name.startswith("archie_settle_duration_seconds_sum"):
            out["settle_sum_s"] = out.get("settle_sum_s", 0.0) + v
        elif name.startswith("archie_settle_duration_seconds_count"):
            out["settle_count"] = out.get("settle_count", 0.0) + v
        elif name.startswith("archie_queue_fetch_requests_total"):
            out.setdefault("fetch_requests", {})[name[name.find("{") + 1:-1]] = v
    if out.get("queue_latency_count"):
        out["queue_latency_avg_ms"] = out["queue_latency_sum_s"] / out["queue_latency_count"] * 1e3
    if out.get("settle_count"):
        out["settle_avg_ms"] = out["settle_sum_s"] / out["settle_count"] * 1e3
    out["request_avg_ms"] = {k: sums[k] / counts[k] * 1e3 for k in sums if counts.get(k)}
    out["request_count"] = counts
    return out


class LogTail:
    """Reads archie's JSON log (its stderr) incrementally."""

    SETTLED = ("replicated", "already replicated", "event skipped", "malformed event", "removed")

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.partial = b""
        self.counts = {}
        self.kept = {"replicated": []}
        self.sanitizer = ""
        self.not_done = {}
        self.admin_port = None
        self.spans = {}  # msg -> [first ts, last ts]

    def poll(self):
        """Read what was appended; returns False (so it can sit in a lambda's `or` chain)."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return False
        if not data:
            return False
        self.offset += len(data)
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = lines.pop()
        for raw in lines:
            if not raw.startswith(b"{"):
                text = raw.decode("utf-8", "replace")
                if ("Sanitizer" in text or "runtime error:" in text) and not self.sanitizer:
                    self.sanitizer = text.strip()
                continue
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            msg = entry.get("msg", "")
            self.counts[msg] = self.counts.get(msg, 0) + 1
            ts = entry.get("ts")
            if ts:  # ISO 8601 UTC strings of one width: they sort as text
                span = self.spans.setdefault(msg, [ts, ts])
                span[0], span[1] = min(span[0], ts), max(span[1], ts)
            if msg == "admin server listening":
                self.admin_port = entry.get("port")
            if msg in self.kept:
                self.kept[msg].append({"key": entry.get("key"), "ts": entry.get("ts"),
                                       **{f: entry[f] for f in STAGE_FIELDS if f in entry}})
            if msg == "event not done":
                k = "%s/%s" % (entry.get("outcome"), entry.get("code"))
                self.not_done[k] = self.not_done.get(k, 0) + 1
        return False

    def seen(self, msg):
        return self.counts.get(msg, 0) > 0

    def count(self, msg):
        return self.counts.get(msg, 0)

    def settled(self):
        return sum(self.counts.get(m, 0) for m in self.SETTLED) + self.not_done.get("term", 0)

    def entries(self, msg):
        return self.kept.get(msg, [])

    def first_ts(self, msg):
        return parse_ts(self.spans[msg][0]) if msg in self.spans else None

    def last_ts(self, msg):
        return parse_ts(self.spans[msg][1]) if msg in self.spans else None

    def summary(self):
        keys = ("replicated", "already replicated", "event skipped", "malformed event", "event not done")
        s = ", ".join("%s %d" % (k, self.counts[k]) for k in keys if self.counts.get(k))
        if self.not_done:
            s += " [%s]" % ", ".join("%s x%d" % kv for kv in sorted(self.not_done.items()))
        return s or "nothing logged"
