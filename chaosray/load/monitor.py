"""The availability monitor: inference requests at a fixed rate from the
chaos runner, each one recorded, summarised in bounded memory.

Open loop: request *i* is due at ``start + i / rate`` whatever happened to
the ones before, so a slow or hanging service does not slow the probe down
(a closed loop would send fewer requests exactly when the service is down and
under-measure the outage). Requests run on a thread pool sized for
``rate * timeout`` in flight. Results are put back in send order before they
reach :class:`chaosray.metrics.RequestStats`.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import requests

from chaosray.inference import InferenceTarget, send
from chaosray.metrics import LatencyStats, Request, RequestStats

__all__: list[str] = []  # engine; the activity is in chaosray.load.probes

logger = logging.getLogger("chaostoolkit")

MAX_RATE = 1000.0
MAX_IN_FLIGHT = 512

_running: set[AvailabilityMonitor] = set()
_running_lock = threading.Lock()


def running_monitors() -> list[AvailabilityMonitor]:
    """The monitors of this process that are sending requests now."""
    with _running_lock:
        return list(_running)


def stop_all_monitors() -> int:
    """Stop every monitor of this process (Ctrl-C, cleanup); returns how many."""
    with _running_lock:
        monitors = list(_running)
    for monitor in monitors:
        monitor.stop()
    return len(monitors)


class AvailabilityMonitor:
    def __init__(
        self,
        target: InferenceTarget,
        rate: float,
        duration: float,
        samples_path: Path | None = None,
    ) -> None:
        self.target = target
        self.rate = rate
        self.duration = duration
        self.samples_path = samples_path
        self.stats = RequestStats()
        self.send_lag = LatencyStats()
        self.errors: Counter[str] = Counter()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._done: dict[int, tuple[Request, float]] = {}
        self._next = 0
        self._local = threading.local()
        self._samples: IO[str] | None = None
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.stopped_early = False  # interrupted (Ctrl-C, cleanup)
        self.ended_by = "duration"  # or "stop_action", "interrupted"

    def stop(self) -> None:
        """Stop now: the experiment was interrupted."""
        self.ended_by = "interrupted"
        self._stop.set()

    def finish(self) -> None:
        """Stop now because the measured period is over (the experiment's
        stop action): a normal end, not an interruption."""
        if not self._stop.is_set():
            self.ended_by = "stop_action"
            self._stop.set()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            self._local.session = session
        return session

    def _one(self, seq: int, due: float) -> None:
        lag = max(0.0, time.time() - due)
        self.send_lag.add(lag)
        result = send(self._session(), self.target, sent=due)
        with self._lock:
            self._done[seq] = (result, lag)
            # Feed the stats in send order: drain the contiguous prefix.
            while self._next in self._done:
                request, request_lag = self._done.pop(self._next)
                self._next += 1
                self.stats.add(request)
                if request.error:
                    self.errors[request.error] += 1
                if self._samples is not None:
                    # ``sent`` is when it was due; ``lag`` how late it really left.
                    row = {**request.__dict__, "lag": round(request_lag, 6)}
                    self._samples.write(json.dumps(row) + "\n")

    def run(self) -> dict[str, Any]:
        """Send requests for ``duration`` seconds (or until stopped); return the summary."""
        in_flight = min(MAX_IN_FLIGHT, max(4, math.ceil(self.rate * self.target.timeout) + 4))
        if self.samples_path is not None:
            self._samples = open(self.samples_path, "w", encoding="utf-8")  # noqa: SIM115
        with _running_lock:
            _running.add(self)
        try:
            with ThreadPoolExecutor(in_flight, thread_name_prefix="chaosray-monitor") as pool:
                start = time.time()
                self.started_at = start
                seq = 0
                while True:
                    due = start + seq / self.rate
                    if due >= start + self.duration:
                        break
                    if self._stop.wait(max(0.0, due - time.time())):
                        self.stopped_early = self.ended_by == "interrupted"
                        break
                    pool.submit(self._one, seq, due)
                    seq += 1
            self.ended_at = time.time()
        finally:
            with _running_lock:
                _running.discard(self)
            if self._samples is not None:
                self._samples.close()
        return self.summary()

    def summary(self) -> dict[str, Any]:
        out = self.stats.summary()
        out.update(
            {
                "url": self.target.url,
                "rate_per_s": self.rate,
                "planned_duration_s": self.duration,
                "started_at": self.started_at,
                "ended_at": self.ended_at,
                "stopped_early": self.stopped_early,
                "ended_by": self.ended_by,
                "send_lag_s": {
                    "p50": self.send_lag.percentile(50),
                    "p99": self.send_lag.percentile(99),
                    "max": self.send_lag.maximum if self.send_lag.count else None,
                },
                "errors": dict(self.errors.most_common(10)),
                "timeline": self.stats.timeline(),
                "samples_path": str(self.samples_path) if self.samples_path else None,
            }
        )
        return out
