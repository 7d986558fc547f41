"""What the benchmark reports: one row a run (the table, printed as each run ends), the lines
under scenarios 4, 5 and 6, the summary at the end, and the JSON file (rewritten after every
run, so that an interrupted benchmark leaves what it measured)."""
import json
import os

from .common import GiB

COLS = [("scenario", 26, "s"), ("tool", 20, "s"), ("wall s", 8, ".2f"), ("obj/s", 9, ".1f"), ("MB/s", 8, ".1f"),
        ("cpu s", 7, ".2f"), ("cpu ms/obj", 10, ".3f"), ("cpu s/GiB", 9, ".2f"), ("RSS MiB", 8, ".0f"),
        ("srv cpu s", 9, ".2f"), ("req/obj", 7, ".2f"), ("archie/this wall", 16, ".2f"), ("cpu", 6, ".2f")]


def finish(m):
    wall = m.get("wall_s")
    if wall:
        m["objects_per_s"] = m["objects"] / wall
        m["mb_per_s"] = m["bytes"] / 1e6 / wall
    if m.get("cpu_s") is not None:
        m["cpu_ms_per_object"] = m["cpu_s"] * 1e3 / m["objects"] if m["objects"] else None
        m["cpu_s_per_gib"] = m["cpu_s"] / (m["bytes"] / GiB) if m["bytes"] else None


def ratio(results, m, key):
    if m["tool"] == "archie" or not m.get("ok"):
        return None
    ref = [r for r in results if r["scenario"] == m["scenario"] and r["tool"] == "archie" and r.get("ok")]
    if not ref or not m.get(key) or ref[0].get(key) is None:
        return None
    return ref[0][key] / m[key]


def show(value, spec, none="-"):
    return none if value is None else format(value, spec)


def fanout_text(f):
    """The lines under scenario 4: 3 destinations against 1, and what the source was read."""
    out = []
    if f.get("wall_ratio"):
        out.append("    fan-out: 3 destinations took %.2fx the wall time (goal <= 1.2x) and %.2fx the CPU of 1 "
                   "destination; bytes written %.1f MB/s (1 dest) vs %.1f MB/s (3 dests)"
                   % (f["wall_ratio"], f["cpu_ratio"], f["written_mb_per_s_one"], f["written_mb_per_s_three"]))
    for label, n in (("one", 1), ("three", 3)):
        g = f[label]
        out.append("    %d dest%s: source bytes read %s (%sx the object bytes, goal 1.00x)%s"
                   % (n, "s" if n > 1 else " ", show(g.get("source_bytes_read"), ",d"),
                      show(g.get("source_read_ratio"), ".2f"),
                      "; links' CPU %.2f cores" % g["link_cores_busy"] if g.get("link_cores_busy") is not None else ""))
    if f.get("link_bound_wall_s"):
        out.append("    each link moves at most %g MB/s: %.1f s is the least wall time for the object bytes"
                   % (f["link_mbps"], f["link_bound_wall_s"]))
    return "\n".join(out)


def skip_only_text(k):
    return ("    skip-only: %d events drained %.2f s after 'consuming' (archie's log: last skip after %s s): %s msg/s "
            "(goal 50,000), CPU %s us per message, server requests %s (archie's bucket health checks)"
            % (k["events"], k["drain_s"] or 0, show(k.get("log_span_s"), ".2f"), show(k["msgs_per_s"], ",.0f"),
               show(k["cpu_us_per_msg"], ".1f"), show(k["server_requests"], "d")))


def requests_text(sr):
    """One line: the requests each endpoint answered, by kind, and the bytes the source sent."""
    parts = []
    for name, d in sr["endpoints"].items():
        if not d["req"]:
            continue
        kinds = ", ".join("%s %d" % kv for kv in sorted(d["by_kind"].items(), key=lambda kv: -kv[1]))
        failed = ", ".join("%s x%d" % kv for kv in sorted(d["failed_by_kind"].items()))
        parts.append("%s %d req (%s%s)" % (name, d["req"], kinds or "no access lines",
                                           "; answered " + failed if failed else ""))
    return "    at the servers: %s; source bytes read %s%s" % (
        "; ".join(parts) or "no requests", format(sr["source_bytes_read"], ",d"),
        "" if sr["log_complete"] else " (access log incomplete: kinds partial, bytes from get_b)")


def print_header():
    print()
    print("  ".join(("%-*s" if fmt == "s" else "%*s") % (w, name) for name, w, fmt in COLS))
    print("  ".join("-" * w for _, w, _ in COLS), flush=True)


