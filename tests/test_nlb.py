"""NLB probes against the test cluster's LoadBalancer Services, a real local
HTTP server, and AWS through moto's server mode (moto, not AWS)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from chaoslib.exceptions import ActivityFailed
from kubernetes import client

from chaosray.nlb import probes
from chaosray.wait import wait_until
from tests.rig.http_server import ScheduledServer
from tests.rig.kube import NAMESPACE, KubeCluster
from tests.rig.lb_controller import HOSTNAME_ANNOTATION, PENDING_ANNOTATION
from tests.rig.moto import MotoServer
from tests.rig.procs import free_port


@pytest.fixture
def k8s(topology: KubeCluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[KubeCluster]:
    monkeypatch.setenv("KUBECONFIG", str(topology.kubeconfig))
    yield topology


def _lb_service(
    core: client.CoreV1Api, name: str, port: int, annotations: dict[str, str]
) -> Iterator[None]:
    service = client.V1Service(
        metadata=client.V1ObjectMeta(name=name, annotations=annotations),
        spec=client.V1ServiceSpec(
            type="LoadBalancer",
            selector={"app": name},
            ports=[client.V1ServicePort(port=port, target_port=8000)],
        ),
    )
    core.create_namespaced_service(NAMESPACE, service)
    try:
        yield
    finally:
        core.delete_namespaced_service(name, NAMESPACE)


@pytest.fixture
def local_nlb(k8s: KubeCluster, scheduled_server: ScheduledServer) -> Iterator[ScheduledServer]:
    """A LoadBalancer Service whose published address (localhost, the
    server's port) reaches the scheduled-failure server."""
    core = k8s.core()
    annotations = {HOSTNAME_ANNOTATION: "localhost"}
    for _ in _lb_service(core, "rig-nlb", scheduled_server.port, annotations):
        wait_until(
            lambda: core.read_namespaced_service("rig-nlb", NAMESPACE).status.load_balancer.ingress,
            timeout=20,
            description="the LB controller to publish rig-nlb",
        )
        yield scheduled_server


def test_endpoint_of_the_reference_service(k8s: KubeCluster) -> None:
    endpoint = probes.nlb_endpoint("ray-serve-nlb", NAMESPACE)
    assert endpoint == {
        "service": f"{NAMESPACE}/ray-serve-nlb",
        "host": "127.0.0.1",
        "port": 80,
        "kind": "ip",
        "url": "http://127.0.0.1:80",
    }


def test_endpoint_by_hostname(local_nlb: ScheduledServer) -> None:
    endpoint = probes.nlb_endpoint("rig-nlb", NAMESPACE)
    assert endpoint["kind"] == "hostname"
    assert endpoint["url"] == f"http://localhost:{local_nlb.port}"


def test_endpoint_while_the_nlb_is_provisioning(k8s: KubeCluster) -> None:
    core = k8s.core()
    for _ in _lb_service(core, "pending-nlb", 80, {PENDING_ANNOTATION: "true"}):
        with pytest.raises(ActivityFailed, match="no load balancer address yet"):
            probes.nlb_endpoint("pending-nlb", NAMESPACE)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("no-such-service", NAMESPACE), "Service 'no-such-service' does not exist"),
        (("redis", NAMESPACE), "is of type ClusterIP, not LoadBalancer"),
        (("ray-serve-nlb", "no-such-ns"), "namespace 'no-such-ns' does not exist"),
    ],
)
def test_endpoint_bad_input(k8s: KubeCluster, args: tuple[str, str], message: str) -> None:
    with pytest.raises(ActivityFailed, match=message):
        probes.nlb_endpoint(*args)


def test_health_passes_every_layer(local_nlb: ScheduledServer) -> None:
    health = probes.nlb_health(
        service_name="rig-nlb", namespace=NAMESPACE, inference_path="/predict"
    )
    assert health["healthy"] is True
    assert "127.0.0.1" in health["dns"]["addresses"] or "::1" in health["dns"]["addresses"]
    assert health["tcp"]["ok"] and health["http_health"]["status"] == 200
    assert health["inference"]["status"] == 200
    paths = [r["path"] for r in local_nlb.served()]
    assert paths == ["/-/healthz", "/predict"]


def test_health_stops_at_the_failing_layer(local_nlb: ScheduledServer) -> None:
    local_nlb.arm([{"start": 0, "end": 30, "mode": "down"}])
    health = probes.nlb_health(service_name="rig-nlb", namespace=NAMESPACE)
    assert health["healthy"] is False
    assert health["tcp"]["ok"] is True
    assert health["http_health"] == {
        "ok": False,
        "status": 503,
        "seconds": health["http_health"]["seconds"],
        "error": "HTTP 503",
    }
    assert health["inference"] == {"ok": False, "skipped": True}
    assert len(local_nlb.served()) == 1


def test_health_of_an_unresolvable_name() -> None:
    health = probes.nlb_health(url="http://no-such-host.invalid:80")
    assert health["healthy"] is False and health["dns"]["ok"] is False
    assert all(health[s].get("skipped") for s in ("tcp", "http_health", "inference"))


def test_inference_request_retries_transient_failures_and_says_so(
    scheduled_server: ScheduledServer,
) -> None:
    scheduled_server.arm([{"start": 0, "end": 1.5, "mode": "down"}])
    result = probes.inference_request(
        url=scheduled_server.url, path="/predict", retries=3, retry_delay=1.0
    )
    assert result["ok"] is True
    assert result["retries_used"] >= 1
    assert result["attempts"][0]["status"] == 503
    assert result["attempts"][-1]["status"] == 200
    assert len(scheduled_server.served()) == len(result["attempts"])


