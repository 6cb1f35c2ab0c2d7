"""chaosray.report: summaries, the suite document and its renderers.

Hand-made journals with known values check the logic; journals saved from real
`chaos run`s (tests/data/journals, see its README) and one fresh real run
against the scheduled-failure server check it on what our controls and
activities really write."""

from __future__ import annotations

import copy
import json
import math
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from chaosray.journal import INTERRUPTED_FLAG, epoch
from chaosray.report import (
    EXPERIMENT_SCHEMA,
    SUITE_SCHEMA,
    mark_interrupted_runs,
    render_console,
    render_html,
    render_json,
    render_junit,
    summarize_experiment,
    summarize_suite,
)
from chaosray.report.series import series_from_samples
from chaosray.report.svg import TimeAxis
from tests.chaos_cli import run_experiment
from tests.rig.http_server import ScheduledServer

JOURNALS = Path(__file__).parent / "data" / "journals"
T0 = 1_700_000_000.0  # the hand-made experiments start here (epoch seconds)


def _iso(offset: float) -> str:
    return epoch_iso(T0 + offset)


def epoch_iso(seconds: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC).isoformat()


def _entry(
    name: str,
    func: str | None = None,
    module: str = "chaosray.k8s.probes",
    output: Any = None,
    status: str | None = "succeeded",
    start: float = 1.0,
    duration: float = 1.0,
    exception: list[str] | None = None,
    kind: str = "probe",
) -> dict[str, Any]:
    provider: dict[str, Any] = (
        {"type": "python", "module": module, "func": func, "arguments": {}}
        if func
        else {"type": "process", "path": "true"}
    )
    entry: dict[str, Any] = {
        "activity": {"type": kind, "name": name, "provider": provider},
        "output": output,
        "start": _iso(start),
        "end": _iso(start + duration),
        "duration": duration,
    }
    if status is not None:
        entry["status"] = status
    if exception:
        entry["exception"] = exception
    return entry


def _journal(
    run: list[dict[str, Any]] | None = None,
    status: str = "completed",
    deviated: bool = False,
    before: list[dict[str, Any]] | None = None,
    after: list[dict[str, Any]] | None = None,
    chaosray: dict[str, Any] | None = None,
    duration: float = 60.0,
) -> dict[str, Any]:
    def state(probes: list[dict[str, Any]] | None) -> dict[str, Any] | None:
        if probes is None:
            return None
        met = all(p.get("tolerance_met", True) for p in probes)
        return {"steady_state_met": met, "probes": probes}

    journal: dict[str, Any] = {
        "chaoslib-version": "1.44.0",
        "experiment": {"title": "Hand-made experiment", "description": "d", "tags": ["t"]},
        "start": _iso(0),
        "end": _iso(duration),
        "duration": duration,
        "status": status,
        "deviated": deviated,
        "steady_states": {"before": state(before), "after": state(after), "during": []},
        "run": run or [],
        "rollbacks": [],
    }
    if chaosray is not None:
        journal["chaosray"] = chaosray
    return journal


def _monitor_output(**overrides: Any) -> dict[str, Any]:
    output = {
        "requests": 600,
        "succeeded": 570,
        "failed": 30,
        "success_rate": 0.95,
        "latency_s": {"p50": 0.002, "p95": 0.010, "p99": 0.250, "max": 0.5, "exact": True},
        "downtime_windows": [
            {"start": T0 + 20.0, "end": T0 + 22.0, "duration_s": 2.0, "failed_requests": 20},
            {"start": T0 + 40.0, "end": T0 + 41.0, "duration_s": 1.0, "failed_requests": 10},
        ],
        "total_downtime_s": 3.0,
        "longest_outage_s": 2.0,
        "failure_equivalent_downtime_s": 3.0,  # 30 failed x 0.1 s
        "outage_windows": [
            {"start": T0 + 20.0, "end": T0 + 22.5, "duration_s": 2.5, "failed_requests": 22},
        ],
        "outage_time_s": 2.5,
        "longest_outage_window_s": 2.5,
        "recovered_at": T0 + 41.0,
        "still_down": False,
        "timeline": [{"second": int(T0) + s, "ok": 10, "failed": 0} for s in range(60)],
        "errors": {"HTTP 503": 30},
        "url": "http://svc/predict",
        "samples_path": None,
    }
    output.update(overrides)
    return output


def _k6_result(**overrides: Any) -> dict[str, Any]:
    result = {
        "mode": "local",
        "status": "passed",
        "exit_code": 103,
        "exit_reason": "stopped through the REST API (by chaosray)",
        "thresholds": {"http_req_failed: rate<0.05": True},
        "thresholds_ok": True,
        "requests": 700,
        "failed": 14,
        "success_rate": 0.98,
        "latency_ms": {"p50": 1.5, "p95": 9.0, "p99": 120.0, "avg": 4.0, "max": 300.0},
        "timeline": [{"second": int(T0) + s, "ok": 9, "failed": 1} for s in range(5)],
        "downtime_windows": [
            {"start": T0 + 10.0, "end": T0 + 13.5, "duration_s": 3.5, "failed_requests": 35}
        ],
        "total_downtime_s": 3.5,
        "longest_outage_s": 3.5,
    }
    result.update(overrides)
    return result


