"""Outage-cause attribution (``chaosray.causes.attribute``) on long timelines.

A synthetic timeline of ``--events`` events (pods, endpoints, nodes, Ray)
spread over ``--span`` seconds and ``--windows`` outage windows. Two runs
on the same data:

- **bounded** (what the report does): the hint rules see only the events
  of the ``RULE_LOOKBACK_S`` before each window;
- **unbounded** (baseline): the rules see the whole timeline.

Both must give the same causes and hints (checked); the figure is the
ratio of their best-of-``--repeat`` wall times.
"""

from __future__ import annotations

import argparse
import random
import time
from typing import Any

from chaosray import causes

GROUPS = ("workers", "head", "redis", "endpoints", "nodes", "ray")
EVENTS = ("present", "ready", "not_ready", "deletion_requested", "removed", "added", "gone")


def timeline(count: int, span: float, windows: int, seed: int) -> tuple[list[Any], list[Any]]:
    rng = random.Random(seed)
    events = [
        {"t": rng.random() * span, "group": rng.choice(GROUPS), "pod": f"p-{rng.randrange(30)}",
         "event": rng.choice(EVENTS), "node": None}
        for _ in range(count)
    ]  # fmt: skip
    step = span / (windows + 1)
    outages = [{"start": step * (i + 1), "end": step * (i + 1) + 2.0} for i in range(windows)]
    return events, outages


def best(repeat: int, outages: list[Any], events: list[Any]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = causes.attribute(outages, events)
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--span", type=float, default=3_600.0)
    parser.add_argument("--windows", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print("| events | windows | bounded | unbounded (baseline) | bounded/unbounded |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for count in args.events:
        events, outages = timeline(count, args.span, args.windows, seed=count)
        bounded_s, bounded = best(args.repeat, outages, events)
        saved = causes.RULE_LOOKBACK_S
        causes.RULE_LOOKBACK_S = float("inf")
        try:
            unbounded_s, unbounded = best(args.repeat, outages, events)
        finally:
            causes.RULE_LOOKBACK_S = saved
        same = [(w["cause"], w["hints"]) for w in bounded] == [
            (w["cause"], w["hints"]) for w in unbounded
        ]
        print(
            f"| {count:,} | {args.windows} | {bounded_s:.3f} s | {unbounded_s:.3f} s | "
            f"{bounded_s / unbounded_s:.3f} |" + ("" if same else " (results differ!)")
        )


if __name__ == "__main__":
    main()
