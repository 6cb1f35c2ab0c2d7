"""Ray probes and actions against the real local Ray cluster (with Serve and
GCS fault tolerance on Redis), directly and through the test cluster's API
server service proxy; KubeRay status against the real operator."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from chaoslib.exceptions import ActivityFailed
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from chaosray.k8s.proxy import api_proxy
from chaosray.ray import actions, probes
from chaosray.wait import wait_until
from tests.rig.kube import NAMESPACE, KubeCluster, make_test_pod, token_kubeconfig
from tests.rig.netns import NetnsHost, start_netns_host
from tests.rig.procs import free_port
from tests.rig.ray_cluster import LocalRayCluster
from tests.rig.ray_pods import RIG_CLUSTER, set_pod_ip

pytestmark = pytest.mark.slow

PROXY_SERVICE = "rig-ray-dashboard"
PROXY_POD = "rig-ray-dashboard-head"


@pytest.fixture(scope="module")
def proxied_dashboard(
    ray_cluster: LocalRayCluster,
    _topology_applied: KubeCluster,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[KubeCluster]:
    """A Service without selector whose Endpoints reach the local dashboard
    through a test host in a network namespace (the API server does not proxy
    to loopback): API server -> test host -> our end of the link -> dashboard."""
    cluster = _topology_applied
    work = tmp_path_factory.mktemp("netns")
    host: NetnsHost = start_netns_host()
    core = cluster.core()
    try:
        dashboard_port = int(ray_cluster.dashboard_url.rsplit(":", 1)[1])
        hop = free_port()
        host.relay(work, hop, ("127.0.0.1", dashboard_port), inside=False)
        host.relay(work, 8265, (host.host_ip, hop), inside=True)
        core.create_namespaced_service(
            NAMESPACE,
            client.V1Service(
                metadata=client.V1ObjectMeta(name=PROXY_SERVICE),
                spec=client.V1ServiceSpec(
                    ports=[client.V1ServicePort(name="dashboard", port=8265, target_port=8265)]
                ),
            ),
        )
        # The API server proxies only to addresses that are pods: a pod whose
        # IP is the test host's stands for the head pod.
        pod = make_test_pod(PROXY_POD)
        pod.metadata.labels = {"rig.chaosray/dashboard-pod": "true"}
        core.create_namespaced_pod(NAMESPACE, pod)
        wait_until(
            lambda: core.read_namespaced_pod(PROXY_POD, NAMESPACE).status.pod_ip,
            timeout=30,
            description="the stand-in head pod running",
        )
        set_pod_ip(core, PROXY_POD, host.ns_ip)
        core.create_namespaced_endpoints(
            NAMESPACE,
            client.V1Endpoints(
                metadata=client.V1ObjectMeta(name=PROXY_SERVICE),
                subsets=[
                    client.V1EndpointSubset(
                        addresses=[
                            client.V1EndpointAddress(
                                ip=host.ns_ip,
                                target_ref=client.V1ObjectReference(
                                    kind="Pod", name=PROXY_POD, namespace=NAMESPACE
                                ),
                            )
                        ],
                        ports=[client.CoreV1EndpointPort(name="dashboard", port=8265)],
                    )
                ],
            ),
        )
        # The EndpointSlice mirroring controller publishes the Endpoints to
        # the API server's proxy shortly after.
        slices = client.DiscoveryV1Api(core.api_client)
        wait_until(
            lambda: (
                slices.list_namespaced_endpoint_slice(
                    NAMESPACE, label_selector=f"kubernetes.io/service-name={PROXY_SERVICE}"
                ).items
            ),
            timeout=30,
            description="the mirrored EndpointSlice",
        )
        yield cluster
    finally:
        core.delete_namespaced_service(PROXY_SERVICE, NAMESPACE)
        core.delete_namespaced_pod(PROXY_POD, NAMESPACE, grace_period_seconds=0)
        host.stop()


@pytest.fixture
def kubeconfig(_topology_applied: KubeCluster, monkeypatch: pytest.MonkeyPatch) -> KubeCluster:
    monkeypatch.setenv("KUBECONFIG", str(_topology_applied.kubeconfig))
    return _topology_applied


def _via_proxy() -> dict[str, Any]:
    return {"cluster": RIG_CLUSTER, "namespace": NAMESPACE, "head_service": PROXY_SERVICE}


def _direct(ray_cluster: LocalRayCluster) -> dict[str, Any]:
    return {
        "cluster": RIG_CLUSTER,
        "namespace": NAMESPACE,
        "dashboard_url": ray_cluster.dashboard_url,
    }


# --- KubeRay status (real operator, kwok pods) -----------------------------------------------


def test_raycluster_status_from_the_operator(kubeconfig: KubeCluster) -> None:
    status = probes.raycluster_status(cluster="ray-serve", namespace=NAMESPACE)
    assert status["desired_workers"] == 3
    assert status["ready_workers"] == 3
    assert status["state"] == "ready"
    assert status["head_ready"] is True and status["ready"] is True
    head = (
        kubeconfig.core()
        .list_namespaced_pod(
            NAMESPACE, label_selector="ray.io/cluster=ray-serve,ray.io/node-type=head"
        )
        .items[0]
    )
    assert status["head_pod"] == head.metadata.name
    assert status["replica_failure"] is None


def test_kuberay_bad_names(kubeconfig: KubeCluster) -> None:
    with pytest.raises(ActivityFailed, match="RayCluster 'nope' does not exist"):
        probes.raycluster_status(cluster="nope", namespace=NAMESPACE)
    with pytest.raises(ActivityFailed, match="RayService 'nope' does not exist"):
        probes.rayservice_status("nope", namespace=NAMESPACE)
    with pytest.raises(ActivityFailed, match="name the RayCluster"):
        probes.raycluster_status(namespace=NAMESPACE)


def test_delete_ray_worker_dry_run_uses_kuberay_labels(kubeconfig: KubeCluster) -> None:
    result = actions.delete_ray_worker(cluster="ray-serve", namespace=NAMESPACE, dry_run=True)
    pod = kubeconfig.core().read_namespaced_pod(result["pod"], NAMESPACE)
    assert pod.metadata.labels["ray.io/node-type"] == "worker" and result["dry_run"] is True
    head = actions.delete_ray_head(cluster="ray-serve", namespace=NAMESPACE, dry_run=True)
    assert (
        kubeconfig.core()
        .read_namespaced_pod(head["pod"], NAMESPACE)
        .metadata.labels["ray.io/node-type"]
        == "head"
    )


# --- the dashboard, directly and through the API server ------------------------------------


def test_dashboard_probes_directly(kubeconfig: KubeCluster, ray_cluster: LocalRayCluster) -> None:
    nodes = probes.ray_alive_nodes(**_direct(ray_cluster))
    truth = ray_cluster.alive_nodes()
    assert nodes["alive"] == len(truth) == 4
    assert nodes["alive_workers"] == 3 and nodes["head_alive"] is True
    assert {n["node_id"] for n in nodes["nodes"] if n["state"] == "ALIVE"} == {
        n["node_id"] for n in truth
    }
    serve = probes.ray_serve_applications(**_direct(ray_cluster))
    assert serve["all_running"] is True
    assert sum(serve["replicas_per_node"].values()) == 3
    proxies = probes.ray_serve_proxies(**_direct(ray_cluster))
    assert proxies["all_healthy"] is True and proxies["total"] == 4
    assert probes.ray_gcs_healthy(**_direct(ray_cluster)) is True


def test_dashboard_probes_through_the_api_server_proxy(
    proxied_dashboard: KubeCluster, kubeconfig: KubeCluster, ray_cluster: LocalRayCluster
) -> None:
    started = time.perf_counter()
    direct = probes.ray_alive_nodes(**_direct(ray_cluster))
    direct_s = time.perf_counter() - started
    started = time.perf_counter()
    proxied = probes.ray_alive_nodes(**_via_proxy())
    proxied_s = time.perf_counter() - started
    assert proxied["alive"] == direct["alive"] == 4
    assert sorted(n["node_id"] for n in proxied["nodes"]) == sorted(
        n["node_id"] for n in direct["nodes"]
    )
    assert probes.ray_serve_applications(**_via_proxy())["all_running"] is True
    ms = f"direct {direct_s * 1000:.1f} ms, via API server proxy {proxied_s * 1000:.1f} ms"
    print(f"\nray_alive_nodes: {ms}")


def test_dashboard_through_the_proxy_with_a_bearer_token(
    proxied_dashboard: KubeCluster,
    ray_cluster: LocalRayCluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As on EKS: a token, bound to exactly the RBAC of deploy/, not the
    admin's client certificate. The proxy request must carry it."""
    token_config = token_kubeconfig(proxied_dashboard, tmp_path / "token.kubeconfig")
    monkeypatch.setenv("KUBECONFIG", str(token_config))
    as_chaosray = config.new_client_from_config(config_file=str(token_config))
    with pytest.raises(ApiException) as denied:  # the RBAC really is ours, not the admin's
        client.CoreV1Api(as_chaosray).list_namespaced_secret(NAMESPACE)
    assert denied.value.status == 403
    proxied = probes.ray_alive_nodes(**_via_proxy())
    assert proxied["alive"] == 4
    assert probes.ray_serve_applications(**_via_proxy())["all_running"] is True


