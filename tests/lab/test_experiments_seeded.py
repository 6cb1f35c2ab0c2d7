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

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from chaosray.judge import judge
from chaosray.wait import wait_until
from tests.lab.helpers import NAMESPACE, RECOVERY_TIMEOUT, WORKERS, admin, ready_pods, wait_whole
from tests.lab.test_experiments_on_lab import _chaos_run

SEEDED = Path(__file__).resolve().parents[2] / "deploy" / "lab" / "seeded"
RAYCLUSTER = ("ray.io", "v1", NAMESPACE, "rayclusters", "ray-serve")
# The client would send a list as a merge patch: say it is a JSON patch.
JSON_PATCH = "application/json-patch+json"


def _overlay(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((SEEDED / name / "kustomization.yaml").read_text())
    return loaded


def _api(the_lab: dict[str, str]) -> client.ApiClient:
    return config.new_client_from_config(config_file=the_lab["admin_kubeconfig"])


def _table(journal: dict[str, Any]) -> dict[str, str]:
    """The criteria table the one judge makes of the journal: id -> state."""
    verdict = judge(journal)
    assert verdict["source"] == "judge", verdict
    assert verdict["passed"] is False
    return {row["id"]: row["state"] for row in verdict.get("criteria") or []}


def _not_held(table: dict[str, str]) -> dict[str, str]:
    return {cid: state for cid, state in table.items() if state != "held"}


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


@pytest.mark.timeout(900)
def test_node_drain_without_a_worker_pdb_breaks_the_second_disruption_criterion(
    whole_lab: dict[str, str], tmp_path: Path
) -> None:
    the_lab = whole_lab
    core = admin(the_lab)
    with _no_worker_pdb(_api(the_lab)):
        code, journal, out = _chaos_run(the_lab, "node-drain", tmp_path, {})
    wait_whole(core, "the workers back after the drain without a PDB")
    assert code == 1, out
    table = _table(journal)
    assert _not_held(table) == {"pdb-refuses-a-second-disruption": "broken"}, table
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
        code, journal, out = _chaos_run(
            the_lab, "worker-delete", tmp_path, {"replacement_timeout_s": 100.0}
        )
    wait_whole(core, "the slow replacement Ready")
    assert code == 1, out
    table = _table(journal)
    # The hypothesis after the method sees the same fault: 2 of 3 Ready.
    assert _not_held(table) == {
        "replacement-ready": "broken",
        "after:ray-workers-ready": "broken",
    }, table
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
        code, journal, out = _chaos_run(the_lab, "post-validation", tmp_path, {})
    assert code == 1, out
    table = _table(journal)
    assert _not_held(table) == {"delete-k6-load-left-by-chaosray": "broken"}, table
    assert job in " ".join(journal["chaosray"]["verdict"]["reasons"])


@pytest.mark.timeout(600)
def test_a_dry_run_of_worker_delete_is_not_measured_never_passed(
    whole_lab: dict[str, str], tmp_path: Path
) -> None:
    the_lab = whole_lab
    core = admin(the_lab)
    before = {p.metadata.uid for p in ready_pods(core, WORKERS)}
    code, journal, out = _chaos_run(
        the_lab, "worker-delete", tmp_path, {"chaosray_dry_run": "true"}
    )
    assert code == 1, out
    table = _table(journal)
    assert _not_held(table) == {
        "disrupted": "no evidence",
        "replacement-ready.recovery_s": "no evidence",
    }, table
    assert {p.metadata.uid for p in ready_pods(core, WORKERS)} == before
    wait_until(
        lambda: len(ready_pods(core, WORKERS)) == 3,
        timeout=RECOVERY_TIMEOUT,
        description="three workers",
    )
