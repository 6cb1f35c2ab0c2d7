"""The k6 pod's state, in words and flags (no activities)."""

from __future__ import annotations

from typing import Any

from chaosray.load.k6 import EXIT_REASONS
from chaosray.load.k6_cluster.names import CONTAINER

__all__: list[str] = []  # engine; the control is chaosray.load.control

# Waiting reasons that no amount of waiting fixes.
FATAL_WAITING = {"InvalidImageName", "CreateContainerConfigError", "ErrImageNeverPull"}


def container_state(pod: Any) -> Any | None:
    for status in (pod.status.container_statuses if pod.status else None) or []:
        if status.name == CONTAINER:
            return status.state
    return None


def pod_ended(pod: Any) -> bool:
    """The k6 container has terminated (or the pod is over)."""
    state = container_state(pod)
    return bool(
        (state is not None and state.terminated is not None)
        or (pod.status and pod.status.phase in ("Succeeded", "Failed"))
    )


def pod_running(pod: Any) -> bool:
    state = container_state(pod)
    return bool(
        pod.status
        and pod.status.phase == "Running"
        and state is not None
        and state.running is not None
        and pod.metadata.deletion_timestamp is None
    )


def exit_code(pod: Any) -> int | None:
    state = container_state(pod)
    if state is not None and state.terminated is not None:
        return int(state.terminated.exit_code)
    return None


def describe_pod_state(pod: Any) -> str:
    """What a pod is doing, in words: phase, scheduling, container state."""
    name = pod.metadata.name
    phase = pod.status.phase if pod.status else None
    parts = [f"pod {name} is {phase or 'without a phase'}"]
    for cond in (pod.status.conditions if pod.status else None) or []:
        if cond.type == "PodScheduled" and cond.status != "True":
            parts.append(f"not scheduled ({cond.reason}: {cond.message})")
    state = container_state(pod)
    if state is not None and state.waiting is not None:
        waiting = state.waiting
        parts.append(
            f"container waiting ({waiting.reason}"
            + (f": {waiting.message}" if waiting.message else "")
            + ")"
        )
    if state is not None and state.terminated is not None:
        code = int(state.terminated.exit_code)
        parts.append(
            f"k6 exited with code {code} ({EXIT_REASONS.get(code, state.terminated.reason)})"
        )
    return ", ".join(parts)
