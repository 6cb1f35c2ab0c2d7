"""No evidence is never a pass, and bounds count from the disruption (#21).

The pure tests build journals from the contract's own block builders (the
shapes the activities write); the rig tests run the shipped experiments with
the real ``chaos run`` against the test cluster (real API server, controllers,
KubeRay; kwok nodes) and show a verdict that a broken criterion fails.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from chaosray.contract import availability_of, disruption, recovery
from chaosray.judge import NO_EVIDENCE, criteria, judge
from chaosray.load.k6 import k6_result
from chaosray.report import render_console, render_junit, summarize_experiment, summarize_suite
from tests.rig.http_server import ScheduledServer
from tests.rig.kube import NAMESPACE, WORKERS, KubeCluster, ready_pods
from tests.test_experiments import _cordon_all, _run, _uncordon_later, _verdict

T0 = 1_800_000_000.0
DISRUPTIVE = criteria(min_success_rate=0.95, disruptive=True)


def _entry(name: str, output: dict[str, Any], status: str = "succeeded") -> dict[str, Any]:
    provider = {"type": "python", "module": "m", "func": "f"}
    return {
        "activity": {"type": "probe", "name": name, "provider": provider},
        "status": status,
        "output": output,
        "start": "2027-01-15T08:00:00",
        "end": None,
    }


def _monitor(requests: int = 300, failed: int = 0, **extra: Any) -> dict[str, Any]:
    figures = {
        "requests": requests,
        "failed": failed,
        "success_rate": 1 - failed / requests if requests else None,
        "downtime_windows": [],
        "total_downtime_s": 0.0 if requests else None,
        "longest_outage_s": 0.0 if requests else None,
        "started_at": T0,
        "ended_at": T0 + 40,
        "ended_by": "stop_action",
        **extra,
    }
    return _entry("availability-monitor", {"availability": availability_of(figures)})


def _deleted(at: float = T0 + 10, status: Any = "done") -> dict[str, Any]:
    block = disruption("delete", at=at, at_source="api", pod="w-1", status=status)
    return _entry("delete-one-worker", {"disruptions": [block]})


def _journal(*entries: dict[str, Any], k6: dict[str, Any] | None = None) -> dict[str, Any]:
    journal: dict[str, Any] = {"status": "completed", "run": list(entries)}
    if k6 is not None:
        journal["chaosray"] = {"k6": k6}
    return journal


def _messages(journal: dict[str, Any], limits: Any = DISRUPTIVE) -> list[str]:
    verdict = judge(journal, limits)
    assert verdict["passed"] is (not verdict["reasons"])
    return [r["message"] for r in verdict["reasons"]]


def test_a_whole_measured_disruption_passes() -> None:
    assert _messages(_journal(_monitor(), _deleted())) == []


def test_a_measurement_of_no_request_is_not_measured_not_a_pass() -> None:
    messages = _messages(_journal(_monitor(requests=0), _deleted()))
    assert messages == ["not measured: availability-monitor: no request was measured"]
    # Even with only a downtime limit (no success-rate floor).
    only_downtime = criteria(max_downtime_s=10)
    assert _messages(_journal(_monitor(requests=0)), only_downtime) == messages


def test_criteria_that_ask_for_availability_with_no_measurement_fail() -> None:
    verdict = judge(_journal(_deleted()), DISRUPTIVE)
    assert verdict["passed"] is False
    assert [r["kind"] for r in verdict["reasons"]] == [NO_EVIDENCE]
    assert verdict["reasons"][0]["message"].startswith(
        "not measured: availability: the method has no availability measurement"
    )
    # A validation (no availability criteria) is judged on its probes only.
    assert _messages(_journal(_deleted()), criteria()) == []


def test_a_dry_run_or_skipped_disruption_proves_nothing() -> None:
    for status in ("dry_run", "skipped"):
        messages = _messages(_journal(_monitor(), _deleted(status=status)))
        assert messages == [
            f"not measured: disrupted: nothing was really disrupted ({status}), "
            "so the scenario proves nothing"
        ]
    nothing = _messages(_journal(_monitor()))
    assert nothing == [
        "not measured: disrupted: nothing was really disrupted (no disruption), "
        "so the scenario proves nothing"
    ]
    # Not disruptive criteria: a dry run is a fine validation.
    assert _messages(_journal(_monitor(), _deleted(status="dry_run")), criteria()) == []


def test_a_measurement_that_missed_the_disruption_or_stopped_at_its_cap_fails() -> None:
    late = _messages(_journal(_monitor(), _deleted(at=T0 + 55)))
    assert late == [
        "not measured: availability-monitor: the measurement does not cover the disruption "
        "(delete of w-1)"
    ]
    capped = _messages(_journal(_monitor(ended_by="duration"), _deleted()))
    assert capped == [
        "not measured: availability-monitor: the measurement stopped at its own duration cap "
        "before the method ended (raise its duration)"
    ]


def test_a_recovery_never_seen_is_not_measured() -> None:
    unseen = recovery("recovery_s", None, {"since": "x", "since_source": "delete of pod w-1"})
    seen = recovery("recovery_s", 12.0, {"since": "x"})
    wait = _entry("replacement-ready", {"recoveries": [unseen]})
    assert _messages(_journal(_monitor(), _deleted(), wait)) == [
        "not measured: replacement-ready: recovery_s: no recovery after the delete of pod w-1 "
        "was seen"
    ]
    fine = _entry("replacement-ready", {"recoveries": [seen]})
    assert _messages(_journal(_monitor(), _deleted(), fine)) == []


def test_outage_limits_decide() -> None:
    window = {"start": T0 + 11, "end": T0 + 16, "duration_s": 5.0, "failed_requests": 50}
    outage = _monitor(
        failed=10, downtime_windows=[window], total_downtime_s=5.0, longest_outage_s=5.0
    )
    journal = _journal(outage, _deleted())
    assert _messages(journal, criteria(max_longest_outage_s=4.0, disruptive=True)) == [
        "availability-monitor: longest outage 5.00s above 4s"
    ]
    assert _messages(journal, criteria(max_downtime_s="", max_longest_outage_s="6")) == []


def test_k6_that_sent_nothing_or_noted_a_problem_fails() -> None:
    summary = {"requests": 0, "failed": 0, "dropped_iterations": 0, "thresholds": {}}
    silent = k6_result("local", 0, summary, None, T0, T0 + 40, "")
    assert silent["status"] == "error" and silent["error"] == "k6 sent no request"
    messages = _messages(_journal(_monitor(), _deleted(), k6=silent))
    assert messages == ["k6 load error: k6 sent no request"]
    # A result whose own status says passed with a problem noted, or no request.
    noted = {"status": "passed", "requests": 400, "error": "k6 could not be stopped: refused"}
    assert _messages(_journal(_monitor(), _deleted(), k6=noted)) == [
        "k6 load error: k6 could not be stopped: refused"
    ]
    empty = {"status": "passed", "requests": 0}
    assert _messages(_journal(_monitor(), _deleted(), k6=empty)) == [
        "not measured: the k6 load sent no request, so its thresholds prove nothing"
    ]


def test_an_interrupted_run_is_interrupted_not_unmeasured() -> None:
    journal = _journal(_monitor(requests=0))
    journal["status"] = "interrupted"
    assert _messages(journal) == [
        "the experiment was interrupted",
        "not measured: availability-monitor: no request was measured",
        "not measured: disrupted: nothing was really disrupted (no disruption), "
        "so the scenario proves nothing",
    ]
    # The verdict control recorded the signal: the judge names it too.
    by_signal = "interrupted by SIGTERM: the run was cancelled, so it cannot pass"
    journal["chaosray"] = {"verdict": {"passed": False, "reasons": [by_signal]}}
    assert _messages(journal)[0] == by_signal


# --- the shipped experiments on the test cluster -----------------------------------------


# worker-delete's dry run: tests/test_suite.py (inconclusive where asked, exit 3).
@pytest.mark.parametrize("name", ["node-drain", "sequential-worker-delete"])
def test_a_dry_run_fails_as_not_disrupted(
    topology: KubeCluster, scheduled_server: ScheduledServer, tmp_path: Path, name: str
) -> None:
    before = {p.metadata.uid for p in ready_pods(topology.core(), WORKERS)}
    run = _run(name, topology, scheduled_server, tmp_path, chaosray_dry_run="true")
    assert run.returncode == 1, run.console
    reasons = _verdict(run)["reasons"]
    assert any(
        r.startswith("not measured: disrupted: nothing was really disrupted") for r in reasons
    )
    assert {p.metadata.uid for p in ready_pods(topology.core(), WORKERS)} == before


def _deleting(core: client.CoreV1Api, uids: set[str]) -> Callable[[], bool]:
    """Whether one of the pods ``uids`` is being deleted (or gone)."""

    def deleting() -> bool:
        pods = core.list_namespaced_pod(NAMESPACE, label_selector=WORKERS).items
        return not uids <= {p.metadata.uid for p in pods if p.metadata.deletion_timestamp is None}

    return deleting


def test_a_replacement_ready_later_than_the_bound_after_the_deletion_fails(
    topology: KubeCluster, scheduled_server: ScheduledServer, tmp_path: Path
) -> None:
    """The replacement becomes Ready about 6 s after the deletion, before the
    wait begins (after a 10 s observation): with a 4 s bound counted from
    the deletion it fails; a wait that timed itself would pass it."""
    core = topology.core()
    before = {p.metadata.uid for p in ready_pods(core, WORKERS)}
    _cordon_all(core)
    nodes = [n.metadata.name for n in core.list_node().items]
    helper = _uncordon_later(core, nodes, after=6.0, once=_deleting(core, before))
    run = _run(
        "worker-delete",
        topology,
        scheduled_server,
        tmp_path,
        observe_s=10.0,
        replacement_timeout_s=4.0,
    )
    helper.join(timeout=5)
    assert run.returncode == 1, run.console
    reasons = " ".join(_verdict(run)["reasons"])
    assert "replacement-ready failed" in reasons, reasons
    assert "more than the 4s allowed" in reasons, reasons
    wait = run.run_entry("replacement-ready")
    assert wait["status"] == "failed"


def test_a_drained_workers_recovery_is_timed_from_its_own_eviction() -> None:
    """A drain evicts every pod of the node (recorded with no selector): the
    wait for the workers times its recovery from the worker's eviction, not
    from a Redis pod's evicted after it on the same node."""
    from datetime import UTC, datetime

    from chaosray.k8s.pods import Disruption, last_disruption, record_disruption

    namespace = "drain-origin-test"
    worker_labels = {"ray.io/cluster": "ray-serve", "ray.io/node-type": "worker"}
    workers = "ray.io/cluster=ray-serve,ray.io/node-type=worker"
    first, second = datetime.fromtimestamp(T0, UTC), datetime.fromtimestamp(T0 + 5, UTC)
    record_disruption(Disruption(namespace, None, "w-1", "n-1", first, "evict", worker_labels))
    record_disruption(
        Disruption(namespace, None, "redis-1", "n-1", second, "evict", {"app": "redis"})
    )
    found = last_disruption(namespace, workers)
    assert found is not None and (found.pod, found.at) == ("w-1", first)
    redis = last_disruption(namespace, "app=redis")
    assert redis is not None and redis.pod == "redis-1"
    # A selector it cannot read (set-based) may select anything: the latest.
    latest = last_disruption(namespace, "app in (redis)")
    assert latest is not None and latest.pod == "redis-1"


