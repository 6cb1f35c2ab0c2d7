"""Kubernetes probes and actions against the real test cluster."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chaoslib.exceptions import ActivityFailed
from kubernetes import client

from chaosray import contract
from chaosray.k8s import actions, probes
from chaosray.k8s.safety import CORDON_LABEL
from chaosray.wait import wait_until
from tests.chaos_cli import run_experiment
from tests.rig.kube import (
    NAMESPACE,
    REDIS,
    TEST_POD_LABEL,
    WORKERS,
    KubeCluster,
    make_test_pod,
    ready_pods,
)

WORKER_PDB = "ray-worker-pdb"


@pytest.fixture
def k8s(topology: KubeCluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[KubeCluster]:
    """The topology, with KUBECONFIG pointing the activities at it."""
    monkeypatch.setenv("KUBECONFIG", str(topology.kubeconfig))
    monkeypatch.delenv("KUBERNETES_CONTEXT", raising=False)
    yield topology


def _worker_names(core: client.CoreV1Api) -> set[str]:
    return {p.metadata.name for p in ready_pods(core, WORKERS)}


def _cordon(core: client.CoreV1Api, node: str) -> None:
    core.patch_node(node, {"spec": {"unschedulable": True}})


def _block_replacements(core: client.CoreV1Api, victim: Any) -> None:
    """Cordon every node a replacement worker could go to (the free node and
    the victim's), so a deleted worker stays gone."""
    used = {p.spec.node_name for p in ready_pods(core, WORKERS)}
    for node in core.list_node().items:
        name = node.metadata.name
        if name not in used or name == victim.spec.node_name:
            _cordon(core, name)


def _take_one_worker_away(core: client.CoreV1Api) -> Any:
    victim = sorted(ready_pods(core, WORKERS), key=lambda p: p.metadata.name)[0]
    _block_replacements(core, victim)
    core.delete_namespaced_pod(victim.metadata.name, NAMESPACE)
    wait_until(
        lambda: len(ready_pods(core, WORKERS)) == 2,
        timeout=30,
        description="one worker gone",
    )
    policy = client.PolicyV1Api(core.api_client)
    wait_until(
        lambda: (
            policy.read_namespaced_pod_disruption_budget(
                WORKER_PDB, NAMESPACE
            ).status.disruptions_allowed
            == 0
        ),
        timeout=30,
        description="the PDB to allow no disruption",
    )
    return victim


# --- counts and readiness -----------------------------------------------------------------------


def test_counts_exclude_terminating_pods(k8s: KubeCluster) -> None:
    core = k8s.core()
    selector = "app=held"
    core.create_namespaced_pod(
        NAMESPACE, make_test_pod("held-1", {"app": "held"}, node="node-a", finalizer=True)
    )
    core.create_namespaced_pod(NAMESPACE, make_test_pod("held-2", {"app": "held"}, node="node-a"))
    wait_until(
        lambda: probes.count_ready_pods(selector, NAMESPACE) == 2,
        timeout=30,
        description="two held pods Ready",
    )
    core.delete_namespaced_pod("held-1", NAMESPACE)  # held by its finalizer: Terminating
    wait_until(
        lambda: core.read_namespaced_pod("held-1", NAMESPACE).metadata.deletion_timestamp,
        timeout=10,
        description="held-1 Terminating",
    )
    counts = probes.pod_counts(selector, NAMESPACE)
    assert counts["total"] == 2
    assert counts["terminating"] == 1
    assert counts["ready"] == 1
    assert counts["running"] == 1
    assert {p["name"]: p["ready"] for p in counts["pods"]} == {"held-1": False, "held-2": True}


def test_counts_of_the_reference_topology(k8s: KubeCluster) -> None:
    assert probes.count_ready_pods(WORKERS, NAMESPACE) == 3
    assert probes.count_ready_pods(REDIS, NAMESPACE) == 3
    counts = probes.pod_counts(WORKERS, NAMESPACE)
    assert counts["total"] == counts["running"] == 3
    assert {p["name"] for p in counts["pods"]} == _worker_names(k8s.core())


def test_a_selector_matching_nothing_counts_zero(k8s: KubeCluster) -> None:
    assert probes.pod_counts("app=nothing-here", NAMESPACE)["total"] == 0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: probes.pod_counts("app=x", "no-such-ns"), "namespace 'no-such-ns' does not exist"),
        (lambda: probes.pod_counts("app in (", NAMESPACE), "HTTP 400.*selector syntax"),
        (
            lambda: probes.pods_on_distinct_nodes("app=nothing-here", NAMESPACE),
            "no pod in namespace 'ray-serve' matches 'app=nothing-here'",
        ),
        (lambda: actions.cordon_node("no-such-node"), "node 'no-such-node' does not exist"),
        (
            lambda: probes.pdb_status(NAMESPACE, name="no-such-pdb"),
            "PodDisruptionBudget 'no-such-pdb' does not exist",
        ),
        (
            lambda: probes.pdb_status(NAMESPACE, label_selector="app=nothing-here"),
            "no PodDisruptionBudget .* covers pods labelled 'app=nothing-here'",
        ),
        (
            lambda: probes.statefulset_ready("no-such-sts", NAMESPACE),
            "StatefulSet 'no-such-sts' does not exist",
        ),
        (
            lambda: actions.delete_pod("app=nothing-here", NAMESPACE),
            "no pod in namespace 'ray-serve' matches",
        ),
        (
            lambda: actions.delete_pod(WORKERS, "no-such-ns"),
            "namespace 'no-such-ns' does not exist",
        ),
    ],
)
def test_bad_input_is_a_clear_activity_failure(k8s: KubeCluster, call: Any, message: str) -> None:
    before = _worker_names(k8s.core())
    with pytest.raises(ActivityFailed, match=message):
        call()
    assert _worker_names(k8s.core()) == before
    assert not k8s.core().list_node(label_selector=CORDON_LABEL).items


