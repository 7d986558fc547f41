"""What the numbers were measured with: the machine, the archie build (a sanitizer or -O0
build is flagged), the peers' versions, the servers and the settings; printed at the start and
kept as the JSON's meta."""
import datetime
import json
import os
import platform
import subprocess

from testkit.ceph_rgw import AWS, RCLONE

from .common import MiB
from .measurement import proc_meminfo_kib


def describe(args, servers):
    """Print what the benchmark runs with; returns it as a dict (the JSON's meta)."""
    a = args
    s = servers
    binary = a.archie
    build = build_info(binary)
    tools = {}
    for name, argv in (("rclone", [RCLONE, "version"]), ("aws", [AWS, "--version"])):
        try:
            cp = subprocess.run(argv, capture_output=True, text=True, timeout=60)
            tools[name] = ((cp.stdout or cp.stderr).strip().splitlines() or ["?"])[0]
        except OSError as e:
            tools[name] = "unavailable: %s" % e
    meta = {
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "host": platform.node(), "cpus": os.cpu_count(),
        "mem_total_gib": round((proc_meminfo_kib("MemTotal") or 0) / (1 << 20), 1),
        "machine": machine_description(),
        "mode": s.mode,
        "archie": {"path": os.path.realpath(binary), **build},
        "tools": {"rclone": RCLONE, "aws": AWS, **{k + "_version": v for k, v in tools.items()}},
        "servers": {"nats": s.nats_url, "src": s.src.endpoint, "dst": s.dst.endpoint,
                    "src_bucket": s.src_bucket, "dst_buckets": s.dst_buckets, "stream": s.stream},
        "archie_config": {"concurrency": a.concurrency, "part_size_mib": a.part_size_mib,
                          "buffer_budget_mib": a.buffer_budget_mib, "parts_in_flight": a.parts_in_flight,
                          "fetch_expires": a.fetch_expires},
        "args": {k: v for k, v in vars(a).items() if k != "scenario_set"},
    }
    print("archie:  %s" % meta["archie"]["path"])
    print("         %s" % build["summary"])
    if build["slow"]:
        print("\n  !!! WARNING: %s\n  !!! archie's numbers below are NOT representative; build release and set "
              "ARCHIE_BIN=build-release/src/archie\n" % build["summary"])
    print("rclone:  %s (%s)" % (RCLONE, tools["rclone"]))
    print("aws:     %s (%s)" % (AWS, tools["aws"]))
    mach = meta["machine"]
    print("machine: %s, %d cores, %.1f GiB RAM, %s, kernel %s" % (mach["cpu_model"], mach["cores"],
                                                                 meta["mem_total_gib"], mach["os"],
                                                                 mach["kernel"]))
    print("servers: %s" % s.mode)
    print("         nats %s, source %s/%s, destination %s/%s" % (s.nats_url, s.src.endpoint, s.src_bucket,
                                                                s.dst.endpoint, s.dst_buckets[0]))
    print("archie config: concurrency %d, part_size_mib %d, buffer_budget_mib %d, parts_in_flight %d, "
          "fetch_expires %s" % (a.concurrency, a.part_size_mib, a.buffer_budget_mib, a.parts_in_flight,
                                a.fetch_expires), flush=True)
    return meta


def machine_description():
    """What the numbers were measured on: CPU, cores, RAM, kernel, OS release, load at start."""
    cpu_model, flags = "?", ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and cpu_model == "?":
                    cpu_model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = value
    except OSError:
        pass
    os_release = {}
    try:
        with open("/etc/os-release") as f:
            os_release = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
    except OSError:
        pass
    try:
        with open("/etc/debian_version") as f:
            debian = f.read().strip()
    except OSError:
        debian = None
    return {"cpu_model": cpu_model, "cores": os.cpu_count(),
            "cpu_flags": [fl for fl in ("avx2", "avx512f", "sha_ni", "pclmulqdq", "sse4_2") if fl in flags.split()],
            "mem_total_kib": proc_meminfo_kib("MemTotal"), "mem_available_kib": proc_meminfo_kib("MemAvailable"),
            "kernel": platform.release(), "os": os_release.get("PRETTY_NAME", "?").strip('"'),
            "debian_version": debian, "python": platform.python_version(), "load_avg_at_start": os.getloadavg()}


def build_info(binary):
    """What kind of archie build this is: meson build options if next to it, ASan symbols."""
    info = {"buildtype": None, "b_sanitize": None, "optimization": None, "asan": False, "version": None}
    try:  # names the commit it was built from, also for a copy away from its build dir
        cp = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
        info["version"] = (cp.stdout.strip().splitlines() or [None])[0]
    except (OSError, subprocess.TimeoutExpired):
        pass
    build_dir = os.path.dirname(os.path.dirname(os.path.realpath(binary)))
    opts = os.path.join(build_dir, "meson-info", "intro-buildoptions.json")
    try:
        with open(opts) as f:
            for o in json.load(f):
                if o["name"] in ("buildtype", "b_sanitize", "optimization"):
                    info[o["name"]] = o["value"]
    except (OSError, ValueError, KeyError):
        pass
    try:
        out = subprocess.run(["nm", "-D", binary], capture_output=True, text=True, timeout=60).stdout
        info["asan"] = "__asan_init" in out
    except OSError:
        needle, tail_ = b"__asan_init", b""
        with open(binary, "rb") as f:
            for chunk in iter(lambda: f.read(8 * MiB), b""):
                if needle in tail_ + chunk:
                    info["asan"] = True
                    break
                tail_ = chunk[-len(needle):]
    if info["b_sanitize"] and info["b_sanitize"] != "none":
        info["asan"] = info["asan"] or "address" in str(info["b_sanitize"])
    slow = info["asan"] or info["buildtype"] in ("debug", "plain") or info["optimization"] in ("0", "g")
    if info["buildtype"] is None and not info["asan"] and "build-release" not in binary:
        slow = None  # unknown
    parts = [info["version"]] if info["version"] else []
    if info["buildtype"]:
        parts.append("meson buildtype=%s optimization=%s sanitize=%s" % (info["buildtype"], info["optimization"],
                                                                         info["b_sanitize"]))
    parts.append("ASan: %s" % ("yes" if info["asan"] else "no"))
    if slow:
        parts.insert(0, "SLOW BUILD (sanitizers/-O0)")
    elif slow is None:
        parts.insert(0, "build type unknown")
    info["slow"] = bool(slow)
    info["summary"] = "; ".join(parts)
    return info
