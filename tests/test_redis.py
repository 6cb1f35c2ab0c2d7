"""Redis probes: the pods come from the test cluster, the Redis servers they
stand for are real redis-server processes (primary, 2 replicas, 3 Sentinels)
reached in `direct` mode."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chaoslib.exceptions import ActivityFailed
from kubernetes import client

from chaosray.k8s import placement
from chaosray.k8s import probes as k8s_probes
from chaosray.redis import probes
from chaosray.wait import wait_until
from tests.rig.kube import (
    HEAD,
    NAMESPACE,
    REDIS,
    WORKERS,
    KubeCluster,
    make_test_pod,
    ready_pods,
)
from tests.rig.procs import free_port
from tests.rig.redis import RedisSentinelSet, start_redis, start_redis_sentinel_set
from tests.test_causes import _entry, _stream, _summarized


@pytest.fixture
def k8s(topology: KubeCluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[KubeCluster]:
    monkeypatch.setenv("KUBECONFIG", str(topology.kubeconfig))
    yield topology


def _addresses(ha: RedisSentinelSet) -> dict[str, str]:
    servers = [ha.primary, *ha.replicas]
    return {f"redis-{i}": f"{s.host}:{s.port}" for i, s in enumerate(servers)}


def _sentinels(ha: RedisSentinelSet) -> dict[str, str]:
    return {f"sentinel-{i}": f"{s.host}:{s.port}" for i, s in enumerate(ha.sentinels)}


def _status(ha: RedisSentinelSet, **extra: Any) -> dict[str, Any]:
    return probes.redis_replication_status(
        NAMESPACE,
        REDIS,
        mode="direct",
        addresses=_addresses(ha),
        sentinel_addresses=_sentinels(ha),
        sentinel_master=ha.master_name,
        **extra,
    )


def test_healthy_replication(k8s: KubeCluster, redis_sentinel_set: RedisSentinelSet) -> None:
    status = _status(redis_sentinel_set)
    assert status["problems"] == []
    assert status["healthy"] is True
    assert status["primary"] == "redis-0"
    primary = redis_sentinel_set.primary
    assert status["replicas"] == {
        "redis-1": {"link": "up", "master": f"{primary.host}:{primary.port}"},
        "redis-2": {"link": "up", "master": f"{primary.host}:{primary.port}"},
    }
    assert status["connected_replicas"] == 2
    assert set(status["sentinels"].values()) == {f"{primary.host}:{primary.port}"}


def test_failover_is_seen(k8s: KubeCluster, tmp_path: Path) -> None:
    ha = start_redis_sentinel_set(tmp_path)
    try:
        ha.primary.stop()

        def promoted_and_agreed() -> dict[str, Any] | None:
            # Sentinel elects a leader, promotes, then re-points the other
            # replica; a vote split retries after 2 x failover-timeout (10 s).
            status = _status(ha)
            return status if status["primary"] and status["sentinels_agree"] else None

        status = wait_until(
            promoted_and_agreed, timeout=60, description="one promoted primary", max_interval=0.5
        )
        assert status["healthy"] is False
        assert any(p.startswith("redis-0: Redis at") for p in status["problems"])
        promoted = status["primary"]
        assert promoted in {"redis-1", "redis-2"}
        address = _addresses(ha)[str(promoted)]
        assert set(status["sentinels"].values()) == {address}
    finally:
        ha.stop()


def test_wrong_password_is_a_clear_error(k8s: KubeCluster, tmp_path: Path) -> None:
    server = start_redis(tmp_path, password="s3cret-pw")
    try:
        addresses = {f"redis-{i}": f"{server.host}:{server.port}" for i in range(3)}
        with pytest.raises(ActivityFailed, match="refused the password") as failed:
            probes.redis_replication_status(
                NAMESPACE,
                REDIS,
                mode="direct",
                addresses=addresses,
                secrets={"redis_password": "wrong-pw"},
            )
        assert "wrong-pw" not in str(failed.value) and "s3cret" not in str(failed.value)
        ok = probes.redis_replication_status(
            NAMESPACE,
            REDIS,
            mode="direct",
            addresses=addresses,
            secrets={"redis_password": "s3cret-pw"},
        )
        # Three "pods" on one primary with no replicas: three primaries.
        assert ok["primaries"] == ["redis-0", "redis-1", "redis-2"]
        assert "3 primaries" in ok["problems"][0]
    finally:
        server.stop()


def test_statefulset_health(k8s: KubeCluster) -> None:
    health = probes.redis_statefulset_health("redis", NAMESPACE)
    assert health == {
        "ready": True,
        "replicas": 3,
        "ready_replicas": 3,
        "ready_pods": ["redis-0", "redis-1", "redis-2"],
    }


def test_rejoin_after_a_pod_is_replaced(
    k8s: KubeCluster, redis_sentinel_set: RedisSentinelSet
) -> None:
    from chaosray.k8s.actions import delete_pod

    delete_pod(REDIS, NAMESPACE, name="redis-1")
    result = probes.wait_for_redis_rejoin(
        NAMESPACE,
        REDIS,
        count=3,
        timeout=60,
        mode="direct",
        addresses=_addresses(redis_sentinel_set),
    )
    assert result["replication"]["healthy"] is True
    assert result["ready_wait"]["since_source"] == "delete of pod redis-1"
    assert 0 <= result["recovery_s"] <= 30
    assert result["rejoin_s"] >= result["ready_wait"]["observed_recovery_s"] - 1


def test_deleting_the_primary_gives_the_causes_its_role(
    k8s: KubeCluster, redis_sentinel_set: RedisSentinelSet
) -> None:
    """The real action against the test cluster and the real Redis servers:
    the role goes into the disruption block the report reads, and the GCS
    rule fires on the journal that output makes (the head NotReady 12 s
    after the primary's deletion, requests failing 5 s later)."""
    from chaosray import contract
    from chaosray.metrics import to_epoch
    from chaosray.redis.actions import delete_redis_pod

    addresses = _addresses(redis_sentinel_set)
    output = delete_redis_pod(
        role="primary", namespace=NAMESPACE, label_selector=REDIS, mode="direct",
        addresses=addresses,
    )  # fmt: skip
    try:
        assert output["pod"] == "redis-0" and output["role"] == "primary"
        (block,) = output[contract.DISRUPTIONS_KEY]
        assert block["pod"] == "redis-0" and block["status"] == "done"
        assert block["details"]["role"] == "primary"
        assert block["details"]["primary_before"] == "redis-0"
        deleted = to_epoch(block["at"])
        head_down = [{"t": deleted + 12.0, "group": "head", "pod": "h-0", "event": "not_ready"}]
        run = [
            _entry("chaosray.load.probes", "monitor_availability",
                   _stream(17.0, 22.0, 503, "HTTP 503", base=deleted), -30.0, base=deleted),
            _entry("chaosray.redis.actions", "delete_redis_pod", output, 0.0, base=deleted),
        ]  # fmt: skip
        (window,) = _summarized(run, head_down, ["head", "redis", "workers"], base=deleted)
        (hint,) = window["hints"]
        assert hint["rule"] == "gcs-stops-on-redis-primary-change"
        assert [e["text"] for e in hint["evidence"]] == ["delete of redis-0", "pod h-0 not_ready"]
    finally:
        probes.wait_for_redis_rejoin(
            NAMESPACE, REDIS, count=3, timeout=60, mode="direct", addresses=addresses
        )


def test_rejoin_timeout_names_what_is_wrong(
    k8s: KubeCluster, redis_sentinel_set: RedisSentinelSet
) -> None:
    addresses = _addresses(redis_sentinel_set)
    addresses["redis-2"] = f"127.0.0.1:{free_port()}"  # nothing answers there
    # Timed from now (an earlier test's deletion is long past its 2 s).
    expected = r"did not rejoin within 2s of the time given as since: redis-2: Redis at"
    with pytest.raises(ActivityFailed, match=expected):
        probes.wait_for_redis_rejoin(
            NAMESPACE, REDIS, count=3, timeout=2, mode="direct", addresses=addresses,
            since=time.time(),
        )  # fmt: skip


def test_bad_mode_and_missing_address(k8s: KubeCluster) -> None:
    with pytest.raises(ActivityFailed, match="mode must be 'exec' or 'direct'"):
        probes.redis_replication_status(NAMESPACE, REDIS, mode="telnet")
    with pytest.raises(ActivityFailed, match="no address given for pod 'redis-0'"):
        probes.redis_replication_status(NAMESPACE, REDIS, mode="direct", addresses={})


def test_exec_mode_runs_redis_cli_through_the_kubernetes_exec_api(
    k8s: KubeCluster, tmp_path: Path
) -> None:
    """The default mode, end to end: the API server's exec (a websocket to
    kwok, which runs the command on this machine for the pods a ClusterExec
    names) runs the real redis-cli against a real, password-protected
    redis-server. The password comes from the "container's" REDIS_PASSWORD
    and never passes through chaosray. All three pods reach the same server
    here, so all three report the primary role."""
    server = start_redis(tmp_path, password="exec-pw")
    custom = client.CustomObjectsApi(k8s.api())
    body = {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "ClusterExec",
        "metadata": {"name": "rig-redis-exec"},
        "spec": {
            "selector": {"matchNamespaces": [NAMESPACE]},
            "execs": [
                {
                    "local": {
                        "workDir": str(tmp_path),
                        "envs": [{"name": "REDIS_PASSWORD", "value": "exec-pw"}],
                    }
                }
            ],
        },
    }
    custom.create_cluster_custom_object("kwok.x-k8s.io", "v1alpha1", "clusterexecs", body)
    try:

        def answered() -> dict[str, Any] | None:
            status = probes.redis_replication_status(
                NAMESPACE, REDIS, mode="exec", port=server.port
            )
            return status if len(status["primaries"]) == 3 else None

        status = wait_until(answered, timeout=30, description="redis-cli answers through exec")
        assert status["primaries"] == ["redis-0", "redis-1", "redis-2"]
        assert status["problems"] == ["3 primaries (redis-0, redis-1, redis-2); expected 1"]
        assert status["healthy"] is False
    finally:
        custom.delete_cluster_custom_object(
            "kwok.x-k8s.io", "v1alpha1", "clusterexecs", "rig-redis-exec"
        )
        server.stop()


def test_drains_spare_the_redis_primarys_node(k8s: KubeCluster, tmp_path: Path) -> None:
    """Three stand-in "Redis pods" (test pods), the primary's on the very node
    a drain would take; redis_primary_node makes every later drain choice
    spare it."""
    core = k8s.core()
    target = k8s_probes.node_running_pod(WORKERS, NAMESPACE, avoid_label_selector=HEAD)
    others = sorted(n.metadata.name for n in core.list_node().items if n.metadata.name != target)
    selector = "app=redis-under-test"
    for name, node in (("rtest-0", target), ("rtest-1", others[0]), ("rtest-2", others[1])):
        core.create_namespaced_pod(
            NAMESPACE, make_test_pod(name, {"app": "redis-under-test"}, node=node)
        )
    wait_until(
        lambda: len(ready_pods(core, selector)) == 3, timeout=60, description="3 test pods Ready"
    )
    primary = start_redis(tmp_path, "primary")
    replicas = [start_redis(tmp_path, f"replica-{i}", replica_of=primary) for i in (1, 2)]
    servers = [primary, *replicas]
    addresses = {f"rtest-{i}": f"{s.host}:{s.port}" for i, s in enumerate(servers)}
    try:
        found = probes.redis_primary_node(NAMESPACE, selector, mode="direct", addresses=addresses)
        assert found == {"primary": "rtest-0", "node": target, "spared_in_drains": True}
        assert k8s_probes.node_running_pod(WORKERS, NAMESPACE, avoid_label_selector=HEAD) != target
        check = k8s_probes.spare_node_for_drain(WORKERS, NAMESPACE, avoid_label_selector=HEAD)
        assert check["node_to_drain"] != target
        # Without sparing, a drain takes the primary's node again.
        probes.redis_primary_node(
            NAMESPACE, selector, mode="direct", addresses=addresses, spare_in_drains=False
        )
        placement.spare_in_drains("redis primary", None)
        assert k8s_probes.node_running_pod(WORKERS, NAMESPACE, avoid_label_selector=HEAD) == target
        # mode none (no Redis chaosray may reach) forgets what was spared.
        probes.redis_primary_node(NAMESPACE, selector, mode="direct", addresses=addresses)
        none = probes.redis_primary_node(NAMESPACE, selector, mode="none")
        assert none == {"primary": None, "node": None, "spared_in_drains": False}
        assert k8s_probes.node_running_pod(WORKERS, NAMESPACE, avoid_label_selector=HEAD) == target
        # No single primary: refused, naming why.
        two = {**addresses, "rtest-1": addresses["rtest-0"]}
        with pytest.raises(ActivityFailed, match="no single Redis primary among"):
            probes.redis_primary_node(NAMESPACE, selector, mode="direct", addresses=two)
    finally:
        placement.spare_in_drains("redis primary", None)
        for server in reversed(servers):
            server.stop()