def test_inference_body_check_is_not_retried(scheduled_server: ScheduledServer) -> None:
    good = probes.inference_request(url=scheduled_server.url, expect_body_contains='"result"')
    assert good["ok"] is True
    bad = probes.inference_request(url=scheduled_server.url, expect_body_contains="prediction")
    assert bad["ok"] is False and bad["retries_used"] == 0
    assert bad["error"] == "body does not contain 'prediction'"


def test_inference_against_an_unreachable_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = probes.inference_request(url=url, retries=2, retry_delay=0.1)
    assert result["ok"] is False and result["retries_used"] == 2
    assert all("connection error" in a["error"] for a in result["attempts"])


def test_inference_success_count(scheduled_server: ScheduledServer) -> None:
    assert probes.inference_success_count(url=scheduled_server.url)["all_succeeded"] is True
    scheduled_server.arm([{"start": 0, "end": 30, "mode": "error", "status": 500}])
    result = probes.inference_success_count(url=scheduled_server.url, requests_count=5)
    assert result["succeeded"] == 0 and result["errors"] == ["HTTP 500"] * 5
    # head-delete's "back to normal": every one must succeed, no retries.
    with pytest.raises(ActivityFailed, match=r"0 of 3 requests .* succeeded \(no retries; "
                       r"errors: HTTP 500\)"):  # fmt: skip
        probes.inference_success_count(url=scheduled_server.url, requests_count=3, require_all=True)


def test_inference_bad_input() -> None:
    with pytest.raises(ActivityFailed, match="give the endpoint `url`"):
        probes.inference_request()
    with pytest.raises(ActivityFailed, match="retries must be"):
        probes.inference_request(url="http://127.0.0.1:1", retries=-1)


# --- AWS target health through moto's server mode -------------------------------------------


def _nlb_with_targets(moto_server: MotoServer) -> dict[str, Any]:
    moto_server.reset()
    ec2 = moto_server.client("ec2")
    elbv2 = moto_server.client("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone="us-east-1a")
    lb = elbv2.create_load_balancer(
        Name="ray-serve-nlb", Type="network", Subnets=[subnet["Subnet"]["SubnetId"]]
    )["LoadBalancers"][0]
    group = elbv2.create_target_group(
        Name="ray-serve-tg", Protocol="TCP", Port=8000, VpcId=vpc, TargetType="ip"
    )["TargetGroups"][0]
    elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"],
        Protocol="TCP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": group["TargetGroupArn"]}],
    )
    elbv2.register_targets(
        TargetGroupArn=group["TargetGroupArn"],
        Targets=[{"Id": f"10.0.1.{i}", "Port": 8000} for i in (10, 11, 12)],
    )
    truth = elbv2.describe_target_health(TargetGroupArn=group["TargetGroupArn"])
    return {"lb": lb, "group": group, "truth": truth["TargetHealthDescriptions"]}


def _aws(moto_server: MotoServer) -> dict[str, Any]:
    return {
        "endpoint_url": moto_server.endpoint_url,
        "region": "us-east-1",
        "secrets": {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"},
    }


def test_aws_target_health_by_name_and_by_dns(moto_server: MotoServer) -> None:
    made = _nlb_with_targets(moto_server)
    by_name = probes.aws_target_health(load_balancer_name="ray-serve-nlb", **_aws(moto_server))
    truth = sorted((t["Target"]["Id"], t["TargetHealth"]["State"]) for t in made["truth"])
    reported = sorted((t["id"], t["state"]) for t in by_name["target_groups"][0]["targets"])
    assert reported == truth
    assert by_name["total"] == 3
    assert by_name["healthy"] == sum(1 for _, state in truth if state == "healthy")
    assert by_name["load_balancer"]["arn"] == made["lb"]["LoadBalancerArn"]
    by_dns = probes.aws_target_health(load_balancer_dns=made["lb"]["DNSName"], **_aws(moto_server))
    assert by_dns["target_groups"] == by_name["target_groups"]


def test_aws_target_health_after_a_target_leaves(moto_server: MotoServer) -> None:
    made = _nlb_with_targets(moto_server)
    moto_server.client("elbv2").deregister_targets(
        TargetGroupArn=made["group"]["TargetGroupArn"], Targets=[{"Id": "10.0.1.12", "Port": 8000}]
    )
    result = probes.aws_target_health(load_balancer_name="ray-serve-nlb", **_aws(moto_server))
    assert {t["id"] for t in result["target_groups"][0]["targets"]} == {"10.0.1.10", "10.0.1.11"}
    assert result["total"] == 2


def test_aws_target_health_bad_input(moto_server: MotoServer) -> None:
    _nlb_with_targets(moto_server)
    with pytest.raises(ActivityFailed, match="LoadBalancerNotFound"):
        probes.aws_target_health(load_balancer_name="no-such-nlb", **_aws(moto_server))
    with pytest.raises(ActivityFailed, match="no AWS load balancer has DNS name"):
        probes.aws_target_health(load_balancer_dns="nope.elb.amazonaws.com", **_aws(moto_server))
    with pytest.raises(ActivityFailed, match="give load_balancer_name"):
        probes.aws_target_health()
