"""Measurements from request streams and events: pure functions, no I/O.

Definitions (they are what every report of this project means):

- **Request**: one inference request, with the time it was *sent* (epoch
  seconds), whether it *succeeded*, and its latency. A request fails when it
  gets no HTTP answer (connection refused or reset, timeout, DNS) or an answer
  the caller does not accept (by default any status outside 200-399). Who sends
  the requests decides; these functions only read ``ok``.
- **Success rate**: successes / requests, exact (two integer counters).
- **Latency percentiles**: over the latencies of *successful* requests (a
  refused connection has no meaningful latency). Exact (linear interpolation
  between closest ranks, as numpy's default) while at most ``exact_limit``
  latencies have been seen; beyond that a DDSketch whose answer is within
  ``relative_accuracy`` (0.5 % by default) of the exact value of a sample at
  that rank. ``LatencyStats.exact`` says which one answered.
- **Downtime window**: a maximal run of consecutive failed requests, ordered by
  send time. It *starts* at the send time of its first failed request and *ends*
  at the send time of the first successful request after it (the moment the
  service was seen to answer again). Its resolution is the request interval: a
  true outage [a, b) measured with requests every d seconds gives a window
  whose start is in [a, a+d) and whose end is in [b, b+d), so the measured
  duration is within d of the true one. A run still failing when the stream
  ends is *open*: it ends at its last failed request and says so.
- **Failure-equivalent downtime**: failed requests x the mean request
  interval ((last send - first send) / (requests - 1)): the time the service
  would have been fully down to fail as many requests. A partial outage (one
  of four targets dead for 30 s: a quarter of the requests fail) counts for
  what it cost (7.5 s), where runs of consecutive failures would give many
  tiny windows.
- **Outage window** (sliding error rate): the service is *out* at a request's
  send time t when more than ``outage_threshold`` (50 %) of the requests sent
  in (t - ``outage_window_s``, t] (1 s) failed. An outage window starts at the
  earliest failed request of the trailing window that crossed the threshold
  and ends, once the share is back to or below it, at the first success
  after that trailing window's last failure (for a full outage: the first
  failed and the first successful request, as a downtime window). A window still out when the
  stream ends is *open* and ends at its last failed request. The first
  judgement is made once the stream is one window long, and a trailing window
  needs two requests to be out: below two requests per ``outage_window_s``,
  choose a longer window.
- **Failures by status**: each downtime and outage window counts its failed
  requests by what they got: the HTTP status (``"502"``), else what happened
  instead of an answer (``"timeout"``, ``"connection error"``, ``"request
  error"``, ``"dropped"``), else ``"unknown"`` (a sender that records no
  status or error, such as k6's per-request metric). A window whose failures
  are all ``"unknown"`` carries no status codes: nothing can be said about them.
- **Recovery time**: seconds from a disruption (for example a pod's deletion
  time) to the moment the replacement is ready (for example its Ready
  condition's lastTransitionTime), both from Kubernetes' own timestamps.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ddsketch import DDSketch

__all__: list[str] = []  # pure logic, no activities

DEFAULT_RELATIVE_ACCURACY = 0.005
DEFAULT_EXACT_LIMIT = 10_000
# The summary fields of the two availability figures (see the definitions).
AVAILABILITY_FIGURES = (
    "failure_equivalent_downtime_s",
    "outage_windows",
    "outage_time_s",
    "longest_outage_window_s",
    "outage_definition",
)
DEFAULT_OUTAGE_WINDOW_S = 1.0
DEFAULT_OUTAGE_THRESHOLD = 0.5
PERCENTILES = (50.0, 95.0, 99.0)
# What a failed request without an HTTP status is counted as, by the start of its error.
NO_ANSWER_KINDS = ("timeout", "connection error", "request error", "dropped")
UNKNOWN_FAILURE = "unknown"


@dataclass(frozen=True)
class Request:
    """One request as seen by whoever sent it."""

    sent: float
    ok: bool
    latency: float | None = None
    status: int | None = None
    error: str | None = None


def failure_kind(request: Request) -> str:
    """What a failed request got (see "Failures by status"): ``"502"``,
    ``"timeout"``, ``"connection error"``, ... or ``"unknown"``."""
    if request.status is not None:
        return str(request.status)
    error = request.error or ""
    return next((kind for kind in NO_ANSWER_KINDS if error.startswith(kind)), UNKNOWN_FAILURE)


def exact_percentile(values: list[float], pct: float) -> float:
    """Percentile by linear interpolation between closest ranks (numpy's
    default); ``values`` must be sorted. The reference the tests compare with."""
    if not values:
        raise ValueError("no values")
    rank = (len(values) - 1) * pct / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    return values[low] + (values[high] - values[low]) * (rank - low)


class LatencyStats:
    """Latency percentiles over a stream of any length, in bounded memory.

    Exact up to ``exact_limit`` samples; after that a DDSketch with the stated
    relative accuracy. Memory is O(exact_limit) at most.
    """

    def __init__(
        self,
        exact_limit: int = DEFAULT_EXACT_LIMIT,
        relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY,
    ) -> None:
        self.exact_limit = exact_limit
        self.relative_accuracy = relative_accuracy
        self._values: list[float] | None = []
        self._sketch = DDSketch(relative_accuracy=relative_accuracy)
        self.count = 0
        self.minimum = math.inf
        self.maximum = -math.inf

    @property
    def exact(self) -> bool:
        return self._values is not None

    def add(self, latency: float) -> None:
        self.count += 1
        self.minimum = min(self.minimum, latency)
        self.maximum = max(self.maximum, latency)
        self._sketch.add(latency)
        if self._values is not None:
            self._values.append(latency)
            if len(self._values) > self.exact_limit:
                self._values = None  # the sketch answers from now on

    def percentile(self, pct: float) -> float | None:
        if self.count == 0:
            return None
        if self._values is not None:
            self._values.sort()
            return exact_percentile(self._values, pct)
        value = self._sketch.get_quantile_value(pct / 100.0)
        if value is None:
            return None
        # The sketch's bucket midpoint can stray past the observed extremes.
        return min(max(float(value), self.minimum), self.maximum)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {f"p{pct:g}": self.percentile(pct) for pct in PERCENTILES}
        out["min"] = self.minimum if self.count else None
        out["max"] = self.maximum if self.count else None
        out["count"] = self.count
        out["exact"] = self.exact
        out["relative_error_bound"] = 0.0 if self.exact else self.relative_accuracy
        return out


@dataclass
class DowntimeWindow:
    """A run of consecutive failed requests (see the module's definitions)."""

    start: float
    end: float
    failed_requests: int
    open: bool = False
    # Failed requests by status (see "Failures by status").
    failures_by_status: dict[str, int] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return self.end - self.start

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "duration_s": self.duration,
            "failed_requests": self.failed_requests,
            "open": self.open,
            "failures_by_status": dict(sorted(self.failures_by_status.items())),
        }


