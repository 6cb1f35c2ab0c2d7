"""The lab is real (issue #12, item 6): real kubelets, containerd and runc
run the KubeRay operator's pods, and what Kubernetes does to them is what
Ray sees. Nothing here plays a component: the tests act through chaosray's
own activities or the Kubernetes API, authenticated with the bearer token of
deploy/base/40-chaosray-rbac.yaml, and read Ray's own node table and Serve
status through the dashboard (through the API server's proxy).

The lab comes up once for the session (tests/lab/conftest.py); the last test
here proves ``down`` leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from chaosray.k8s import actions
from chaosray.lab import host, lab, network
from chaosray.redis import probes as redis_probes
from chaosray.wait import wait_until
from tests.chaos_cli import k6_control_experiment, run_experiment
from tests.lab.helpers import (
    LAB,
    LAB_IMAGE,
    NAMESPACE,
    WORKERS,
    admin,
    exec_in,
    infer,
    machine_state,
    ray_nodes,
    ready_pods,
    serve_replicas_by_node,
    serving,
    wait_whole,
)


def test_the_lab_needs_root_and_says_so() -> None:
    done = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            sys.executable,
            "-m",
            "chaosray.cli",
            "lab",
            "status",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "needs root" in done.stdout and "Traceback" not in done.stdout + done.stderr


def test_up_gives_four_real_nodes_and_inference_through_the_load_balancer(
    the_lab: dict[str, str], as_chaosray: client.CoreV1Api
) -> None:
    nodes = admin(the_lab).list_node().items
    assert sorted(n.metadata.name for n in nodes) == [n.name for n in LAB.nodes]
    for n in nodes:
        info = n.status.node_info
        assert info.container_runtime_version == "containerd://2.4.2"
        assert info.kubelet_version == "v1.34.12"
        assert n.metadata.labels["topology.kubernetes.io/zone"].startswith("lab-")
        assert "kwok.x-k8s.io/node" not in (n.metadata.annotations or {})
    # The network namespace has no way out.
    assert network.default_routes(LAB) == []
    # Inference through the LoadBalancer address, answered by 3 replicas on 3 workers.
    url = the_lab["inference_url"]
    assert url.startswith("http://198.19.200.")
    answered_by = {infer(url)["node_id"] for _ in range(60)}
    worker_ips = {p.status.pod_ip for p in ready_pods(as_chaosray, WORKERS)}
    table = ray_nodes()
    worker_ids = {
        n["node_id"] for n in table["nodes"] if n["state"] == "ALIVE" and n["node_ip"] in worker_ips
    }
    assert table["alive"] == 4 and table["head_alive"] is True
    assert len(worker_ids) == 3
    assert answered_by == worker_ids  # every worker's replica answered, and only they
    replicas = serve_replicas_by_node()
    assert set(replicas) == worker_ids and set(replicas.values()) == {1}
    worker_nodes = {p.spec.node_name for p in ready_pods(as_chaosray, WORKERS)}
    assert len(worker_nodes) == 3
    # The token's RBAC is deploy/'s, not the admin's.
    with pytest.raises(ApiException) as denied:
        as_chaosray.list_namespaced_secret(NAMESPACE)
    assert denied.value.status == 403


def lab_status() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaosray.cli", "lab", "--name", LAB.name, "status"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_status_says_every_part_runs(the_lab: dict[str, str]) -> None:
    done = lab_status()
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert all(line.startswith("ok ") for line in lines), done.stdout
    for part in ("network namespace", "control plane", "kube-proxy", "coredns", "lab-node-4",
                 "reference deployment", "inference"):  # fmt: skip
        assert any(part in line for line in lines), (part, done.stdout)
    assert the_lab["inference_url"] in done.stdout


def test_up_again_changes_nothing(the_lab: dict[str, str], as_chaosray: client.CoreV1Api) -> None:
    pods = {
        p.metadata.name: p.metadata.uid for p in as_chaosray.list_namespaced_pod(NAMESPACE).items
    }
    components = ("kubelet-1", "containerd-1", "kube-proxy", "coredns", "kuberay-operator")
    pids = {name: host.pid_of(LAB.pids, name) for name in components}
    assert all(pids.values()), pids
    started = time.monotonic()
    again = lab.up(LAB, print)
    assert time.monotonic() - started < 90
    assert again["inference_url"] == the_lab["inference_url"]
    # kube-proxy exits when its config file is written to, even unchanged
    # (CI saw Service rules frozen for the rest of the session): still the
    # same processes a few seconds after `up` returned.
    time.sleep(3)
    assert {name: host.pid_of(LAB.pids, name) for name in components} == pids
    assert {
        p.metadata.name: p.metadata.uid for p in as_chaosray.list_namespaced_pod(NAMESPACE).items
    } == pods


def test_cluster_dns_answers_cluster_names_and_nothing_else(the_lab: dict[str, str]) -> None:
    script = (
        "import socket\n"
        "print(socket.gethostbyname('redis-sentinel.ray-serve.svc.cluster.local'))\n"
        "for name in ('example.com', 'metadata.google.internal'):\n"
        "    try:\n"
        "        socket.gethostbyname(name); print('RESOLVED', name)\n"
        "    except socket.gaierror as exc:\n"
        "        print('nxdomain', name, exc.errno)\n"
    )
    done = exec_in(the_lab, "redis-0", "redis", "/opt/ray/bin/python3", "-c", script)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("198.19.1")  # a ClusterIP of the lab's Service range
    assert "RESOLVED" not in done.stdout
    assert sum(1 for line in lines if line.startswith("nxdomain")) == 2


def test_redis_is_one_primary_two_linked_replicas_and_agreeing_sentinels(
    the_lab: dict[str, str], as_chaosray: client.CoreV1Api
) -> None:
    """deploy/base's Redis can back GCS fault tolerance (the old three
    standalone servers reported three primaries), read by chaosray's own
    probe through the exec API with the token."""
    status = redis_probes.redis_replication_status(namespace=NAMESPACE, sentinel_port=26379)
    assert status["healthy"] is True, status["problems"]
    assert status["primaries"] == [status["primary"]] == [_redis_primary(the_lab)]
    assert sorted(status["replicas"]) == sorted(
        {"redis-0", "redis-1", "redis-2"} - {status["primary"]}
    )
    assert status["sentinels_agree"] is True and len(status["sentinels"]) == 3


def test_deleting_a_worker_pod_kills_its_raylet_and_the_replacement_joins_with_a_new_node_id(
    the_lab: dict[str, str], as_chaosray: client.CoreV1Api
) -> None:
    workers = ready_pods(as_chaosray, WORKERS)
    names = {p.metadata.name for p in workers}
    victim = sorted(workers, key=lambda p: p.metadata.creation_timestamp)[0]
    before = {n["node_ip"]: n["node_id"] for n in ray_nodes()["nodes"] if n["state"] == "ALIVE"}
    victim_id = before[victim.status.pod_ip]
    deleted = actions.delete_pod(WORKERS, namespace=NAMESPACE, name=victim.metadata.name)
    assert deleted["pod"] == victim.metadata.name
    # Ray itself sees the raylet gone: the old node id turns DEAD.
    wait_until(
        lambda: any(
            n["node_id"] == victim_id and n["state"] == "DEAD" for n in ray_nodes()["nodes"]
        ),
        timeout=120,
        description=f"node {victim_id[:8]} DEAD in Ray's node table",
        ignore=(Exception,),
    )
    wait_whole(as_chaosray, "KubeRay's replacement worker to join and serve")
    serving(the_lab["inference_url"])
    replacement = [p for p in ready_pods(as_chaosray, WORKERS) if p.metadata.name not in names]
    assert replacement, "no new worker pod"
    table = {n["node_ip"]: n for n in ray_nodes()["nodes"] if n["state"] == "ALIVE"}
    (new_pod,) = replacement
    new = table[new_pod.status.pod_ip]
    assert new["node_id"] not in before.values()
    assert infer(the_lab["inference_url"])["result"] == "ok"


def _redis_primary(the_lab: dict[str, str]) -> str:
    done = exec_in(the_lab, "redis-0", "sentinel", "redis-cli", "-p", "26379",
                   "sentinel", "get-master-addr-by-name", "mymaster")  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.split(".")[0]  # redis-N.redis.ray-serve.svc.cluster.local


def test_a_k6_job_pod_runs_for_real_and_its_summary_is_read_from_its_log(
    the_lab: dict[str, str], as_chaosray: client.CoreV1Api, tmp_path: Path
) -> None:
    wait_whole(as_chaosray, "the deployment whole before the load")
    serving(the_lab["inference_url"])
    args = {
        "mode": "job",
        "namespace": NAMESPACE,
        "image": LAB_IMAGE,
        "rate": 5,
        "target_url": "http://ray-serve-nlb.ray-serve.svc.cluster.local",
        "start_timeout": 180,
    }
    env = {**os.environ, "KUBECONFIG": the_lab["kubeconfig"]}
    run = run_experiment(k6_control_experiment(args, 8), tmp_path, env=env)
    assert run.returncode == 0, run.log
    result = run.journal["chaosray"]["k6"]
    assert result["mode"] == "job" and result["status"] == "passed", result
    assert result["api_route"] == "pod proxy"  # a real pod IP the API server reaches
    assert result["requests"] >= 5 * 5
    # The k6 pod reaches the Service by its ClusterIP; one CI run saw 4.5 %
    # failures here right after the head delete (the same endpoint lag).
    assert result["success_rate"] >= 0.95, result
    assert result["latency_ms"]["p50"] > 0
    leftover = as_chaosray.list_namespaced_pod(
        NAMESPACE, label_selector="app.kubernetes.io/name=k6"
    ).items
    assert leftover == [] or all(p.metadata.deletion_timestamp for p in leftover)


def test_down_leaves_nothing_behind(the_lab: dict[str, str], before: dict[str, Any]) -> None:
    running = machine_state()
    assert running["netns"] != before["netns"] and running["processes"]
    # The kubelets may have changed the machine's sysctls; what down will
    # restore is the machine's own state, recorded before any kubelet ran.
    recorded = json.loads(LAB.sysctl_record.read_text())["sysctls"]
    assert recorded == before["sysctls"], (recorded, before["sysctls"])
    started = time.monotonic()
    lab.down(LAB, print)
    print(f"lab down in {time.monotonic() - started:.0f}s")
    after = machine_state()
    down_status = lab_status()
    assert down_status.returncode == 1
    assert "DOWN network namespace" in down_status.stdout.replace("  ", " ")
    for key in before:
        assert after[key] == before[key], f"{key}: before {before[key]!r}, after {after[key]!r}"
    assert not any(
        "chaoslab-test" in " ".join(p.cmdline())
        for p in psutil.process_iter()
        if p.pid != os.getpid()
    )
    print(json.dumps({k: len(v) if isinstance(v, list) else v for k, v in after.items()}))