# --- verdict -------------------------------------------------------------------------


def test_a_clean_completed_journal_passes() -> None:
    summary = summarize_experiment(_journal([_entry("wait")]))
    assert summary["schema"] == EXPERIMENT_SCHEMA
    criteria = summary["verdict"].pop("criteria")
    assert summary["verdict"] == {
        "passed": True,
        "skipped": False,
        "source": "journal",
        "reasons": [],
        "evidence": [],
        "inconclusive": False,
    }
    # Its one criterion, the activity, held.
    assert [(c["id"], c["state"], c["kind"]) for c in criteria] == [("wait", "held", "activity")]
    assert summary["title"] == summary["name"] == "Hand-made experiment"
    assert summary["duration_s"] == 60.0


def test_failed_steady_state_probes_are_named_with_their_values() -> None:
    before = [
        {**_entry("workers-ready", "count_ready_pods", output=3), "tolerance_met": True},
        {**_entry("redis-ready", "count_ready_pods", output=2), "tolerance_met": False},
    ]
    after = [{**_entry("workers-ready", "count_ready_pods", output=1), "tolerance_met": False}]
    summary = summarize_experiment(_journal(before=before, after=after, deviated=True))
    verdict = summary["verdict"]
    assert verdict["passed"] is False
    kinds = [(r["kind"], r["activity"], r["value"]) for r in verdict["reasons"]]
    assert kinds == [
        ("steady_state_before", "redis-ready", 2),
        ("steady_state_after", "workers-ready", 1),
    ]
    assert "not met before the method: redis-ready (got 2)" in verdict["reasons"][0]["message"]


def test_failed_and_interrupted_activities_give_their_errors() -> None:
    trace = [
        "Traceback (most recent call last):\n",
        "chaoslib.exceptions.ActivityFailed: chaoslib.exceptions.ActivityFailed: "
        "only 2 of 3 pods were Ready after 300s\n",
    ]
    run = [
        _entry("replacement-ready", "wait_for_ready_pods", status="failed", exception=trace),
        _entry("long-wait", status=None),  # cut off by Ctrl-C: chaoslib set no status
    ]
    summary = summarize_experiment(_journal(run, status="interrupted"))
    reasons = summary["verdict"]["reasons"]
    assert [r["kind"] for r in reasons] == ["interrupted", "activity", "activity_interrupted"]
    assert reasons[1]["message"] == (
        "replacement-ready failed: only 2 of 3 pods were Ready after 300s"
    )
    assert reasons[2]["activity"] == "long-wait"
    statuses = {a["name"]: a["status"] for a in summary["activities"]}
    assert statuses == {"replacement-ready": "failed", "long-wait": "interrupted"}


def test_failed_k6_thresholds_fail_the_experiment_by_name() -> None:
    k6 = _k6_result(
        status="thresholds_failed",
        thresholds={"http_req_failed: rate<0.05": False, "http_req_duration: p(95)<500": True},
    )
    k6_entry = _entry("k6-load", "k6_load", module="chaosray.load.control", status="failed")
    summary = summarize_experiment(_journal([k6_entry], chaosray={"k6": k6}))
    (reason,) = summary["verdict"]["reasons"]
    assert reason["kind"] == "k6_thresholds"
    assert reason["value"] == ["http_req_failed: rate<0.05"]
    assert summary["k6"]["thresholds"] == k6["thresholds"]
    assert summary["activities"][0]["phase"] == "control"


def test_the_verdict_control_decides_but_an_interruption_always_fails() -> None:
    failing = {"passed": False, "reasons": ["monitor: success rate 90% below 95%"]}
    summary = summarize_experiment(_journal(chaosray={"verdict": failing}, status="failed"))
    verdict = summary["verdict"]
    assert verdict["source"] == "recorded" and verdict["passed"] is False
    assert [r["message"] for r in verdict["reasons"]] == ["monitor: success rate 90% below 95%"]
    assert [r["kind"] for r in verdict["evidence"]] == ["status"]

    passing = {"passed": True, "reasons": []}
    assert summarize_experiment(_journal(chaosray={"verdict": passing}))["verdict"]["passed"]
    stale = summarize_experiment(_journal(chaosray={"verdict": passing}, status="interrupted"))
    assert stale["verdict"]["passed"] is False
    assert stale["verdict"]["reasons"][0]["kind"] == "interrupted"


def test_without_a_verdict_a_failed_or_aborted_status_fails() -> None:
    for status in ("failed", "aborted"):
        verdict = summarize_experiment(_journal(status=status))["verdict"]
        assert verdict["passed"] is False and verdict["reasons"], status


