"""Head delete: the Ray head pod deleted under load."""

from __future__ import annotations

from typing import Any

from .shared import (
    AVAILABILITY_MONITOR,
    CONTRIBUTIONS,
    HEAD_READY,
    ROLLBACKS_ALWAYS,
    SERVICE_IS_WHOLE,
    WORKERS_READY,
    disruptive_controls,
    env,
    inference_n_of_n,
    inference_succeeds,
    stop_availability_monitor,
    uncordon_all,
)

CONFIGURATION: dict[str, Any] = {
    # Its own verdict threshold: a head loss may fail requests; the outage is
    # measured, not forbidden.
    "head_delete_min_success_rate": env("CHAOSRAY_HEAD_DELETE_MIN_SUCCESS_RATE", 0.0, "float"),
    "reconnect_timeout_s": env("CHAOSRAY_RECONNECT_TIMEOUT_S", 60.0, "float"),
    # The most total outage users may see while the head is replaced (the
    # plan measures it and sets no value; 60 s: back within a minute).
    "head_delete_max_outage_s": env("CHAOSRAY_HEAD_DELETE_MAX_OUTAGE_S", 60.0, "float"),
    # "The service back to normal": this many requests in a row succeed.
    "back_to_normal_requests": env("CHAOSRAY_BACK_TO_NORMAL_REQUESTS", 10, "int"),
}

EXPERIMENT: dict[str, Any] = {
    "title": "Head delete: the outage when the Ray head pod is deleted, and the recovery",
    "description": (
        "Under load, the Ray head pod is deleted. The outage seen through the NLB is measured; "
        "the new head must be Ready within 3 minutes, the workers must reconnect (ALIVE in "
        "Ray's node table) within 1 minute of it, and the service must be back to normal."
    ),
    "tags": ["ray", "kuberay", "head", "gcs", "pod-delete"],
    "contributions": CONTRIBUTIONS,
    "controls": disruptive_controls("head_delete_min_success_rate", "head_delete_max_outage_s"),
    "steady-state-hypothesis": {
        "title": SERVICE_IS_WHOLE,
        "probes": [HEAD_READY, WORKERS_READY, inference_succeeds()],
    },
    "method": [
        AVAILABILITY_MONITOR,
        {
            "type": "action",
            "name": "delete-ray-head",
            "provider": {
                "type": "python",
                "module": "chaosray.ray.actions",
                "func": "delete_ray_head",
                "arguments": {
                    "cluster": "${ray_cluster}",
                    "namespace": "${namespace}",
                    "dashboard_url": "${ray_dashboard_url}",
                },
            },
            "pauses": {"before": "${baseline_s}"},
        },
        {
            "type": "probe",
            "name": "head-ready-and-workers-reconnect",
            "provider": {
                "type": "python",
                "module": "chaosray.ray.probes",
                "func": "ray_head_recovery",
                "arguments": {
                    "cluster": "${ray_cluster}",
                    "namespace": "${namespace}",
                    "head_timeout": "${head_ready_timeout_s}",
                    "reconnect_timeout": "${reconnect_timeout_s}",
                    "dashboard_url": "${ray_dashboard_url}",
                },
            },
        },
        # Back to normal: N requests in a row succeed, no retries, each within
        # the request timeout that defines a failed request.
        inference_n_of_n(
            "back-to-normal", "${back_to_normal_requests}", "${request_timeout_s}", True
        ),
        stop_availability_monitor(observe_s=True),
    ],
    "rollbacks": [uncordon_all()],
    "runtime": ROLLBACKS_ALWAYS,
}