class SlidingOutages:
    """Outage windows on a sliding error rate (see the module's definitions),
    from requests added in send-time order; memory is one trailing window."""

    def __init__(self, window_s: float, threshold: float) -> None:
        if window_s <= 0 or not 0 <= threshold < 1:
            raise ValueError(f"outage window {window_s!r} s / threshold {threshold!r} out of range")
        self.window_s = window_s
        self.threshold = threshold
        # (sent, ok, failure kind) of the trailing window.
        self._recent: deque[tuple[float, bool, str | None]] = deque()
        self._failed_recent = 0
        self._closed: list[DowntimeWindow] = []
        self._start: float | None = None
        self._failed_in_window = 0
        self._by_status: Counter[str] = Counter()
        self._last_failed = 0.0
        self._first: float | None = None
        self._last_end = float("-inf")

    def add(self, sent: float, ok: bool, failure: str | None = None) -> None:
        """One request; ``failure``: what a failed one got (see "Failures by
        status"; None: ``"unknown"``)."""
        if self._first is None:
            self._first = sent
        kind = None if ok else (failure or UNKNOWN_FAILURE)
        self._recent.append((sent, ok, kind))
        self._failed_recent += not ok
        while self._recent[0][0] <= sent - self.window_s:
            self._failed_recent -= not self._recent.popleft()[1]
        if not ok:
            self._last_failed = sent
        # A rate needs a whole window: the first judgement waits until the
        # stream is one window long (the start of an outage is still found:
        # it is the earliest failure in the window).
        full = self._first <= sent - self.window_s
        out = (
            full
            and len(self._recent) >= 2
            and self._failed_recent > self.threshold * len(self._recent)
        )
        if self._start is None:
            if out:
                # Windows never overlap: a new one starts after the last one ended.
                self._start = next(
                    t for t, good, _kind in self._recent if not good and t >= self._last_end
                )
                self._by_status = Counter(
                    str(k) for t, good, k in self._recent if not good and t >= self._start
                )
                self._failed_in_window = sum(self._by_status.values())
            return
        if out:
            self._failed_in_window += not ok
            if kind is not None:
                self._by_status[kind] += 1
            return
        # Recovered at the first success after the trailing window's last failure.
        end = sent
        for t, good, _kind in reversed(self._recent):
            if not good:
                break
            end = t
        self._closed.append(
            DowntimeWindow(self._start, end, self._failed_in_window, False, dict(self._by_status))
        )
        self._last_end = end
        self._start = None

    def windows(self) -> list[DowntimeWindow]:
        windows = list(self._closed)
        if self._start is not None:
            windows.append(
                DowntimeWindow(
                    self._start,
                    self._last_failed,
                    self._failed_in_window,
                    True,
                    dict(self._by_status),
                )
            )
        return windows


