"""``chaosray lab up | down | status``: bring the lab up, report on it, and
take it down leaving nothing behind (docs/lab.md)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config

from chaosray.lab import host, layout, network, node
from chaosray.lab.host import LabError
from chaosray.wait import WaitTimeout, wait_until

__all__: list[str] = []

NAMESPACE = "ray-serve"
SERVICE = "ray-serve-nlb"
SERVICE_ACCOUNT = "chaosray"  # deploy/base/40-chaosray-rbac.yaml
TOKEN_SECONDS = 7 * 24 * 3600
WORKERS = "ray.io/cluster=ray-serve,ray.io/node-type=worker"
HEAD = "ray.io/cluster=ray-serve,ray.io/node-type=head"
Say = Callable[[str], None]
COMPONENTS = ("kuberay-operator", "lb-controller", "coredns", "kube-proxy")


@dataclass
class Binaries:
    cluster: dict[str, str]
    lab: dict[str, str]
    images: dict[str, str]

    @classmethod
    def load(cls) -> Binaries:
        found = []
        for path, make in (
            (layout.CLUSTER_BIN_ENV, "make cluster-binaries"),
            (layout.LAB_BIN_ENV, "make lab-binaries"),
            (layout.LAB_IMAGES_ENV, "make lab-image"),
        ):
            if not path.is_file():
                raise LabError(f"{path} does not exist: build it first with `{make}`")
            values = layout.read_env_file(path)
            for key, value in values.items():
                if value.startswith("/") and not Path(value).exists():
                    raise LabError(f"{key}={value} from {path} is missing: rerun `{make}`")
            found.append(values)
        return cls(*found)


def deploy_dir() -> Path:
    return Path(str(resources.files("chaosray") / "deploy"))


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabError(
            "the lab needs root (network namespaces, cgroups, mounts, containerd): "
            "run it as `sudo .venv/bin/chaosray lab ...`"
        )


# --- the control plane --------------------------------------------------------


def _kwokctl(lab: layout.Lab, bins: Binaries, *args: str, timeout: float = 300) -> str:
    env = {"PATH": host.SYSTEM_PATH, "HOME": str(lab.dir), "KWOK_WORKDIR": str(lab.kwok_dir)}
    return host.run([bins.cluster["KWOKCTL"], *args], env=env, timeout=timeout)


def api_answers(kubeconfig: Path) -> bool:
    if not kubeconfig.exists():
        return False
    try:
        api = config.new_client_from_config(config_file=str(kubeconfig))
        api.configuration.retries = 0
        client.VersionApi(api).get_code(_request_timeout=(2, 5))
        return True
    except Exception:
        return False


def start_control_plane(lab: layout.Lab, bins: Binaries, say: Say) -> None:
    if api_answers(lab.admin_kubeconfig):
        say("control plane: already running")
        return
    lab.kwok_dir.mkdir(parents=True, exist_ok=True)
    # kwokctl's default config: the API server's certificate names the
    # address the lab's components reach it at.
    (lab.kwok_dir / "kwok.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
                "kind": "KwokctlConfiguration",
                "options": {"kubeApiserverCertSANs": [layout.HOST_VETH_ADDRESS]},
            }
        )
    )
    c = bins.cluster
    _kwokctl(
        lab,
        bins,
        "create",
        "cluster",
        "--name",
        lab.name,
        "--runtime",
        "binary",
        "--kube-apiserver-binary",
        c["KUBE_APISERVER"],
        "--kube-controller-manager-binary",
        c["KUBE_CONTROLLER_MANAGER"],
        "--kube-scheduler-binary",
        c["KUBE_SCHEDULER"],
        "--kwok-controller-binary",
        c["KWOK"],
        "--etcd-binary",
        c["ETCD"],
        "--disable",
        "kwok-controller",  # real kubelets here
        "--extra-args",
        f"kube-apiserver=advertise-address={layout.HOST_VETH_ADDRESS}",
        "--extra-args",
        f"kube-apiserver=service-cluster-ip-range={layout.SERVICE_CIDR}",
        # Kubelets by address: their names are in no resolver.
        "--extra-args",
        "kube-apiserver=kubelet-preferred-address-types=InternalIP",
        "--extra-args",
        f"kube-controller-manager=service-cluster-ip-range={layout.SERVICE_CIDR}",
        "--kubeconfig",
        "",
        "--wait",
        "60s",
    )
    _wait(lambda: api_answers(lab.admin_kubeconfig), 60, "the API server")
    say("control plane: started")


def write_internal_kubeconfig(lab: layout.Lab) -> None:
    """The admin kubeconfig with absolute paths and the veth address (which
    the components in the lab's namespace reach the host's API server at)."""
    kubeconfig = yaml.safe_load(lab.admin_kubeconfig.read_text())
    for entry in kubeconfig["clusters"]:
        server = entry["cluster"]["server"]
        port = server.rsplit(":", 1)[1]
        entry["cluster"]["server"] = f"https://{layout.HOST_VETH_ADDRESS}:{port}"
    for section, key in (("clusters", "cluster"), ("users", "user")):
        for entry in kubeconfig[section]:
            for field in ("certificate-authority", "client-certificate", "client-key"):
                value = entry[key].get(field)
                if value and not Path(value).is_absolute():
                    entry[key][field] = str(lab.admin_kubeconfig.parent / value)
    host.write_config(lab.internal_kubeconfig, yaml.safe_dump(kubeconfig))
    lab.internal_kubeconfig.chmod(0o600)


def _api(lab: layout.Lab) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(lab.admin_kubeconfig))


def _wait(check: Callable[[], Any], timeout: float, what: str) -> Any:
    try:
        return wait_until(check, timeout=timeout, description=what, ignore=(Exception,))
    except WaitTimeout as exc:
        raise LabError(str(exc)) from None


def kubectl(
    lab: layout.Lab, bins: Binaries, *args: str, input: str | None = None, timeout: float = 120
) -> str:
    return host.run(
        [bins.cluster["KUBECTL"], "--kubeconfig", str(lab.admin_kubeconfig), *args],
        input=input,
        timeout=timeout,
        env={"PATH": host.SYSTEM_PATH, "HOME": str(lab.dir)},
    )


def start_operator(lab: layout.Lab, bins: Binaries, say: Say) -> None:
    kubectl(lab, bins, "apply", "--server-side", "-f", bins.cluster["KUBERAY_CRDS"])
    crds = client.ApiextensionsV1Api(_api(lab))

    def established(name: str) -> bool:
        conditions = crds.read_custom_resource_definition(name).status.conditions or []
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    for crd in ("rayclusters.ray.io", "rayservices.ray.io"):
        _wait(lambda crd=crd: established(crd), 60, f"CRD {crd} to be established")  # type: ignore[misc]
    host.spawn(
        "kuberay-operator",
        [
            bins.cluster["KUBERAY_OPERATOR"],
            "--kubeconfig",
            str(lab.admin_kubeconfig),
            # Ray's dashboard through the API server's proxy, not by
            # resolving <head-svc>.<ns>.svc with the host's resolver.
            "--use-kubernetes-proxy",
            "--enable-leader-election=false",
            "--metrics-addr=0",
            "--health-probe-bind-address=0",
            "--log-stdout-encoder=console",
        ],
        pids=lab.pids,
        logs=lab.logs,
    )
    host.spawn(
        "lb-controller",
        [
            sys.executable,
            "-m",
            "chaosray.lab.lb_controller",
            str(lab.admin_kubeconfig),
            layout.LB_POOL,
        ],
        pids=lab.pids,
        logs=lab.logs,
    )
    say("KubeRay operator and LoadBalancer controller: running")


def start_dns_and_proxy(lab: layout.Lab, bins: Binaries, say: Say) -> None:
    host.write_config(lab.dir / "resolv.conf", f"nameserver {layout.DNS_ADDRESS}\n")
    # No `forward`: names outside the cluster get NXDOMAIN here, never a
    # query to an upstream resolver.
    host.write_config(
        lab.dir / "Corefile",
        f"""\
