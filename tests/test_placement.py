"""The spare-node check honours required anti-affinity, node affinity and
topology spread (#21), each against the real scheduler's decision, on
the test cluster (real API server and scheduler, KubeRay, kwok nodes) with the
reference deployment of deploy/base: one worker a node, by a required
podAntiAffinity on kubernetes.io/hostname."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from chaoslib.exceptions import ActivityFailed
from kubernetes import client

from chaosray.k8s import probes
from chaosray.wait import wait_until
from tests.rig.kube import NAMESPACE, WORKERS, KubeCluster, make_test_pod, ready_pods


@pytest.fixture
def k8s(topology: KubeCluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[KubeCluster]:
    monkeypatch.setenv("KUBECONFIG", str(topology.kubeconfig))
    monkeypatch.delenv("KUBERNETES_CONTEXT", raising=False)
    yield topology


def test_a_node_that_already_runs_a_worker_is_no_spare_node(k8s: KubeCluster) -> None:
    core = k8s.core()
    worker_nodes = {p.spec.node_name: p.metadata.name for p in ready_pods(core, WORKERS)}
    result = probes.spare_node_for_drain(WORKERS, NAMESPACE)
    target = result["node_to_drain"]
    free = {n.metadata.name for n in core.list_node().items} - set(worker_nodes)
    assert free, "the reference topology has a node without a worker"
    # Only the nodes without a worker can take the evicted one.
    assert set(result["fits"]) == free
    for node, worker in worker_nodes.items():
        if node != target:
            assert result["does_not_fit"][node] == (
                f"required anti-affinity (kubernetes.io/hostname): {worker} already runs on {node}"
            )
    # With the free nodes cordoned, nothing is left: the drain would strand it
    # (a check without anti-affinity would list the other worker nodes here).
    for node in free:
        core.patch_node(node, {"spec": {"unschedulable": True}})
    with pytest.raises(ActivityFailed, match=f"draining {target} would leave .* nowhere to go"):
        probes.spare_node_for_drain(WORKERS, NAMESPACE, require=True)


def _spread_pod(name: str, max_skew: int, node: str | None = None) -> client.V1Pod:
    """A pod of app=spread-demo, spread by zone (DoNotSchedule) over nodes
    b, c and d only (required node affinity); ``node`` pins it there."""
    pod = make_test_pod(name, {"app": "spread-demo"})
    pod.spec.node_selector = None
    pod.spec.node_name = node
    term = client.V1NodeSelectorTerm(
        match_expressions=[
            client.V1NodeSelectorRequirement(
                key="kubernetes.io/hostname", operator="In", values=["node-b", "node-c", "node-d"]
            )
        ]
    )
    pod.spec.affinity = client.V1Affinity(
        node_affinity=client.V1NodeAffinity(
            required_during_scheduling_ignored_during_execution=client.V1NodeSelector(
                node_selector_terms=[term]
            )
        )
    )
    pod.spec.topology_spread_constraints = [
        client.V1TopologySpreadConstraint(
            max_skew=max_skew,
            topology_key="topology.kubernetes.io/zone",
            when_unsatisfiable="DoNotSchedule",
            label_selector=client.V1LabelSelector(match_labels={"app": "spread-demo"}),
        )
    ]
    return pod


@pytest.mark.parametrize("max_skew", [1, 2])
def test_the_spare_node_check_agrees_with_the_scheduler_on_topology_spread(
    k8s: KubeCluster, max_skew: int
) -> None:
    """Three pods spread by zone over nodes b (us-east-1b), c (1c) and d (1a);
    node a (1a) is outside their node affinity. Draining b leaves zone 1b an
    empty domain: with maxSkew 1 the evicted pod fits nowhere, with maxSkew 2
    on c or d. The real scheduler then places a copy of the evicted pod, and
    must agree."""
    core = k8s.core()
    for index, node in enumerate(("node-b", "node-c", "node-d")):
        if index:
            time.sleep(1.1)  # node-b's pod is the oldest: the node to drain
        core.create_namespaced_pod(NAMESPACE, _spread_pod(f"spread-{node}", max_skew, node))
    wait_until(
        lambda: len(ready_pods(core, "app=spread-demo")) == 3,
        timeout=60,
        description="the three spread pods Ready",
    )
    result = probes.spare_node_for_drain("app=spread-demo", NAMESPACE)
    assert result["node_to_drain"] == "node-b"
    assert result["does_not_fit"]["node-a"] == "required node affinity does not match"
    if max_skew == 1:
        assert result["fits"] == []
        for node in ("node-c", "node-d"):
            assert result["does_not_fit"][node].startswith(
                "topology spread (topology.kubernetes.io/zone, maxSkew 1): 1 matching pod(s)"
            ), result
    else:
        assert result["fits"] == ["node-c", "node-d"], result
    # What the scheduler makes of it: cordon b, delete its pod, and create the
    # copy its controller would.
    core.patch_node("node-b", {"spec": {"unschedulable": True}})
    core.delete_namespaced_pod("spread-node-b", NAMESPACE, grace_period_seconds=0)
    wait_until(
        lambda: (
            not core.list_namespaced_pod(
                NAMESPACE, field_selector="metadata.name=spread-node-b"
            ).items
        ),
        timeout=30,
        description="the drained pod gone",
    )
    core.create_namespaced_pod(NAMESPACE, _spread_pod("spread-again", max_skew))

    def decided() -> Any:
        pod = core.read_namespaced_pod("spread-again", NAMESPACE)
        scheduled = next((c for c in pod.status.conditions or [] if c.type == "PodScheduled"), None)
        return pod if pod.spec.node_name or (scheduled and scheduled.status == "False") else None

    pod = wait_until(decided, timeout=60, description="the scheduler's decision")
    if result["fits"]:
        assert pod.spec.node_name in result["fits"]
    else:
        assert pod.spec.node_name is None
        (scheduled,) = [c for c in pod.status.conditions if c.type == "PodScheduled"]
        assert "topology spread constraints" in scheduled.message, scheduled.message