# --- spread -------------------------------------------------------------------------------------


def test_workers_are_on_distinct_nodes(k8s: KubeCluster) -> None:
    core = k8s.core()
    result = probes.pods_on_distinct_nodes(WORKERS, NAMESPACE)
    truth = {p.metadata.name: p.spec.node_name for p in ready_pods(core, WORKERS)}
    assert result["nodes"] == truth
    assert result["distinct"] is True and result["shared"] == {}


def test_distinct_zones_follow_the_node_labels(k8s: KubeCluster) -> None:
    core = k8s.core()
    zone_of = {
        n.metadata.name: n.metadata.labels["topology.kubernetes.io/zone"]
        for n in core.list_node().items
    }
    result = probes.pods_on_distinct_nodes(WORKERS, NAMESPACE, distinct_zones=True)
    expected_zones = {p: zone_of[n] for p, n in result["nodes"].items()}
    assert result["zones"] == expected_zones
    assert result["distinct"] is (len(set(expected_zones.values())) == 3)


def test_pods_sharing_a_node_are_not_distinct(k8s: KubeCluster) -> None:
    core = k8s.core()
    for name in ("pair-1", "pair-2"):
        core.create_namespaced_pod(NAMESPACE, make_test_pod(name, {"app": "pair"}, node="node-b"))
    wait_until(
        lambda: probes.count_ready_pods("app=pair", NAMESPACE) == 2,
        timeout=30,
        description="pair Ready",
    )
    result = probes.pods_on_distinct_nodes("app=pair", NAMESPACE)
    assert result["distinct"] is False
    assert result["shared"] == {"node-b": ["pair-1", "pair-2"]}


# --- PDBs and StatefulSets ----------------------------------------------------------------------


def test_pdb_status_by_name_and_by_selector(k8s: KubeCluster) -> None:
    by_name = probes.pdb_status(NAMESPACE, name=WORKER_PDB)
    assert by_name["min_available"] == 2
    assert by_name["max_unavailable"] is None
    assert by_name["current_healthy"] == 3
    assert by_name["disruptions_allowed"] == 1
    by_selector = probes.pdb_status(NAMESPACE, label_selector=WORKERS)
    assert by_selector["name"] == WORKER_PDB
    assert probes.pdb_status(NAMESPACE, label_selector=REDIS)["name"] == "redis-pdb"


def test_pdb_budget_comparison(k8s: KubeCluster) -> None:
    assert probes.pdb_budget_is(NAMESPACE, name=WORKER_PDB, min_available=2) is True
    assert probes.pdb_budget_is(NAMESPACE, name=WORKER_PDB, min_available=3) is False
    assert probes.pdb_budget_is(NAMESPACE, name="redis-pdb", max_unavailable=1) is False
    with pytest.raises(ActivityFailed, match="give min_available or max_unavailable"):
        probes.pdb_budget_is(NAMESPACE, name=WORKER_PDB)


