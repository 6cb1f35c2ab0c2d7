"""Worker delete: one Ray worker pod deleted under load."""

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
    inference_succeeds,
    stop_availability_monitor,
    uncordon_all,
    workers_ready_again,
)

CONFIGURATION: dict[str, Any] = {}

EXPERIMENT: dict[str, Any] = {
    "title": "Worker delete: the service stays available when a Ray worker pod is deleted",
    "description": (
        "Under load, after a baseline, one Ray worker pod is deleted. At least 2 workers must "
        "stay Ready while it is replaced, the replacement must be Ready within 5 minutes, and "
        "availability and latency are recorded throughout."
    ),
    "tags": ["ray", "kuberay", "worker", "pod-delete"],
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
            "name": "delete-one-worker-and-watch",
            "provider": {
                "type": "python",
                "module": "chaosray.k8s.actions",
                "func": "delete_pods_sequentially",
                "arguments": {
                    "label_selector": WORKERS,
                    "namespace": "${namespace}",
                    "count": 1,
                    "interval": "${observe_s}",
                    "min_ready": "${min_ready_workers}",
                    "ready_timeout": "${replacement_timeout_s}",
                },
            },
            "pauses": {"before": "${baseline_s}"},
        },
        workers_ready_again("replacement-ready"),
        stop_availability_monitor(observe_s=True),
    ],
    "rollbacks": [uncordon_all()],
    "runtime": ROLLBACKS_ALWAYS,
}
