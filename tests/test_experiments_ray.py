"""redis-delete and head-delete end to end: `chaos run` against the test
cluster (pods, KubeRay, deletion), with the real local Ray cluster as the
data plane (its dashboard, its Serve proxies, its head restarted on the same
GCS Redis) and real redis-server processes for replication."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.chaos_cli import ChaosRun, run_experiment
from tests.rig.http_server import ScheduledServer
from tests.rig.kube import NAMESPACE, KubeCluster
from tests.rig.procs import free_port
from tests.rig.ray_cluster import LocalRayCluster
from tests.rig.ray_pods import RIG_CLUSTER, RIG_HEAD, new_head_pod, stand_in_pods
from tests.rig.redis import RedisSentinelSet

pytestmark = pytest.mark.slow

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
FAST = {"baseline_s": 1.0, "observe_s": 2.0, "monitor_duration_s": 6.0, "load_rate": 10}


def _run(
    name: str, cluster: KubeCluster, tmp_path: Path, configuration: dict[str, Any]
) -> ChaosRun:
    var_file = tmp_path / "vars.json"
    var_file.write_text(json.dumps({"configuration": {**FAST, **configuration}}))
    return run_experiment(
        json.loads((EXPERIMENTS / f"{name}.json").read_text()),
        tmp_path,
        extra_args=("--var-file", str(var_file)),
        env={"KUBECONFIG": str(cluster.kubeconfig)},
        timeout=400,
    )


def _redis_configuration(
    ray_cluster: LocalRayCluster, ha: RedisSentinelSet, server: ScheduledServer
) -> dict[str, Any]:
    servers = [ha.primary, *ha.replicas]
    return {
        "inference_url": server.url,
        "redis_mode": "direct",
        "redis_addresses": {f"redis-{i}": f"{s.host}:{s.port}" for i, s in enumerate(servers)},
        "ray_dashboard_url": ray_cluster.dashboard_url,
        "expected_ray_nodes": 4,
        "redis_rejoin_timeout_s": 30.0,
    }


def test_redis_delete_passes_while_ray_stays_operational(
    topology: KubeCluster,
    ray_cluster: LocalRayCluster,
    redis_sentinel_set: RedisSentinelSet,
    scheduled_server: ScheduledServer,
    tmp_path: Path,
) -> None:
    configuration = _redis_configuration(ray_cluster, redis_sentinel_set, scheduled_server)
    run = _run("redis-delete", topology, tmp_path, configuration)
    assert run.returncode == 0, run.console
    deleted = run.run_entry("delete-one-redis-pod")["output"]["pod"]
    assert deleted.startswith("redis-")
    operational = run.run_entry("ray-stays-operational")["output"]
    assert operational == {"operational": True, "alive": 4, "all_running": True, "reason": None}
    rejoin = run.run_entry("redis-rejoins")["output"]
    assert rejoin["ready_wait"]["since_source"] == f"delete of pod {deleted}"
    assert rejoin["replication"]["healthy"] is True


def test_redis_delete_fails_when_ray_is_not_reachable(
    topology: KubeCluster,
    ray_cluster: LocalRayCluster,
    redis_sentinel_set: RedisSentinelSet,
    scheduled_server: ScheduledServer,
    tmp_path: Path,
) -> None:
    configuration = _redis_configuration(ray_cluster, redis_sentinel_set, scheduled_server)
    configuration["ray_dashboard_url"] = f"http://127.0.0.1:{free_port()}"
    run = _run("redis-delete", topology, tmp_path, configuration)
    assert run.returncode == 1
    reasons = " ".join(run.journal["chaosray"]["verdict"]["reasons"])
    assert "ray-stays-operational failed: Ray is not operational" in reasons


def _head_configuration(ray_cluster: LocalRayCluster, **extra: Any) -> dict[str, Any]:
    worker_url = next(iter(ray_cluster.worker_proxy_urls.values()))
    return {
        "ray_cluster": RIG_CLUSTER,
        "inference_url": worker_url,
        "inference_method": "GET",
        "ray_dashboard_url": ray_cluster.dashboard_url,
        "head_ready_timeout_s": 90.0,
        "monitor_duration_s": 20.0,
        **extra,
    }


def _replace_the_head_when_deleted(
    topology: KubeCluster, ray_cluster: LocalRayCluster, new_name: str
) -> threading.Thread:
    """Play KubeRay and the kubelet: once the head pod is deleted, the Ray head
    dies; a new head pod comes up and Ray's head restarts on the same Redis."""
    core = topology.core()

    def replace() -> None:
        deadline = time.time() + 120
        while time.time() < deadline:
            if not core.list_namespaced_pod(NAMESPACE, label_selector=RIG_HEAD).items:
                break
            time.sleep(0.2)
        ray_cluster.kill_head()
        time.sleep(2)
        # The pod turns Ready as Ray's head starts: the workers reconnect after.
        new_head_pod(core, ray_cluster, new_name)
        ray_cluster.restart_head()

    thread = threading.Thread(target=replace, daemon=True)
    thread.start()
    return thread


def test_head_delete_measures_recovery_and_reconnection(
    topology: KubeCluster, ray_cluster: LocalRayCluster, tmp_path: Path
) -> None:
    core = topology.core()
    stand_in_pods(core, ray_cluster)
    helper = _replace_the_head_when_deleted(topology, ray_cluster, "rig-ray-head-new")
    run = _run("head-delete", topology, tmp_path, _head_configuration(ray_cluster))
    helper.join(timeout=180)
    assert run.returncode == 0, run.console
    recovery = run.run_entry("head-ready-and-workers-reconnect")["output"]
    assert recovery["zombies"] == [] and recovery["alive"] == 3
    assert recovery["head"]["since_source"] == "delete of pod rig-ray-head-0"
    assert 0 < recovery["head_ready_s"] < 90
    assert 0 <= recovery["workers_reconnect_s"] < 60
    monitor = run.run_entry("availability-monitor")["output"]
    assert monitor["success_rate"] == 1.0  # GCS fault tolerance: workers kept serving


def test_head_delete_fails_when_workers_do_not_reconnect_in_time(
    topology: KubeCluster, ray_cluster: LocalRayCluster, tmp_path: Path
) -> None:
    core = topology.core()
    stand_in_pods(core, ray_cluster)
    helper = _replace_the_head_when_deleted(topology, ray_cluster, "rig-ray-head-late")
    configuration = _head_configuration(ray_cluster, reconnect_timeout_s=0.5)
    run = _run("head-delete", topology, tmp_path, configuration)
    helper.join(timeout=180)
    assert run.returncode == 1
    reasons = " ".join(run.journal["chaosray"]["verdict"]["reasons"])
    assert "workers did not reconnect within 0.5s" in reasons
    # Let the workers come back for whatever runs next.
    ray_cluster.wait_workers_reconnected(since=time.time() - 60, timeout=120)
