"""The pod timeline: a Chaos Toolkit control that watches the pods of given
selectors for the length of an experiment and records every change.

Declare it at experiment level::

    "controls": [{
        "name": "pod-timeline",
        "provider": {
            "type": "python",
            "module": "chaosray.k8s.control",
            "arguments": {
                "namespace": "ray-serve",
                "selectors": {
                    "workers": "ray.io/cluster=ray-serve,ray.io/node-type=worker",
                    "head": "ray.io/cluster=ray-serve,ray.io/node-type=head",
                    "redis": "app=redis"
                }
            }
        }
    }]

Events, each with the time this watch saw it (``t``, epoch seconds) and the
API server's own timestamp where Kubernetes keeps one (``api_time``, 1 s
resolution): ``present`` (at the start), ``created``, ``scheduled`` (to a
node), ``ready``, ``not_ready``, ``deletion_requested``, ``gone``. The
timeline goes into the journal as a run entry ``pod-timeline`` and under
``journal["chaosray"]["timeline"]``. Watches are stopped when the experiment
ends and in ``cleanup_control`` (Ctrl-C).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from chaoslib.exceptions import InterruptExecution, InvalidActivity
from chaoslib.types import Configuration, Experiment, Journal, Secrets

from chaosray.journal import add_control_entry, mark_interrupted_runs
from chaosray.k8s.client import core_v1
from chaosray.k8s.pods import condition, is_ready, list_pods, watch_pods

__all__ = [
    "after_experiment_control",
    "before_experiment_control",
    "cleanup_control",
    "validate_control",
]

logger = logging.getLogger("chaostoolkit")

RUN_NAME = "pod-timeline"
MAX_EVENTS = 100_000  # bounds memory on a very busy namespace


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class PodTimeline:
    """Watches one selector in a background thread and records its events."""

    def __init__(self, group: str, namespace: str, label_selector: str, secrets: Secrets) -> None:
        self.group = group
        self.namespace = namespace
        self.label_selector = label_selector
        self.secrets = secrets
        self.events: list[dict[str, Any]] = []
        self.error: str | None = None
        self._stop = threading.Event()
        self._state: dict[str, dict[str, Any]] = {}
        self._thread = threading.Thread(
            target=self._run, name=f"chaosray-timeline-{group}", daemon=True
        )

    def _emit(self, pod: Any, event: str, api_time: datetime | None = None) -> None:
        if len(self.events) >= MAX_EVENTS:
            return
        self.events.append(
            {
                "t": time.time(),
                "api_time": _iso(api_time),
                "group": self.group,
                "pod": pod.metadata.name,
                "event": event,
                "node": pod.spec.node_name if pod.spec else None,
            }
        )

    def _observe(self, pod: Any, initial: bool = False) -> None:
        name = pod.metadata.name
        before = self._state.get(name)
        now = {
            "uid": pod.metadata.uid,
            "node": pod.spec.node_name if pod.spec else None,
            "ready": is_ready(pod),
            "deleting": pod.metadata.deletion_timestamp is not None,
        }
        if before is not None and before["uid"] != now["uid"]:  # same name, new pod
            self._emit(pod, "gone")
            before = None
        if before is None:
            self._emit(pod, "present" if initial else "created", pod.metadata.creation_timestamp)
            before = {"node": None, "ready": False, "deleting": False}
            if initial:
                before = dict(now)
        if now["node"] and not before["node"]:
            scheduled = condition(pod, "PodScheduled")
            self._emit(pod, "scheduled", scheduled.last_transition_time if scheduled else None)
        if now["ready"] != before["ready"] and not now["deleting"]:
            ready = condition(pod, "Ready")
            self._emit(pod, "ready" if now["ready"] else "not_ready",
                       ready.last_transition_time if ready else None)  # fmt: skip
        if now["deleting"] and not before["deleting"]:
            grace = pod.metadata.deletion_grace_period_seconds or 0
            self._emit(pod, "deletion_requested",
                       pod.metadata.deletion_timestamp - timedelta(seconds=grace))  # fmt: skip
        self._state[name] = now

    def start(self) -> None:
        core = core_v1(self.secrets)
        listing = list_pods(core, self.namespace, self.label_selector)
        for pod in listing.items:
            self._observe(pod, initial=True)
        self._version = str(listing.metadata.resource_version)
        self._thread.start()

    def _run(self) -> None:
        core = core_v1(self.secrets)
        try:
            for kind, obj in watch_pods(
                core, self.namespace, self.label_selector, self._version,
                deadline=float("inf"), stop=self._stop,
            ):  # fmt: skip
                if kind == "RELIST":
                    seen = {p.metadata.name for p in obj}
                    for name in set(self._state) - seen:
                        self.events.append(
                            {"t": time.time(), "api_time": None, "group": self.group,
                             "pod": name, "event": "gone", "node": self._state[name]["node"]}
                        )  # fmt: skip
                        del self._state[name]
                    for pod in obj:
                        self._observe(pod)
                elif kind == "DELETED":
                    self._emit(obj, "gone")
                    self._state.pop(obj.metadata.name, None)
                else:
                    self._observe(obj)
        except Exception as exc:  # reported in the journal, never silently lost
            self.error = f"{type(exc).__name__}: {exc}"
            logger.error(f"pod timeline of {self.group}: watch failed: {self.error}")

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)


_active: list[PodTimeline] = []


def _selectors(arguments: dict[str, Any]) -> tuple[str, dict[str, str]]:
    namespace = arguments.get("namespace", "default")
    selectors = arguments.get("selectors")
    if isinstance(selectors, list):
        selectors = {s: s for s in selectors}
    if not isinstance(namespace, str) or not namespace:
        raise ValueError(f"namespace must be a name, got {namespace!r}")
    if not isinstance(selectors, dict) or not selectors:
        raise ValueError(
            "selectors must map a group name to a label selector, for example "
            '{"workers": "ray.io/node-type=worker"}'
        )
    for group, selector in selectors.items():
        if not isinstance(selector, str) or not selector.strip():
            raise ValueError(f"selector of {group!r} is empty")
    return namespace, {str(k): str(v) for k, v in selectors.items()}


def validate_control(control: dict[str, Any]) -> None:
    """`chaos validate`: the namespace and selectors are well formed."""
    arguments = control.get("provider", {}).get("arguments", {})
    if "${" in str(arguments):
        return
    try:
        _selectors(arguments)
    except ValueError as exc:
        raise InvalidActivity(f"control {control.get('name')!r}: {exc}") from None


def before_experiment_control(
    context: Experiment,
    configuration: Configuration = None,
    secrets: Secrets = None,
    **arguments: Any,
) -> None:
    """Start watching before the experiment begins."""
    try:
        namespace, selectors = _selectors(arguments)
        for group, selector in selectors.items():
            timeline = PodTimeline(group, namespace, selector, secrets)
            timeline.start()
            _active.append(timeline)
    except Exception as exc:
        cleanup_control()
        logger.error(f"pod timeline: cannot start: {exc}")
        raise InterruptExecution(f"pod timeline: cannot start: {exc}") from None
    logger.info(f"Pod timeline recording {', '.join(selectors)} in {namespace}")


def after_experiment_control(
    context: Experiment,
    state: Journal,
    configuration: Configuration = None,
    secrets: Secrets = None,
    **arguments: Any,
) -> None:
    """Stop watching and put the timeline into the journal."""
    # An activity cut off by Ctrl-C has no status, which crashes `chaos report`.
    mark_interrupted_runs(state)
    started = datetime.now(UTC)
    timelines = list(_active)
    cleanup_control()
    events = sorted((e for t in timelines for e in t.events), key=lambda e: e["t"])
    errors = {t.group: t.error for t in timelines if t.error}
    output = {
        "events": events,
        "errors": errors,
        "groups": {t.group: t.label_selector for t in timelines},
    }
    first = datetime.fromtimestamp(events[0]["t"], UTC) if events else started
    add_control_entry(
        state,
        name=RUN_NAME,
        module="chaosray.k8s.control",
        func="pod_timeline",
        arguments=arguments,
        output=output,
        started_at=first.timestamp(),
        ended_at=time.time(),
        failure=f"pod timeline watch failed: {errors}" if errors else None,
    )
    state.setdefault("chaosray", {})["timeline"] = output


def cleanup_control() -> None:
    """Stop every watch (the experiment ended or was interrupted)."""
    while _active:
        _active.pop().stop()