def test_statefulset_ready(k8s: KubeCluster) -> None:
    result = probes.statefulset_ready("redis", NAMESPACE)
    assert result["ready"] is True
    assert result["replicas"] == result["ready_replicas"] == 3


def test_statefulset_not_ready_while_a_pod_cannot_come_back(k8s: KubeCluster) -> None:
    core = k8s.core()
    for node in core.list_node().items:
        _cordon(core, node.metadata.name)
    core.delete_namespaced_pod("redis-2", NAMESPACE)
    wait_until(
        lambda: probes.statefulset_ready("redis", NAMESPACE)["ready_replicas"] == 2,
        timeout=30,
        description="redis to count 2 ready replicas",
    )
    result = probes.statefulset_ready("redis", NAMESPACE)
    assert result["ready"] is False and result["replicas"] == 3


# --- waits --------------------------------------------------------------------------------------


def test_wait_measures_recovery_from_the_deletion(k8s: KubeCluster) -> None:
    deleted = actions.delete_pod(WORKERS, NAMESPACE)
    result = probes.wait_for_ready_pods(WORKERS, 3, NAMESPACE, timeout=60)
    assert result["ready"] == 3
    assert result["since_source"] == f"delete of pod {deleted['pod']}"
    assert result["since"] == deleted["deleted_at"]
    assert deleted["pod"] not in {p["name"] for p in result["pods"] if p["ready"]}
    # kwok makes pods Ready at once: recovery is a few seconds at most, never negative.
    assert 0 <= result["recovery_s"] <= 15
    assert result["observed_recovery_s"] is not None and result["observed_recovery_s"] >= 0


def test_wait_times_out_naming_the_pods_that_are_not_ready(k8s: KubeCluster) -> None:
    core = k8s.core()
    _take_one_worker_away(core)
    started = time.monotonic()
    with pytest.raises(ActivityFailed) as failed:
        probes.wait_for_ready_pods(WORKERS, 3, NAMESPACE, timeout=3)
    assert time.monotonic() - started < 10
    message = str(failed.value)
    assert "only 2 of 3 pods" in message
    pending = [
        p.metadata.name
        for p in core.list_namespaced_pod(NAMESPACE, label_selector=WORKERS).items
        if p.status.phase == "Pending"
    ]
    assert len(pending) == 1
    assert f"{pending[0]} (Pending, not scheduled: Unschedulable" in message


def test_wait_returns_when_the_condition_already_holds(k8s: KubeCluster) -> None:
    result = probes.wait_for_ready_pods(REDIS, 3, NAMESPACE, timeout=5, since=time.time())
    assert result["ready"] == 3 and result["waited_s"] < 3


# --- delete -------------------------------------------------------------------------------------


def test_delete_pod_by_name_and_its_replacement(k8s: KubeCluster) -> None:
    core = k8s.core()
    before = _worker_names(core)
    victim = sorted(before)[1]
    victim_node = core.read_namespaced_pod(victim, NAMESPACE).spec.node_name
    result = actions.delete_pod(WORKERS, NAMESPACE, name=victim)
    assert result["pod"] == victim and result["dry_run"] is False
    assert result["node"] == victim_node
    probes.wait_for_ready_pods(WORKERS, 3, NAMESPACE, timeout=60)
    after = _worker_names(core)
    assert victim not in after and len(after) == 3


def test_delete_pod_refuses_below_the_minimum(k8s: KubeCluster) -> None:
    before = _worker_names(k8s.core())
    with pytest.raises(ActivityFailed, match=r"only 2 Ready pods .* would remain"):
        actions.delete_pod(WORKERS, NAMESPACE, min_ready_remaining=3)
    assert _worker_names(k8s.core()) == before


def test_delete_pod_dry_run_changes_nothing(k8s: KubeCluster) -> None:
    before = _worker_names(k8s.core())
    first = actions.delete_pod(WORKERS, NAMESPACE, pick="random", seed=7, dry_run=True)
    again = actions.delete_pod(WORKERS, NAMESPACE, pick="random", seed=7, dry_run=True)
    assert first["dry_run"] is True and first["pod"] == again["pod"] and first["pod"] in before
    picks = {
        actions.delete_pod(WORKERS, NAMESPACE, pick="random", seed=s, dry_run=True)["pod"]
        for s in range(12)
    }
    assert len(picks) > 1  # the seed really changes the choice
    time.sleep(1)
    assert _worker_names(k8s.core()) == before


