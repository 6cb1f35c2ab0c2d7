"""Streaming request metrics (``RequestStats``) against a naive baseline.

Both paths read the same synthetic request stream (``--samples`` requests sent
at ``--rate`` per second, lognormal latencies, ``--windows`` downtime windows)
and produce the same figures: counts, p50/p95/p99 of successful latencies,
downtime windows and the per-second timeline.

- **streaming**: ``RequestStats.add`` fed from a generator, then ``summary()``
  and ``timeline()``; no request is kept.
- **naive** (baseline): every request loaded into a list, latencies sorted,
  exact percentiles (``exact_percentile``, numpy's linear interpolation),
  windows and per-second counts computed from the list.

Each measurement runs in a fresh child process of this script, so one path's
garbage cannot inflate the other's memory:

- a timed pass (no tracing): wall time, CPU time, peak RSS increase (the
  kernel's high-water mark, reset just before the pass);
- a traced pass (``tracemalloc``): peak Python-allocated memory, and the
  allocation sites holding the most memory at the end of the streaming pass.

Wall time is the best of ``--repeat`` timed passes (the machine is shared).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import random
import resource
import signal
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from chaosray.metrics import (
    DEFAULT_RELATIVE_ACCURACY,
    PERCENTILES,
    Request,
    RequestStats,
    exact_percentile,
)

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
MEDIAN_LATENCY_S = 0.05
SIGMA = 0.6
TARGET_MEMORY_RATIO = 0.1
CHILD_TIMEOUT_S = 900.0


def samples(count: int, rate: float, windows: int, seed: int) -> Iterator[Request]:
    """``count`` requests sent every ``1/rate`` s, lazily. ``windows`` outages of
    2 to 120 s are spread over the stream; requests in them fail (HTTP 503)."""
    rng = random.Random(seed)
    outages: list[tuple[int, int]] = []
    for k in range(windows):
        length = max(1, int(rng.uniform(2.0, 120.0) * rate))
        first = (k + 1) * count // (windows + 1) + rng.randrange(max(1, count // 100))
        outages.append((first, min(count, first + length)))
    mu = math.log(MEDIAN_LATENCY_S)
    outage = 0
    for i in range(count):
        sent = T0 + i / rate
        while outage < len(outages) and i >= outages[outage][1]:
            outage += 1
        if outage < len(outages) and outages[outage][0] <= i:
            yield Request(sent, False, None, 503, "HTTP 503")
        else:
            yield Request(sent, True, rng.lognormvariate(mu, SIGMA), 200, None)


def run_streaming(
    stream: Iterator[Request], consumed: Callable[[], None] | None = None
) -> dict[str, Any]:
    stats = RequestStats()
    for request in stream:
        stats.add(request)
    if consumed is not None:
        consumed()
    summary = stats.summary()
    timeline = stats.timeline()
    return _result(
        summary["requests"],
        summary["succeeded"],
        {f"p{p:g}": summary["latency_s"][f"p{p:g}"] for p in PERCENTILES},
        [[w["start"], w["end"], w["failed_requests"]] for w in summary["downtime_windows"]],
        timeline,
    )


def run_generate_only(
    stream: Iterator[Request], consumed: Callable[[], None] | None = None
) -> dict[str, Any]:
    """Diagnostic: the cost of making the requests, which both paths pay."""
    total = sum(1 for _ in stream)
    return _result(total, 0, {}, [], [])


def run_naive(
    stream: Iterator[Request], consumed: Callable[[], None] | None = None
) -> dict[str, Any]:
    requests = list(stream)
    if consumed is not None:
        consumed()
    latencies = sorted(r.latency for r in requests if r.ok and r.latency is not None)
    percentiles = {f"p{p:g}": exact_percentile(latencies, p) for p in PERCENTILES}
    windows: list[list[float]] = []
    start: float | None = None
    failed = 0
    for request in requests:
        if not request.ok:
            if start is None:
                start, failed = request.sent, 0
            failed += 1
        elif start is not None:
            windows.append([start, request.sent, failed])
            start = None
    if start is not None:
        windows.append([start, requests[-1].sent, failed])
    per_second: dict[int, list[int]] = {}
    for request in requests:
        per_second.setdefault(int(request.sent), [0, 0])[0 if request.ok else 1] += 1
    timeline = [{"second": s, "ok": c[0], "failed": c[1]} for s, c in sorted(per_second.items())]
    succeeded = sum(1 for r in requests if r.ok)
    return _result(len(requests), succeeded, percentiles, windows, timeline)


def _result(
    total: int,
    succeeded: int,
    percentiles: Mapping[str, float | None],
    windows: list[list[float]],
    timeline: list[dict[str, int]],
) -> dict[str, Any]:
    return {
        "requests": total,
        "succeeded": succeeded,
        "percentiles": percentiles,
        "windows": windows,
        "timeline_seconds": len(timeline),
        "timeline_failed": sum(t["failed"] for t in timeline),
    }


PATHS: dict[str, Callable[[Iterator[Request], Callable[[], None] | None], dict[str, Any]]] = {
    "streaming": run_streaming,
    "naive": run_naive,
    "generate": run_generate_only,
}


def _rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_rss_high_water() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) to the current RSS."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
            clear.write("5")
        return True
    except OSError:
        return False


def _rss_high_water_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child(args: argparse.Namespace) -> dict[str, Any]:
    """One measurement in this (fresh) process; returns its figures."""
    path = PATHS[args.child]
    stream = samples(args.samples, args.rate, args.windows, args.seed)
    gc.collect()
    if args.traced:
        top: list[list[Any]] = []

        def held() -> None:
            """What the path holds once the stream is consumed."""
            snapshot = tracemalloc.take_snapshot()
            for stat in snapshot.statistics("lineno")[:5]:
                frame = stat.traceback[0]
                top.append([f"{os.path.basename(frame.filename)}:{frame.lineno}", stat.size])

        tracemalloc.start()
        tracemalloc.reset_peak()
        result = path(stream, held)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return {"traced_peak_bytes": peak, "top": top, "result": result}
    hwm_reset = _reset_rss_high_water()
    rss_before = _rss_bytes()
    cpu_before = time.process_time()
    wall_before = time.perf_counter()
    result = path(stream, None)
    wall = time.perf_counter() - wall_before
    cpu = time.process_time() - cpu_before
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "rss_peak_delta_bytes": max(0, _rss_high_water_bytes() - rss_before),
        "rss_hwm_reset": hwm_reset,
        "result": result,
    }


def run_child(args: argparse.Namespace, path: str, traced: bool) -> dict[str, Any]:
    argv = [
        sys.executable, os.path.abspath(__file__), "--child", path,
        "--samples", str(args.samples), "--rate", str(args.rate),
        "--windows", str(args.windows), "--seed", str(args.seed),
    ]  # fmt: skip
    if traced:
        argv.append("--traced")
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as proc:
        try:
            out, _ = proc.communicate(timeout=CHILD_TIMEOUT_S)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    if proc.returncode != 0:
        raise RuntimeError(f"{path} child failed with exit code {proc.returncode}")
    figures: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return figures


def mib(value: float) -> str:
    return f"{value / 2**20:,.1f} MiB"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.3f}" if b else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=1_000_000, help="requests in the stream")
    parser.add_argument("--rate", type=float, default=10.0, help="requests per second")
    parser.add_argument("--windows", type=int, default=5, help="downtime windows")
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument("--repeat", type=int, default=3, help="timed passes per path (best)")
    parser.add_argument("--child", choices=sorted(PATHS), help=argparse.SUPPRESS)
    parser.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    # A SIGTERM ends the run like Ctrl-C: the finally blocks stop what was started.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if args.child:
        print(json.dumps(child(args)))
        return

    print(
        f"metrics_bench: {args.samples:,} requests at {args.rate:g}/s "
        f"({args.samples / args.rate / 3600:.1f} h of traffic), {args.windows} downtime "
        f"windows, lognormal latencies (median {MEDIAN_LATENCY_S * 1000:g} ms, sigma {SIGMA})"
    )
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; best of {args.repeat} timed\n")
    timed: dict[str, list[dict[str, Any]]] = {name: [] for name in PATHS}
    for _ in range(args.repeat):
        for name in ("naive", "streaming", "generate"):  # alternate: noise hits all alike
            timed[name].append(run_child(args, name, traced=False))
    traced = {name: run_child(args, name, traced=True) for name in ("naive", "streaming")}

    generate_s = min(r["cpu_s"] for r in timed.pop("generate"))
    best = {name: min(runs, key=lambda r: r["wall_s"]) for name, runs in timed.items()}
    cpu = {name: min(r["cpu_s"] for r in runs) for name, runs in timed.items()}
    rss = {name: min(r["rss_peak_delta_bytes"] for r in runs) for name, runs in timed.items()}
    peak = {name: int(traced[name]["traced_peak_bytes"]) for name in traced}
    stream, naive = "streaming", "naive"

    rows = [
        ("wall time (best)", "s", best[naive]["wall_s"], best[stream]["wall_s"]),
        ("CPU time (best)", "s", cpu[naive], cpu[stream]),
        (
            "CPU ns per request",
            "ns",
            cpu[naive] / args.samples * 1e9,
            cpu[stream] / args.samples * 1e9,
        ),
        (
            "CPU ns per request, less generation",
            "ns",
            (cpu[naive] - generate_s) / args.samples * 1e9,
            (cpu[stream] - generate_s) / args.samples * 1e9,
        ),
        ("peak Python memory (tracemalloc)", "MiB", peak[naive], peak[stream]),
        ("peak RSS increase (VmHWM)", "MiB", rss[naive], rss[stream]),
    ]
    print(f"{'figure':<38}{'naive':>14}{'streaming':>14}{'streaming/naive':>18}")
    for label, unit, a, b in rows:
        if unit == "MiB":
            cells = (mib(a), mib(b))
        elif unit == "ns":
            cells = (f"{a:,.0f} ns", f"{b:,.0f} ns")
        else:
            cells = (f"{a:.2f} s", f"{b:.2f} s")
        print(f"{label:<38}{cells[0]:>14}{cells[1]:>14}{ratio(b, a):>18}")
    walls = {name: ", ".join(f"{r['wall_s']:.2f}" for r in runs) for name, runs in timed.items()}
    print(f"  (all wall times: naive {walls[naive]} s; streaming {walls[stream]} s)")
    print(f"  (making the {args.samples:,} Request objects alone: {generate_s:.2f} s CPU, best)")
    if not all(r["rss_hwm_reset"] for runs in timed.values() for r in runs):
        print("  (VmHWM could not be reset: RSS figures include interpreter start-up)")

    memory_ratio = peak[stream] / peak[naive]
    met = "MET" if memory_ratio <= TARGET_MEMORY_RATIO else "NOT MET"
    print(
        f"\ntarget: streaming peak memory <= {TARGET_MEMORY_RATIO:.0%} of naive's: {met} "
        f"(tracemalloc ratio {memory_ratio:.3f}; RSS ratio {ratio(rss[stream], rss[naive])})"
    )

    exact = naive_result = best[naive]["result"]
    streamed = best[stream]["result"]
    print(f"\n{'percentile':<12}{'exact (naive)':>16}{'streaming':>16}{'relative error':>18}")
    worst = 0.0
    for key, value in exact["percentiles"].items():
        got = streamed["percentiles"][key]
        error = abs(got - value) / value
        worst = max(worst, error)
        print(f"{key:<12}{value * 1000:>13.4f} ms{got * 1000:>13.4f} ms{error:>17.4%}")
    print(
        f"worst relative error {worst:.4%} (DDSketch bound {DEFAULT_RELATIVE_ACCURACY:.2%}): "
        f"{'within' if worst <= DEFAULT_RELATIVE_ACCURACY else 'OUTSIDE'} the bound"
    )
    same = all(
        naive_result[key] == streamed[key]
        for key in ("requests", "succeeded", "windows", "timeline_failed")
    )
    # The streaming timeline sums long runs into buckets (at most 3,600 points);
    # the naive one keeps every second: their totals must agree.
    print(
        f"counts, {len(streamed['windows'])} downtime windows and timeline failure totals "
        f"identical: {'yes' if same else 'NO'} (timeline points: naive "
        f"{naive_result['timeline_seconds']:,}, streaming {streamed['timeline_seconds']:,})"
    )
    for name in (stream, naive):
        print(f"\nlargest allocations held by the {name} path once the stream is consumed:")
        for where, size in traced[name]["top"]:
            print(f"  {mib(size):>12}  {where}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted")
