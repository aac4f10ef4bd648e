#!/usr/bin/env python3
"""Replays an NDJSON file to stdout at a steady rate, for measuring vigil's latency under a known load:

  benches/paced_replay.py --rate 50000 FILE | target/release/vigil run --input cloudtrail:- \\
      --rules benches/rules --evidence /tmp/lat/evidence --alerts /tmp/lat/alerts.ndjson \\
      --batch-ms 100 --summary-json /tmp/lat/summary.json

Lines go out in 10 ms ticks (rate / 100 lines each); a tick that falls behind is caught up at once, so the
average rate holds. At the end it prints to stderr the rate it achieved. The run summary (`latency`) then has
the read -> alert and read -> archived quantiles. Standard library only.
"""
import argparse
import sys
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, required=True, help="lines per second")
    parser.add_argument("--max", type=int, default=0, help="stop after this many lines (default: the whole file)")
    parser.add_argument("file")
    args = parser.parse_args()
    with open(args.file, "rb") as f:
        lines = [line for line in f if line.strip()]
    if args.max:
        lines = lines[: args.max]
    per_tick = max(1, int(args.rate / 100))
    out = sys.stdout.buffer
    start = time.monotonic()
    sent = 0
    while sent < len(lines):
        chunk = lines[sent : sent + per_tick]
        out.write(b"".join(chunk))
        out.flush()
        sent += len(chunk)
        due = start + sent / args.rate
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    seconds = time.monotonic() - start
    print(f"paced_replay: {sent} lines in {seconds:.2f}s ({sent / seconds:.0f} lines/s)", file=sys.stderr)


if __name__ == "__main__":
    main()
