"""Tier 1: the pure metrics, on hand-made data."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from chaosray.metrics import (
    LatencyStats,
    Request,
    RequestStats,
    exact_percentile,
    recovery_seconds,
    summarize,
    to_epoch,
)


def _stream(pattern: str, start: float = 1000.0, step: float = 0.1) -> list[Request]:
    """'.' a success, 'x' a failure, one request every ``step`` seconds."""
    return [
        Request(sent=start + i * step, ok=c == ".", latency=0.01 if c == "." else None)
        for i, c in enumerate(pattern)
    ]


def test_success_rate_is_exact() -> None:
    summary = summarize(_stream("..x..xx..." * 7))
    assert summary["requests"] == 70
    assert summary["failed"] == 21
    assert summary["success_rate"] == 49 / 70


def test_empty_stream() -> None:
    summary = summarize([])
    assert summary["requests"] == 0
    assert summary["success_rate"] is None
    assert summary["latency_s"]["p99"] is None
    assert summary["downtime_windows"] == []
    assert summary["total_downtime_s"] == 0.0


def test_downtime_windows_start_at_first_failure_and_end_at_first_success() -> None:
    summary = summarize(_stream("...xxx....x.."))
    windows = summary["downtime_windows"]
    assert [(w["start"], w["end"], w["failed_requests"]) for w in windows] == [
        (pytest.approx(1000.3), pytest.approx(1000.6), 3),
        (pytest.approx(1001.0), pytest.approx(1001.1), 1),
    ]
    assert summary["total_downtime_s"] == pytest.approx(0.4)
    assert summary["longest_outage_s"] == pytest.approx(0.3)
    assert summary["recovered_at"] == pytest.approx(1001.1)
    assert summary["still_down"] is False


def test_a_stream_ending_in_failure_has_an_open_window() -> None:
    summary = summarize(_stream("..xxxx"))
    (window,) = summary["downtime_windows"]
    assert window["open"] is True
    assert window["start"] == pytest.approx(1000.2)
    assert window["end"] == pytest.approx(1000.5)
    assert summary["still_down"] is True
    assert summary["recovered_at"] is None


def test_out_of_order_requests_are_refused() -> None:
    stats = RequestStats()
    stats.add(Request(sent=2.0, ok=True))
    with pytest.raises(ValueError, match="send-time order"):
        stats.add(Request(sent=1.0, ok=True))


def test_measured_downtime_is_within_one_interval_of_the_truth() -> None:
    rng = random.Random(0)
    step = 0.1
    for _ in range(200):
        down_start = 10 + rng.random() * 5
        down_len = rng.choice([0.5, 2.0, 10.0]) + rng.random()
        requests = [
            Request(sent=t, ok=not (down_start <= t < down_start + down_len), latency=0.01)
            for t in (i * step for i in range(400))
        ]
        (window,) = summarize(requests)["downtime_windows"]
        assert abs(window["duration_s"] - down_len) <= step + 1e-9


def test_exact_percentiles_match_numpy() -> None:
    rng = random.Random(1)
    values = [rng.lognormvariate(-3, 1) for _ in range(5000)]
    stats = LatencyStats()
    for v in values:
        stats.add(v)
    assert stats.exact
    for pct in (50, 95, 99):
        assert stats.percentile(pct) == pytest.approx(float(np.percentile(values, pct)), rel=1e-12)


def test_streaming_percentiles_within_stated_bound() -> None:
    rng = random.Random(2)
    values = [rng.lognormvariate(-3, 1.2) for _ in range(200_000)]
    stats = LatencyStats(exact_limit=1000, relative_accuracy=0.005)
    for v in values:
        stats.add(v)
    assert not stats.exact
    summary = stats.summary()
    assert summary["relative_error_bound"] == 0.005
    for pct in (50, 95, 99):
        truth = float(np.percentile(values, pct))
        assert abs(stats.percentile(pct) - truth) / truth < 0.01  # type: ignore[operator]


def test_percentiles_only_count_successful_requests() -> None:
    requests = [Request(sent=float(i), ok=True, latency=1.0) for i in range(10)]
    requests.append(Request(sent=11.0, ok=False, latency=30.0))
    assert summarize(requests)["latency_s"]["max"] == 1.0


def test_exact_percentile_of_one_value() -> None:
    assert exact_percentile([3.0], 99) == 3.0
    with pytest.raises(ValueError):
        exact_percentile([], 50)


def test_timeline_counts_per_second() -> None:
    stats = RequestStats().add_all(_stream("....xxxx..", start=100.0, step=0.25))
    assert stats.timeline() == [
        {"second": 100, "ok": 4, "failed": 0},
        {"second": 101, "ok": 0, "failed": 4},
        {"second": 102, "ok": 2, "failed": 0},
    ]


def test_recovery_seconds_from_kubernetes_timestamps() -> None:
    assert recovery_seconds("2024-05-01T10:00:00Z", "2024-05-01T10:01:30Z") == 90.0
    deleted = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)
    assert recovery_seconds(deleted, "2024-05-01T10:00:07Z") == 7.0
    with pytest.raises(ValueError, match="precedes"):
        recovery_seconds("2024-05-01T10:01:00Z", "2024-05-01T10:00:00Z")
    with pytest.raises(ValueError, match="time zone"):
        to_epoch(datetime(2024, 5, 1))


def test_a_long_timeline_is_summed_into_buckets() -> None:
    # Two hours at one request a second, failing during the 100th minute.
    requests = [
        Request(sent=1000.0 + i, ok=not (6000 <= i < 6060), latency=0.01) for i in range(7200)
    ]
    stats = RequestStats().add_all(requests)
    points = stats.timeline(max_points=720)
    assert len(points) == 720 and all(p["step"] == 10 for p in points)
    assert sum(p["ok"] for p in points) == 7140 and sum(p["failed"] for p in points) == 60
    assert [p["second"] for p in points if p["failed"]] == [1000 + 6000 + 10 * k for k in range(6)]
    assert len(stats.timeline()) == 3600  # default bound, buckets of 2 s


# --- the two availability figures -------------------------------------------------------------


def _stats(ok: Any, count: int, interval: float = 0.1) -> RequestStats:
    return RequestStats().add_all(Request(sent=i * interval, ok=ok(i)) for i in range(count))


def test_a_full_outage_is_one_window_and_its_failure_equivalent_downtime() -> None:
    # 10/s; requests 20..49 fail (sent 2.0 s .. 4.9 s), the first success after at 5.0 s.
    summary = _stats(lambda i: not 20 <= i < 50, 70).summary()
    (window,) = summary["outage_windows"]
    assert (window["start"], window["end"]) == (pytest.approx(2.0), pytest.approx(5.0))
    assert window["failed_requests"] == 30 and window["open"] is False
    assert summary["failure_equivalent_downtime_s"] == pytest.approx(30 * 0.1)
    assert summary["outage_time_s"] == pytest.approx(3.0)


def test_a_partial_outage_is_no_outage_window_but_costs_its_failure_equivalent() -> None:
    # One of four targets dead for 30 s: every fourth request fails.
    summary = _stats(lambda i: i % 4 != 0 or i >= 300, 320).summary()
    assert len(summary["downtime_windows"]) == 75  # the runs of failures hide it
    assert summary["outage_windows"] == []
    assert summary["failure_equivalent_downtime_s"] == pytest.approx(75 * 0.1)


def test_a_mostly_failing_period_is_one_window_from_first_failure_to_recovery() -> None:
    # Three of four fail for 30 s (successes at 0.0, 0.4, ...), all succeed from 30.0 s.
    summary = _stats(lambda i: i % 4 == 0 or i >= 300, 320).summary()
    (window,) = summary["outage_windows"]
    assert window["start"] == pytest.approx(0.1)  # the first failed request
    assert window["end"] == pytest.approx(30.0)  # the first success after the last failure
    assert window["failed_requests"] == 225
    assert summary["failure_equivalent_downtime_s"] == pytest.approx(225 * 0.1)


def test_an_outage_still_on_at_the_end_is_open() -> None:
    summary = _stats(lambda i: i < 10, 30).summary()
    (window,) = summary["outage_windows"]
    assert window["open"] is True
    assert (window["start"], window["end"]) == (pytest.approx(1.0), pytest.approx(2.9))


def test_a_lone_failure_is_no_outage() -> None:
    assert _stats(lambda i: i != 0, 20).summary()["outage_windows"] == []
    assert _stats(lambda i: i != 10, 20).summary()["outage_windows"] == []


def test_the_outage_definition_is_configurable_and_checked() -> None:
    # 40 % failing is no outage above 50 %, one above 30 %.
    def ok(i: int) -> bool:
        return i % 5 not in (0, 1)

    requests = [Request(sent=i * 0.1, ok=ok(i)) for i in range(100)]
    assert RequestStats().add_all(requests).summary()["outage_windows"] == []
    lower = RequestStats(outage_threshold=0.3).add_all(requests).summary()
    assert len(lower["outage_windows"]) == 1
    assert lower["outage_definition"] == {"window_s": 1.0, "failed_share_above": 0.3}
    with pytest.raises(ValueError, match="out of range"):
        RequestStats(outage_threshold=1.0)


def test_outage_windows_of_a_flapping_service_never_overlap() -> None:
    # A service flapping in runs of random length (the lab's redis-delete
    # gave overlapping windows before windows were made to start after the
    # previous end).
    rng = random.Random(0)
    pattern: list[bool] = []
    while len(pattern) < 3000:
        pattern += [rng.random() < 0.5] * rng.randint(1, 3)
    summary = _stats(lambda i: pattern[i], len(pattern)).summary()
    windows = summary["outage_windows"]
    assert len(windows) > 10
    for before, after in itertools.pairwise(windows):
        assert before["end"] <= after["start"], (before, after)
    assert sum(w["failed_requests"] for w in windows) <= summary["failed"]


def test_windows_count_their_failed_requests_by_status() -> None:
    """Each window says what its failed requests got: the HTTP status, else
    what happened instead of an answer, else "unknown" (no status recorded)."""
    ok = [Request(sent=1000.0 + i * 0.1, ok=True, latency=0.01, status=200) for i in range(20)]
    failed = [
        Request(sent=1002.0 + i * 0.1, ok=False, status=502, error="HTTP 502") for i in range(12)
    ] + [
        Request(sent=1003.2 + i * 0.1, ok=False, error="timeout after 2s") for i in range(8)
    ]  # fmt: skip
    back = [Request(sent=1004.0 + i * 0.1, ok=True, latency=0.01, status=200) for i in range(20)]
    unanswered = [
        Request(sent=1006.0, ok=False, error="connection error: [Errno 111] refused"),
        Request(sent=1006.1, ok=False, error="dropped"),
        Request(sent=1006.2, ok=False),  # k6's per-request metric: no status, no error
        Request(sent=1006.3, ok=True, latency=0.01, status=200),
    ]
    summary = summarize([*ok, *failed, *back, *unanswered])
    first, second = summary["downtime_windows"]
    assert first["failed_requests"] == 20
    assert first["failures_by_status"] == {"502": 12, "timeout": 8}
    assert second["failures_by_status"] == {"connection error": 1, "dropped": 1, "unknown": 1}
    (outage,) = summary["outage_windows"]
    assert outage["failures_by_status"] == {"502": 12, "timeout": 8}
    assert sum(outage["failures_by_status"].values()) == outage["failed_requests"]


def test_an_open_window_counts_its_failures_by_status_too() -> None:
    requests = [Request(sent=1000.0 + i * 0.1, ok=True, latency=0.01) for i in range(20)] + [
        Request(sent=1002.0 + i * 0.1, ok=False, status=503, error="HTTP 503") for i in range(15)
    ]
    summary = summarize(requests)
    (downtime,) = summary["downtime_windows"]
    (outage,) = summary["outage_windows"]
    assert downtime["open"] and outage["open"]
    assert downtime["failures_by_status"] == outage["failures_by_status"] == {"503": 15}
