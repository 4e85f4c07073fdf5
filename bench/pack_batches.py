#!/usr/bin/env python3
"""pack_batches.py - turns a `bespoke simulate` file (Segment JSONL, one event a
line) into the bodies the ingest benchmark sends, and samples visitor ids for
the profile-read benchmark. Python 3 standard library only.

  pack_batches.py SIM_JSONL BODIES_OUT IDS_OUT [--per-batch 100] [--ids 10000] [--seed 42]

BODIES_OUT: one `{"batch":[...]}` body a line, PER_BATCH events each (the last
may hold fewer); the events are the simulator's lines, verbatim and in order.
IDS_OUT: up to IDS distinct visitor ids drawn at random from the events, one a
line: the id percent-encoded for a URL path, a space, and `u` if the stream
sends it as a userId or `a` if only as an anonymousId (the field a decision
request carries it in, as the browser SDK does).
Prints `bodies B events E ids I` on stdout.
"""
import argparse
import json
import random
import sys
import urllib.parse


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sim")
    ap.add_argument("bodies")
    ap.add_argument("ids")
    ap.add_argument("--per-batch", type=int, default=100)
    ap.add_argument("--ids", dest="nids", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    if a.per_batch < 1:
        sys.exit("pack_batches: --per-batch must be at least 1")

    rng = random.Random(a.seed)
    sample_rate = 0.05  # parse one event in twenty for ids; the rest is copied as bytes
    ids = {}  # id -> "u" (seen as a userId) or "a" (only as an anonymousId)
    bodies = events = 0
    batch = []

    def flush(out):
        nonlocal bodies
        out.write(b'{"batch":[')
        out.write(b",".join(batch))
        out.write(b"]}\n")
        bodies += 1
        batch.clear()

    with open(a.sim, "rb") as src, open(a.bodies, "wb") as out:
        for lineno, line in enumerate(src, 1):
            line = line.strip()
            if not line:
                continue
            if b"\n" in line or b"\r" in line:
                sys.exit("pack_batches: %s:%d: raw newline inside an event" % (a.sim, lineno))
            if rng.random() < sample_rate:
                try:
                    ev = json.loads(line)
                except ValueError as e:
                    sys.exit("pack_batches: %s:%d: not JSON: %s" % (a.sim, lineno, e))
                for key, kind in (("userId", "u"), ("anonymousId", "a")):
                    v = ev.get(key)
                    if isinstance(v, str) and v and ids.get(v) != "u":
                        ids[v] = kind
            batch.append(line)
            events += 1
            if len(batch) == a.per_batch:
                flush(out)
        if batch:
            flush(out)

    chosen = sorted(ids)
    rng.shuffle(chosen)
    chosen = chosen[: a.nids]
    with open(a.ids, "w", encoding="utf-8") as out:
        for v in chosen:
            out.write("%s %s\n" % (urllib.parse.quote(v, safe=""), ids[v]))
    print("bodies %d events %d ids %d" % (bodies, events, len(chosen)))
    if not events:
        sys.exit("pack_batches: %s holds no events" % a.sim)


if __name__ == "__main__":
    main()
