"""Node drain: a worker's node cordoned and drained under load."""

from __future__ import annotations

from typing import Any

from .shared import (
    AVAILABILITY_MONITOR,
    CONTRIBUTIONS,
    HEAD,
    NO_NODE_LEFT_CORDONED,
    REDIS_PRIMARY_SPARED,
    ROLLBACKS_ALWAYS,
    SERVICE_IS_WHOLE,
    WORKERS,
    WORKERS_READY,
    disruptive_controls,
    env,
    inference_succeeds,
    stop_availability_monitor,
    uncordon_all,
    workers_ready_again,
)

CONFIGURATION: dict[str, Any] = {
    "drain_timeout_s": env("CHAOSRAY_DRAIN_TIMEOUT_S", 300.0, "float"),
    "termination_timeout_s": env("CHAOSRAY_TERMINATION_TIMEOUT_S", 60.0, "float"),
}

EXPERIMENT: dict[str, Any] = {
    "title": "Node drain: draining a worker's node respects the PodDisruptionBudgets",
    "description": (
        "Under load, the node of a Ray worker that does not run the Ray head is cordoned and "
        "drained through the Eviction API (emptyDir data goes with its pods: Ray's /dev/shm, a "
        "Redis pod's append-only file, which it resyncs from the primary; the pods it shares "
        "the node with are listed in the output). The PDBs must be respected (a second "
        "concurrent disruption is refused), the evicted pods must terminate within 60 s, the "
        "worker must be rescheduled and Ready, and the node is uncordoned."
    ),
    "tags": ["ray", "kuberay", "node", "drain", "pdb"],
    "contributions": CONTRIBUTIONS,
    "controls": disruptive_controls(),
    "steady-state-hypothesis": {
        "title": SERVICE_IS_WHOLE,
        "probes": [WORKERS_READY, inference_succeeds()],
    },
    "method": [
        AVAILABILITY_MONITOR,
        REDIS_PRIMARY_SPARED,
        {
            "type": "action",
            "name": "drain-a-worker-node",
            "provider": {
                "type": "python",
                "module": "chaosray.k8s.actions",
                "func": "drain_node",
                "arguments": {
                    "label_selector": WORKERS,
                    "namespace": "${namespace}",
                    "timeout": "${drain_timeout_s}",
                    "termination_timeout": "${termination_timeout_s}",
                    "avoid_label_selector": HEAD,
                    "delete_emptydir_data": True,
                },
            },
            "pauses": {"before": "${baseline_s}"},
        },
        {
            "type": "probe",
            "name": "pdb-refuses-a-second-disruption",
            "provider": {
                "type": "python",
                "module": "chaosray.k8s.probes",
                "func": "pdb_blocks_disruption",
                "arguments": {
                    "label_selector": WORKERS,
                    "namespace": "${namespace}",
                    "expect_refused": True,
                },
            },
        },
        workers_ready_again("worker-rescheduled-and-ready"),
        uncordon_all("uncordon-the-drained-node"),
        NO_NODE_LEFT_CORDONED,
        REDIS_PRIMARY_SPARED,
        stop_availability_monitor(),
    ],
    "rollbacks": [uncordon_all()],
    "runtime": ROLLBACKS_ALWAYS,
}
