"""Redis delete: one Redis pod of Ray's GCS store deleted under load."""

from __future__ import annotations

from typing import Any

from .shared import (
    AVAILABILITY_MONITOR,
    CONTRIBUTIONS,
    REDIS,
    REDIS_READY,
    ROLLBACKS_ALWAYS,
    SERVICE_IS_WHOLE,
    disruptive_controls,
    env,
    inference_succeeds,
    stop_availability_monitor,
    uncordon_all,
)

CONFIGURATION: dict[str, Any] = {
    # Shorter than the shared observation: Ray is sampled every second throughout.
    "observe_s": env("CHAOSRAY_OBSERVE_S", 180.0, "float"),
    "redis_rejoin_timeout_s": env("CHAOSRAY_REDIS_REJOIN_TIMEOUT_S", 120.0, "float"),
    "expected_ray_nodes": env("CHAOSRAY_EXPECTED_RAY_NODES", 4, "int"),
    "min_ready_redis": env("CHAOSRAY_MIN_READY_REDIS", 2, "int"),
    "redis_delete_role": env("CHAOSRAY_REDIS_DELETE_ROLE", "replica"),
    "ray_outage_tolerance_s": env("CHAOSRAY_RAY_OUTAGE_TOLERANCE_S", 0.0, "float"),
}

EXPERIMENT: dict[str, Any] = {
    "title": "Redis delete: Ray keeps serving when a Redis pod of its GCS store is deleted",
    "description": (
        "Under load, one Redis pod is deleted, chosen by its replication role "
        "(redis_delete_role: replica by default; primary to measure the GCS restart it "
        "causes). At least 2 Redis pods must stay Ready, Ray must stay operational over the "
        "whole observation (sampled every second: ALIVE nodes and Serve applications "
        "RUNNING; with the primary, ray_outage_tolerance_s allows for the head's restart), "
        "the deleted pod must be Ready and replicating within 2 minutes of the deletion, "
        "and the Sentinel failover is recorded."
    ),
    "tags": ["ray", "redis", "gcs", "pod-delete"],
    "contributions": CONTRIBUTIONS,
    "controls": disruptive_controls(),
    "steady-state-hypothesis": {
        "title": SERVICE_IS_WHOLE,
        "probes": [REDIS_READY, inference_succeeds()],
    },
    "method": [
        AVAILABILITY_MONITOR,
        {
            "type": "action",
            "name": "delete-one-redis-pod",
            "provider": {
                "type": "python",
                "module": "chaosray.redis.actions",
                "func": "delete_redis_pod",
                "arguments": {
                    "role": "${redis_delete_role}",
                    "label_selector": REDIS,
                    "namespace": "${namespace}",
                    "min_ready_remaining": "${min_ready_redis}",
                    "mode": "${redis_mode}",
                    "addresses": "${redis_addresses}",
                },
            },
            "pauses": {"before": "${baseline_s}"},
        },
        {
            "type": "probe",
            "name": "redis-rejoins",
            "provider": {
                "type": "python",
                "module": "chaosray.redis.probes",
                "func": "wait_for_redis_rejoin",
                "arguments": {
                    "namespace": "${namespace}",
                    "label_selector": REDIS,
                    "mode": "${redis_mode}",
                    "addresses": "${redis_addresses}",
                    "count": "${expected_redis}",
                    "timeout": "${redis_rejoin_timeout_s}",
                },
            },
            # From the deletion on, while Ray is observed: times the rejoin
            # from the deletion, not from the end of the observation.
            "background": True,
        },
        {
            "type": "probe",
            "name": "redis-min-ready-during",
            "provider": {
                "type": "python",
                "module": "chaosray.k8s.probes",
                "func": "min_ready_pods_during",
                "arguments": {
                    "label_selector": REDIS,
                    "namespace": "${namespace}",
                    "at_least": "${min_ready_redis}",
                    "duration": "${observe_s}",
                },
            },
            # Every change of the Redis pods during the observation is seen.
            "background": True,
        },
        {
            "type": "probe",
            "name": "ray-stays-operational",
            "provider": {
                "type": "python",
                "module": "chaosray.ray.probes",
                "func": "ray_operational_throughout",
                "arguments": {
                    "expected_alive": "${expected_ray_nodes}",
                    "duration": "${observe_s}",
                    "interval": 1.0,
                    "tolerate_outage_s": "${ray_outage_tolerance_s}",
                    "recovery_timeout": "${head_ready_timeout_s}",
                    "require": True,
                    "cluster": "${ray_cluster}",
                    "namespace": "${namespace}",
                    "dashboard_url": "${ray_dashboard_url}",
                },
            },
        },
        stop_availability_monitor(),
    ],
    "rollbacks": [uncordon_all()],
    "runtime": ROLLBACKS_ALWAYS,
}