# --- figures -------------------------------------------------------------------------


def test_availability_comes_from_the_monitor_in_ms_with_offsets() -> None:
    monitor = _entry("monitor", "monitor_availability", "chaosray.load.probes", _monitor_output())
    summary = summarize_experiment(_journal([monitor], chaosray={"k6": _k6_result()}))
    availability = summary["availability"]
    assert availability["source"] == "monitor" and availability["activity"] == "monitor"
    assert availability["success_rate"] == 0.95
    assert availability["latency_ms"] == pytest.approx(
        {"p50": 2.0, "p95": 10.0, "p99": 250.0, "max": 500.0}
    )
    first, second = availability["downtime_windows"]
    assert (first["start_offset_s"], first["end_offset_s"], first["duration_s"]) == (20, 22, 2)
    assert second["failed_requests"] == 10 and second["open"] is False
    assert availability["total_downtime_s"] == 3.0 and availability["longest_outage_s"] == 2.0
    # The k6 figures stay in their own block; the series is the monitor's.
    assert summary["k6"]["requests"] == 700 and summary["k6"]["latency_ms"]["p99"] == 120.0
    assert summary["series"]["availability"]["source"] == "monitor"
    assert len(summary["series"]["availability"]["points"]) == 60


def test_availability_falls_back_to_k6() -> None:
    summary = summarize_experiment(_journal(chaosray={"k6": _k6_result()}))
    availability = summary["availability"]
    assert availability["source"] == "k6"
    assert availability["success_rate"] == 0.98
    assert availability["latency_ms"] == {"p50": 1.5, "p95": 9.0, "p99": 120.0, "max": 300.0}
    assert availability["downtime_windows"][0]["start_offset_s"] == 10.0
    assert summary["series"]["availability"]["source"] == "k6"
    assert "timeline" not in summary["k6"]


def _samples(pattern: list[tuple[float, bool, float]]) -> list[dict[str, Any]]:
    return [
        {"sent": T0 + t, "ok": ok, "latency": lat, "status": 200 if ok else 503, "error": None}
        for t, ok, lat in pattern
    ]


def test_samples_give_exact_windows_and_per_second_series() -> None:
    # 10/s for 5 s; second 2 fails entirely; latencies 1..10 ms each ok second.
    pattern = []
    for i in range(50):
        t = i / 10
        ok = not 2.0 <= t < 3.0
        pattern.append((t, ok, (i % 10 + 1) / 1000))
    summary = summarize_experiment(_journal(), _samples(pattern))
    availability = summary["availability"]
    assert availability["source"] == "samples"
    assert availability["requests"] == 50 and availability["failed"] == 10
    (window,) = availability["downtime_windows"]
    assert window["start_offset_s"] == pytest.approx(2.0)
    assert window["end_offset_s"] == pytest.approx(3.0)
    points = summary["series"]["availability"]["points"]
    assert [(p["offset_s"], p["ok"], p["failed"]) for p in points] == [
        (0, 10, 0), (1, 10, 0), (2, 0, 10), (3, 10, 0), (4, 10, 0)
    ]  # fmt: skip
    latency = summary["series"]["latency"]["points"]
    assert [p["offset_s"] for p in latency] == [0, 1, 3, 4]  # no successful request in second 2
    for point in latency:
        assert point["count"] == 10
        assert point["max_ms"] == pytest.approx(10.0)
        # 1..10 ms, exact with numpy's interpolation: P50 5.5 ms, P95 9.55 ms.
        assert point["p50_ms"] == pytest.approx(5.5)
        assert point["p95_ms"] == pytest.approx(9.55)


def test_sample_series_stay_bounded_and_keep_every_request() -> None:
    def many() -> Any:
        for second in range(20_000):
            yield {"sent": T0 + second, "ok": second % 7 != 0, "latency": 0.001}

    series = series_from_samples(many(), max_points=100)
    assert len(series.buckets) <= 200
    points = series.availability()
    assert sum(p["ok"] + p["failed"] for p in points) == 20_000
    assert sum(p["failed"] for p in points) == len(range(0, 20_000, 7))
    assert series.step >= 100 and all(p["step"] == series.step for p in points)
    # Past the exact limit a bucket answers from its sketch (within 1 %).
    (first, *_rest) = series.latency()
    assert first["p50_ms"] == pytest.approx(1.0, rel=0.01) and first["max_ms"] == 1.0