def test_oldest_pick_deletes_the_oldest_pod(k8s: KubeCluster) -> None:
    core = k8s.core()
    workers = ready_pods(core, WORKERS)
    oldest = min(workers, key=lambda p: (p.metadata.creation_timestamp, p.metadata.name))
    assert actions.delete_pod(WORKERS, NAMESPACE, dry_run=True)["pod"] == oldest.metadata.name


def test_destructive_actions_refuse_outside_the_allowed_contexts(k8s: KubeCluster) -> None:
    before = _worker_names(k8s.core())
    configuration = {"chaosray_allowed_contexts": ["prod-staging"]}
    with pytest.raises(ActivityFailed, match="not in chaosray_allowed_contexts"):
        actions.delete_pod(WORKERS, NAMESPACE, configuration=configuration)
    with pytest.raises(ActivityFailed, match="not in chaosray_allowed_contexts"):
        actions.cordon_node("node-a", configuration=configuration)
    assert _worker_names(k8s.core()) == before
    assert not k8s.core().read_node("node-a").spec.unschedulable
    allowed = {"chaosray_allowed_contexts": "kwok-chaosray-test"}
    assert actions.delete_pod(WORKERS, NAMESPACE, configuration=allowed, dry_run=True)


# --- sequential delete --------------------------------------------------------------------------


def test_sequential_delete_deletes_the_original_pods_in_order(k8s: KubeCluster) -> None:
    core = k8s.core()
    workers = sorted(
        ready_pods(core, WORKERS), key=lambda p: (p.metadata.creation_timestamp, p.metadata.name)
    )
    result = actions.delete_pods_sequentially(WORKERS, NAMESPACE, count=2, interval=2, min_ready=2)
    assert result["completed"] is True
    assert [s["pod"] for s in result["steps"]] == [p.metadata.name for p in workers[:2]]
    assert all(s["check"] == "passed" and s["min_ready_seen"] >= 2 for s in result["steps"])
    assert workers[2].metadata.name in _worker_names(core)  # the third was left alone


def test_sequential_delete_stops_when_the_minimum_is_violated(k8s: KubeCluster) -> None:
    core = k8s.core()
    for node in core.list_node().items:  # no replacement can be scheduled
        _cordon(core, node.metadata.name)
    before = _worker_names(core)
    first = min(
        ready_pods(core, WORKERS), key=lambda p: (p.metadata.creation_timestamp, p.metadata.name)
    )
    other = sorted(before - {first.metadata.name})[0]

    def second_disruption() -> None:  # someone else deletes a worker meanwhile
        time.sleep(1.5)
        core.delete_namespaced_pod(other, NAMESPACE)

    helper = threading.Thread(target=second_disruption)
    helper.start()
    try:
        with pytest.raises(ActivityFailed, match="sequence stopped after step 1: only 1 pods"):
            actions.delete_pods_sequentially(
                WORKERS, NAMESPACE, interval=4, min_ready=2, ready_timeout=1
            )
    finally:
        helper.join()
    assert before - _worker_names(core) == {first.metadata.name, other}


def test_sequential_delete_fails_naming_a_pod_someone_else_deleted_before_its_step(
    k8s: KubeCluster,
) -> None:
    core = k8s.core()
    first, second, third = sorted(
        ready_pods(core, WORKERS), key=lambda p: (p.metadata.creation_timestamp, p.metadata.name)
    )
    ours, theirs = first.metadata.name, second.metadata.name

    def deleted_by_someone_else() -> None:  # after step 1, before step 2
        wait_until(
            lambda: ours not in _worker_names(core), timeout=30, description="step 1's deletion"
        )
        core.delete_namespaced_pod(theirs, NAMESPACE, grace_period_seconds=0)

    helper = threading.Thread(target=deleted_by_someone_else)
    helper.start()
    try:
        with pytest.raises(ActivityFailed) as failed:
            actions.delete_pods_sequentially(WORKERS, NAMESPACE, count=2, interval=4)
    finally:
        helper.join()
    message = str(failed.value)
    assert message.startswith("sequence incomplete (completed: False): 1 of 2 planned deletions")
    assert f"step 2 ({theirs}: already gone)" in message
    assert f"step 1 ({ours}" not in message  # step 1 did happen
    assert third.metadata.name in _worker_names(core)  # never planned


def test_sequential_delete_refuses_more_than_max_pods(k8s: KubeCluster) -> None:
    before = _worker_names(k8s.core())
    with pytest.raises(ActivityFailed, match="more than max_pods=2"):
        actions.delete_pods_sequentially(WORKERS, NAMESPACE, interval=0, max_pods=2)
    assert _worker_names(k8s.core()) == before


