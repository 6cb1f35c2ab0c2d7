"""Sequential worker delete: every worker deleted in turn, under load."""

from __future__ import annotations

from typing import Any

from .shared import (
    AVAILABILITY_MONITOR,
    CONTRIBUTIONS,
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
    "sequence_interval_s": env("CHAOSRAY_SEQUENCE_INTERVAL_S", 120.0, "float"),
}

EXPERIMENT: dict[str, Any] = {
    "title": "Sequential worker delete: every worker replaced in turn, 2 minutes apart",
    "description": (
        "Under load, the 3 Ray worker pods are deleted one after another, 2 minutes apart. "
        "After each deletion at least 2 workers must stay Ready; total downtime is computed "
        "from the availability monitor."
    ),
    "tags": ["ray", "kuberay", "worker", "pod-delete", "sequential"],
    "contributions": CONTRIBUTIONS,
    "controls": disruptive_controls(),
    "steady-state-hypothesis": {
        "title": SERVICE_IS_WHOLE,
        "probes": [WORKERS_READY, inference_succeeds()],
    },
    "method": [
        AVAILABILITY_MONITOR,
        {
            "type": "action",
            "name": "delete-workers-one-by-one",
            "provider": {
                "type": "python",
                "module": "chaosray.k8s.actions",
                "func": "delete_pods_sequentially",
                "arguments": {
                    "label_selector": WORKERS,
                    "namespace": "${namespace}",
                    "interval": "${sequence_interval_s}",
                    "min_ready": "${min_ready_workers}",
                    "ready_timeout": "${replacement_timeout_s}",
                },
            },
            "pauses": {"before": "${baseline_s}"},
        },
        workers_ready_again("all-workers-ready-again"),
        stop_availability_monitor(),
    ],
    "rollbacks": [uncordon_all()],
    "runtime": ROLLBACKS_ALWAYS,
}