def test_recovery_figures_are_named_and_the_key_is_the_slowest_primary() -> None:
    run = [
        _entry("worker-back", "wait_for_ready_pods", output={
            "recovery_s": 12.0, "observed_recovery_s": 12.4, "since": _iso(5),
            "since_source": "delete of pod w-1", "recovered_at": _iso(17)}),
        _entry("head-back", "ray_head_recovery", "chaosray.ray.probes", output={
            "head_ready_s": 31.0, "workers_reconnect_s": 4.5,
            "head": {"since": _iso(40), "recovered_at": _iso(71), "recovery_s": 31.0}}),
        _entry("redis-back", "wait_for_redis_rejoin", "chaosray.redis.probes",
               output={"recovery_s": 8.0, "rejoin_s": 9.5, "since": _iso(80)}),
    ]  # fmt: skip
    summary = summarize_experiment(_journal(run))
    figures = {(f["activity"], f["metric"]): f["seconds"] for f in summary["recovery"]}
    assert figures == {
        ("worker-back", "recovery_s"): 12.0,
        ("worker-back", "observed_recovery_s"): 12.4,
        ("head-back", "head_ready_s"): 31.0,
        ("head-back", "workers_reconnect_s"): 4.5,
        ("redis-back", "recovery_s"): 8.0,
        ("redis-back", "rejoin_s"): 9.5,
    }
    head = next(f for f in summary["recovery"] if f["metric"] == "head_ready_s")
    assert head["since"] == _iso(40) and head["recovered_at"] == _iso(71)
    assert summary["key_recovery"] == {
        "activity": "head-back", "metric": "head_ready_s", "seconds": 31.0, "status": "succeeded"
    }  # fmt: skip

    run.append(_entry("never-back", "wait_for_ready_pods", status="failed",
                      exception=["ActivityFailed: only 2 of 3 pods were Ready\n"]))  # fmt: skip
    key = summarize_experiment(_journal(run))["key_recovery"]
    assert key["activity"] == "never-back" and key["seconds"] is None


def test_disruptions_from_deletes_sequences_and_drains_in_time_order() -> None:
    run = [
        _entry("drain", "drain_node", "chaosray.k8s.actions", start=30.0, output={
            "node": "node-b", "dry_run": False,
            "pods": [{"pod": "ns/w-2", "evicted_at": _iso(31.5), "refusals": 2,
                      "terminated_s": 0.8}]}),
        _entry("sequence", "delete_pods_sequentially", "chaosray.k8s.actions", start=5.0, output={
            "completed": True, "dry_run": False, "steps": [
                {"step": 1, "pod": "w-0", "node": "node-a", "deleted_at": _iso(6.0)},
                {"step": 2, "pod": "w-1", "skipped": "already gone"},
            ]}),
        _entry("head", "delete_ray_head", "chaosray.ray.actions", start=50.0, output={
            "pod": "head-0", "node": "node-c", "deleted_at": _iso(50.2), "dry_run": False}),
        _entry("refused", "delete_pod", "chaosray.k8s.actions", start=55.0, status="failed",
               exception=["ActivityFailed: refusing: only 1 Ready would remain\n"]),
    ]  # fmt: skip
    found = summarize_experiment(_journal(run))["disruptions"]
    table = [(d["kind"], d["pod"], d["node"], d["offset_s"], d["status"]) for d in found]
    assert table == [
        ("delete", "w-0", "node-a", pytest.approx(6.0), "done"),
        ("drain", None, "node-b", pytest.approx(30.0), "done"),
        ("evict", "ns/w-2", "node-b", pytest.approx(31.5), "done"),
        ("delete", "head-0", "node-c", pytest.approx(50.2), "done"),
        ("delete", None, None, pytest.approx(55.0), "failed"),
        ("delete", "w-1", None, None, "skipped"),
    ]
    evict = found[2]
    assert evict["details"] == {"refusals": 2, "terminated_s": 0.8}
    assert found[4]["details"]["error"] == "ActivityFailed: refusing: only 1 Ready would remain"


def test_pod_events_come_sorted_with_offsets() -> None:
    events = [
        {"t": T0 + 7.5, "api_time": None, "group": "workers", "pod": "w-9", "event": "created",
         "node": None},
        {"t": T0 + 0.5, "api_time": "x", "group": "workers", "pod": "w-0", "event": "present",
         "node": "node-a"},
    ]  # fmt: skip
    summary = summarize_experiment(_journal(chaosray={"timeline": {"events": events}}))
    assert [(e["pod"], e["offset_s"]) for e in summary["pod_events"]] == [
        ("w-0", 0.5),
        ("w-9", 7.5),
    ]


# --- mark_interrupted_runs -----------------------------------------------------------


def test_mark_interrupted_runs_completes_entries_once() -> None:
    cut = _entry("long-wait", status=None)
    del cut["end"], cut["duration"]
    journal = _journal([_entry("ok"), cut], status="interrupted")
    assert mark_interrupted_runs(journal) == 1
    assert cut["status"] == "failed" and cut[INTERRUPTED_FLAG] is True
    assert "cut off by a signal" in cut["exception"][0]
    assert cut["end"] == cut["start"] and cut["duration"] == 0.0
    assert journal["run"][0]["status"] == "succeeded" and INTERRUPTED_FLAG not in journal["run"][0]
    snapshot = copy.deepcopy(journal)
    assert mark_interrupted_runs(journal) == 0 and journal == snapshot
    # The summary still says it was interrupted, not that it failed on its own.
    activity = summarize_experiment(journal)["activities"][1]
    assert activity["status"] == "interrupted" and activity["error"] is None


