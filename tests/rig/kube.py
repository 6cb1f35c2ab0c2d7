"""A real Kubernetes control plane for the tests (README.md, "The test
Kubernetes cluster").

kube-apiserver, etcd, kube-controller-manager and kube-scheduler built from
the Go module proxy by ``scripts/cluster-binaries.sh``, started by kwokctl's
binary runtime; kwok-controller plays the kubelets of four fake nodes (it
makes scheduled pods Running and Ready, and finishes deletions). The real
KubeRay operator runs against it, and a tiny load-balancer controller
(``lb_controller.py``) publishes Service ingress addresses.

``CHAOSRAY_TEST_KUBECONFIG`` points the tests at an existing cluster instead
(kind on a laptop, say): nothing is started or stopped then, and that cluster
must run the KubeRay operator and publish LoadBalancer addresses itself.

Command line for humans: ``python -m tests.rig.kube up|down|status``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import psutil
from kubernetes import client, config

from chaosray.lab.kubeconfig import write_token_kubeconfig
from chaosray.wait import WaitTimeout, wait_until
from tests.rig.kwok_extras import write_kwokctl_config
from tests.rig.procs import ComponentFailed, ManagedProcess

REPO = Path(__file__).resolve().parents[2]
DEPLOY_DIR = REPO / "deploy" / "base"
NODES_MANIFEST = REPO / "tests" / "cluster" / "nodes.yaml"
CACHE = Path(os.environ.get("CHAOSRAY_CACHE", Path.home() / ".cache" / "chaosray"))
BIN_ENV = CACHE / "cluster-bin.env"
HUMAN_CLUSTER_DIR = CACHE / "cluster"
CLUSTER_NAME = "chaosray-test"
NAMESPACE = "ray-serve"
EXISTING_ENV = "CHAOSRAY_TEST_KUBECONFIG"
POD_CIDR = "127.20.0.0/16"


def binaries() -> dict[str, str]:
    """The binaries ``scripts/cluster-binaries.sh`` built (its env file)."""
    if not BIN_ENV.exists():
        raise ComponentFailed(
            f"{BIN_ENV} does not exist: build the control plane first with "
            "`make cluster-binaries` (or set CHAOSRAY_TEST_KUBECONFIG to use an existing cluster)"
        )
    found = {}
    for line in BIN_ENV.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            found[key.strip()] = value.strip()
    for key in ("KWOKCTL", "KWOK", "ETCD", "KUBE_APISERVER", "KUBECTL", "KUBERAY_OPERATOR"):
        if not Path(found.get(key, "")).is_file():
            raise ComponentFailed(f"{key} missing from {BIN_ENV}: rerun `make cluster-binaries`")
    return found


@dataclass
class KubeCluster:
    kubeconfig: Path
    work_dir: Path
    owned: bool
    bins: dict[str, str] = field(default_factory=dict)
    helpers: list[ManagedProcess] = field(default_factory=list)

    def api(self) -> client.ApiClient:
        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api())

    def kubectl(self, *args: str, check: bool = True, input: str | None = None) -> str:
        kubectl = self.bins.get("KUBECTL") or "kubectl"
        done = subprocess.run(
            [kubectl, "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=120,
            input=input,
            env={**os.environ, "KUBECACHEDIR": str(self.work_dir / "kubectl-cache")},
        )
        if check and done.returncode != 0:
            raise ComponentFailed(f"kubectl {' '.join(args)} failed: {done.stderr or done.stdout}")
        return done.stdout

    def leftovers(self) -> list[psutil.Process]:
        """Processes still running from this cluster's work dir."""
        marker = str(self.work_dir)
        left = []
        for proc in psutil.process_iter(["cmdline", "status"]):
            try:
                cmd = " ".join(proc.info["cmdline"] or [])
                if marker in cmd and proc.info["status"] != psutil.STATUS_ZOMBIE:
                    left.append(proc)
            except psutil.NoSuchProcess:
                continue
        return left

    def stop(self) -> None:
        if not self.owned:
            return
        for helper in reversed(self.helpers):
            helper.stop()
        kwokctl = self.bins["KWOKCTL"]
        subprocess.run(
            [kwokctl, "delete", "cluster", "--name", CLUSTER_NAME,
             "--kubeconfig", str(self.kubeconfig)],
            env={**os.environ, "KWOK_WORKDIR": str(self.work_dir / "kwok")},
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        for proc in self.leftovers():  # kwokctl kills by pid file; be sure
            proc.kill()
        wait_until(
            lambda: not self.leftovers(), timeout=15, description="cluster processes to exit"
        )


def _wait(check: Callable[[], Any], timeout: float, what: str) -> None:
    try:
        wait_until(check, timeout=timeout, description=what, ignore=(Exception,))
    except WaitTimeout as exc:
        raise ComponentFailed(str(exc)) from None


def _advertise_address() -> list[str]:
    """In the tests' network namespace (scripts/contained.sh) there is no
    default route, from which kube-apiserver would take the address it
    advertises: give it the session's own address instead."""
    address = os.environ.get("CHAOSRAY_SESSION_ADDRESS")
    return ["--extra-args", f"kube-apiserver=advertise-address={address}"] if address else []


def start_cluster(work_dir: Path) -> KubeCluster:
    """Start the control plane, the fake nodes, KubeRay and the LB controller."""
    existing = os.environ.get(EXISTING_ENV)
    if existing:
        cluster = KubeCluster(Path(existing), work_dir, owned=False)
        cluster.core().list_namespace(_request_timeout=10)
        return cluster
    bins = binaries()
    work_dir.mkdir(parents=True, exist_ok=True)
    kubeconfig = work_dir / "kwok" / "clusters" / CLUSTER_NAME / "kubeconfig.yaml"
    cluster = KubeCluster(kubeconfig, work_dir, owned=True, bins=bins)
    env = {**os.environ, "KWOK_WORKDIR": str(work_dir / "kwok")}
    write_kwokctl_config(work_dir / "kwok")  # pod logs and port-forwards through kwok
    argv = [
        bins["KWOKCTL"], "create", "cluster", "--name", CLUSTER_NAME, "--runtime", "binary",
        "--kube-apiserver-binary", bins["KUBE_APISERVER"],
        "--kube-controller-manager-binary", bins["KUBE_CONTROLLER_MANAGER"],
        "--kube-scheduler-binary", bins["KUBE_SCHEDULER"],
        "--kwok-controller-binary", bins["KWOK"],
        "--etcd-binary", bins["ETCD"],
        # Pod IPs on loopback: nothing (an API server proxy, a probe) can ever
        # send test traffic to a private address by following a pod IP.
        "--extra-args", f"kwok-controller=cidr={POD_CIDR}",
        *_advertise_address(),
        "--kubeconfig", "", "--wait", "60s",
    ]  # fmt: skip
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=180)
        if done.returncode != 0:
            raise ComponentFailed(f"kwokctl create cluster failed:\n{done.stdout}\n{done.stderr}")
        core = cluster.core()
        _wait(lambda: core.read_namespaced_service_account("default", "default"), 30,
              "the default ServiceAccount")  # fmt: skip
        cluster.kubectl("apply", "-f", str(NODES_MANIFEST))
        cluster.kubectl("apply", "--server-side", "-f", bins["KUBERAY_CRDS"])
        crds = client.ApiextensionsV1Api(cluster.api())

        def established(name: str) -> bool:
            conditions = crds.read_custom_resource_definition(name).status.conditions or []
            return any(c.type == "Established" and c.status == "True" for c in conditions)

        for crd in ("rayclusters.ray.io", "rayservices.ray.io"):
            _wait(partial(established, crd), 60, f"CRD {crd} to be established")
        operator = ManagedProcess(
            "kuberay-operator",
            [bins["KUBERAY_OPERATOR"], "--kubeconfig", str(kubeconfig),
             # Reach Ray's dashboard and Serve through the API server's
             # proxy, not by resolving <head-svc>.<ns>.svc.cluster.local
             # with the machine's resolver (KubeRay's default).
             "--use-kubernetes-proxy",
             "--enable-leader-election=false", "--metrics-addr=0",
             "--health-probe-bind-address=0", "--log-stdout-encoder=console"],
            work_dir,
        )  # fmt: skip
        cluster.helpers.append(operator)
        operator.wait_ready(
            lambda: "Starting workers" in operator.output(20000), 60, "the KubeRay operator"
        )
        lb = ManagedProcess(
            "lb-controller",
            [sys.executable, "-m", "tests.rig.lb_controller", str(kubeconfig)],
            work_dir,
        )
        cluster.helpers.append(lb)
        lb.wait_ready(lambda: "controller running" in lb.output(), 30, "the LB controller")
        _wait(
            lambda: (
                sum(
                    1
                    for n in core.list_node().items
                    for c in n.status.conditions or []
                    if c.type == "Ready" and c.status == "True"
                )
                == 4
            ),
            60,
            "4 Ready kwok nodes",
        )
    except BaseException:
        cluster.stop()
        raise
    return cluster


