"""Probes of the load balancer in front of the Serve proxies: its endpoint,
its health layer by layer, inference requests, and AWS target health."""

from __future__ import annotations

import logging
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import requests
from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from chaosray.inference import InferenceTarget, is_transient_failure, send
from chaosray.k8s.client import REQUEST_TIMEOUT, core_v1
from chaosray.k8s.pods import api_call, ensure_namespace

__all__ = [
    "aws_target_health",
    "inference_request",
    "inference_success_count",
    "nlb_endpoint",
    "nlb_health",
]

logger = logging.getLogger("chaostoolkit")


def nlb_endpoint(
    service_name: str,
    namespace: str = "default",
    port: int | None = None,
    scheme: str = "http",
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """The address of the load balancer of Service `service_name` (type
    LoadBalancer), from `status.loadBalancer.ingress`: a hostname (AWS NLB) or
    an IP, with the Service's `port` (its first port by default).

    Returns `host`, `port`, `url` (`scheme://host:port`), `kind` (hostname or
    ip), `service`. Fails clearly while the NLB is still provisioning (no
    ingress yet), or if the Service is not of type LoadBalancer.
    """
    core = core_v1(secrets)
    service = api_call(
        lambda: core.read_namespaced_service(
            service_name, namespace, _request_timeout=REQUEST_TIMEOUT
        ),
        f"read Service {service_name}",
        missing_ok=True,
    )
    if service is None:
        ensure_namespace(core, namespace)
        raise ActivityFailed(f"Service {service_name!r} does not exist in namespace {namespace!r}")
    if service.spec.type != "LoadBalancer":
        raise ActivityFailed(
            f"Service {namespace}/{service_name} is of type {service.spec.type}, not LoadBalancer"
        )
    ingress = (service.status.load_balancer.ingress if service.status.load_balancer else None) or []
    if not ingress:
        raise ActivityFailed(
            f"Service {namespace}/{service_name} has no load balancer address yet "
            "(status.loadBalancer.ingress is empty): the NLB is still provisioning, or the "
            "AWS Load Balancer Controller is not running; see `kubectl describe service`"
        )
    first = ingress[0]
    host, kind = (first.hostname, "hostname") if first.hostname else (first.ip, "ip")
    ports = service.spec.ports or []
    if port is None:
        if not ports:
            raise ActivityFailed(f"Service {namespace}/{service_name} has no port")
        port = ports[0].port
    elif port not in {p.port for p in ports}:
        raise ActivityFailed(
            f"Service {namespace}/{service_name} has no port {port} "
            f"(ports: {', '.join(str(p.port) for p in ports)})"
        )
    return {
        "service": f"{namespace}/{service_name}",
        "host": host,
        "port": port,
        "kind": kind,
        "url": f"{scheme}://{host}:{port}",
    }


def base_url(url: str | None, service_name: str | None, namespace: str, secrets: Secrets) -> str:
    """The endpoint: `url` when given, else the LoadBalancer address of
    Service `service_name` (not an activity: shared by the load domain)."""
    if url:
        return url.rstrip("/")
    if not service_name:
        raise ActivityFailed(
            "give the endpoint `url`, or the `service_name` of the LoadBalancer Service"
        )
    return str(nlb_endpoint(service_name, namespace, secrets=secrets)["url"])


def join_path(base: str, path: str) -> str:
    if not path:
        return base
    return base.rstrip("/") + "/" + path.lstrip("/")


def nlb_health(
    url: str | None = None,
    service_name: str | None = None,
    namespace: str = "default",
    health_path: str = "/-/healthz",
    inference_path: str = "/",
    method: str = "POST",
    payload: Any = None,
    timeout: float = 5.0,
    require: bool = False,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Check the endpoint layer by layer, each step timed: the name resolves
    (DNS), a TCP connection opens, the HTTP `health_path` answers 2xx, and an
    inference request to `inference_path` succeeds. The endpoint is `url`,
    else the load balancer address of Service `service_name`.

    Returns `healthy` (every step passed), `url`, and per step (`dns`, `tcp`,
    `http_health`, `inference`): `ok`, `seconds`, and `addresses`, `status` or
    `error`. Later steps are skipped (`ok: false, skipped: true`) once one fails.
    With `require` (for use in a method) the probe fails when unhealthy.
    """
    base = base_url(url, service_name, namespace, secrets)
    parts = urlsplit(base)
    if not parts.hostname or parts.scheme not in ("http", "https"):
        raise ActivityFailed(f"endpoint {base!r} is not an http(s) URL with a host")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    steps: dict[str, dict[str, Any]] = {}

    started = time.perf_counter()
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
        addresses = sorted({info[4][0] for info in infos})
        steps["dns"] = {
            "ok": True,
            "addresses": addresses,
            "seconds": time.perf_counter() - started,
        }
    except OSError as exc:
        steps["dns"] = {"ok": False, "error": str(exc), "seconds": time.perf_counter() - started}

    if steps["dns"]["ok"]:
        started = time.perf_counter()
        try:
            with socket.create_connection((parts.hostname, port), timeout=timeout):
                pass
            steps["tcp"] = {"ok": True, "seconds": time.perf_counter() - started}
        except OSError as exc:
            steps["tcp"] = {
                "ok": False,
                "error": str(exc) or type(exc).__name__,
                "seconds": time.perf_counter() - started,
            }
    with requests.Session() as session:
        for step, path, verb, body in (
            ("http_health", health_path, "GET", None),
            ("inference", inference_path, method, payload),
        ):
            if not all(s["ok"] for s in steps.values()):
                steps[step] = {"ok": False, "skipped": True}
                continue
            target = InferenceTarget.build(join_path(base, path), verb, body, timeout=timeout)
            result = send(session, target)
            steps[step] = {
                "ok": result.ok,
                "status": result.status,
                "seconds": result.latency,
                **({"error": result.error} if result.error else {}),
            }
    for name in ("dns", "tcp", "http_health", "inference"):
        steps.setdefault(name, {"ok": False, "skipped": True})
    healthy = all(s["ok"] for s in steps.values())
    if not healthy:
        failed = next(k for k, v in steps.items() if not v["ok"])
        logger.info(f"Endpoint {base} unhealthy at step {failed}: {steps[failed].get('error')}")
    if require and not healthy:
        failed = next(k for k, v in steps.items() if not v["ok"])
        raise ActivityFailed(f"endpoint {base} unhealthy at step {failed}: {steps[failed]}")
    return {"healthy": healthy, "url": base, **steps}


def inference_request(
    url: str | None = None,
    service_name: str | None = None,
    namespace: str = "default",
    path: str = "/",
    method: str = "POST",
    payload: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
    expect_status: list[int] | None = None,
    expect_body_contains: str | None = None,
    retries: int = 2,
    retry_delay: float = 1.0,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Send one inference request and check the answer: its status is in
    `expect_status` (default any 2xx) and, if given, its body contains
    `expect_body_contains`. The endpoint is `url`, else the load balancer of
    Service `service_name`, plus `path`.

    Transient failures (connection errors, timeouts, 5xx, 429) are retried up
    to `retries` times, `retry_delay` seconds apart, and reported as such
    (never hidden). Returns `ok`, `status`, `latency_s` and `error` of the last
    attempt, `retries_used`, and `attempts` (each: `status`, `latency_s`,
    `error`).
    """
    if not isinstance(retries, int) or retries < 0 or retries > 10:
        raise ActivityFailed(f"retries must be a whole number from 0 to 10, got {retries!r}")
    target = InferenceTarget.build(
        join_path(base_url(url, service_name, namespace, secrets), path),
        method,
        payload,
        headers,
        timeout,
        expect_status,
        expect_body_contains,
    )
    attempts: list[dict[str, Any]] = []
    with requests.Session() as session:
        for attempt in range(retries + 1):
            result = send(session, target)
            attempts.append(
                {
                    "attempt": attempt + 1,
                    "status": result.status,
                    "latency_s": result.latency,
                    "error": result.error,
                }
            )
            if result.ok or not is_transient_failure(result) or attempt == retries:
                break
            logger.info(f"Inference request to {target.url} failed ({result.error}); retrying")
            time.sleep(retry_delay)
    last = attempts[-1]
    return {
        "ok": result.ok,
        "url": target.url,
        "status": last["status"],
        "latency_s": last["latency_s"],
        "error": last["error"],
        "retries_used": len(attempts) - 1,
        "attempts": attempts,
    }


def inference_success_count(
    url: str | None = None,
    service_name: str | None = None,
    namespace: str = "default",
    path: str = "/",
    method: str = "POST",
    payload: Any = None,
    requests_count: int = 10,
    timeout: float = 10.0,
    expect_status: list[int] | None = None,
    require_all: bool = False,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Send `requests_count` inference requests one after another, without
    retries, and count the successes (post-validation's "10 of 10";
    head-delete's "back to normal"). With `require_all` the probe fails
    unless every one succeeded, naming the errors.

    Returns `sent`, `succeeded`, `success_rate`, `all_succeeded`, `latency_s`
    (each successful request's), and `errors`.
    """
    if not isinstance(requests_count, int) or not 1 <= requests_count <= 10_000:
        raise ActivityFailed(f"requests_count must be from 1 to 10000, got {requests_count!r}")
    target = InferenceTarget.build(
        join_path(base_url(url, service_name, namespace, secrets), path),
        method,
        payload,
        None,
        timeout,
        expect_status,
    )
    results = []
    with requests.Session() as session:
        for _ in range(requests_count):
            results.append(send(session, target))
    succeeded = sum(1 for r in results if r.ok)
    if require_all and succeeded < requests_count:
        errors = ", ".join(sorted({str(r.error) for r in results if r.error}))
        raise ActivityFailed(
            f"{succeeded} of {requests_count} requests to {target.url} succeeded "
            f"(no retries; errors: {errors or 'none recorded'})"
        )
    return {
        "url": target.url,
        "sent": requests_count,
        "succeeded": succeeded,
        "success_rate": succeeded / requests_count,
        "all_succeeded": succeeded == requests_count,
        "latency_s": [r.latency for r in results if r.ok],
        "errors": [r.error for r in results if r.error],
    }


def aws_target_health(
    load_balancer_name: str | None = None,
    load_balancer_dns: str | None = None,
    service_name: str | None = None,
    namespace: str = "default",
    region: str | None = None,
    endpoint_url: str | None = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Health of every target of the AWS load balancer's target groups
    (ELBv2 DescribeTargetHealth). The load balancer is found by
    `load_balancer_name`, by its DNS name `load_balancer_dns`, or by the
    address of Service `service_name`. Needs the `aws` extra (boto3).

    Credentials and region the Chaos Toolkit way: `secrets` keys
    `aws_access_key_id`, `aws_secret_access_key`, `aws_session_token`, else
    boto3's usual chain; region from `region`, the configuration key
    `aws_region`, else boto3's default. `endpoint_url` points at another
    ELBv2 endpoint (a VPC endpoint, or moto in tests).

    Returns `load_balancer` (name, arn, dns), `target_groups` (each: arn, name,
    `targets` with id, port, state, reason), `healthy`, `total`,
    `all_healthy`.
    """
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        raise ActivityFailed(
            "aws_target_health needs boto3: pip install 'chaostoolkit-ray[aws]'"
        ) from None
    if not (load_balancer_name or load_balancer_dns or service_name):
        raise ActivityFailed("give load_balancer_name, load_balancer_dns or service_name")
    if service_name and not (load_balancer_name or load_balancer_dns):
        load_balancer_dns = str(nlb_endpoint(service_name, namespace, secrets=secrets)["host"])
    scoped = dict(secrets or {})
    session = boto3.session.Session(
        aws_access_key_id=scoped.get("aws_access_key_id"),
        aws_secret_access_key=scoped.get("aws_secret_access_key"),
        aws_session_token=scoped.get("aws_session_token"),
        region_name=region or (configuration or {}).get("aws_region"),
    )
    elbv2 = session.client("elbv2", endpoint_url=endpoint_url)
    try:
        if load_balancer_name:
            found = elbv2.describe_load_balancers(Names=[load_balancer_name])["LoadBalancers"]
        else:
            found = [
                lb
                for page in elbv2.get_paginator("describe_load_balancers").paginate()
                for lb in page["LoadBalancers"]
                if lb["DNSName"].lower() == str(load_balancer_dns).lower()
            ]
        if not found:
            raise ActivityFailed(f"no AWS load balancer has DNS name {load_balancer_dns!r}")
        lb = found[0]
        groups = elbv2.describe_target_groups(LoadBalancerArn=lb["LoadBalancerArn"])["TargetGroups"]
        out_groups = []
        for group in groups:
            health = elbv2.describe_target_health(TargetGroupArn=group["TargetGroupArn"])
            out_groups.append(
                {
                    "arn": group["TargetGroupArn"],
                    "name": group["TargetGroupName"],
                    "targets": [
                        {
                            "id": t["Target"]["Id"],
                            "port": t["Target"].get("Port"),
                            "state": t["TargetHealth"]["State"],
                            "reason": t["TargetHealth"].get("Reason"),
                        }
                        for t in health["TargetHealthDescriptions"]
                    ],
                }
            )
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise ActivityFailed(
            f"AWS ELBv2 refused: {error.get('Code')}: {error.get('Message')}"
        ) from None
    except BotoCoreError as exc:
        raise ActivityFailed(f"AWS ELBv2 call failed: {exc}") from None
    targets = [t for g in out_groups for t in g["targets"]]
    healthy = sum(1 for t in targets if t["state"] == "healthy")
    return {
        "load_balancer": {
            "name": lb["LoadBalancerName"],
            "arn": lb["LoadBalancerArn"],
            "dns": lb["DNSName"],
        },
        "target_groups": out_groups,
        "healthy": healthy,
        "total": len(targets),
        "all_healthy": bool(targets) and healthy == len(targets),
    }