cluster.local:53 in-addr.arpa:53 ip6.arpa:53 {{
    bind {layout.DNS_ADDRESS}
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
        kubeconfig {lab.internal_kubeconfig}
        pods insecure
        ttl 5
    }}
    cache 5
}}
.:53 {{
    bind {layout.DNS_ADDRESS}
    template ANY ANY {{
        rcode NXDOMAIN
    }}
}}
""",
    )
    host.spawn(
        "coredns",
        [bins.lab["COREDNS"], "-conf", str(lab.dir / "Corefile")],
        pids=lab.pids,
        logs=lab.logs,
        netns=lab.netns,
    )
    first = lab.nodes[0]
    changed = host.write_config(
        lab.dir / "kube-proxy.yaml",
        yaml.safe_dump(
            {
                "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
                "kind": "KubeProxyConfiguration",
                "clientConnection": {"kubeconfig": str(lab.internal_kubeconfig)},
                "mode": "iptables",
                "clusterCIDR": layout.POD_CIDR,
                "hostnameOverride": first.name,
                "bindAddress": first.address,
                "healthzBindAddress": f"{first.address}:10256",
                "metricsBindAddress": f"{first.address}:10249",
                # Leave the machine-wide conntrack table and timeouts alone.
                "conntrack": {
                    "maxPerCore": 0,
                    "tcpEstablishedTimeout": "0s",
                    "tcpCloseWaitTimeout": "0s",
                },
            }
        ),
    )
    if changed:  # it would exit by itself on the write; restart it now, not never
        host.stop(lab.pids, "kube-proxy")
    host.spawn(
        "kube-proxy",
        [bins.lab["KUBE_PROXY"], "--config", str(lab.dir / "kube-proxy.yaml")],
        pids=lab.pids,
        logs=lab.logs,
        netns=lab.netns,
    )
    say("CoreDNS and kube-proxy: running")


# --- the nodes ------------------------------------------------------------------


def start_nodes(lab: layout.Lab, bins: Binaries, say: Say) -> None:
    if not lab.sysctl_record.exists():  # the machine's state, before any kubelet ran
        lab.sysctl_record.write_text(
            json.dumps(
                {
                    "sysctls": host.read_sysctls(layout.KUBELET_SYSCTLS),
                    "created": []
                    if layout.KUBELET_SHARED_DIR.exists()
                    else [str(layout.KUBELET_SHARED_DIR)],
                }
            )
        )
    images = bins.images
    for n in lab.nodes:
        node.prepare(n, bins.lab, images["PAUSE_IMAGE"])
        node.start_containerd(n, bins.lab)
    for n in lab.nodes:
        _wait(lambda n=n: node.containerd_ready(n, bins.lab), 60, f"containerd of {n.name}")  # type: ignore[misc]
    started = time.monotonic()

    def load(n: layout.Node) -> None:
        node.import_image(n, bins.lab, images["PAUSE_IMAGE"], images["PAUSE_IMAGE_ARCHIVE"])
        node.import_image(n, bins.lab, images["LAB_IMAGE"], images["LAB_IMAGE_ARCHIVE"])

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        for future in [pool.submit(load, n) for n in lab.nodes]:
            future.result()
    say(f"images on every node ({time.monotonic() - started:.0f}s)")
    for n in lab.nodes:
        node.start_kubelet(n, bins.lab)
    core = client.CoreV1Api(_api(lab))

    def ready_nodes() -> bool:
        for n in lab.nodes:
            if not host.pid_of(lab.pids, f"kubelet-{n.index}"):
                raise LabError(
                    f"the kubelet of {n.name} exited:\n"
                    f"{host.log_tail(lab.logs, f'kubelet-{n.index}')}"
                )
        ready = {
            item.metadata.name
            for item in core.list_node().items
            for c in item.status.conditions or []
            if c.type == "Ready" and c.status == "True"
        }
        return all(n.name in ready for n in lab.nodes)

    try:
        wait_until(
            ready_nodes,
            timeout=120,
            description="4 Ready nodes",
            ignore=(client.exceptions.ApiException,),
        )
    except WaitTimeout as exc:
        raise LabError(f"{exc}\n{host.log_tail(lab.logs, 'kubelet-1')}") from None
    say("4 nodes Ready")


# --- the reference deployment -----------------------------------------------------


def _ready(pod: Any) -> bool:
    return pod.metadata.deletion_timestamp is None and any(
        c.type == "Ready" and c.status == "True" for c in pod.status.conditions or []
    )


def _wait_pods(
    core: client.CoreV1Api, selector: str, count: int, timeout: float, what: str
) -> None:
    def enough() -> bool:
        pods = core.list_namespaced_pod(NAMESPACE, label_selector=selector).items
        return sum(1 for p in pods if _ready(p)) >= count

    _wait(enough, timeout, what)


def lb_address(core: client.CoreV1Api) -> str | None:
    service = core.read_namespaced_service(SERVICE, NAMESPACE)
    ingress = (service.status.load_balancer.ingress if service.status.load_balancer else None) or []
    return ingress[0].ip if ingress and ingress[0].ip else None


def inference_answers(url: str) -> bool:
    import requests

    try:
        answer = requests.post(url, json={"text": "the lab is up and fast"}, timeout=5)
    except requests.RequestException:
        return False
    return answer.status_code == 200 and answer.json().get("result") == "ok"


def deploy_reference(lab: layout.Lab, bins: Binaries, say: Say) -> str:
    """Apply deploy/lab/ (Redis first, then Ray with one worker at a time:
    on 2 cores, raylets started together miss Ray's 30 s registration
    deadline), wait until inference answers through the LoadBalancer, and
    return its URL."""
    rendered = list(yaml.safe_load_all(kubectl(lab, bins, "kustomize", str(deploy_dir() / "lab"))))
    ray_cluster = next(d for d in rendered if d["kind"] == "RayCluster")
    others = [d for d in rendered if d["kind"] != "RayCluster"]
    kubectl(lab, bins, "apply", "-f", "-", input=yaml.safe_dump_all(others))
    core = client.CoreV1Api(_api(lab))
    _wait_pods(core, "app=redis", 3, 300, "3 Ready Redis pods")
    say("Redis (primary, 2 replicas, 3 Sentinels): Ready")
    group = ray_cluster["spec"]["workerGroupSpecs"][0]
    wanted = int(group["replicas"])
    current = sum(
        1 for p in core.list_namespaced_pod(NAMESPACE, label_selector=WORKERS).items if _ready(p)
    )
    for workers in range(max(1, current), wanted + 1):
        step = json.loads(json.dumps(ray_cluster))
        step_group = step["spec"]["workerGroupSpecs"][0]
        step_group["replicas"] = workers
        step_group["minReplicas"] = min(workers, int(group.get("minReplicas", workers)))
        kubectl(lab, bins, "apply", "-f", "-", input=yaml.safe_dump(step))
        _wait_pods(core, HEAD, 1, 300, "a Ready Ray head")
        _wait_pods(core, WORKERS, workers, 300, f"{workers} Ready Ray worker(s)")
        say(f"Ray: head and {workers} worker(s) Ready")
    address = _wait(lambda: lb_address(core), 60, f"an address for Service {SERVICE}")
    url = f"http://{address}/"
    # Every worker's proxy: 20 answers in a row through the LoadBalancer.
    _wait(
        lambda: all(inference_answers(url) for _ in range(20)), 300, f"inference to answer at {url}"
    )
    say(f"inference answers at {url}")
    return url


def write_chaosray_kubeconfig(lab: layout.Lab) -> None:
    """As on EKS: a ServiceAccount's bearer token bound to exactly the RBAC
    of deploy/base/40-chaosray-rbac.yaml, not the admin's certificate."""
    from chaosray.lab.kubeconfig import write_token_kubeconfig  # shared with tests/rig/kube.py

    write_token_kubeconfig(
        client.CoreV1Api(_api(lab)),
        lab.admin_kubeconfig,
        lab.chaosray_kubeconfig,
        service_account=SERVICE_ACCOUNT,
        namespace=NAMESPACE,
        context=lab.name,
        seconds=TOKEN_SECONDS,
    )