@dataclass
class RequestStats:
    """Everything the reports say about a request stream, built in one pass
    and in bounded memory (no request is kept).

    Requests must be added in send-time order (a monitor does so naturally; a
    merge of several senders must be sorted first).
    """

    exact_limit: int = DEFAULT_EXACT_LIMIT
    relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY
    outage_window_s: float = DEFAULT_OUTAGE_WINDOW_S
    outage_threshold: float = DEFAULT_OUTAGE_THRESHOLD
    total: int = 0
    succeeded: int = 0
    first_sent: float | None = None
    last_sent: float | None = None
    windows: list[DowntimeWindow] = field(default_factory=list)
    # Per-second counters as two compact arrays indexed by second since the
    # first request: 8 bytes a second, whatever the request rate.
    _base_second: int | None = None
    _ok_per_second: array[int] = field(default_factory=lambda: array("I"))
    _failed_per_second: array[int] = field(default_factory=lambda: array("I"))
    _latency: LatencyStats | None = None
    _open_start: float | None = None
    _open_last: float = 0.0
    _open_count: int = 0
    _open_by_status: Counter[str] = field(default_factory=Counter)
    _outages: SlidingOutages | None = None

    def __post_init__(self) -> None:
        self._latency = LatencyStats(self.exact_limit, self.relative_accuracy)
        self._outages = SlidingOutages(self.outage_window_s, self.outage_threshold)

    @property
    def latency(self) -> LatencyStats:
        assert self._latency is not None
        return self._latency

    def add(self, request: Request) -> None:
        if self.last_sent is not None and request.sent < self.last_sent:
            raise ValueError(
                f"requests must be added in send-time order ({request.sent} < {self.last_sent})"
            )
        self.total += 1
        if self.first_sent is None:
            self.first_sent = request.sent
        self.last_sent = request.sent
        assert self._outages is not None
        failure = None if request.ok else failure_kind(request)
        self._outages.add(request.sent, request.ok, failure)
        if self._base_second is None:
            self._base_second = int(request.sent)
        index = int(request.sent) - self._base_second
        if index >= len(self._ok_per_second):
            grow = index + 1 - len(self._ok_per_second)
            self._ok_per_second.extend(array("I", [0]) * grow)
            self._failed_per_second.extend(array("I", [0]) * grow)
        if request.ok:
            self.succeeded += 1
            self._ok_per_second[index] += 1
            if request.latency is not None:
                self.latency.add(request.latency)
            if self._open_start is not None:
                self.windows.append(
                    DowntimeWindow(
                        self._open_start,
                        request.sent,
                        self._open_count,
                        False,
                        dict(self._open_by_status),
                    )
                )
                self._open_start = None
        else:
            self._failed_per_second[index] += 1
            if self._open_start is None:
                self._open_start = request.sent
                self._open_count = 0
                self._open_by_status = Counter()
            self._open_count += 1
            self._open_by_status[str(failure)] += 1
            self._open_last = request.sent

    def add_all(self, requests: Iterable[Request]) -> RequestStats:
        for request in requests:
            self.add(request)
        return self

    @property
    def failed(self) -> int:
        return self.total - self.succeeded

    @property
    def success_rate(self) -> float | None:
        return self.succeeded / self.total if self.total else None

    def downtime_windows(self) -> list[DowntimeWindow]:
        """Closed windows, plus the open one if the stream ends while failing."""
        windows = list(self.windows)
        if self._open_start is not None:
            windows.append(
                DowntimeWindow(
                    self._open_start,
                    self._open_last,
                    self._open_count,
                    True,
                    dict(self._open_by_status),
                )
            )
        return windows

    @property
    def mean_interval_s(self) -> float | None:
        if self.total < 2 or self.first_sent is None or self.last_sent is None:
            return None
        return (self.last_sent - self.first_sent) / (self.total - 1)

    @property
    def failure_equivalent_downtime_s(self) -> float | None:
        interval = self.mean_interval_s
        return None if interval is None else self.failed * interval

    def outage_windows(self) -> list[DowntimeWindow]:
        assert self._outages is not None
        return self._outages.windows()

    def summary(self) -> dict[str, Any]:
        windows = self.downtime_windows()
        durations = [w.duration for w in windows]
        outages = self.outage_windows()
        outage_durations = [w.duration for w in outages]
        return {
            "requests": self.total,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "success_rate": self.success_rate,
            "latency_s": self.latency.summary(),
            "first_sent": self.first_sent,
            "last_sent": self.last_sent,
            "downtime_windows": [w.as_dict() for w in windows],
            "total_downtime_s": sum(durations),
            "longest_outage_s": max(durations, default=0.0),
            "recovered_at": windows[-1].end if windows and not windows[-1].open else None,
            "still_down": bool(windows and windows[-1].open),
            "failure_equivalent_downtime_s": self.failure_equivalent_downtime_s,
            "mean_interval_s": self.mean_interval_s,
            "outage_windows": [w.as_dict() for w in outages],
            "outage_time_s": sum(outage_durations),
            "longest_outage_window_s": max(outage_durations, default=0.0),
            "outage_definition": {
                "window_s": self.outage_window_s,
                "failed_share_above": self.outage_threshold,
            },
        }

    def timeline(self, max_points: int = 3600) -> list[dict[str, int]]:
        """Successes and failures per second, oldest first; a run longer than
        ``max_points`` seconds is summed into buckets of ``step`` seconds so
        the output stays small. Seconds without a request are left out."""
        if self._base_second is None:
            return []
        seconds = len(self._ok_per_second)
        step = max(1, -(-seconds // max_points))
        points = []
        for start in range(0, seconds, step):
            ok = sum(self._ok_per_second[start : start + step])
            failed = sum(self._failed_per_second[start : start + step])
            if ok or failed:
                point = {"second": self._base_second + start, "ok": ok, "failed": failed}
                if step > 1:
                    point["step"] = step
                points.append(point)
        return points


def summarize(requests: Iterable[Request], **options: Any) -> dict[str, Any]:
    """Summary of a request stream (see :class:`RequestStats`)."""
    return RequestStats(**options).add_all(requests).summary()


def to_epoch(value: float | str | datetime) -> float:
    """Epoch seconds from a number, an aware datetime, or an RFC 3339 string
    as Kubernetes writes them (``2024-05-01T10:00:00Z``)."""
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"timestamp without a time zone: {value!r}")
    return value.timestamp()


def recovery_seconds(
    disrupted_at: float | str | datetime, recovered_at: float | str | datetime
) -> float:
    """Seconds from a disruption to recovery; recovery before the disruption is an error."""
    start, end = to_epoch(disrupted_at), to_epoch(recovered_at)
    if end < start:
        raise ValueError(f"recovery at {recovered_at} precedes the disruption at {disrupted_at}")
    return end - start