# --- cordon ---------------------------------------------------------------------------------------


def test_uncordon_all_restores_exactly_the_nodes_we_cordoned(k8s: KubeCluster) -> None:
    core = k8s.core()
    _cordon(core, "node-b")  # someone else's cordon
    assert actions.cordon_node("node-a")["was_cordoned"] is False
    assert actions.cordon_node("node-b")["was_cordoned"] is True
    assert core.read_node("node-a").spec.unschedulable is True
    assert actions.uncordon_all() == {"uncordoned": ["node-a"], "dry_run": False}
    assert not core.read_node("node-a").spec.unschedulable
    assert CORDON_LABEL not in (core.read_node("node-a").metadata.labels or {})
    assert core.read_node("node-b").spec.unschedulable is True
    assert actions.uncordon_all()["uncordoned"] == []  # idempotent


# --- drain and PDBs -----------------------------------------------------------------------------


def test_pdb_check_refuses_a_second_disruption_and_evicts_nothing(k8s: KubeCluster) -> None:
    core = k8s.core()
    healthy = probes.pdb_blocks_disruption(WORKERS, NAMESPACE)
    assert healthy["refused"] is False  # 3 healthy, minAvailable 2: one may go
    assert len(ready_pods(core, WORKERS)) == 3  # dry run: nothing evicted
    _take_one_worker_away(core)
    before = _worker_names(core)
    blocked = probes.pdb_blocks_disruption(WORKERS, NAMESPACE)
    assert blocked["refused"] is True and blocked["status"] == 429
    assert "disruption budget" in blocked["message"]
    assert _worker_names(core) == before


def test_drain_evicts_the_node_and_reports_each_pod(k8s: KubeCluster) -> None:
    core = k8s.core()
    node = probes.node_running_pod(WORKERS, NAMESPACE)
    on_node = {
        f"{p.metadata.namespace}/{p.metadata.name}"
        for p in core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}").items
    }
    result = actions.drain_node(node, timeout=60, delete_emptydir_data=True)
    assert {p["pod"] for p in result["pods"]} == on_node
    assert all(p["evicted_at"] and p["terminated_s"] is not None for p in result["pods"])
    assert core.read_node(node).spec.unschedulable is True  # stays cordoned after success
    assert not core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}").items
    actions.uncordon_all()


def test_drain_retries_a_pdb_refusal_until_the_blocking_pod_is_ready(k8s: KubeCluster) -> None:
    core = k8s.core()
    victim = _take_one_worker_away(core)
    target = next(p for p in ready_pods(core, WORKERS)).spec.node_name
    free = [
        n.metadata.name
        for n in core.list_node().items
        if n.spec.unschedulable and n.metadata.name != victim.spec.node_name
    ]

    def unblock() -> None:
        time.sleep(4)
        for name in free:  # the pending replacement can now schedule and become Ready
            core.patch_node(name, {"spec": {"unschedulable": None}})

    helper = threading.Thread(target=unblock)
    helper.start()
    result = actions.drain_node(target, timeout=90, retry_interval=0.5, delete_emptydir_data=True)
    helper.join()
    worker = next(p for p in result["pods"] if "workers-worker" in p["pod"])
    assert worker["refusals"] >= 1 and worker["evicted_at"]
    assert result["duration_s"] >= 3


SPARE_NODE = "node-spare"
SPARE_TAINT = client.V1Taint(key="rig.chaosray/spare", value="true", effect="NoSchedule")


@pytest.fixture
def spare_node(k8s: KubeCluster) -> Iterator[str]:
    """A fifth kwok node, tainted so that only the pods of the test run there."""
    core = k8s.core()
    capacity = {"cpu": "8", "memory": "32Gi", "pods": "110"}
    core.create_node(
        client.V1Node(
            metadata=client.V1ObjectMeta(
                name=SPARE_NODE,
                annotations={"kwok.x-k8s.io/node": "fake"},
                labels={"kubernetes.io/hostname": SPARE_NODE, "type": "kwok"},
            ),
            spec=client.V1NodeSpec(taints=[SPARE_TAINT]),
            status=client.V1NodeStatus(allocatable=capacity, capacity=capacity),
        )
    )
    try:
        yield SPARE_NODE
    finally:
        core.delete_node(SPARE_NODE)


