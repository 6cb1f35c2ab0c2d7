"""The K6 control under the real `chaos run`, with the real k6 binary,
against the scheduled-failure server."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from chaosray.load.k6 import (
    SUMMARY_BEGIN,
    SUMMARY_END,
    k6_result,
    read_k6_output,
    summary_from_log,
)
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


def test_a_blackhole_outage_is_timed_by_send_time_and_no_iteration_is_dropped(
    scheduled_server: ScheduledServer, tmp_path: Path
) -> None:
    # Requests arriving in the window get no answer before k6's 5 s timeout:
    # 10/s x 5 s = 50 requests in flight, more than the old ceiling of 4 x rate.
    control = {"target_url": scheduled_server.url, "rate": RATE, "timeout": "5s",
               "threshold_failure_rate": None}  # fmt: skip
    (truth,) = scheduled_server.arm([{"start": 5.0, "end": 11.0, "mode": "slow", "delay": 12}])
    run = run_experiment(_experiment(control, 18), tmp_path)
    result = run.journal["chaosray"]["k6"]
    assert result["status"] == "passed", result
    assert result["dropped_iterations"] == 0
    assert result["max_vus"] >= RATE * 5
    assert result["requests"] == result["requests_sent"]
    # Open loop: every request sent in the window failed (timed out), none dropped.
    assert abs(result["failed"] - RATE * truth.duration) <= 2, result["failed"]
    answered = [r for r in scheduled_server.served() if r["mode"] != "slow"]
    # Every answered request but the preflight was counted, less at most one
    # in flight when the control stopped k6 (the server answered it, k6 had
    # already abandoned it: CI saw 122 counted of 123 answered).
    missed = (len(answered) - 1) - (result["requests"] - result["failed"])
    assert 0 <= missed <= 1, (missed, result)
    # Keyed by send time the window starts when the first unanswered request
    # left, not 5 s later when k6 gave up on it.
    assert result["timeline_keyed_by"] == "send time"
    (outage,) = result["outage_windows"]
    assert abs(outage["start"] - truth.start) <= 3 * INTERVAL, (outage, truth)
    assert abs(outage["end"] - truth.end) <= 3 * INTERVAL, (outage, truth)
    assert result["failure_equivalent_downtime_s"] == pytest.approx(
        truth.duration, abs=3 * INTERVAL
    )


def test_iterations_k6_drops_count_as_failed_requests(
    scheduled_server: ScheduledServer, tmp_path: Path
) -> None:
    control = {"target_url": scheduled_server.url, "rate": RATE, "timeout": "2s",
               "max_vus": 4, "threshold_failure_rate": None}  # fmt: skip
    (truth,) = scheduled_server.arm([{"start": 4.0, "end": 8.0, "mode": "slow", "delay": 10}])
    run = run_experiment(_experiment(control, 12), tmp_path)
    result = run.journal["chaosray"]["k6"]
    assert result["max_vus"] == 4
    answered = [r for r in scheduled_server.served() if r["mode"] != "slow"]
    # 4 VUs each held 2 s by a request: most of the window's iterations are dropped.
    assert result["dropped_iterations"] >= RATE * truth.duration / 2
    assert result["requests"] == result["requests_sent"] + result["dropped_iterations"]
    # Open loop: sent + dropped is the rate times the run, as if nothing was dropped.
    run_s = result["ended_at"] - result["started_at"]
    assert abs(result["requests"] - RATE * run_s) <= RATE, (result["requests"], run_s)
    # Every answered request but the preflight was counted, less at most one
    # in flight when the control stopped k6 (the server answered it, k6 had
    # already abandoned it: CI saw 122 counted of 123 answered).
    missed = (len(answered) - 1) - (result["requests"] - result["failed"])
    assert 0 <= missed <= 1, (missed, result)
    assert result["success_rate"] == pytest.approx(1 - result["failed"] / result["requests"])
    # The dropped iterations sit in the timeline too: the window is one outage.
    (outage,) = result["outage_windows"]
    assert abs(outage["start"] - truth.start) <= 3 * INTERVAL, (outage, truth)
    assert sum(p["failed"] for p in result["timeline"]) == result["failed"]


def test_the_failure_threshold_counts_dropped_iterations() -> None:
    # 92 sent, 2 failed (2.2 %, under k6's own 5 % threshold) and 8 dropped:
    # 10 of 100 failed.
    summary = {"requests": 92, "failed": 2, "failed_rate": 2 / 92, "dropped_iterations": 8,
               "thresholds": {"http_req_failed: rate<0.05": True},
               "threshold_failure_rate": 0.05}  # fmt: skip
    result = k6_result("local", 103, summary, None, 0.0, 1.0, "")
    assert result["requests"] == 100 and result["failed"] == 10
    assert result["success_rate"] == pytest.approx(0.9)
    assert result["status"] == "thresholds_failed"
    assert result["thresholds_ok"] is False
    summary["dropped_iterations"] = 0
    assert k6_result("local", 103, summary, None, 0.0, 1.0, "")["status"] == "passed"


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


def test_the_summary_is_found_when_k6s_own_messages_land_between_the_markers() -> None:
    # A pod's log interleaves stdout and stderr: on the lab k6's
    # "test run stopped from REST API" came between the summary and its end marker.
    summary = {"schema": "chaosray.k6.summary/v1", "requests": 41, "failed": 0}
    stopped = 'time="2026-12-02T09:24:57Z" level=error msg="test run stopped from REST API"'
    interleaved = "\n".join(
        ["running (0m08.2s)", SUMMARY_BEGIN, json.dumps(summary), stopped, SUMMARY_END, ""]
    )
    assert summary_from_log(interleaved) == summary
    before = "\n".join([SUMMARY_BEGIN, stopped, json.dumps(summary), SUMMARY_END])
    assert summary_from_log(before) == summary
    assert summary_from_log("\n".join([SUMMARY_BEGIN, stopped, SUMMARY_END])) is None
    assert summary_from_log("\n".join([SUMMARY_BEGIN, json.dumps(summary)])) is None