def row_text(m, results):
    if m.get("ok"):
        m["ratio_wall_archie_over_this"] = ratio(results, m, "wall_s")
        m["ratio_cpu_archie_over_this"] = ratio(results, m, "cpu_s")
    vals = [m["scenario"], m["tool"], m.get("wall_s"), m.get("objects_per_s"), m.get("mb_per_s"), m.get("cpu_s"),
            m.get("cpu_ms_per_object"), m.get("cpu_s_per_gib"), m.get("peak_rss_mib"), m.get("server_cpu_s"),
            (m.get("server_requests") or {}).get("per_object"),
            m.get("ratio_wall_archie_over_this"), m.get("ratio_cpu_archie_over_this")]
    out = []
    for (name, w, fmt), v in zip(COLS, vals):
        if fmt == "s":
            out.append("%-*s" % (w, str(v)[:w]))
        else:
            out.append("%*s" % (w, "-" if v is None else format(v, fmt)))
    text = "  ".join(out)
    if m.get("server_requests"):
        text += "\n" + requests_text(m["server_requests"])
    if not m.get("ok"):
        text += "\n    FAILED: %s" % m.get("error")
    return text



def print_row(m, results):
    print(row_text(m, results), flush=True)


def print_stages(stages):
    def cell(v):
        return "%9s" % ("-" if v is None else "%.1f" % v)
    print("    per stage, ms (archie's 'replicated' fields; '-': not logged by this binary)")
    print("      %-40s%9s%9s%9s" % ("", "p50", "p99", "mean"))
    for field, st in stages.items():
        name = "%s (%s)" % (st["stage"], field if field != "settle" else "archie_settle_duration_seconds")
        print("      %-40s%s%s%s" % (name, cell(st["p50_ms"]), cell(st["p99_ms"]), cell(st["mean_ms"])), flush=True)



def print_latency(L):
    """The lines under scenario 5."""
    print("    latency publish -> at destination: p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms "
          "(%d samples, %.1f ev/s achieved, archie %.2f cores busy)"
          % (L["p50_ms"], L["p90_ms"], L["p99_ms"], L["max_ms"], L["samples"], L["rate_achieved"] or 0,
             L["cpu_cores_busy"] or 0), flush=True)
    if L.get("archie_queue_wait_avg_ms") is not None:
        print("    archie's own metrics: publish -> fetched avg %.1f ms; request avg ms: %s"
              % (L["archie_queue_wait_avg_ms"], ", ".join("%s %.1f" % kv for kv in
                                                          sorted((L["archie_request_avg_ms"] or {}).items()))),
              flush=True)
    print_stages(L["stages"])


def new_row(scenario, tool, objects, nbytes, **extra):
    """A result row before its run: not ok until the run says so."""
    return {"scenario": scenario, "tool": tool, "objects": objects, "bytes": nbytes, "ok": False, **extra}


class Report:
    """Every result of the benchmark: the rows, the scenario summaries (latency, fan-out,
    skip-only), what it ran on (meta, mode) and the problems met; saved as JSON to json_path."""

    def __init__(self, json_path):
        self.json_path = json_path
        self.results = []
        self.latency = None
        self.fanout = None
        self.skip_only = None
        self.problems = []
        self.meta = {}
        self.mode = None

    def record(self, m):
        """Row m is done: add it, print it, save."""
        finish(m)
        self.results.append(m)
        if not m.get("ok"):
            self.problems.append("%s / %s: %s" % (m["scenario"], m["tool"], m.get("error")))
        print_row(m, self.results)
        self.save()
        return m

    def save(self):
        if not self.json_path:
            return
        doc = {"meta": self.meta, "results": self.results, "latency": self.latency, "fanout": self.fanout,
               "skip_only": self.skip_only,
               "problems": self.problems}
        tmp = self.json_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=2, default=str)
        os.replace(tmp, self.json_path)

    def print_summary(self):
        """The table of every row and the scenario summaries again, then the problems."""
        print("\n== results (%s; archie/this < 1: archie took less)" % self.mode)
        print_header()
        for m in self.results:
            print(row_text(m, self.results))
        if self.fanout:
            print("\n" + fanout_text(self.fanout).strip())
        if self.skip_only:
            print(skip_only_text(self.skip_only).strip())
        if self.latency:
            L = self.latency
            print("latency (publish -> object at the destination, %d events at %.1f/s): p50 %.1f ms  p90 %.1f ms  "
                  "p99 %.1f ms  max %.1f ms" % (L["samples"], L["rate_achieved"] or 0, L["p50_ms"], L["p90_ms"],
                                                L["p99_ms"], L["max_ms"]))
            print_stages(L["stages"])
        if self.meta.get("archie", {}).get("slow"):
            print("\n!!! archie was an ASan/debug build (%s): its CPU, RSS and time are not representative."
                  % self.meta["archie"]["path"])
        if self.problems:
            print("\nPROBLEMS:")
            for p in self.problems:
                print("  - " + p)
        if self.json_path:
            print("\nJSON: %s" % self.json_path)