def _pod_on_spare_node(core: client.CoreV1Api, name: str, labels: dict[str, str]) -> None:
    pod = make_test_pod(name, labels=labels, node=SPARE_NODE)
    pod.spec.tolerations = [
        client.V1Toleration(key=SPARE_TAINT.key, operator="Exists", effect="NoSchedule")
    ]
    core.create_namespaced_pod(NAMESPACE, pod)


def _drain_while_someone_deletes_the_pdb_pod(core: client.CoreV1Api, pods: list[str]) -> Any:
    """Drain the spare node running ``pods``; the first is held by a PDB
    (every eviction refused) until someone else deletes it: its next eviction
    is answered 404. Returns the drain's result, or the ActivityFailed."""
    held = pods[0]
    for name in pods:
        _pod_on_spare_node(core, name, {"rig.chaosray/held": str(name == held).lower()})
    wait_until(
        lambda: {p.metadata.name for p in ready_pods(core, f"{TEST_POD_LABEL}=true")} == set(pods),
        timeout=30,
        description="the test pods Ready",
    )
    policy = client.PolicyV1Api(core.api_client)
    policy.create_namespaced_pod_disruption_budget(
        NAMESPACE,
        client.V1PodDisruptionBudget(
            metadata=client.V1ObjectMeta(name="held-pdb"),
            spec=client.V1PodDisruptionBudgetSpec(
                min_available=1,
                selector=client.V1LabelSelector(match_labels={"rig.chaosray/held": "true"}),
            ),
        ),
    )

    def deleted_by_someone_else() -> None:  # once the drain was refused at least once
        time.sleep(2)
        core.delete_namespaced_pod(held, NAMESPACE, grace_period_seconds=0)

    helper = threading.Thread(target=deleted_by_someone_else)
    helper.start()
    try:
        return actions.drain_node(SPARE_NODE, force=True, timeout=30, retry_interval=0.5)
    except ActivityFailed as exc:
        return exc
    finally:
        helper.join()
        policy.delete_namespaced_pod_disruption_budget("held-pdb", NAMESPACE)


def test_a_pod_gone_before_its_eviction_is_not_reported_evicted(
    k8s: KubeCluster, spare_node: str
) -> None:
    core = k8s.core()
    result = _drain_while_someone_deletes_the_pdb_pod(core, ["drain-gone", "drain-evicted"])
    assert not isinstance(result, ActivityFailed), result
    pods = {p["pod"]: p for p in result["pods"]}
    gone, evicted = pods[f"{NAMESPACE}/drain-gone"], pods[f"{NAMESPACE}/drain-evicted"]
    assert gone["evicted_at"] is None and gone["note"] == "already gone"
    assert gone["refusals"] >= 1 and gone["terminated_s"] is None
    assert evicted["evicted_at"] and evicted["terminated_s"] is not None
    statuses = {d["pod"]: d["status"] for d in result[contract.DISRUPTIONS_KEY] if d["pod"]}
    assert statuses == {f"{NAMESPACE}/drain-gone": "skipped", f"{NAMESPACE}/drain-evicted": "done"}
    actions.uncordon_all()


def test_a_drain_that_evicted_nothing_it_planned_fails_and_uncordons(
    k8s: KubeCluster, spare_node: str
) -> None:
    core = k8s.core()
    result = _drain_while_someone_deletes_the_pdb_pod(core, ["drain-gone"])
    assert isinstance(result, ActivityFailed), result
    assert str(result) == (
        f"drain of node {SPARE_NODE} failed: it evicted none of the 1 pods it planned to: "
        f"{NAMESPACE}/drain-gone already gone (deleted by someone else)"
    )
    assert not core.read_node(SPARE_NODE).spec.unschedulable


def test_drain_that_times_out_leaves_the_node_uncordoned(k8s: KubeCluster) -> None:
    core = k8s.core()
    _take_one_worker_away(core)
    target = next(p for p in ready_pods(core, WORKERS)).spec.node_name
    before = _worker_names(core)
    with pytest.raises(ActivityFailed, match=r"drain of node .* timed out; still not evicted"):
        actions.drain_node(target, timeout=3, retry_interval=0.5, delete_emptydir_data=True)
    node = core.read_node(target)
    assert not node.spec.unschedulable
    assert CORDON_LABEL not in (node.metadata.labels or {})
    assert _worker_names(core) == before  # every eviction was refused


