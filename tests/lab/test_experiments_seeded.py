"""The proof that a verdict can fail (#21): on the lab, each seeded fault of
``deploy/lab/seeded/`` (applied to the running reference deployment as the
equivalent API calls, reverted after) makes its scenario fail **with that
criterion broken** and every other criterion held; a dry run never passes.
The reference deployment passes the same scenarios in the suite run of
``test_experiments_on_lab.py``. Real kubelets, containerd, KubeRay, Ray and
Redis; chaosray acts with the lab's bearer token of
deploy/base/40-chaosray-rbac.yaml.

One lab, one ``chaos run`` a fault, short timings (about 9 minutes here).
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from kubernetes import client, config

from chaosray.judge import judge
from chaosray.report import summarize_experiment
from chaosray.wait import wait_until
from tests.lab.helpers import NAMESPACE, RECOVERY_TIMEOUT, WORKERS, admin, ready_pods, wait_whole
from tests.lab.test_experiments_on_lab import (
    _assert_budget_of_monitor,
    _chaos_run,
    _output,
)

SEEDED = Path(__file__).resolve().parents[2] / "deploy" / "lab" / "seeded"
RAYCLUSTER = ("ray.io", "v1", NAMESPACE, "rayclusters", "ray-serve")
# Where the seeded criterion is not availability, the floors the suite test
# uses: on two cores a deletion can fail more than 5 % of requests for a few
# seconds (docs/lab.md), which would say nothing about the seeded fault.
LENIENT = {"min_success_rate": 0.5, "load_threshold_failure_rate": 0.5}
# The client would send a list as a merge patch: say it is a JSON patch.
JSON_PATCH = "application/json-patch+json"


def _overlay(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((SEEDED / name / "kustomization.yaml").read_text())
    return loaded


def _api(the_lab: dict[str, str]) -> client.ApiClient:
    return config.new_client_from_config(config_file=the_lab["admin_kubeconfig"])


def _failed_with(run: tuple[int, dict[str, Any], str], not_held: dict[str, str]) -> dict[str, str]:
    """The run failed, and exactly ``not_held`` of its criteria table (the
    one judge's, from the journal) did not hold; the table, id -> state."""
    code, journal, out = run
    assert code == 1, out
    verdict = judge(journal)
    assert verdict["source"] == "judge" and verdict["passed"] is False, verdict
    table: dict[str, str] = {r["id"]: str(r["state"]) for r in verdict.get("criteria") or []}
    assert {cid: state for cid, state in table.items() if state != "held"} == not_held, table
    return table


@contextmanager
def _no_worker_pdb(api: client.ApiClient) -> Iterator[None]:
    (patch,) = _overlay("no-worker-pdb")["patches"]
    target = yaml.safe_load(patch["patch"])
    assert target["$patch"] == "delete" and target["kind"] == "PodDisruptionBudget"
    policy = client.PolicyV1Api(api)
    name, namespace = target["metadata"]["name"], target["metadata"]["namespace"]
    saved = policy.read_namespaced_pod_disruption_budget(name, namespace)
    policy.delete_namespaced_pod_disruption_budget(name, namespace)
    try:
        yield
    finally:
        saved.metadata = client.V1ObjectMeta(
            name=name, namespace=namespace, labels=saved.metadata.labels
        )
        saved.status = None
        policy.create_namespaced_pod_disruption_budget(namespace, saved)


@contextmanager
def _slow_worker_readiness(api: client.ApiClient) -> Iterator[int]:
    (patch,) = _overlay("slow-worker-readiness")["patches"]
    (operation,) = yaml.safe_load(patch["patch"])
    custom = client.CustomObjectsApi(api)
    before = custom.get_namespaced_custom_object(*RAYCLUSTER)
    probe = before["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
    original = probe["readinessProbe"]["initialDelaySeconds"]
    custom.patch_namespaced_custom_object(*RAYCLUSTER, [operation], _content_type=JSON_PATCH)
    try:
        yield int(operation["value"])
    finally:
        revert = [{**operation, "value": original}]
        custom.patch_namespaced_custom_object(*RAYCLUSTER, revert, _content_type=JSON_PATCH)


@contextmanager
def _stuck_load_job(api: client.ApiClient) -> Iterator[str]:
    manifest = yaml.safe_load((SEEDED / "stuck-load-job" / "stuck-load-job.yaml").read_text())
    batch = client.BatchV1Api(api)
    name = manifest["metadata"]["name"]
    batch.create_namespaced_job(NAMESPACE, manifest)
    try:
        yield name
    finally:
        batch.patch_namespaced_job(name, NAMESPACE, {"metadata": {"finalizers": None}})
        try:
            batch.delete_namespaced_job(name, NAMESPACE, propagation_policy="Background")
        except client.ApiException as exc:
            if exc.status != 404:
                raise

        def gone() -> bool:
            return not batch.list_namespaced_job(
                NAMESPACE, field_selector=f"metadata.name={name}"
            ).items

        wait_until(gone, timeout=60, description=f"the seeded Job {name} gone")


def _load_balancer_refuses_during(
    api: client.ApiClient, address: str, after_deleting: str, delay: float, hold: float
) -> tuple[threading.Thread, dict[str, float]]:
    """Once a pod of ``after_deleting`` is being deleted, wait ``delay`` s,
    then make the load balancer's ``address`` refuse every packet for
    ``hold`` s (a TCP reset, as an NLB whose targets all failed their health
    check answers), in this test's own network namespace, where the
    experiment's monitor and k6 send from. ``times`` gets when (this clock)
    the refusal began and ended. The rule is removed on every exit path."""
    core = client.CoreV1Api(api)
    listed = core.list_namespaced_pod(NAMESPACE, label_selector=after_deleting).items
    before = {p.metadata.uid for p in listed}
    rule = ["OUTPUT", "-d", address, "-p", "tcp", "-m", "comment", "--comment",
            "chaosray-seeded-lb-refuses", "-j", "REJECT", "--reject-with", "tcp-reset"]  # fmt: skip
    times: dict[str, float] = {}

    def deleting() -> bool:
        pods = core.list_namespaced_pod(NAMESPACE, label_selector=after_deleting).items
        return not before <= {p.metadata.uid for p in pods if p.metadata.deletion_timestamp is None}

    def run() -> None:
        wait_until(deleting, timeout=300, interval=0.2, description="the deletion")
        time.sleep(delay)
        subprocess.run(["iptables", "-I", *rule], check=True)
        times["broken"] = time.time()
        try:
            time.sleep(hold)
        finally:
            subprocess.run(["iptables", "-D", *rule], check=True)
            times["restored"] = time.time()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, times


@pytest.mark.timeout(900)
def test_a_load_balancer_that_refuses_breaks_the_availability_criteria_for_as_long(
    whole_lab: dict[str, str], tmp_path: Path
) -> None:
    """The outage users see is timed against this test's own clock: it
    begins when the load balancer began refusing and ends when it stopped,
    and the budget is its failed requests' cost, from the monitor's counts."""
    the_lab = whole_lab
    address = urlsplit(the_lab["inference_url"]).hostname
    assert address
    thread, times = _load_balancer_refuses_during(_api(the_lab), address, "app=redis", 3.0, 12.0)
    limits = {"max_longest_outage_s": 5.0, "max_budget_share": 0.001}
    run = _chaos_run(the_lab, "redis-delete", tmp_path, limits)
    thread.join(timeout=60)
    assert set(times) == {"broken", "restored"}, times
    wait_whole(admin(the_lab), "the Service serving again")
    _failed_with(
        run,
        {"success-rate": "broken", "longest-outage-s": "broken", "budget-share": "broken",
         "k6-load": "broken"},
    )  # fmt: skip
    summary = summarize_experiment(run[1], name="redis-delete")
    held = times["restored"] - times["broken"]
    (window,) = [w for w in summary["outage_causes"]["windows"] if w["duration_s"] > 2.0]
    assert times["broken"] - 1.0 <= window["start"] <= times["broken"] + 1.0, (window, times)
    assert times["restored"] - 1.0 <= window["end"] <= times["restored"] + 1.0, (window, times)
    monitor = _output(run[1], "availability-monitor")
    assert monitor["longest_outage_s"] == pytest.approx(window["duration_s"], abs=0.5)
    assert monitor["failed"] >= 0.8 * held * monitor["rate_per_s"], (monitor["failed"], held)
    _assert_budget_of_monitor(summary["budget"], run[1])
    # Its outage is the refusal's, and no earlier event is given as its cause.
    assert window["cause"] is None, window
    assert [p["lag_s"] for p in window["preceding"]] == sorted(
        p["lag_s"] for p in window["preceding"]
    ), window


@pytest.mark.timeout(900)
def test_node_drain_without_a_worker_pdb_breaks_the_second_disruption_criterion(
    whole_lab: dict[str, str], tmp_path: Path
) -> None:
    the_lab = whole_lab
    core = admin(the_lab)
    with _no_worker_pdb(_api(the_lab)):
        run = _chaos_run(the_lab, "node-drain", tmp_path, LENIENT)
    wait_whole(core, "the workers back after the drain without a PDB")
    table = _failed_with(run, {"pdb-refuses-a-second-disruption": "broken"})
    assert table["disrupted"] == "held" and table["drain-a-worker-node"] == "held"


@pytest.mark.timeout(900)
def test_a_replacement_slower_than_its_bound_breaks_replacement_ready(
    whole_lab: dict[str, str], tmp_path: Path
) -> None:
    """The bound is tightened to 100 s for this run (the plan's is 300 s),
    to keep it short: the reference deployment's replacement is Ready in
    73-81 s on the lab (docs/lab.md), the seeded one only after its 150 s
    readiness delay, so the bound breaks counted from the deletion."""
    the_lab = whole_lab
    core = admin(the_lab)
    before = {p.metadata.uid for p in ready_pods(core, WORKERS)}
    with _slow_worker_readiness(_api(the_lab)) as delay:
        assert delay > 100
        run = _chaos_run(
            the_lab, "worker-delete", tmp_path, {**LENIENT, "replacement_timeout_s": 100.0}
        )
    wait_whole(core, "the slow replacement Ready")
    # The hypothesis after the method sees the same fault: 2 of 3 Ready.
    _failed_with(run, {"replacement-ready": "broken", "after:ray-workers-ready": "broken"})
    journal = run[1]
    # The deletion really happened: one worker of before is gone.
    assert len(before - {p.metadata.uid for p in ready_pods(core, WORKERS)}) == 1
    (reason,) = [r for r in journal["chaosray"]["verdict"]["reasons"] if "replacement" in r]
    assert "100s after the delete of pod" in reason, reason


@pytest.mark.timeout(600)
def test_a_load_job_left_behind_breaks_post_validation(
    whole_lab: dict[str, str], tmp_path: Path
) -> None:
    the_lab = whole_lab
    with _stuck_load_job(_api(the_lab)) as job:
        run = _chaos_run(the_lab, "post-validation", tmp_path, {})
    _failed_with(run, {"delete-k6-load-left-by-chaosray": "broken"})
    assert job in " ".join(run[1]["chaosray"]["verdict"]["reasons"])


@pytest.mark.timeout(600)
def test_a_dry_run_of_worker_delete_is_not_measured_never_passed(
    whole_lab: dict[str, str], tmp_path: Path
) -> None:
    the_lab = whole_lab
    core = admin(the_lab)
    before = {p.metadata.uid for p in ready_pods(core, WORKERS)}
    run = _chaos_run(the_lab, "worker-delete", tmp_path, {**LENIENT, "chaosray_dry_run": "true"})
    _failed_with(run, {"disrupted": "no evidence", "replacement-ready.recovery_s": "no evidence"})
    assert {p.metadata.uid for p in ready_pods(core, WORKERS)} == before
    wait_until(
        lambda: len(ready_pods(core, WORKERS)) == 3,
        timeout=RECOVERY_TIMEOUT,
        description="three workers",
    )
