"""Post-validation: after the scenarios, the service is whole again."""

from __future__ import annotations

from typing import Any

from .shared import (
    HEAD_READY,
    NO_NODE_LEFT_CORDONED,
    REDIS_READY,
    VALIDATION_CONTROLS,
    WORKERS_READY,
    env,
    inference_n_of_n,
    uncordon_all,
)

CONFIGURATION: dict[str, Any] = {
    "post_requests": env("CHAOSRAY_POST_REQUESTS", 10, "int"),
}

# The load chaosray may have left in the namespace (a chaos run that died:
# its k6 Jobs, TestRuns and ConfigMaps, by chaosray's labels): deleted, then
# checked gone; the activity fails naming whatever is still there.
NO_LOAD_LEFT: dict[str, Any] = {
    "type": "action",
    "name": "delete-k6-load-left-by-chaosray",
    "provider": {
        "type": "python",
        "module": "chaosray.load.actions",
        "func": "delete_k6_leftovers",
        "arguments": {"namespace": "${namespace}", "fail_if_left": True},
    },
}

EXPERIMENT: dict[str, Any] = {
    "title": "Post-validation: the service is whole again and nothing was left behind",
    "description": (
        "Cleans up what chaosray may have left (its cordons; its k6 load Jobs, TestRuns and "
        "ConfigMaps in the namespace) and checks that none of it is left, then checks exactly "
        "3 Ready workers, 1 Ready head, 3 Ready Redis pods and 10 of 10 inference requests "
        "succeeding."
    ),
    "tags": ["ray", "kuberay", "validation", "cleanup"],
    "controls": VALIDATION_CONTROLS,
    "steady-state-hypothesis": {
        "title": "The service is whole",
        "probes": [
            WORKERS_READY,
            HEAD_READY,
            REDIS_READY,
            inference_n_of_n("inference-10-of-10", "${post_requests}", 10.0, False),
        ],
    },
    "method": [uncordon_all(), NO_NODE_LEFT_CORDONED, NO_LOAD_LEFT],
    "runtime": {
        "rollbacks": {"strategy": "always"},
        "hypothesis": {"strategy": "after-method-only"},
    },
}
