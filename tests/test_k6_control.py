"""The K6 control under the real `chaos run`, with the real k6 binary,
against the scheduled-failure server."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from chaosray.load.k6 import read_k6_output
from tests.chaos_cli import k6_control_experiment, run_experiment, validate_experiment
from tests.rig.http_server import ScheduledServer
from tests.rig.procs import free_port

RATE = 10
INTERVAL = 1 / RATE


def _experiment(control_args: dict[str, Any], pause: float) -> dict[str, Any]:
    return k6_control_experiment(control_args, pause)


def _k6_processes() -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmd = proc.info["cmdline"] or []
        if proc.info["name"] == "k6" or (cmd and Path(cmd[0]).name == "k6"):
            found.append(proc)
    return found


@pytest.fixture(autouse=True)
def _no_k6_left() -> Any:
    assert not _k6_processes(), "a k6 process was running before the test"
    yield
    assert not _k6_processes(), "the test left a k6 process behind"


def test_load_runs_for_the_experiment_and_lands_in_the_journal(
    scheduled_server: ScheduledServer, tmp_path: Path
) -> None:
    run = run_experiment(
        _experiment({"target_url": scheduled_server.url, "path": "/predict", "rate": RATE}, 4),
        tmp_path,
    )
    assert run.returncode == 0, run.log
    entry = run.run_entry("k6-load")
    assert entry["status"] == "succeeded"
    result = run.journal["chaosray"]["k6"]
    assert result == entry["output"]
    assert result["status"] == "passed"
    assert result["exit_code"] == 103 and "REST API" in result["exit_reason"]
    served = [r for r in scheduled_server.served() if r["path"] == "/predict"]
    # The preflight request plus every k6 request reached the server.
    assert result["requests"] == len(served) - 1
    assert result["requests"] >= 3.5 * RATE
    assert result["success_rate"] == 1.0
    assert result["latency_ms"]["p50"] is not None and result["latency_ms"]["p50"] > 0
    assert sum(s["ok"] for s in result["timeline"]) == result["requests"]
    assert result["downtime_windows"] == []


def test_k6_timeline_downtime_matches_the_ground_truth(
    scheduled_server: ScheduledServer, tmp_path: Path
) -> None:
    control = {"target_url": scheduled_server.url, "rate": RATE, "threshold_failure_rate": None}
    truth = scheduled_server.arm(
        [
            {"start": 6.0, "end": 6.5, "mode": "down"},
            {"start": 8.0, "end": 10.0, "mode": "reset"},
            {"start": 12.0, "end": 22.0, "mode": "error"},
        ]
    )
    run = run_experiment(_experiment(control, 24), tmp_path)
    result = run.journal["chaosray"]["k6"]
    assert result["status"] == "passed", result
    # The windows lie wholly inside the load run (chaos and k6 start in a few seconds).
    assert result["started_at"] < truth[0].start and result["ended_at"] > truth[-1].end
    windows = result["downtime_windows"]
    assert len(windows) == 3, windows
    for measured, true in zip(windows, truth, strict=True):
        assert abs(measured["duration_s"] - true.duration) <= 2 * INTERVAL, (measured, true)
    served = scheduled_server.served()
    assert result["failed"] == sum(1 for r in served if r["status"] != 200)


def test_failed_thresholds_are_a_failed_run_never_a_success(
    scheduled_server: ScheduledServer, tmp_path: Path
) -> None:
    # Down from the start; the pre-flight request is off (it would refuse to start).
    scheduled_server.arm([{"start": 0.0, "end": 60, "mode": "down"}])
    control = {"target_url": scheduled_server.url, "rate": RATE, "preflight": False}
    run = run_experiment(_experiment(control, 3), tmp_path)
    entry = run.run_entry("k6-load")
    assert entry["status"] == "failed"
    result = entry["output"]
    assert result["status"] == "thresholds_failed"
    assert result["thresholds"] == {"http_req_failed: rate<0.05": False}
    assert "thresholds_failed" in entry["exception"][0]


def test_unreachable_target_interrupts_with_a_clear_message(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    run = run_experiment(_experiment({"target_url": url}, 1), tmp_path)
    assert run.journal["status"] == "interrupted"
    assert f"k6 target {url}/ does not answer: connection error" in run.console
    assert "Traceback" not in run.console


def test_missing_k6_binary_is_a_clear_error(
    scheduled_server: ScheduledServer, tmp_path: Path
) -> None:
    args = {"target_url": scheduled_server.url, "k6_binary": "/nonexistent/k6"}
    run = run_experiment(_experiment(args, 1), tmp_path)
    assert run.journal["status"] == "interrupted"
    assert "k6 binary '/nonexistent/k6' does not exist" in run.console


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"rate": 0}, "rate must be"),
        ({"rate": "fast"}, "rate must be"),
        ({"duration": "forever"}, "duration must be a k6 duration"),
        ({"mode": "magic"}, "mode 'magic' is not one of"),
        ({"target_url": "ftp://x"}, "not an http"),
    ],
)
def test_bad_arguments_fail_chaos_validate(
    scheduled_server: ScheduledServer, tmp_path: Path, args: dict[str, Any], message: str
) -> None:
    control = {"target_url": scheduled_server.url, **args}
    done = validate_experiment(_experiment(control, 1), tmp_path)
    assert done.returncode != 0
    assert message in done.stdout + done.stderr


def test_ctrl_c_stops_the_load(scheduled_server: ScheduledServer, tmp_path: Path) -> None:
    experiment = _experiment({"target_url": scheduled_server.url, "rate": RATE}, 60)
    # A background availability monitor planned for 120 s: Chaos Toolkit waits
    # for background activities after Ctrl-C, so the control must stop it.
    experiment["method"].insert(
        0,
        {
            "type": "probe",
            "name": "availability-monitor",
            "background": True,
            "provider": {
                "type": "python",
                "module": "chaosray.load.probes",
                "func": "monitor_availability",
                "arguments": {"url": scheduled_server.url, "duration": 120, "rate": 5},
            },
        },
    )
    run = run_experiment(experiment, tmp_path, interrupt_after=6)
    assert run.journal["status"] == "interrupted"
    monitor = run.run_entry("availability-monitor")["output"]
    assert monitor["stopped_early"] is True
    assert monitor["requests"] < 5 * 20  # stopped at the interruption, not after 120 s
    # The control still collected the load's results into the journal.
    assert run.journal["chaosray"]["k6"]["requests"] > 0
    served_before = len(scheduled_server.served())
    time.sleep(1.5)
    assert len(scheduled_server.served()) == served_before  # no load after the stop


def test_read_k6_output_orders_points(tmp_path: Path) -> None:
    lines = []
    # Out of order by up to a second, as several VUs write.
    for i, (t, failed) in enumerate([(1.0, 0), (0.5, 0), (2.0, 1), (1.5, 1), (3.0, 0)]):
        stamp = f"2026-01-01T00:00:0{int(t)}.{int((t % 1) * 1e9):09d}Z"
        point = {
            "metric": "http_req_failed",
            "type": "Point",
            "data": {"time": stamp, "value": failed, "tags": {"i": str(i)}},
        }
        lines.append(json.dumps(point))
    path = tmp_path / "out.json"
    path.write_text("\n".join(lines) + "\n")
    stats = read_k6_output(path)
    (window,) = stats.summary()["downtime_windows"]
    assert window["failed_requests"] == 2
    assert window["duration_s"] == pytest.approx(1.5)  # 1.5 -> 3.0


@pytest.mark.parametrize("interrupt", [False, True])
def test_a_local_run_leaves_no_folder_behind(
    scheduled_server: ScheduledServer, tmp_path: Path, interrupt: bool
) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    run = run_experiment(
        _experiment({"target_url": scheduled_server.url, "rate": RATE}, 6 if interrupt else 2),
        work,
        env={"TMPDIR": str(temp)},
        interrupt_after=4 if interrupt else None,
    )
    assert run.journal["chaosray"]["k6"]["requests"] > 0, run.log
    assert list(temp.glob("chaosray-k6-*")) == []


def test_keep_output_keeps_the_folder(scheduled_server: ScheduledServer, tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    args = {"target_url": scheduled_server.url, "rate": RATE, "keep_output": True}
    run = run_experiment(_experiment(args, 2), tmp_path, env={"TMPDIR": str(temp)})
    (kept,) = temp.glob("chaosray-k6-*")
    assert (kept / "k6-output.json.gz").is_file(), run.log