def test_drain_dry_run_lists_pods_and_changes_nothing(k8s: KubeCluster) -> None:
    core = k8s.core()
    node = probes.node_running_pod(WORKERS, NAMESPACE)
    result = actions.drain_node(label_selector=WORKERS, namespace=NAMESPACE, dry_run=True)
    assert result["node"] == node and result["dry_run"] is True
    assert any("workers-worker" in p["pod"] for p in result["pods"])
    # A real drain would refuse the Ray pod's /dev/shm emptyDir without delete_emptydir_data.
    assert any(
        "workers-worker" in r["pod"] and "emptyDir data (shared-mem)" in r["reason"]
        for r in result["refused"]
    )
    assert not core.read_node(node).spec.unschedulable


def test_ctrl_c_in_the_middle_of_a_drain_is_rolled_back(k8s: KubeCluster, tmp_path: Path) -> None:
    core = k8s.core()
    _take_one_worker_away(core)
    target = next(p for p in ready_pods(core, WORKERS)).spec.node_name
    experiment = {
        "version": "1.0.0",
        "title": "drain interrupted",
        "description": "Ctrl-C while a drain waits on a PDB",
        "method": [
            {
                "type": "action",
                "name": "drain",
                "provider": {
                    "type": "python",
                    "module": "chaosray.k8s.actions",
                    "func": "drain_node",
                    # The drain must not clean up itself: the rollback has to.
                    "arguments": {
                        "name": target,
                        "timeout": 120,
                        "uncordon_on_failure": False,
                        "delete_emptydir_data": True,
                    },
                },
            }
        ],
        "rollbacks": [
            {
                "type": "action",
                "name": "uncordon-ours",
                "provider": {
                    "type": "python",
                    "module": "chaosray.k8s.actions",
                    "func": "uncordon_all",
                },
            }
        ],
        "runtime": {"rollbacks": {"strategy": "always"}},
    }

    def cordoned_by_drain() -> bool:
        return bool(core.read_node(target).spec.unschedulable)

    interrupter = threading.Thread(
        target=lambda: wait_until(cordoned_by_drain, timeout=60, description="drain started")
    )
    interrupter.start()
    run = run_experiment(
        experiment,
        tmp_path,
        interrupt_after=8,
        env={"KUBECONFIG": str(k8s.kubeconfig)},
    )
    interrupter.join()
    assert run.journal["status"] == "interrupted", run.console
    rollback = run.journal["rollbacks"][0]
    assert rollback["status"] == "succeeded"
    assert target in rollback["output"]["uncordoned"]
    assert not core.read_node(target).spec.unschedulable
    assert not core.list_node(label_selector=CORDON_LABEL).items


def test_node_running_pod_runs_a_worker(k8s: KubeCluster) -> None:
    node = probes.node_running_pod(WORKERS, NAMESPACE, pick="random", seed=3)
    assert node in {p.spec.node_name for p in ready_pods(k8s.core(), WORKERS)}


# --- where a drain goes, what it refuses -------------------------------------------------------


def _oldest_worker(core: client.CoreV1Api) -> Any:
    return min(
        ready_pods(core, WORKERS), key=lambda p: (p.metadata.creation_timestamp, p.metadata.name)
    )


def _pods_on(core: client.CoreV1Api, node: str) -> set[str]:
    return {
        f"{p.metadata.namespace}/{p.metadata.name}"
        for p in core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}").items
    }


def _pin_test_pod(core: client.CoreV1Api, name: str, node: str, labels: dict[str, str]) -> None:
    core.create_namespaced_pod(NAMESPACE, make_test_pod(name, labels, node))
    wait_until(
        lambda: core.read_namespaced_pod(name, NAMESPACE).spec.node_name == node,
        timeout=30,
        description=f"test pod {name} on {node}",
    )


def test_a_drain_by_selector_skips_the_node_of_the_avoided_pods_and_lists_its_neighbours(
    k8s: KubeCluster,
) -> None:
    core = k8s.core()
    oldest = _oldest_worker(core)
    # Something that must not be drained (the head, in the experiment) beside the oldest worker.
    _pin_test_pod(core, "keep-me", oldest.spec.node_name, {"keep": "me"})
    result = actions.drain_node(
        label_selector=WORKERS, namespace=NAMESPACE, avoid_label_selector="keep=me",
        delete_emptydir_data=True, dry_run=True,
    )  # fmt: skip
    assert result["node"] != oldest.spec.node_name
    assert result["node"] in {p.spec.node_name for p in ready_pods(core, WORKERS)}
    chosen = result["chosen_by"]
    assert chosen.startswith(f"{NAMESPACE}/") and "workers-worker" in chosen
    assert set(result["co_located"]) == _pods_on(core, result["node"]) - {chosen}
    assert (
        probes.node_running_pod(WORKERS, NAMESPACE, avoid_label_selector="keep=me")
        == (result["node"])
    )