# --- down -------------------------------------------------------------------------


def down(lab: layout.Lab, say: Say) -> None:
    """Stop everything and undo every change; safe to run any number of times."""
    require_root()
    started = time.monotonic()
    steps: list[str] = []

    def took(step: str, since: float) -> float:
        steps.append(f"{step} {time.monotonic() - since:.1f}s")
        return time.monotonic()

    # Kubelets first: nothing restarts what is killed next.
    kubelets = [host.pid_of(lab.pids, f"kubelet-{n.index}") for n in lab.nodes]
    host.terminate([pid for pid in kubelets if pid], timeout=10)
    at = took("kubelets", started)
    parent_file = lab.dir / "cgroup-parent"
    parent = parent_file.read_text().strip() if parent_file.exists() else lab.cgroup_parent
    host.kill_cgroup(parent)
    at = took("pods", at)
    if layout.CLUSTER_BIN_ENV.exists() and (lab.kwok_dir / "clusters" / lab.name).exists():
        try:
            bins = Binaries(layout.read_env_file(layout.CLUSTER_BIN_ENV), {}, {})
            _kwokctl(lab, bins, "delete", "cluster", "--name", lab.name, timeout=120)
        except LabError as exc:
            say(f"kwokctl delete cluster: {exc} (killing what is left)")
        at = took("control plane", at)
    # The rest together: components by pid file, then anything (containerd
    # shims, a component whose pid file is gone) naming the lab's directory.
    components = [
        host.pid_of(lab.pids, name)
        for name in (*COMPONENTS, *(f"containerd-{n.index}" for n in lab.nodes))
    ]
    host.terminate([pid for pid in components if pid], timeout=10)
    host.terminate([p.pid for p in host.processes_mentioning(str(lab.dir))], timeout=10)
    at = took("components", at)
    host.unmount_all(lab.dir)
    network.delete(lab)
    host.remove_cgroup(parent)
    created = lab.dir / "cgroups-created.json"
    if created.exists():
        host.remove_dirs(json.loads(created.read_text()))
    if lab.sysctl_record.exists():
        record = json.loads(lab.sysctl_record.read_text())
        host.write_sysctls(record["sysctls"])
        for path in record["created"]:
            shutil.rmtree(path, ignore_errors=True)
    if lab.dir.exists():
        shutil.rmtree(lab.dir)
    with contextlib.suppress(OSError):
        lab.base_dir.rmdir()  # only when no other lab is in it
    took("mounts, network, cgroups, sysctls", at)
    say(f"lab {lab.name} down ({time.monotonic() - started:.0f}s: {', '.join(steps)})")


