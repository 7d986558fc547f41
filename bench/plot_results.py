#!/usr/bin/python3
"""Render a replication_bench.py JSON as a PNG chart: one row of panels per scenario, one panel
per figure (wall time, objects/s, CPU per object, requests per object at the servers), one bar
per tool.

    bench/plot_results.py RESULTS.json [-o OUT.png]

Needs Debian's matplotlib (`scripts/install-deps bench`, or `apt-get install python3-matplotlib`);
the benchmark itself does not. The default output is RESULTS.png next to the JSON."""
import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

# (JSON field, panel title, lower is better)
FIGURES = (("wall_s", "wall time, s", True),
           ("objects_per_s", "objects/s", False),
           ("cpu_ms_per_object", "CPU ms per object", True),
           ("requests_per_object", "requests per object at the servers", True))
ARCHIE_COLOUR, PEER_COLOUR = "#1f77b4", "#b0b0b0"


def figure(row, field):
    if field == "requests_per_object":
        return (row.get("server_requests") or {}).get("per_object")
    return row.get(field)


def scenarios(results):
    """{scenario: [rows]} in the order the benchmark ran them."""
    out = {}
    for row in results:
        out.setdefault(row["scenario"], []).append(row)
    return out


def subtitle(meta):
    machine = meta.get("machine") or {}
    archie = meta.get("archie") or {}
    return "%s UTC; %s, %s cores, %s GiB RAM, %s; archie %s (%s)" % (
        (meta.get("started") or "")[:16].replace("T", " "), machine.get("cpu_model", "?"),
        machine.get("cores", meta.get("cpus", "?")), meta.get("mem_total_gib", "?"), machine.get("os", "?"),
        archie.get("path", "?"), archie.get("summary", "?"))


def label(v):
    if v is None:
        return "-"
    if abs(v) >= 1000:
        return "{:,.0f}".format(v)
    return "%.1f" % v if abs(v) >= 10 else "%.3g" % v


def ratio(v):
    return "-" if v is None else "%.2f" % v


def footer(doc):
    """The figures that are not per tool: latency, fan-out, skip-only."""
    lines = []
    lat = doc.get("latency")
    if lat:
        lines.append("latency publish -> at destination (%d events at %.0f/s): p50 %.1f ms, p90 %.1f ms, p99 %.1f ms"
                     % (lat["samples"], lat.get("rate_achieved") or 0, lat["p50_ms"], lat["p90_ms"], lat["p99_ms"]))
        stages = [(st["stage"], st["mean_ms"]) for st in (lat.get("stages") or {}).values() if st.get("mean_ms") is not None]
        if stages:
            lines.append("mean per stage: " + ", ".join("%s %.1f ms" % kv for kv in stages))
    fan = doc.get("fanout")
    if fan and fan.get("wall_ratio"):
        lines.append("fan-out: 3 destinations %.2fx the wall time of 1%s; source bytes read %s / %s x the object bytes"
                     % (fan["wall_ratio"], " (each behind its own %g MB/s link)" % fan["link_mbps"]
                        if fan.get("link_mbps") else "",
                        ratio(fan["one"].get("source_read_ratio")), ratio(fan["three"].get("source_read_ratio"))))
    skip = doc.get("skip_only")
    if skip:
        lines.append("skip-only: %d events, %s msg/s after start-up, %s us CPU per message"
                     % (skip["events"], label(skip.get("msgs_per_s")), label(skip.get("cpu_us_per_msg"))))
    return "\n".join(lines)


def plot(doc, out):
    groups = scenarios(doc.get("results") or [])
    if not groups:
        raise SystemExit("no results in the JSON")
    notes = footer(doc)
    heights = [len(rows) * 0.45 + 1.1 for rows in groups.values()] + ([0.25 * (notes.count("\n") + 1) + 0.2] if notes else [])
    fig = plt.figure(figsize=(4.4 * len(FIGURES), sum(heights) + 0.8), layout="constrained")
    fig.suptitle("archie replication benchmark\n" + subtitle(doc.get("meta") or {}), fontsize=9)
    rows_of_panels = fig.subfigures(len(heights), 1, height_ratios=heights, squeeze=False)[:, 0]
    for panel_row, (name, rows) in zip(rows_of_panels, groups.items()):
        panel_row.suptitle(name, x=0.005, ha="left", fontsize=9, fontweight="bold")
        tools = [row["tool"] for row in rows]
        for c, (ax, (field, title, lower_better)) in enumerate(zip(panel_row.subplots(1, len(FIGURES)), FIGURES)):
            values = [figure(row, field) if row.get("ok") else None for row in rows]
            bars = ax.barh(range(len(rows)), [v or 0 for v in values],
                           color=[ARCHIE_COLOUR if t.startswith("archie") else PEER_COLOUR for t in tools])
            ax.set_yticks(range(len(rows)))
            ax.set_yticklabels(tools if c == 0 else [""] * len(rows), fontsize=8)
            ax.invert_yaxis()  # first tool on top, as in the table
            ax.tick_params(axis="x", labelsize=7)
            ax.set_title("%s (%s is better)" % (title, "lower" if lower_better else "higher"), fontsize=8)
            top = max([v for v in values if v is not None] or [1]) or 1
            ax.set_xlim(0, top * 1.3)
            for bar, row, v in zip(bars, rows, values):
                ax.text(bar.get_width() + top * 0.02, bar.get_y() + bar.get_height() / 2,
                        label(v) if row.get("ok") else "FAILED", va="center", fontsize=7)
    if notes:
        rows_of_panels[-1].text(0.005, 0.5, notes, ha="left", va="center", fontsize=8)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", help="JSON written by bench/replication_bench.py")
    ap.add_argument("-o", "--output", help="PNG to write (default: the JSON's name with .png)")
    a = ap.parse_args(argv)
    with open(a.results) as f:
        doc = json.load(f)
    out = a.output or os.path.splitext(a.results)[0] + ".png"
    plot(doc, out)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