FALLBACK_CLUSTER = "rig-fallback"
UNREACHABLE_POD_IP = "198.18.254.77"  # a test-range address with no route in the session


@pytest.fixture
def dashboard_behind_unreachable_pod_ip(
    _topology_applied: KubeCluster, ray_cluster: LocalRayCluster
) -> Iterator[KubeCluster]:
    """A head pod (and head Service, as KubeRay makes them) whose pod IP the
    API server cannot reach, as on EKS with restricted security groups; the
    pod's kubelet (kwok) forwards its dashboard port to the local dashboard."""
    cluster = _topology_applied
    core = cluster.core()
    custom = client.CustomObjectsApi(core.api_client)
    name = f"{FALLBACK_CLUSTER}-head"
    labels = {"ray.io/cluster": FALLBACK_CLUSTER, "ray.io/node-type": "head"}
    pod = make_test_pod(name, labels)
    pod.spec.containers[0].ports = [client.V1ContainerPort(name="dashboard", container_port=8265)]
    dashboard_port = int(ray_cluster.dashboard_url.rsplit(":", 1)[1])
    try:
        core.create_namespaced_pod(NAMESPACE, pod)
        wait_until(
            lambda: core.read_namespaced_pod(name, NAMESPACE).status.pod_ip,
            timeout=30,
            description=f"{name} running",
        )
        set_pod_ip(core, name, UNREACHABLE_POD_IP)
        core.create_namespaced_service(
            NAMESPACE,
            client.V1Service(
                metadata=client.V1ObjectMeta(name=f"{FALLBACK_CLUSTER}-head-svc"),
                spec=client.V1ServiceSpec(
                    selector=labels,
                    ports=[client.V1ServicePort(name="dashboard", port=8265, target_port=8265)],
                ),
            ),
        )
        custom.create_namespaced_custom_object(
            "kwok.x-k8s.io", "v1alpha1", NAMESPACE, "portforwards",
            {"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "PortForward",
             "metadata": {"name": name, "namespace": NAMESPACE},
             "spec": {"forwards": [{"ports": [8265],
                                    "target": {"address": "127.0.0.1", "port": dashboard_port}}]}},
        )  # fmt: skip
        slices = client.DiscoveryV1Api(core.api_client)
        wait_until(
            lambda: any(
                UNREACHABLE_POD_IP in (e.addresses or [])
                for item in slices.list_namespaced_endpoint_slice(
                    NAMESPACE, label_selector=f"kubernetes.io/service-name={name}-svc"
                ).items
                for e in item.endpoints or []
            ),
            timeout=30,
            description="the head Service's endpoint at the unreachable pod IP",
        )
        yield cluster
    finally:
        deletes: list[Callable[[], Any]] = [
            lambda: custom.delete_namespaced_custom_object(
                "kwok.x-k8s.io", "v1alpha1", NAMESPACE, "portforwards", name
            ),
            lambda: core.delete_namespaced_service(f"{name}-svc", NAMESPACE),
            lambda: core.delete_namespaced_pod(name, NAMESPACE, grace_period_seconds=0),
        ]
        for delete in deletes:
            try:
                delete()
            except ApiException as exc:
                if exc.status != 404:
                    raise


