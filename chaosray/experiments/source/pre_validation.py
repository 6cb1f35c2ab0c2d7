"""Pre-validation: checks only, before the scenarios."""

from __future__ import annotations

from typing import Any

from .shared import (
    HEAD,
    HEAD_READY,
    REDIS_PRIMARY_SPARED,
    REDIS_READY,
    ROLLBACKS_ALWAYS,
    VALIDATION_CONTROLS,
    WORKERS,
    WORKERS_READY,
    inference_succeeds,
)

CONFIGURATION: dict[str, Any] = {}


def _pdb_min_available(name: str, pdb: str) -> dict[str, Any]:
    return {
        "type": "probe",
        "name": name,
        "provider": {
            "type": "python",
            "module": "chaosray.k8s.probes",
            "func": "pdb_budget_is",
            "arguments": {
                "namespace": "${namespace}",
                "name": "${" + pdb + "}",
                "min_available": "${pdb_min_available}",
            },
        },
        "tolerance": True,
    }


EXPERIMENT: dict[str, Any] = {
    "title": "Pre-validation: the Ray Serve service is ready for chaos",
    "description": (
        "Checks only: 3 Ready Ray workers on distinct nodes, 1 Ready head, 3 Ready Redis pods, "
        "the PodDisruptionBudgets with their expected minAvailable, the NLB provisioned and "
        "healthy, and a baseline inference request that succeeds. Changes nothing."
    ),
    "tags": ["ray", "kuberay", "validation"],
    "controls": VALIDATION_CONTROLS,
    "steady-state-hypothesis": {
        "title": "Everything the scenarios need is in place",
        "probes": [
            WORKERS_READY,
            HEAD_READY,
            REDIS_READY,
            _pdb_min_available("worker-pdb-min-available", "worker_pdb"),
            _pdb_min_available("redis-pdb-min-available", "redis_pdb"),
            inference_succeeds("baseline-inference-succeeds"),
        ],
    },
    "method": [
        {
            "type": "probe",
            "name": "nlb-provisioned",
            "provider": {
                "type": "python",
                "module": "chaosray.nlb.probes",
                "func": "nlb_endpoint",
                "arguments": {"service_name": "${nlb_service}", "namespace": "${namespace}"},
            },
        },
        {
            "type": "probe",
            "name": "endpoint-healthy",
            "provider": {
                "type": "python",
                "module": "chaosray.nlb.probes",
                "func": "nlb_health",
                "arguments": {
                    "url": "${inference_url}",
                    "service_name": "${nlb_service}",
                    "namespace": "${namespace}",
                    "health_path": "${health_path}",
                    "inference_path": "${inference_path}",
                    "method": "${inference_method}",
                    "payload": "${inference_payload}",
                    "require": True,
                },
            },
        },
        {
            "type": "probe",
            "name": "workers-on-distinct-nodes",
            "provider": {
                "type": "python",
                "module": "chaosray.k8s.probes",
                "func": "pods_on_distinct_nodes",
                "arguments": {
                    "label_selector": WORKERS,
                    "namespace": "${namespace}",
                    "require": True,
                },
            },
        },
        REDIS_PRIMARY_SPARED,
        {
            "type": "probe",
            "name": "spare-node-for-a-drained-worker",
            "provider": {
                "type": "python",
                "module": "chaosray.k8s.probes",
                "func": "spare_node_for_drain",
                "arguments": {
                    "label_selector": WORKERS,
                    "namespace": "${namespace}",
                    "avoid_label_selector": HEAD,
                    "require": True,
                },
            },
        },
    ],
    "runtime": ROLLBACKS_ALWAYS,
}
