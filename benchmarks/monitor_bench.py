"""The availability monitor (``monitor_availability``) against a plain
closed-loop ``requests`` loop, both sending to the local scheduled server.

- **monitor**: ``monitor_availability`` at ``--rate`` requests/s for
  ``--duration`` s (open loop, thread pool, streaming stats, samples file).
- **paced loop** (baseline): one ``requests.Session``, request *i* sent at
  ``start + i / rate`` with ``time.sleep`` (closed loop: it waits for each
  answer), same rate and duration.
- **flood loop** (capacity reference): the same session as fast as it can, for
  ``--flood-duration`` s.

Figures: requests, achieved rate (server arrivals), send lag (actual send time
minus the scheduled one), jitter of the inter-arrival intervals the server saw
(standard deviation, p99 of the deviation from ``1/rate``), CPU of this process
(user+sys from ``os.times``, all threads) and of the server process, peak
threads of this process. The server's request log (arrival times) is the
ground truth for what was really sent when.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo's tests.rig

from chaosray.load.probes import monitor_availability
from chaosray.metrics import exact_percentile
from tests.rig.http_server import ScheduledServer, start_scheduled_server

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Phase:
    """What one way of sending did."""

    name: str
    wall_s: float = 0.0
    cpu_s: float = 0.0
    server_cpu_s: float = 0.0
    requests: int = 0
    succeeded: int = 0
    lag_p50: float | None = None
    lag_p99: float | None = None
    lag_max: float | None = None
    arrivals: list[float] = field(default_factory=list)
    peak_threads: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def cpu_percent(self) -> float:
        return 100.0 * self.cpu_s / self.wall_s if self.wall_s else math.nan

    @property
    def cpu_ms_per_request(self) -> float:
        return 1000.0 * self.cpu_s / self.requests if self.requests else math.nan

    @property
    def achieved_rate(self) -> float:
        """Requests per second over the span of the server's arrivals."""
        if len(self.arrivals) < 2:
            return math.nan
        return (len(self.arrivals) - 1) / (self.arrivals[-1] - self.arrivals[0])

    def intervals(self) -> list[float]:
        return [b - a for a, b in itertools.pairwise(self.arrivals)]