# --- up -------------------------------------------------------------------------------


def up(lab: layout.Lab, say: Say, deploy: bool = True) -> dict[str, str]:
    require_root()
    bins = Binaries.load()
    started = time.monotonic()
    lab.dir.mkdir(parents=True, exist_ok=True)
    parent_file = lab.dir / "cgroup-parent"
    if not parent_file.exists():
        created = host.make_cgroup(lab.cgroup_parent)
        (lab.dir / "cgroups-created.json").write_text(json.dumps(created))
        parent_file.write_text(lab.cgroup_parent)
    network.create(lab)
    say(f"network namespace {lab.name}: no default route, host route {layout.LAB_RANGE}")
    start_control_plane(lab, bins, say)
    write_internal_kubeconfig(lab)
    start_operator(lab, bins, say)
    start_dns_and_proxy(lab, bins, say)
    start_nodes(lab, bins, say)
    result = {"admin_kubeconfig": str(lab.admin_kubeconfig)}
    if deploy:
        result["inference_url"] = deploy_reference(lab, bins, say)
        write_chaosray_kubeconfig(lab)
        result["kubeconfig"] = str(lab.chaosray_kubeconfig)
    say(f"lab {lab.name} up in {time.monotonic() - started:.0f}s")
    return result


# --- status -----------------------------------------------------------------------------


