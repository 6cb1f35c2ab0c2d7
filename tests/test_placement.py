"""The spare-node check honours the workers' required anti-affinity (#21), on
the test cluster (real API server and scheduler, KubeRay, kwok nodes) with the
reference deployment of deploy/base: one worker a node, by a required
podAntiAffinity on kubernetes.io/hostname."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosray.k8s import probes
from tests.rig.kube import NAMESPACE, WORKERS, KubeCluster, ready_pods


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
