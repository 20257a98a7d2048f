#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tests/trace_check.py TRACE FD — checks a WEFT_TRACE file written by
tests/progs/traced.c: valid JSON in the Chrome trace event format, "B" and
"E" balanced and in time order on every track, and every kind of scheduler
event present, with the reasons and objects the workload produces. Prints
each failed expectation and exits 1 if any."""
import collections
import json
import sys

failures = []


def expect(cond, what):
    if not cond:
        failures.append(what)


def check_tracks(events):
    """B/E nest and close on each track; time never goes back on one."""
    by_tid = collections.defaultdict(list)
    for e in events:
        if e["ph"] != "M":
            by_tid[e["tid"]].append(e)
    for tid, evs in by_tid.items():
        stack, last = [], -1.0
        for e in evs:
            expect(e["ts"] >= last, f"track {tid}: time goes back at {e}")
            last = e["ts"]
            if e["ph"] == "B":
                expect(not stack, f"track {tid}: B inside an open slice: {e}")
                stack.append(e)
            elif e["ph"] == "E":
                expect(bool(stack), f"track {tid}: E without B: {e}")
                if stack:
                    stack.pop()
        expect(not stack, f"track {tid}: {len(stack)} slice(s) never closed")
    return by_tid


def check_threads(events):
    """Per thread: one spawn, one exit, as many wakes as parks."""
    names, runs, ends = {}, collections.Counter(), collections.defaultdict(list)
    open_on = {}
    for e in events:
        if e["ph"] == "B" and "thread" in e.get("args", {}):
            tid = e["args"]["thread"]
            names[tid] = e["name"]
            runs[tid] += 1
            open_on[e["tid"]] = tid
        elif e["ph"] == "E" and e["tid"] in open_on:
            ends[open_on.pop(e["tid"])].append(e["args"])
    spawns = collections.Counter(e["args"]["thread"] for e in events
                                 if e.get("name") == "spawn")
    wakes = collections.Counter(e["args"]["thread"] for e in events
                                if e.get("name") == "wake")
    expect(len(names) == 24, f"24 threads ran, saw {len(names)}")
    for tid, name in names.items():
        expect(spawns[tid] == 1, f"{name}: {spawns[tid]} spawn events")
        kinds = collections.Counter(a["end"] for a in ends[tid])
        expect(kinds["exit"] == 1, f"{name}: {kinds['exit']} exits")
        expect(sum(kinds.values()) == runs[tid], f"{name}: runs != ends")
        expect(kinds["park"] == wakes[tid],
               f"{name}: {kinds['park']} parks, {wakes[tid]} wakes")
    return names, ends


def hog_slice_us(by_tid):
    """How long the hog's one run lasted: it spins 40 ms without a call
    the runtime could switch at, so this checks the clock's scale."""
    for evs in by_tid.values():
        for b, e in zip(evs, evs[1:]):
            if b["ph"] == "B" and b["name"].endswith(" hog"):
                return next(x["ts"] for x in evs[evs.index(b) + 1:]
                            if x["ph"] == "E") - b["ts"]
    return None


def thread_waits(names, ends, label):
    ids = [t for t, n in names.items() if n.endswith(" " + label)]
    return [a for t in ids for a in ends[t] if a["end"] == "park"]


def main():
    path, fd = sys.argv[1], int(sys.argv[2])
    with open(path) as f:
        trace = json.load(f)
    events = trace["traceEvents"]
    for e in events:
        for k in ("ph", "pid", "tid", "ts"):
            expect(k in e, f"event without {k}: {e}")
    by_tid = check_tracks(events)
    carriers = {e["tid"] for e in events if e.get("name") == "thread_name"
                and e["args"]["name"].startswith("carrier ")}
    ran_on = {tid for tid in carriers
              if any(e["ph"] == "B" and e["name"] != "idle"
                     for e in by_tid[tid])}
    expect(len(ran_on) >= 2, f"threads ran on {len(ran_on)} carriers")
    names, ends = check_threads(events)
    expect("#1 main" in names.values(), "the root ran as '#1 main'")
    waits = lambda label: {a.get("wait") for a in
                           thread_waits(names, ends, label)}
    expect("channel send" in waits("producer"), "producer parks on send")
    expect("channel receive" in waits("consumer"), "consumer parks on recv")
    expect("sleep" in waits("writer"), "writer parks in its sleep")
    expect(any(a.get("wait") == "fd readable" and a.get("fd") == fd
               for a in thread_waits(names, ends, "reader")),
           f"reader parks on fd {fd}")
    napper = [t for t, n in names.items() if n.endswith(" napper")]
    expect(any(a.get("wait") == "join" and a.get("of") in napper
               for a in thread_waits(names, ends, "joiner")),
           "joiner parks in the join of napper")
    yields = [a for t, n in names.items() if n.endswith(" yielder")
              for a in ends[t] if a["end"] == "yield"]
    expect(len(yields) >= 16 * 50, f"{len(yields)} yields of 800")
    instants = collections.Counter(e.get("name") for e in events
                                   if e["ph"] == "i")
    for kind in ("spawn", "wake", "steal", "hand-off"):
        expect(instants[kind] > 0, f"no {kind} event")
    expect(any(e["ph"] == "B" and e["name"] == "idle" for e in events),
           "no idle slice")
    hog_us = hog_slice_us(by_tid)
    expect(hog_us is not None and 40000 <= hog_us < 10e6,
           f"the hog's 40 ms run lasted {hog_us} us in the trace")
    for f in failures[:20]:
        print("FAILED:", f)
    print(f"{len(events)} events, {len(failures)} failures")
    return 1 if failures else 0


sys.exit(main())
