#!/usr/bin/env python3
"""Fails when a file under src/ includes a header from a layer above its own.

The layer order (lowest first) is stated here once and quoted in README.md ("How it works").
A layer may include itself and anything below; folders on the same level must not include
each other (event does not know route, store does not know queue), except where ALLOWED says.
"""
import os
import re
import sys

LAYERS = [
    ["log", "metrics", "async", "health", "pch"],  # plumbing every layer may use (pch: third-party only)
    ["config"],
    ["event", "route", "http"],             # decode, decide, transport
    ["store", "queue"],                     # object stores; JetStream
    ["pipe", "fleet"],                      # buffers and fan-out; the worker registry
    ["engine"],                             # the replication workflows
    ["service"],                            # process lifecycle, admin server
    ["cli", "main.cpp"],                    # the binary
]
ALLOWED = {("main.cpp", "cli")}  # same-level exceptions: (includer, included)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(REPO, "src")
LEVEL = {name: i for i, names in enumerate(LAYERS) for name in names}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def folder_of(relative):
    return relative.split("/", 1)[0] if "/" in relative else relative


def violations():
    found = []
    for root, _, files in os.walk(SRC):
        for name in sorted(files):
            path = os.path.join(root, name)
            rel = os.path.relpath(path, SRC)
            mine = folder_of(rel)
            if mine not in LEVEL:
                if rel.endswith((".cpp", ".hpp")):
                    found.append(f"src/{rel}: folder '{mine}' has no layer in tests/check_layering.py")
                continue
            with open(path, encoding="utf-8") as f:
                for lineno, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    theirs = folder_of(m.group(1))
                    if theirs not in LEVEL or theirs == mine or (mine, theirs) in ALLOWED:
                        continue
                    if LEVEL[theirs] > LEVEL[mine] or (LEVEL[theirs] == LEVEL[mine] and LEVEL[mine] > 0):
                        found.append(f"src/{rel}:{lineno}: {mine} (layer {LEVEL[mine]}) includes "
                                     f"{m.group(1)} ({theirs}, layer {LEVEL[theirs]})")
    return found


if __name__ == "__main__":
    problems = violations()
    for p in problems:
        print(p)
    print(f"layering: {len(problems)} violation(s)")
    sys.exit(1 if problems else 0)