def test_a_drain_with_nowhere_to_go_but_avoided_nodes_refuses(k8s: KubeCluster) -> None:
    core = k8s.core()
    for index, worker in enumerate(ready_pods(core, WORKERS)):
        _pin_test_pod(core, f"keep-{index}", worker.spec.node_name, {"keep": "me"})
    with pytest.raises(ActivityFailed, match="no node to drain without it"):
        actions.drain_node(
            label_selector=WORKERS, namespace=NAMESPACE, avoid_label_selector="keep=me"
        )
    assert not [n for n in core.list_node().items if n.spec.unschedulable]


def test_a_drain_refuses_unmanaged_and_emptydir_pods_unless_told_and_lists_them(
    k8s: KubeCluster,
) -> None:
    core = k8s.core()
    worker = _oldest_worker(core)
    node = worker.spec.node_name
    _pin_test_pod(core, "unmanaged", node, {})
    before = _pods_on(core, node)
    with pytest.raises(ActivityFailed) as refused:
        actions.drain_node(node, timeout=30)
    message = str(refused.value)
    assert "nothing changed" in message
    assert f"{NAMESPACE}/unmanaged: no controller would recreate it (force: true)" in message
    # KubeRay gives every Ray pod an emptyDir for /dev/shm.
    assert f"{NAMESPACE}/{worker.metadata.name}: emptyDir data (shared-mem)" in message
    assert not core.read_node(node).spec.unschedulable
    assert _pods_on(core, node) == before
    with pytest.raises(ActivityFailed, match="unmanaged: no controller") as still:
        actions.drain_node(node, timeout=30, delete_emptydir_data=True)
    assert "emptyDir" not in str(still.value)
    result = actions.drain_node(node, timeout=60, force=True, delete_emptydir_data=True)
    assert f"{NAMESPACE}/unmanaged" in {p["pod"] for p in result["pods"]}
    assert not _pods_on(core, node)
    actions.uncordon_all()


def test_the_spare_node_check_names_where_the_evicted_worker_can_go(k8s: KubeCluster) -> None:
    core = k8s.core()
    result = probes.spare_node_for_drain(WORKERS, NAMESPACE)
    target = result["node_to_drain"]
    assert target == probes.node_running_pod(WORKERS, NAMESPACE)
    assert result["ok"] is True and target not in result["fits"]
    others = {n.metadata.name for n in core.list_node().items} - {target}
    assert set(result["fits"]) | set(result["does_not_fit"]) == others
    for node in others:
        _cordon(core, node)
    with pytest.raises(ActivityFailed, match=f"draining {target} would leave .* nowhere to go"):
        probes.spare_node_for_drain(WORKERS, NAMESPACE, require=True)
    blocked = probes.spare_node_for_drain(WORKERS, NAMESPACE)
    assert blocked["ok"] is False and blocked["fits"] == []
    assert set(blocked["does_not_fit"].values()) == {"cordoned"}


def test_sequential_delete_refuses_a_deletion_that_would_leave_too_few_ready(
    k8s: KubeCluster,
) -> None:
    core = k8s.core()
    for node in core.list_node().items:  # no replacement can be scheduled
        _cordon(core, node.metadata.name)
    before = _worker_names(core)
    with pytest.raises(ActivityFailed, match=r"sequence stopped before step 2: deleting .* would "
                       r"leave 1 Ready pods") as stopped:  # fmt: skip
        actions.delete_pods_sequentially(
            WORKERS, NAMESPACE, interval=1, min_ready=2, ready_timeout=2
        )
    assert "after waiting 2s" in str(stopped.value)
    assert len(before - _worker_names(core)) == 1  # the second deletion never happened


def test_sequential_delete_waits_for_the_replacement_before_the_next_deletion(
    k8s: KubeCluster,
) -> None:
    core = k8s.core()
    result = actions.delete_pods_sequentially(
        WORKERS, NAMESPACE, count=2, interval=0, min_ready=2, ready_timeout=60
    )
    first, second = result["steps"]
    assert first["ready_before"] == 3
    # No pause between the steps: the second deletion waited for the first
    # replacement (3 Ready again), instead of leaving 1.
    assert second["ready_before"] == 3
    assert second["min_ready_seen"] >= 2
    assert len(ready_pods(core, WORKERS)) >= 2