# --- suite and renderers -------------------------------------------------------------


def _suite_of(*experiments: dict[str, Any]) -> dict[str, Any]:
    return summarize_suite(list(experiments), _iso(0), _iso(600), title="Suite <test> & co")


def _two_experiments() -> tuple[dict[str, Any], dict[str, Any]]:
    monitor = _entry("monitor", "monitor_availability", "chaosray.load.probes", _monitor_output())
    wait = _entry("back", "wait_for_ready_pods", output={"recovery_s": 12.0})
    passing = summarize_experiment(_journal([monitor, wait]), name="worker-delete")
    failing = summarize_experiment(
        _journal(
            [_entry("w", status="failed", exception=["boom <&> \x07bell\n"])], status="failed"
        ),
        name="head-delete",
    )
    return passing, failing


def test_suite_compares_and_counts() -> None:
    passing, failing = _two_experiments()
    suite = _suite_of(passing, failing)
    assert suite["schema"] == SUITE_SCHEMA and suite["duration_s"] == 600.0
    assert suite["totals"] == {
        "experiments": 2, "passed": 1, "failed": 1, "inconclusive": 0, "skipped": 0,
        "overall_passed": False,
    }  # fmt: skip
    row = suite["comparison"]["rows"][0]
    assert row == {
        "experiment": "worker-delete",
        "title": "Hand-made experiment",
        "verdict": "passed",
        "passed": True,
        "success_rate": 0.95,
        "p50_ms": 2.0,
        "p95_ms": 10.0,
        "p99_ms": 250.0,
        "total_downtime_s": 3.0,
        "longest_outage_s": 2.0,
        "failure_equivalent_downtime_s": 3.0,
        "outage_time_s": 2.5,
        "outage_windows": 1,
        "availability_source": "monitor",
        "key_recovery_s": 12.0,
        "key_recovery": "back: recovery_s",
        "key_recovery_status": "succeeded",
        # 3 s failure-equivalent of a 99.9 % / 30-day budget (2,592 s); 5 %
        # failed = 50 x the allowed 0.1 % (no disruption: the whole run).
        "budget_share": pytest.approx(3.0 / 2592.0),
        "budget_consumed_s": 3.0,
        "burn_rate": pytest.approx(50.0),
        "outage_causes": ["no event within the horizon before it"],
        "repeat": None,
    }
    assert [c["key"] for c in suite["comparison"]["columns"]][:2] == ["experiment", "verdict"]
    assert _suite_of(passing)["totals"]["overall_passed"] is True
    assert summarize_suite([], "a", "b")["totals"]["overall_passed"] is False
    with pytest.raises(ValueError, match=r"not a chaosray\.report\.experiment/v1"):
        summarize_suite([{"name": "x"}], "a", "b")


def test_render_json_round_trips_and_has_no_nan() -> None:
    passing, failing = _two_experiments()
    suite = _suite_of(passing, failing)
    suite["metadata"] = {"odd": float("nan")}
    text = render_json(suite)
    back = json.loads(text)
    assert back["metadata"] == {"odd": None}
    assert back["experiments"][0]["availability"]["success_rate"] == 0.95
    assert "NaN" not in text