CHAOSRAY_SERVICE_ACCOUNT = "chaosray"  # deploy/base/40-chaosray-rbac.yaml


def token_kubeconfig(cluster: KubeCluster, path: Path) -> Path:
    """A kubeconfig that authenticates as the ServiceAccount of
    deploy/base/40-chaosray-rbac.yaml with a bearer token (as EKS users do), not
    with the admin's client certificate; the cluster entry (server, CA) is
    the admin kubeconfig's. The lab's builder (chaosray/lab/kubeconfig.py)."""
    return write_token_kubeconfig(
        cluster.core(),
        cluster.kubeconfig,
        path,
        service_account=CHAOSRAY_SERVICE_ACCOUNT,
        namespace=NAMESPACE,
        context="chaosray-token",
        seconds=3600,
    )


def ready_pods(core: client.CoreV1Api, selector: str, namespace: str = NAMESPACE) -> list[Any]:
    pods = core.list_namespaced_pod(namespace, label_selector=selector).items
    return [
        p
        for p in pods
        if p.metadata.deletion_timestamp is None
        and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
    ]


WORKERS = "ray.io/cluster=ray-serve,ray.io/node-type=worker"
HEAD = "ray.io/cluster=ray-serve,ray.io/node-type=head"
REDIS = "app=redis"
TEST_POD_LABEL = "rig.chaosray/test-pod"


