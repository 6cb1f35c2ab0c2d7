"""What the lab tests share: the lab's names, the machine state the lab may
change, clients, and waits for the reference deployment to be whole."""

from __future__ import annotations

import os
import subprocess
from typing import Any

import requests
from kubernetes import client, config

from chaosray.lab import host, lab, layout
from chaosray.ray import probes
from chaosray.wait import wait_until

LAB = layout.Lab(name="chaoslab-test")
NAMESPACE = "ray-serve"
CLUSTER = "ray-serve"
WORKERS = lab.WORKERS
HEAD = lab.HEAD
LAB_IMAGE = "lab.local/chaosray-ray:2.60.0"
RECOVERY_TIMEOUT = 420


def iptables_rules() -> list[str]:
    """What iptables-save shows that changes anything: each table's rules,
    user chains and built-in chains whose policy is not ACCEPT. A table a
    removed rule left loaded, with nothing in it, changes nothing (the
    seeded load balancer refusal inserts and deletes one rule)."""
    found: list[str] = []
    table = ""
    for line in host.run(["iptables-save"]).splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith("-A "):
            found.append(f"{table}: {line}")
        elif line.startswith(":"):
            chain, policy = [*line[1:].split(), "", ""][:2]
            if policy != "ACCEPT":
                found.append(f"{table}: chain {chain} {policy}")
    return found


def machine_state() -> dict[str, Any]:
    """What the lab may change on the machine, in the test session's own
    network namespace (where the lab's host end lives)."""
    return {
        "netns": sorted(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else [],
        "links": sorted(
            line.split(":")[1].strip().split("@")[0]
            for line in host.run(["ip", "-o", "link", "show"]).splitlines()
        ),
        "routes": host.run(["ip", "route", "show"]).splitlines(),
        "iptables": iptables_rules(),
        "mounts": [p for p in host.mounts_under(LAB.base_dir)],
        "processes": [p.pid for p in host.processes_mentioning(str(LAB.dir))],
        "cgroups": [str(p) for p in host.cgroups_left(LAB.cgroup_parent)],
        "sysctls": host.read_sysctls(layout.KUBELET_SYSCTLS),
        "var_lib_kubelet": layout.KUBELET_SHARED_DIR.exists(),
        "lab_dir": LAB.dir.exists(),
    }


def admin(the_lab: dict[str, str]) -> client.CoreV1Api:
    return client.CoreV1Api(config.new_client_from_config(config_file=the_lab["admin_kubeconfig"]))


def ready_pods(core: client.CoreV1Api, selector: str) -> list[Any]:
    return [
        p
        for p in core.list_namespaced_pod(NAMESPACE, label_selector=selector).items
        if lab._ready(p)
    ]


def ray_nodes() -> dict[str, Any]:
    return probes.ray_alive_nodes(cluster=CLUSTER, namespace=NAMESPACE)


def serve_replicas_by_node() -> dict[str, int]:
    """RUNNING replicas of the inference app per Ray node id, from the dashboard."""
    apps = probes.ray_serve_applications(cluster=CLUSTER, namespace=NAMESPACE)
    assert apps["all_running"], apps
    return dict(apps["replicas_per_node"])


def whole(core: client.CoreV1Api) -> bool:
    """3 Ready workers, a Ready head, 3 RUNNING replicas on 3 distinct nodes."""
    if len(ready_pods(core, WORKERS)) != 3 or len(ready_pods(core, HEAD)) != 1:
        return False
    replicas = serve_replicas_by_node()
    return len(replicas) == 3 and set(replicas.values()) == {1}


def wait_whole(core: client.CoreV1Api, what: str) -> None:
    wait_until(
        lambda: whole(core),
        timeout=RECOVERY_TIMEOUT,
        interval=1,
        max_interval=3,
        description=what,
        ignore=(Exception,),
    )


def serving(url: str, in_a_row: int = 20, timeout: float = 90) -> None:
    """Wait until ``in_a_row`` requests in a row answer through the
    LoadBalancer. After a pod moves, kube-proxy's rules can still send a
    connection to the gone pod's address for a while (seen in CI: "No route
    to host" after the drain, Ray and Kubernetes already whole); that lag is
    what #13/#15 measure, here it must end."""

    def answers() -> bool:
        return all(lab.inference_answers(url) for _ in range(in_a_row))

    wait_until(answers, timeout=timeout, interval=1, description=f"{in_a_row} answers in a row")


def exec_in(
    the_lab: dict[str, str], pod: str, container: str, *command: str
) -> subprocess.CompletedProcess[str]:
    """``kubectl exec`` as the admin (the token's RBAC is not under test here)."""
    kubectl = lab.Binaries.load().cluster["KUBECTL"]
    return subprocess.run(
        [kubectl, "--kubeconfig", the_lab["admin_kubeconfig"], "-n", NAMESPACE, "exec",
         pod, "-c", container, "--", *command],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def infer(url: str) -> dict[str, Any]:
    answer = requests.post(url, json={"text": "great and fast"}, timeout=5)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body