def status(lab: layout.Lab) -> list[tuple[str, bool, str]]:
    """(part, running, detail) for every part of the lab."""
    rows: list[tuple[str, bool, str]] = []
    ns_ok = network.exists(lab)
    routes = network.default_routes(lab) if ns_ok else []
    rows.append(
        (
            "network namespace",
            ns_ok and not routes,
            f"{lab.netns}" + (f" HAS A DEFAULT ROUTE: {routes}" if routes else "")
            if ns_ok
            else "absent",
        )
    )
    api_ok = api_answers(lab.admin_kubeconfig)
    rows.append(("control plane", api_ok, str(lab.admin_kubeconfig) if api_ok else "not answering"))
    for name in COMPONENTS:
        pid = host.pid_of(lab.pids, name)
        rows.append((name, pid is not None, f"pid {pid}" if pid else "not running"))
    ready: set[str] = set()
    core = None
    if api_ok:
        core = client.CoreV1Api(_api(lab))
        with contextlib.suppress(Exception):
            ready = {
                item.metadata.name
                for item in core.list_node(_request_timeout=5).items
                for c in item.status.conditions or []
                if c.type == "Ready" and c.status == "True"
            }
    for n in lab.nodes:
        kubelet = host.pid_of(lab.pids, f"kubelet-{n.index}")
        containerd = host.pid_of(lab.pids, f"containerd-{n.index}")
        ok = bool(kubelet and containerd and n.name in ready)
        rows.append(
            (
                n.name,
                ok,
                f"{n.address} kubelet {'up' if kubelet else 'down'}, "
                f"containerd {'up' if containerd else 'down'}, "
                f"{'Ready' if n.name in ready else 'not Ready'}",
            )
        )
    if core is not None:
        with contextlib.suppress(Exception):
            pods = core.list_namespaced_pod(NAMESPACE, _request_timeout=5).items
            count = sum(1 for p in pods if _ready(p))
            rows.append(("reference deployment", count >= 7, f"{count}/{len(pods)} pods Ready"))
            address = lb_address(core)
            url = f"http://{address}/" if address else ""
            answers = bool(url) and inference_answers(url)
            rows.append(
                ("inference", answers, f"{url} {'answers' if answers else 'does not answer'}")
            )
    if lab.chaosray_kubeconfig.exists():
        rows.append(("chaosray kubeconfig", True, str(lab.chaosray_kubeconfig)))
    return rows