def test_render_junit_is_valid_and_says_why() -> None:
    passing, failing = _two_experiments()
    interrupted = summarize_experiment(_journal(status="interrupted"), name="node-drain")
    root = ET.fromstring(render_junit(_suite_of(passing, failing, interrupted)))
    assert root.tag == "testsuites"
    suite, criteria = root.findall("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "1")
    # A test case per criterion, so a CI system names the one that broke.
    broken = [
        (c.get("classname"), c.get("name"), c.find("failure").get("type"))  # type: ignore[union-attr]
        for c in criteria.findall("testcase")
        if c.find("failure") is not None
    ]
    assert broken == [("chaosray.head-delete", "w", "broken")], broken
    assert criteria.get("failures") == "1"
    assert int(root.get("tests") or 0) == 3 + len(criteria.findall("testcase"))
    assert suite.get("timestamp") == epoch_iso(T0)[:19] and suite.get("time") == "600.000"
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(cases) == {"worker-delete", "head-delete", "node-drain"}
    assert cases["worker-delete"].find("failure") is None
    failure = cases["head-delete"].find("failure")
    assert failure is not None
    assert failure.get("message") == "w failed: boom <&> \ufffdbell"
    error = cases["node-drain"].find("error")
    assert error is not None and error.get("type") == "interrupted"
    out = cases["worker-delete"].findtext("system-out") or ""
    assert "success rate 95.000 %" in out and "recovery back recovery_s: 12.00 s" in out


def test_render_console_shows_the_table_and_the_reasons() -> None:
    passing, failing = _two_experiments()
    text = render_console(_suite_of(passing, failing))
    assert "\x1b[" not in text
    line = next(ln for ln in text.splitlines() if "worker-delete" in ln)
    for cell in ("passed", "95.000 %", "2.00 ms", "250.0 ms", "3.00 s", "2.50 s", "12.00 s"):
        assert cell in line
    assert "FAILED" in next(ln for ln in text.splitlines() if "head-delete" in ln)
    assert "w failed: boom" in text
    assert "\x1b[" in render_console(_suite_of(passing, failing), color=True)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _svgs(page: str) -> list[ET.Element]:
    return [ET.fromstring(m) for m in re.findall(r"<svg .*?</svg>", page, flags=re.S)]


def test_render_html_is_self_contained_escaped_and_charts_the_run() -> None:
    monitor = _entry(
        "monitor", "monitor_availability", "chaosray.load.probes",
        _monitor_output(samples_path="/x.jsonl"),
    )  # fmt: skip
    delete = _entry("kill <b>", "delete_pod", "chaosray.k8s.actions",
                    output={"pod": "w-0", "node": "n", "deleted_at": _iso(19.5)})  # fmt: skip
    events = [
        {"t": T0 + 1, "group": "workers", "pod": "w-0", "event": "present", "node": "n"},
        {"t": T0 + 19.6, "group": "workers", "pod": "w-0", "event": "deletion_requested"},
        {"t": T0 + 20, "group": "workers", "pod": "w-0", "event": "gone"},
        {"t": T0 + 20, "group": "workers", "pod": "w-1", "event": "created"},
        {"t": T0 + 25, "group": "workers", "pod": "w-1", "event": "ready"},
    ]
    samples = _samples([(t / 10, not 200 <= t < 220, 0.002) for t in range(600)])
    journal = _journal([monitor, delete], chaosray={"timeline": {"events": events}})
    journal["experiment"]["title"] = "<script>alert(1)</script>"
    experiment = summarize_experiment(journal, samples)
    page = render_html(_suite_of(experiment))

    parser = _Tags()
    parser.feed(page)
    tags = {t for t, _a in parser.tags}
    assert not tags & {"script", "link", "img", "iframe"}
    assert not any("src" in attrs or (attrs.get("href") or "#").startswith("http")
                   for _t, attrs in parser.tags)  # fmt: skip
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)" in page
    assert "Suite &lt;test&gt; &amp; co" in page and "kill &lt;b&gt;" in page

    availability, latency, pods = _svgs(page)
    ns = "{http://www.w3.org/2000/svg}"
    # The disruption line sits where the deletion happened on the shared time axis.
    axis = TimeAxis(0.0, 60.0)
    line = next(el for el in availability.iter(f"{ns}line") if el.get("class") == "disruption")
    assert float(line.get("x1") or 0) == pytest.approx(axis.x(19.5), abs=0.1)
    shades = [el for el in availability.iter(f"{ns}rect") if el.get("class") == "downtime"]
    assert len(shades) == 1  # the monitor's one outage window (> 50 % failed over 1 s)
    red = [
        el.findtext(f"{ns}title")
        for el in availability.iter(f"{ns}rect")
        if el.get("fill") == "#e53935" and el.find(f"{ns}title") is not None
    ]
    assert red == ["20s: 10 failed", "21s: 10 failed"]  # the samples failed in 20..22 s
    assert latency.find(f"{ns}title") is not None
    pod_rects = [el for el in pods.iter(f"{ns}rect") if el.find(f"{ns}title") is not None]
    states = sorted((el.findtext(f"{ns}title") or "").split(": ")[1].split(" ")[0]
                    for el in pod_rects)  # fmt: skip
    assert states == ["Ready", "created,", "deletion", "present"]


# --- real journals -------------------------------------------------------------------


