"""A small LoadBalancer controller: it publishes an address for every
Service of type LoadBalancer in ``status.loadBalancer.ingress``, as the AWS
Load Balancer Controller does on EKS (there, an NLB's hostname).

In the lab the address comes from a pool (198.19.200.0/24): kube-proxy in
iptables mode routes traffic to ``status.loadBalancer.ingress`` addresses
(the nat KUBE-SERVICES chain hooks PREROUTING and OUTPUT), so publishing the
address is all a load balancer has to do on one machine. The test cluster
uses the same loop with its own choice of address (tests/rig/lb_controller.py).

Run: ``python -m chaosray.lab.lb_controller KUBECONFIG [POOL]``.
"""

from __future__ import annotations

import ipaddress
import sys
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

__all__: list[str] = []

Ingress = list[dict[str, str]]


def current_ingress(service: Any) -> Ingress:
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


class PoolAllocator:
    """Keeps each Service's address; gives a new one the lowest free address."""

    def __init__(self, pool: str) -> None:
        self.pool = ipaddress.ip_network(pool)
        self.assigned: dict[str, str] = {}

    def __call__(self, service: Any) -> Ingress:
        key = f"{service.metadata.namespace}/{service.metadata.name}"
        if key not in self.assigned:
            for entry in current_ingress(service):
                ip = entry.get("ip")
                if (
                    ip
                    and ipaddress.ip_address(ip) in self.pool
                    and ip not in self.assigned.values()
                ):
                    self.assigned[key] = ip
                    break
            else:
                taken = set(self.assigned.values())
                self.assigned[key] = next(str(a) for a in self.pool.hosts() if str(a) not in taken)
        return [{"ip": self.assigned[key]}]

    def release(self, service: Any) -> None:
        self.assigned.pop(f"{service.metadata.namespace}/{service.metadata.name}", None)


def reconcile(core: client.CoreV1Api, service: Any, wanted: Callable[[Any], Ingress]) -> None:
    if service.spec.type != "LoadBalancer":
        return
    want = wanted(service)
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


def run(
    kubeconfig: str, wanted: Callable[[Any], Ingress], released: Callable[[Any], None] | None = None
) -> None:
    """List, then watch, Services forever; relist after any error."""
    core = client.CoreV1Api(config.new_client_from_config(config_file=kubeconfig))
    print("load-balancer controller running", flush=True)
    while True:
        try:
            listing = core.list_service_for_all_namespaces()
            for service in listing.items:
                reconcile(core, service, wanted)
            stream = watch.Watch().stream(
                core.list_service_for_all_namespaces,
                resource_version=listing.metadata.resource_version,
                timeout_seconds=300,
            )
            for event in stream:
                if event["type"] in ("ADDED", "MODIFIED"):
                    reconcile(core, event["object"], wanted)
                elif event["type"] == "DELETED" and released:
                    released(event["object"])
        except ApiException as exc:
            print(f"watch error: {exc.status} {exc.reason}; relisting", flush=True)
            time.sleep(0.5)
        except Exception as exc:  # the API server restarting, a dropped watch
            print(f"watch error: {exc}; relisting", flush=True)
            time.sleep(0.5)


if __name__ == "__main__":
    allocator = PoolAllocator(sys.argv[2] if len(sys.argv) > 2 else "198.19.200.0/24")
    run(sys.argv[1], allocator, allocator.release)