def make_test_pod(
    name: str,
    labels: dict[str, str] | None = None,
    node: str | None = None,
    finalizer: bool = False,
) -> client.V1Pod:
    """A pod a test creates (restore_topology removes it), optionally pinned to
    a node and held by a finalizer so that it stays Terminating once deleted."""
    return client.V1Pod(
        metadata=client.V1ObjectMeta(
            name=name,
            labels={TEST_POD_LABEL: "true", **(labels or {})},
            finalizers=["rig.chaosray/hold"] if finalizer else None,
        ),
        spec=client.V1PodSpec(
            node_selector={"kubernetes.io/hostname": node} if node else None,
            containers=[client.V1Container(name="c", image="busybox")],
        ),
    )


def topology_ready(cluster: KubeCluster) -> bool:
    core = cluster.core()
    service = core.read_namespaced_service("ray-serve-nlb", NAMESPACE)
    ingress = service.status.load_balancer.ingress if service.status.load_balancer else None
    return (
        len(ready_pods(core, WORKERS)) == 3
        and len(ready_pods(core, HEAD)) == 1
        and len(ready_pods(core, REDIS)) == 3
        and bool(ingress)
    )


def apply_topology(cluster: KubeCluster, timeout: float = 120) -> None:
    """Apply deploy/ (the manifests users read) and wait until it all runs."""
    cluster.kubectl("apply", "-k", str(DEPLOY_DIR))
    wait_topology(cluster, timeout)


def wait_topology(cluster: KubeCluster, timeout: float = 120) -> None:
    _wait(lambda: topology_ready(cluster), timeout,
          "3 Ready workers, 1 Ready head, 3 Ready Redis pods and an NLB address")  # fmt: skip


def restore_topology(cluster: KubeCluster, timeout: float = 120) -> None:
    """Undo what a test may have done to the shared topology: uncordon every
    node, delete stray test pods, and wait until it is whole again."""
    core = cluster.core()
    for node in core.list_node().items:
        if node.spec.unschedulable:
            core.patch_node(node.metadata.name, {"spec": {"unschedulable": None}})
    for pod in core.list_namespaced_pod(NAMESPACE, label_selector=TEST_POD_LABEL).items:
        if pod.metadata.finalizers:
            core.patch_namespaced_pod(
                pod.metadata.name, NAMESPACE, {"metadata": {"finalizers": None}}
            )
    core.delete_collection_namespaced_pod(
        NAMESPACE, label_selector=TEST_POD_LABEL, grace_period_seconds=0
    )
    wait_until(
        lambda: not core.list_namespaced_pod(NAMESPACE, label_selector=TEST_POD_LABEL).items,
        timeout=30,
        description="test pods to be gone",
    )
    wait_topology(cluster, timeout)


def _human(command: str) -> int:
    """``make cluster-up`` / ``cluster-down`` for humans: one cluster under the cache dir."""
    HUMAN_CLUSTER_DIR.mkdir(parents=True, exist_ok=True)
    kubeconfig = HUMAN_CLUSTER_DIR / "kwok" / "clusters" / CLUSTER_NAME / "kubeconfig.yaml"
    if command == "up":
        if kubeconfig.exists():
            print(f"already up: export KUBECONFIG={kubeconfig}")
            return 0
        started = time.monotonic()
        # The operator and LB controller run in sessions of their own, so they
        # outlive this command; `down` finds them by the cluster's directory.
        cluster = start_cluster(HUMAN_CLUSTER_DIR)
        apply_topology(cluster)
        print(f"cluster up in {time.monotonic() - started:.1f}s; export KUBECONFIG={kubeconfig}")
        return 0
    if command == "down":
        cluster = KubeCluster(kubeconfig, HUMAN_CLUSTER_DIR, owned=True, bins=binaries())
        for proc in cluster.leftovers():
            proc.terminate()
        cluster.stop()
        shutil.rmtree(HUMAN_CLUSTER_DIR, ignore_errors=True)
        print("cluster down")
        return 0
    if command == "status":
        print(f"KUBECONFIG={kubeconfig}" if kubeconfig.exists() else "down")
        return 0
    print("usage: python -m tests.rig.kube up|down|status", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_human(sys.argv[1] if len(sys.argv) > 1 else ""))