def test_a_method_probe_out_of_tolerance_fails_with_its_reason() -> None:
    """A row not held always gives a reason, even when the journal's own
    evidence has none (a method probe that ran but missed its tolerance)."""
    missed = {**_entry("pdb-refuses-a-second-disruption", {"refused": False}),
              "tolerance_met": False}  # fmt: skip
    verdict = judge(_journal(_monitor(), _deleted(), missed), DISRUPTIVE)
    assert verdict["passed"] is False
    assert [r["message"] for r in verdict["reasons"]] == [
        'pdb-refuses-a-second-disruption: not met: got {"refused": false}'
    ]


def test_no_evidence_is_inconclusive_only_where_chosen_and_only_when_nothing_broke() -> None:
    chosen = criteria(min_success_rate=0.95, disruptive=True, no_evidence="inconclusive")
    dry = _journal(_monitor(), _deleted(status="dry_run"))
    assert judge(dry, DISRUPTIVE)["inconclusive"] is False  # the default: failed
    verdict = judge(dry, chosen)
    assert verdict["passed"] is False and verdict["inconclusive"] is True
    assert [r["kind"] for r in verdict["reasons"]] == [NO_EVIDENCE]
    # A broken criterion beside the missing one: failed, not inconclusive.
    broken = _journal(_monitor(failed=30), _deleted(status="dry_run"))
    verdict = judge(broken, chosen)
    assert verdict["passed"] is False and verdict["inconclusive"] is False
    assert "availability-monitor: success rate 90.0000% below 95.00%" in [
        r["message"] for r in verdict["reasons"]
    ]
    # An interruption is never inconclusive; a whole measurement still passes.
    interrupted = _journal(_monitor(requests=0))
    interrupted["status"] = "interrupted"
    assert judge(interrupted, chosen)["inconclusive"] is False
    whole = judge(_journal(_monitor(), _deleted()), chosen)
    assert whole["passed"] is True and whole["inconclusive"] is False
    with pytest.raises(ValueError, match="no_evidence must be failed or inconclusive, got 'pass'"):
        criteria(no_evidence="pass")  # type: ignore[arg-type]