def test_dashboard_falls_back_to_a_port_forward(
    dashboard_behind_unreachable_pod_ip: KubeCluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster = dashboard_behind_unreachable_pod_ip
    monkeypatch.setenv("KUBECONFIG", str(token_kubeconfig(cluster, tmp_path / "token")))
    target = {"cluster": FALLBACK_CLUSTER, "namespace": NAMESPACE}
    # The service proxy alone fails: the API server says it cannot reach the pod.
    status, body = api_proxy(
        "GET", "services", NAMESPACE, f"{FALLBACK_CLUSTER}-head-svc:dashboard", "api/version"
    )
    assert status == 503 and b"error trying to reach service" in body, (status, body)
    assert probes.ray_alive_nodes(**target)["alive"] == 4
    # With no port-forward either, the error names both ways.
    client.CustomObjectsApi(cluster.api()).delete_namespaced_custom_object(
        "kwok.x-k8s.io", "v1alpha1", NAMESPACE, "portforwards", f"{FALLBACK_CLUSTER}-head"
    )
    with pytest.raises(ActivityFailed, match=r"port-forward to pod .* failed too"):
        probes.ray_alive_nodes(**target)


def test_dashboard_unreachable_is_a_clear_error(kubeconfig: KubeCluster) -> None:
    with pytest.raises(ActivityFailed, match="does not answer"):
        probes.ray_alive_nodes(RIG_CLUSTER, dashboard_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ActivityFailed, match=r"HTTP 404 services \"no-such-svc\" not found"):
        probes.ray_alive_nodes(RIG_CLUSTER, namespace=NAMESPACE, head_service="no-such-svc")


def test_rayservice_status_and_its_pending_cluster(kubeconfig: KubeCluster) -> None:
    """A real RayService under the real operator: KubeRay creates its cluster
    as *pending*; it would promote it to active once Serve answers on the head's
    dashboard, which no kwok pod can. The probes report exactly that, and
    following the active cluster fails clearly until there is one."""
    custom = client.CustomObjectsApi(kubeconfig.api())
    spec = custom.get_namespaced_custom_object(
        "ray.io", "v1", NAMESPACE, "rayclusters", "ray-serve"
    )["spec"]
    spec.pop("gcsFaultToleranceOptions", None)
    body = {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": "rig-service"},
        "spec": {"serveConfigV2": "applications: []\n", "rayClusterConfig": spec},
    }
    custom.create_namespaced_custom_object("ray.io", "v1", NAMESPACE, "rayservices", body)
    try:
        status = wait_until(
            lambda: (
                (s := probes.rayservice_status("rig-service", NAMESPACE))["pending_cluster"] and s
            ),
            timeout=60,
            description="KubeRay to create the RayService's cluster",
        )
        pending = str(status["pending_cluster"])
        assert pending.startswith("rig-service-")
        assert status["active_cluster"] is None and status["ready"] is False
        made = wait_until(  # the name is published before the object is created
            lambda: custom.get_namespaced_custom_object(
                "ray.io", "v1", NAMESPACE, "rayclusters", pending
            ),
            timeout=30,
            description=f"RayCluster {pending}",
            ignore=(ApiException,),
        )
        assert made["metadata"]["ownerReferences"][0]["kind"] == "RayService"
        with pytest.raises(ActivityFailed, match="RayService ray-serve/rig-service has no active"):
            probes.raycluster_status(service="rig-service", namespace=NAMESPACE)
    finally:
        custom.delete_namespaced_custom_object(
            "ray.io", "v1", NAMESPACE, "rayservices", "rig-service"
        )
        wait_until(
            lambda: (
                not custom.list_namespaced_custom_object(
                    "ray.io",
                    "v1",
                    NAMESPACE,
                    "rayclusters",
                    label_selector="ray.io/originated-from-crd=RayService",
                )["items"]
            ),
            timeout=60,
            description="the RayService's cluster to be deleted",
        )