class ThreadSampler:
    """Peak thread count of this process, sampled every ``interval`` seconds."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, me.num_threads())

    def __enter__(self) -> ThreadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def measure(name: str, server: ScheduledServer, path: str, send: Callable[[Phase], None]) -> Phase:
    """Run ``send`` and record the CPU, wall time and server arrivals of it."""
    server.arm([])  # clears the server's request log
    phase = Phase(name)
    server_proc = psutil.Process(server.process.pid)
    server_before = server_proc.cpu_times()
    with ThreadSampler() as threads:
        before, wall = os.times(), time.perf_counter()
        send(phase)
        after, phase.wall_s = os.times(), time.perf_counter() - wall
    phase.peak_threads = threads.peak
    server_after = server_proc.cpu_times()
    phase.cpu_s = (after.user - before.user) + (after.system - before.system)
    phase.server_cpu_s = (server_after.user - server_before.user) + (
        server_after.system - server_before.system
    )
    phase.arrivals = sorted(r["t"] for r in server.served() if r["path"] == path)
    return phase


def monitor_phase(url: str, args: argparse.Namespace, samples: Path) -> Callable[[Phase], None]:
    def send(phase: Phase) -> None:
        summary = monitor_availability(
            url,
            duration=args.duration,
            rate=args.rate,
            timeout=args.timeout,
            require_reachable=False,  # no preflight request in the server's log
            samples_path=str(samples),
        )
        phase.requests, phase.succeeded = summary["requests"], summary["succeeded"]
        lag = summary["send_lag_s"]
        phase.lag_p50, phase.lag_p99, phase.lag_max = lag["p50"], lag["p99"], lag["max"]
        phase.extra["summary"] = summary

    return send


def loop_phase(
    url: str, rate: float | None, duration: float, timeout: float
) -> Callable[[Phase], None]:
    """The closed-loop baseline: paced at ``rate``, or as fast as it can (None)."""

    def send(phase: Phase) -> None:
        lags: list[float] = []
        with requests.Session() as session:
            start = time.time()
            seq = 0
            while True:
                due = start + seq / rate if rate else time.time()
                if due >= start + duration or time.time() >= start + duration:
                    break  # closed loop: what it did not send in time is not sent
                delay = due - time.time()
                if delay > 0:
                    time.sleep(delay)
                lags.append(max(0.0, time.time() - due))
                try:
                    answer = session.post(url, timeout=timeout)
                    phase.succeeded += 200 <= answer.status_code < 300
                except requests.RequestException:
                    pass
                seq += 1
        phase.requests = seq
        if rate and lags:
            lags.sort()
            phase.lag_p50 = exact_percentile(lags, 50)
            phase.lag_p99 = exact_percentile(lags, 99)
            phase.lag_max = lags[-1]

    return send


def samples_interval_std(path: Path) -> tuple[float, int]:
    """Standard deviation of the intervals between the ``sent`` times of the
    samples file (the monitor writes the *scheduled* send time there)."""
    sent: list[float] = []
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            sent.append(json.loads(line)["sent"])
    sent.sort()
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    return (statistics.pstdev(gaps) if len(gaps) > 1 else math.nan), len(sent)


def jitter(phase: Phase, rate: float) -> tuple[float, float, float]:
    """Std dev of the inter-arrival intervals, p99 and max of |interval - 1/rate| (s)."""
    gaps = phase.intervals()
    if len(gaps) < 2:
        return math.nan, math.nan, math.nan
    deviations = sorted(abs(g - 1.0 / rate) for g in gaps)
    return statistics.pstdev(gaps), exact_percentile(deviations, 99), deviations[-1]


def ms(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value * 1000:.2f} ms"


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or math.isnan(a) or math.isnan(b) or b == 0:
        return "n/a"
    return f"{a / b:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per paced run")
    parser.add_argument(
        "--flood-duration", type=float, default=10.0, help="seconds of flood loop (0: skip)"
    )
    parser.add_argument("--timeout", type=float, default=2.0, help="per-request timeout (s)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    # A SIGTERM ends the run like Ctrl-C: the finally blocks stop what was started.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    work = Path(tempfile.mkdtemp(prefix="chaosray-monitor-bench-"))
    server: ScheduledServer | None = None
    try:
        server = start_scheduled_server(work)
        path = "/predict"
        url = server.url + path
        samples = work / "samples.jsonl"
        print(
            f"monitor_bench: {args.rate:g} requests/s for {args.duration:g} s against the "
            f"scheduled server ({url}); "
            f"{os.cpu_count()} CPUs\n"
        )
        monitor = measure("monitor", server, path, monitor_phase(url, args, samples))
        paced = measure(
            "paced loop", server, path, loop_phase(url, args.rate, args.duration, args.timeout)
        )
        flood = (
            measure(
                "flood loop", server, path, loop_phase(url, None, args.flood_duration, args.timeout)
            )
            if args.flood_duration > 0
            else None
        )
        report(args, monitor, paced, flood, samples)
    finally:
        if server is not None:
            server.stop()
        if args.keep:
            print(f"\nwork directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def report(
    args: argparse.Namespace, monitor: Phase, paced: Phase, flood: Phase | None, samples: Path
) -> None:
    phases = [monitor, paced] + ([flood] if flood else [])
    jit = {p.name: jitter(p, args.rate) for p in phases}
    rows: list[tuple[str, Callable[[Phase], str], Callable[[Phase], float | None] | None]] = [
        ("requests sent", lambda p: f"{p.requests:,}", lambda p: float(p.requests)),
        ("requests served (server log)", lambda p: f"{len(p.arrivals):,}", None),
        ("succeeded", lambda p: f"{p.succeeded:,}", None),
        ("wall time", lambda p: f"{p.wall_s:.2f} s", lambda p: p.wall_s),
        (
            "achieved rate (arrivals)",
            lambda p: f"{p.achieved_rate:.2f}/s",
            lambda p: p.achieved_rate,
        ),
        ("send lag p50", lambda p: ms(p.lag_p50), lambda p: p.lag_p50),
        ("send lag p99", lambda p: ms(p.lag_p99), lambda p: p.lag_p99),
        ("send lag max", lambda p: ms(p.lag_max), lambda p: p.lag_max),
        ("interval std dev (arrivals)", lambda p: ms(jit[p.name][0]), lambda p: jit[p.name][0]),
        ("interval |dev| p99 (arrivals)", lambda p: ms(jit[p.name][1]), lambda p: jit[p.name][1]),
        ("interval |dev| max (arrivals)", lambda p: ms(jit[p.name][2]), lambda p: jit[p.name][2]),
        ("CPU, this process (user+sys)", lambda p: f"{p.cpu_s:.2f} s", lambda p: p.cpu_s),
        ("CPU, % of one core", lambda p: f"{p.cpu_percent:.1f} %", lambda p: p.cpu_percent),
        (
            "CPU per request",
            lambda p: f"{p.cpu_ms_per_request:.3f} ms",
            lambda p: p.cpu_ms_per_request,
        ),
        ("CPU, server process", lambda p: f"{p.server_cpu_s:.2f} s", lambda p: p.server_cpu_s),
        (
            "peak threads, this process",
            lambda p: str(p.peak_threads),
            lambda p: float(p.peak_threads),
        ),
    ]
    header = f"{'figure':<32}" + "".join(f"{p.name:>14}" for p in phases) + f"{'monitor/paced':>16}"
    print(header)
    print("-" * len(header))
    for label, show, value in rows:
        line = f"{label:<32}" + "".join(f"{show(p):>14}" for p in phases)
        if value is not None:
            line += f"{ratio(value(monitor), value(paced)):>16}"
        print(line)
    if flood is not None:
        print(
            f"(flood loop: one session as fast as it can for {args.flood_duration:g} s, the "
            f"closed loop's ceiling against this server: {flood.achieved_rate:.0f}/s, "
            f"{flood.achieved_rate / args.rate:.2f}x the target rate)"
        )
    summary = monitor.extra["summary"]
    std, count = samples_interval_std(samples)
    print(
        f"\nmonitor samples file: {count:,} lines; std dev of the intervals of their `sent` "
        f"times {ms(std)} (the monitor records the scheduled send time there, not the "
        f"actual one, so jitter shows only in send_lag and at the server)"
    )
    latency = summary["latency_s"]
    print(
        f"monitor: success rate {summary['success_rate']:.4%}, latency p50 {ms(latency['p50'])}, "
        f"p99 {ms(latency['p99'])}, downtime windows {len(summary['downtime_windows'])}"
    )


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted")