def test_reports_say_inconclusive_and_ci_still_sees_a_failure() -> None:
    chosen = criteria(min_success_rate=0.95, disruptive=True, no_evidence="inconclusive")
    dry = _journal(_monitor(), _deleted(status="dry_run"))
    dry.update(status="failed", chaosray={"verdict_criteria": dict(chosen)})
    measured = _journal(_monitor(), _deleted())
    measured["chaosray"] = {"verdict_criteria": dict(chosen)}
    experiments = [
        summarize_experiment(dry, name="worker-delete"),
        summarize_experiment(measured, name="node-drain"),
    ]
    suite = summarize_suite(experiments, "2027-01-15T08:00:00Z", "2027-01-15T08:10:00Z")
    totals = suite["totals"]
    assert (totals["passed"], totals["failed"], totals["inconclusive"]) == (1, 0, 1)
    assert totals["overall_passed"] is False
    assert [r["verdict"] for r in suite["comparison"]["rows"]] == ["inconclusive", "passed"]
    experiments_suite, _criteria = ET.fromstring(render_junit(suite)).findall("testsuite")
    assert (experiments_suite.get("tests"), experiments_suite.get("failures")) == ("2", "1")
    (failure,) = experiments_suite.iter("failure")
    assert failure.get("type") == "inconclusive"
    assert failure.get("message", "").startswith("not measured: disrupted")
    assert "1 inconclusive" in render_console(suite)
