"""Per-second series from a monitor's samples, in bounded memory.

Samples are the JSON lines ``monitor_availability`` writes with
``samples_path``: ``{"sent": epoch s, "ok": bool, "latency": s, "status",
"error", "lag"}``. They are bucketed by the second they were sent in; when a
run spans more than ``2 * max_points`` buckets, neighbouring buckets are
merged (the step doubles), so memory stays bounded however long the run.
Latency quantiles per bucket are exact (linear interpolation, as
:func:`chaosray.metrics.exact_percentile`) while a bucket holds at most
``EXACT_PER_BUCKET`` successful requests, else from a DDSketch (relative error
at most 1 %).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ddsketch import DDSketch

from chaosray.journal import number
from chaosray.metrics import Request, RequestStats, exact_percentile

__all__: list[str] = []  # pure logic, no activities

SKETCH_ACCURACY = 0.01
EXACT_PER_BUCKET = 64
DEFAULT_MAX_POINTS = 1800


@dataclass
class _Bucket:
    ok: int = 0
    failed: int = 0
    slow: int = 0  # successful, slower than the series' slow_over_s
    latencies: int = 0
    latency_max: float = 0.0
    sketch: DDSketch = field(default_factory=lambda: DDSketch(SKETCH_ACCURACY))
    # Every latency while there are few (exact quantiles); None once past the limit.
    values: list[float] | None = field(default_factory=list)

    def add_latency(self, latency: float) -> None:
        self.sketch.add(latency)
        self.latencies += 1
        self.latency_max = max(self.latency_max, latency)
        if self.values is not None:
            self.values.append(latency)
            if len(self.values) > EXACT_PER_BUCKET:
                self.values = None

    def merge(self, other: _Bucket) -> None:
        self.ok += other.ok
        self.failed += other.failed
        self.slow += other.slow
        if other.latencies:
            self.sketch.merge(other.sketch)
            self.latency_max = max(self.latency_max, other.latency_max)
            self.latencies += other.latencies
            if self.values is not None and other.values is not None:
                self.values.extend(other.values)
                if len(self.values) > EXACT_PER_BUCKET:
                    self.values = None
            else:
                self.values = None

    def quantile_ms(self, pct: float) -> float | None:
        if not self.latencies:
            return None
        if self.values is not None:
            return exact_percentile(sorted(self.values), pct) * 1000.0
        value = self.sketch.get_quantile_value(pct / 100)
        if value is None:
            return None
        return min(max(float(value), 0.0), self.latency_max) * 1000.0


@dataclass
class SampleSeries:
    """Per-bucket request counts and latency quantiles, plus (when the samples
    come in send order, as the monitor writes them) the exact request stats."""

    max_points: int = DEFAULT_MAX_POINTS
    # A latency objective: successful requests slower than it are counted (``slow``).
    slow_over_s: float | None = None
    step: int = 1
    base: int | None = None
    buckets: dict[int, _Bucket] = field(default_factory=dict)
    stats: RequestStats | None = field(default_factory=RequestStats)
    samples: int = 0
    skipped: int = 0

    def add(self, sample: dict[str, Any]) -> None:
        sent = number(sample.get("sent"))
        if sent is None:
            self.skipped += 1
            return
        ok = bool(sample.get("ok"))
        latency = number(sample.get("latency"))
        self.samples += 1
        second = int(sent // 1)
        if self.base is None:
            self.base = second
        key = (second - self.base) // self.step
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = _Bucket()
        if ok:
            bucket.ok += 1
            if latency is not None and latency >= 0:
                bucket.add_latency(latency)
                if self.slow_over_s is not None and latency > self.slow_over_s:
                    bucket.slow += 1
        else:
            bucket.failed += 1
        if len(self.buckets) > 2 * self.max_points:
            self._coarsen()
        if self.stats is not None:
            try:
                self.stats.add(Request(sent=sent, ok=ok, latency=latency if ok else None))
            except ValueError:  # not in send order: no exact windows from these samples
                self.stats = None

    def _coarsen(self) -> None:
        self.step *= 2
        merged: dict[int, _Bucket] = {}
        for key, bucket in self.buckets.items():
            target = merged.get(key // 2)
            if target is None:
                merged[key // 2] = bucket
            else:
                target.merge(bucket)
        self.buckets = merged

    def availability(self) -> list[dict[str, Any]]:
        """``[{second, ok, failed, slow, step}]``, oldest first; ``second`` is
        the epoch second the bucket starts at; ``slow``: successful requests
        slower than ``slow_over_s`` (0 without one)."""
        if self.base is None:
            return []
        return [
            {
                "second": self.base + key * self.step,
                "ok": bucket.ok,
                "failed": bucket.failed,
                "slow": bucket.slow,
                "step": self.step,
            }
            for key, bucket in sorted(self.buckets.items())
        ]

    def latency(self) -> list[dict[str, Any]]:
        """``[{second, step, count, p50_ms, p95_ms, p99_ms, max_ms}]`` over the
        successful requests of each bucket; buckets without one are left out."""
        if self.base is None:
            return []
        points = []
        for key, bucket in sorted(self.buckets.items()):
            if not bucket.latencies:
                continue
            quantiles = {f"p{pct}_ms": bucket.quantile_ms(pct) for pct in (50, 95, 99)}
            points.append(
                {
                    "second": self.base + key * self.step,
                    "step": self.step,
                    "count": bucket.latencies,
                    **quantiles,
                    "max_ms": bucket.latency_max * 1000.0,
                }
            )
        return points


def series_from_samples(
    samples: Iterable[dict[str, Any]],
    max_points: int = DEFAULT_MAX_POINTS,
    slow_over_s: float | None = None,
) -> SampleSeries:
    """One pass over the samples (any length; memory bounded by ``max_points``);
    ``slow_over_s``: count successful requests slower than this."""
    series = SampleSeries(max_points=max_points, slow_over_s=slow_over_s)
    for sample in samples:
        if isinstance(sample, dict):
            series.add(sample)
        else:
            series.skipped += 1
    return series