def _read(name: str) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    journal = json.loads((JOURNALS / f"{name}.json").read_text())
    path = JOURNALS / f"{name}.samples.jsonl"
    samples = (
        [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else None
    )
    return journal, samples


REAL = sorted(p.stem for p in JOURNALS.glob("*.json"))


def test_every_saved_journal_is_there() -> None:
    assert len(REAL) >= 10, REAL


@pytest.mark.parametrize("name", REAL)
def test_real_journals_summarize_consistently(name: str) -> None:
    journal, samples = _read(name)
    summary = summarize_experiment(journal, samples, name=name)
    json.loads(render_json(_suite_of(summary)))  # serialisable as is
    monitors = [r for r in journal["run"] if r["activity"]["provider"].get("func")
                == "monitor_availability" and isinstance(r.get("output"), dict)]  # fmt: skip
    if monitors:
        output = monitors[0]["output"]
        assert summary["availability"]["source"] == "monitor"
        assert summary["availability"]["success_rate"] == output["success_rate"]
        assert summary["availability"]["latency_ms"]["p95"] == pytest.approx(
            output["latency_s"]["p95"] * 1000
        )
        assert len(summary["availability"]["downtime_windows"]) == len(output["downtime_windows"])
    if samples is not None:
        points = summary["series"]["availability"]["points"]
        assert sum(p["failed"] for p in points) == sum(1 for s in samples if not s["ok"])
    k6 = journal.get("chaosray", {}).get("k6")
    if k6 is not None:
        assert summary["k6"]["requests"] == k6["requests"]
    verdict = journal.get("chaosray", {}).get("verdict")
    if verdict is not None:
        assert summary["verdict"]["passed"] is verdict["passed"]
    events = journal.get("chaosray", {}).get("timeline", {}).get("events", [])
    assert len(summary["pod_events"]) == len(events)
    page = render_html(_suite_of(summary))
    for svg in _svgs(page):  # every chart is well-formed XML
        assert svg.tag.endswith("svg")


def test_real_worker_delete_with_an_outage() -> None:
    summary = summarize_experiment(*_read("worker-delete-outage"))
    assert summary["verdict"]["passed"] is False
    messages = " ".join(r["message"] for r in summary["verdict"]["reasons"])
    assert "k6-load failed" in messages and "success rate" in messages
    kinds = {r["kind"] for r in summary["verdict"]["evidence"]}
    assert "k6_thresholds" in kinds
    (window,) = summary["availability"]["downtime_windows"]
    assert window["duration_s"] == pytest.approx(2.0, abs=0.2)  # the server was down 2 s
    (deletion,) = summary["disruptions"]
    assert deletion["kind"] == "delete" and deletion["pod"].startswith("ray-serve-workers-worker-")
    assert any(e["pod"] == deletion["pod"] and e["event"] == "gone" for e in summary["pod_events"])
    assert summary["key_recovery"]["activity"] == "replacement-ready"


def test_real_sequential_delete_and_node_drain() -> None:
    sequence = summarize_experiment(*_read("sequential-worker-delete"))
    pods = [d["pod"] for d in sequence["disruptions"]]
    assert len(pods) == len(set(pods)) == 3
    offsets = [d["offset_s"] for d in sequence["disruptions"]]
    assert offsets == sorted(offsets) and offsets[2] - offsets[0] > 4  # 3 s apart
    drain = summarize_experiment(*_read("node-drain"))
    kinds = [d["kind"] for d in drain["disruptions"]]
    assert kinds == ["drain", "evict"]
    assert drain["disruptions"][1]["node"] == drain["disruptions"][0]["node"]
    assert any(r["activity"] == "pdb-refuses-a-second-disruption"
               for r in drain["verdict"]["evidence"])  # fmt: skip


def test_real_interrupted_journal() -> None:
    journal, samples = _read("interrupted-raw")
    assert any("status" not in r for r in journal["run"])  # as chaos wrote it
    summary = summarize_experiment(journal, samples)
    kinds = [r["kind"] for r in summary["verdict"]["reasons"]]
    assert kinds == ["interrupted", "activity_interrupted"]
    assert summarize_experiment(journal, samples) == summary  # the journal was not changed


def test_real_head_delete_failed_recovery_is_the_key() -> None:
    summary = summarize_experiment(*_read("head-delete"))
    key = summary["key_recovery"]
    assert key["activity"] == "head-ready-and-workers-reconnect" and key["seconds"] is None
    assert [d["pod"].startswith("ray-serve-head-") for d in summary["disruptions"]] == [True]


def test_a_real_run_matches_the_ground_truth(
    scheduled_server: ScheduledServer, tmp_path: Path
) -> None:
    """k6 and the availability monitor under the real `chaos run`; the
    server's armed windows are the truth the report must show."""
    samples_path = tmp_path / "samples.jsonl"
    experiment = {
        "version": "1.0.0",
        "title": "report under test",
        "description": "load, monitor, two outages",
        "controls": [{"name": "k6-load", "provider": {
            "type": "python", "module": "chaosray.load.control",
            "arguments": {"target_url": scheduled_server.url, "rate": 10,
                          "threshold_failure_rate": 0.01}}}],
        "method": [
            {"type": "probe", "name": "monitor", "background": True, "provider": {
                "type": "python", "module": "chaosray.load.probes",
                "func": "monitor_availability",
                "arguments": {"url": scheduled_server.url + "/predict", "duration": 13,
                              "rate": 10, "samples_path": str(samples_path),
                              "timeout": 5, "require_reachable": False}}},
            {"type": "action", "name": "wait", "provider": {"type": "process", "path": "true"},
             "pauses": {"after": 14}},
        ],
    }  # fmt: skip
    # Late enough that k6 (60 VUs made up front) and its pre-flight request are up.
    truth = scheduled_server.arm(
        [{"start": 7.0, "end": 8.5, "mode": "down"}, {"start": 10.0, "end": 10.5, "mode": "reset"}]
    )
    run = run_experiment(experiment, tmp_path, timeout=120)
    assert run.run_entry("monitor")["status"] == "succeeded", run.log
    samples = [json.loads(line) for line in samples_path.read_text().splitlines()]
    summary = summarize_experiment(run.journal, samples, name="real")
    windows = summary["availability"]["downtime_windows"]
    assert len(windows) == 2, windows
    for measured, true in zip(windows, truth, strict=True):
        assert measured["start"] == pytest.approx(true.start, abs=0.2)
        assert measured["duration_s"] == pytest.approx(true.duration, abs=0.2)
        origin = epoch(run.journal["start"])
        assert origin is not None
        assert measured["start_offset_s"] == pytest.approx(true.start - origin, abs=0.2)
    # k6 saw the same outages: its thresholds failed, which fails the experiment.
    assert summary["k6"]["status"] == "thresholds_failed"
    assert summary["verdict"]["passed"] is False
    assert any(r["kind"] == "k6_thresholds" for r in summary["verdict"]["reasons"])
    failed_points = sum(p["failed"] for p in summary["series"]["availability"]["points"])
    assert failed_points == summary["availability"]["failed"] > 0
    assert summary["series"]["latency"]["points"]
    suite = _suite_of(summary)
    root = ET.fromstring(render_junit(suite))
    assert root.find("testsuite/testcase/failure") is not None
    assert len(_svgs(render_html(suite))) == 2  # availability and latency; no pod timeline
    assert not math.isnan(summary["availability"]["success_rate"])


def test_console_and_html_show_the_criteria_table_broken_rows_first() -> None:
    passing, _ = _two_experiments()
    held = summarize_experiment(
        _journal([_entry("a"), _entry("w", status="failed", exception=["boom\n"]), _entry("z")],
                 status="failed"),
        name="head-delete",
    )  # fmt: skip
    text = render_console(_suite_of(passing, held))
    assert "head-delete: criteria 2 of 3 held" in text
    assert "BROKEN w: w: failed: boom" in text
    page = render_html(_suite_of(passing, held))
    assert "<h3>Criteria (2 of 3 held)</h3>" in page
    section = page[page.index("<h3>Criteria (2 of 3 held)</h3>") :]
    rows = re.findall(r'<tr class="([a-z-]+)">.*?<code>([^<]+)</code>', section)[:3]
    assert rows == [("broken", "w"), ("held", "a"), ("held", "z")]


def test_two_sources_that_disagree_are_said_to_and_why() -> None:
    from chaosray.contract import availability_of

    def run(monitor_timeout: float, k6_timeout: float, k6_failed: int) -> dict[str, Any]:
        block = availability_of({**_monitor_output(), "timeout_s": monitor_timeout})  # 5 % failed
        monitor = _entry("monitor", "monitor_availability", "chaosray.load.probes",
                         {"availability": block})  # fmt: skip
        k6 = _k6_result(failed=k6_failed, success_rate=1 - k6_failed / 700, timeout_s=k6_timeout)
        summary = summarize_experiment(_journal([monitor], chaosray={"k6": k6}))
        sources: dict[str, Any] = summary["availability_sources"]
        return sources

    timeouts = run(2.0, 60.0, 0)
    assert [(s["source"], s["timeout_s"]) for s in timeouts["sources"]] == [
        ("monitor", 2.0), ("k6", 60.0),
    ]  # fmt: skip
    assert timeouts["disagreement"] == (
        "monitor failed 5.00% of its requests (timeout 2 s) and k6-load 0.00% (timeout 60 s): "
        "5.0 percentage points apart, more than 1; their request timeouts differ (a request "
        "slower than the shorter one failed for one source only)"
    )
    same = run(2.0, 2.0, 0)["disagreement"]
    assert same is not None and "so they saw different requests" in same
    # Within the margin (5 % against 4.43 %): nothing to say.
    assert run(2.0, 2.0, 31)["disagreement"] is None


def test_slow_requests_inform_the_budget_and_the_verdict_alike() -> None:
    """With a latency objective, slow requests are shown (share_with_slow)
    but the share the report gives is the one the verdict's budget-share
    criterion judges: failed requests only."""
    from chaosray.judge import criteria

    # 10/s for 10 s; 5 failed, 20 slow (400 ms against a 250 ms objective).
    pattern = [(i / 10, i >= 5, 0.4 if 20 <= i < 40 else 0.01) for i in range(100)]
    limits = criteria(slo_latency_p99_ms=250, max_budget_share=1000.0)
    from chaosray.contract import disruption

    deleted = {"disruptions": [disruption("delete", at=_iso(1.0), at_source="api", pod="w-1")]}
    journal = _journal([_entry("delete", output=deleted)],
                       chaosray={"verdict_criteria": dict(limits)})  # fmt: skip
    summary = summarize_experiment(journal, _samples(pattern))
    budget = summary["budget"]
    assert budget["slow_requests"] == 20 and budget["failed_requests"] == 5
    assert budget["consumed_requests"] == 5  # what decides: failed only
    assert budget["share_with_slow"] > budget["share"] > 0
