"""A tiny load-balancer controller for the test cluster.

On EKS the AWS Load Balancer Controller provisions an NLB for every Service
of type LoadBalancer and publishes its address in
``status.loadBalancer.ingress``. Here nothing would, so this controller
watches such Services and publishes a loopback address: the value of the
annotation ``rig.chaosray/ingress-ip`` or ``rig.chaosray/ingress-hostname``
if the test set one (so the address reaches a local server the test runs),
else ``127.0.0.1``. The watch loop is the lab's
(chaosray/lab/lb_controller.py). A Service annotated ``rig.chaosray/pending: "true"`` is
left without an address, like an NLB still provisioning.

Run: ``python -m tests.rig.lb_controller KUBECONFIG``.
"""

from __future__ import annotations

import sys
from typing import Any

from chaosray.lab.lb_controller import run

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


def main(kubeconfig: str) -> None:
    run(kubeconfig, wanted_ingress)


if __name__ == "__main__":
    main(sys.argv[1])
