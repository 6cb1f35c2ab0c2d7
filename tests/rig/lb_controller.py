"""A tiny load-balancer controller for the test cluster.

On EKS the AWS Load Balancer Controller provisions an NLB for every Service
of type LoadBalancer and publishes its address in
``status.loadBalancer.ingress``. Here nothing would, so this controller
watches such Services and publishes a loopback address: the value of the
annotation ``rig.chaosray/ingress-ip`` or ``rig.chaosray/ingress-hostname``
if the test set one (so the address reaches a local server the test runs),
else ``127.0.0.1``. A Service annotated ``rig.chaosray/pending: "true"`` is
left without an address, like an NLB still provisioning.

Run: ``python -m tests.rig.lb_controller KUBECONFIG``.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

IP_ANNOTATION = "rig.chaosray/ingress-ip"
HOSTNAME_ANNOTATION = "rig.chaosray/ingress-hostname"
PENDING_ANNOTATION = "rig.chaosray/pending"


def wanted_ingress(service: Any) -> list[dict[str, str]]:
    annotations = service.metadata.annotations or {}
    if annotations.get(PENDING_ANNOTATION) == "true":
        return []
    if HOSTNAME_ANNOTATION in annotations:
        return [{"hostname": annotations[HOSTNAME_ANNOTATION]}]
    return [{"ip": annotations.get(IP_ANNOTATION, "127.0.0.1")}]


def current_ingress(service: Any) -> list[dict[str, str]]:
    lb = service.status.load_balancer if service.status else None
    out = []
    for item in (lb.ingress if lb else None) or []:
        entry = {}
        if item.ip:
            entry["ip"] = item.ip
        if item.hostname:
            entry["hostname"] = item.hostname
        out.append(entry)
    return out


def reconcile(core: client.CoreV1Api, service: Any) -> None:
    if service.spec.type != "LoadBalancer":
        return
    want = wanted_ingress(service)
    if current_ingress(service) == want:
        return
    body = {"status": {"loadBalancer": {"ingress": want or None}}}
    try:
        core.patch_namespaced_service_status(
            service.metadata.name, service.metadata.namespace, body
        )
        print(f"{service.metadata.namespace}/{service.metadata.name}: ingress {want}", flush=True)
    except ApiException as exc:
        if exc.status != 404:
            raise


def main(kubeconfig: str) -> None:
    api = config.new_client_from_config(config_file=kubeconfig)
    core = client.CoreV1Api(api)
    print("load-balancer controller running", flush=True)
    while True:
        try:
            listing = core.list_service_for_all_namespaces()
            for service in listing.items:
                reconcile(core, service)
            stream = watch.Watch().stream(
                core.list_service_for_all_namespaces,
                resource_version=listing.metadata.resource_version,
                timeout_seconds=300,
            )
            for event in stream:
                if event["type"] in ("ADDED", "MODIFIED"):
                    reconcile(core, event["object"])
        except ApiException as exc:
            print(f"watch error: {exc.status} {exc.reason}; relisting", flush=True)
            time.sleep(0.5)
        except Exception as exc:  # the API server restarting, a dropped watch
            print(f"watch error: {exc}; relisting", flush=True)
            time.sleep(0.5)


if __name__ == "__main__":
    main(sys.argv[1])
