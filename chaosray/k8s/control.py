"""The timeline: a Chaos Toolkit control that watches, for the length of an
experiment, the pods of given selectors, the endpoints of the Service that
users reach (``service``: its EndpointSlices) and the nodes, and records
every change. The report attributes each outage window to the events that
preceded it (:mod:`chaosray.causes`).

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
                },
                "service": "ray-serve-nlb",
                "nodes": true,
                "ray_cluster": "ray-serve"
            }
        }
    }]

Events, each with the time this watch saw it (``t``, epoch seconds) and the
API server's own timestamp where Kubernetes keeps one (``api_time``, 1 s
resolution): ``present`` (at the start), ``created``, ``scheduled`` (to a
node), ``ready``, ``not_ready``, ``deletion_requested``, ``gone``; for
the Service's endpoints (group ``endpoints``, named by their pod):
``present``, ``added``, ``ready``, ``not_ready``, ``terminating``,
``removed``; for nodes (group ``nodes``): ``added``, ``cordoned``,
``uncordoned``, ``ready``, ``not_ready``, ``gone``; for Ray (group
``ray``, sampled): see :class:`RayTimeline`. The timeline goes
into the journal as a run entry ``pod-timeline`` and under
``journal["chaosray"]["timeline"]``. Watches are stopped when the
experiment ends and in ``cleanup_control`` (Ctrl-C).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from chaoslib.exceptions import InterruptExecution, InvalidActivity
from chaoslib.types import Configuration, Experiment, Journal, Secrets

from chaosray.journal import add_control_entry, mark_interrupted_runs
from chaosray.k8s.client import REQUEST_TIMEOUT, core_v1, discovery_v1
from chaosray.k8s.pods import condition, is_ready, read, watch_objects

__all__ = [
    "after_experiment_control",
    "before_experiment_control",
    "cleanup_control",
    "validate_control",
]

logger = logging.getLogger("chaostoolkit")

RUN_NAME = "pod-timeline"
MAX_EVENTS = 100_000  # bounds memory on a very busy namespace
DEFAULT_RAY_SAMPLE_S = 5.0
# The label the EndpointSlice controller puts on a Service's slices.
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class Timeline:
    """Watches one kind of object in a background thread and records its
    events; subclasses say what to list and what a change means."""

    group = ""
    what = "objects"

    def __init__(self, namespace: str, label_selector: str | None, secrets: Secrets) -> None:
        self.namespace = namespace
        self.label_selector = label_selector
        self.secrets = secrets
        self.events: list[dict[str, Any]] = []
        self.error: str | None = None
        self._stop = threading.Event()
        self._version = ""
        self._thread = threading.Thread(
            target=self._run, name=f"chaosray-timeline-{self.group}", daemon=True
        )

    def lister(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        raise NotImplementedError

    def observe(self, obj: Any, initial: bool = False) -> None:
        raise NotImplementedError

    def known(self) -> set[str]:
        """The names of the objects this timeline holds state for."""
        raise NotImplementedError

    def vanished(self, name: str) -> None:
        """Object ``name`` was deleted: record it and forget it."""
        raise NotImplementedError

    def forget(self, obj: Any) -> None:
        self.vanished(obj.metadata.name)

    def relisted(self, objects: list[Any]) -> None:
        """After a relist: what is gone was deleted, the rest observed."""
        for name in self.known() - {o.metadata.name for o in objects}:
            self.vanished(name)
        for obj in objects:
            self.observe(obj)

    def emit(self, subject: str, event: str, node: str | None = None,
             api_time: datetime | None = None, at: float | None = None,
             **detail: Any) -> None:  # fmt: skip
        """Record one event; ``at``: when it was seen (default: now)."""
        if len(self.events) >= MAX_EVENTS:
            return
        event_record: dict[str, Any] = {
            "t": time.time() if at is None else at,
            "api_time": _iso(api_time),
            "group": self.group,
            "pod": subject,
            "event": event,
            "node": node,
        }
        if detail:
            event_record["detail"] = detail
        self.events.append(event_record)

    def start(self) -> None:
        lister, args = self.lister()
        selector = {"label_selector": self.label_selector} if self.label_selector else {}
        listing = read(
            lambda: lister(*args, _request_timeout=REQUEST_TIMEOUT, **selector),
            f"list {self.what}",
        )
        for obj in listing.items:
            self.observe(obj, initial=True)
        self._version = str(listing.metadata.resource_version)
        self._thread.start()

    def _run(self) -> None:
        lister, args = self.lister()
        try:
            for kind, obj in watch_objects(
                lister, args, self.what, self.label_selector, self._version,
                deadline=float("inf"), stop=self._stop,
            ):  # fmt: skip
                if kind == "RELIST":
                    self.relisted(obj)
                elif kind == "DELETED":
                    self.forget(obj)
                else:
                    self.observe(obj)
        except Exception as exc:  # reported in the journal, never silently lost
            self.error = f"{type(exc).__name__}: {exc}"
            logger.error(f"timeline of {self.group}: watch failed: {self.error}")

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)


class PodTimeline(Timeline):
    """The pods of one selector: present, created, scheduled, ready,
    not_ready, deletion_requested, gone."""

    what = "pods"

    def __init__(self, group: str, namespace: str, label_selector: str, secrets: Secrets) -> None:
        self.group = group
        super().__init__(namespace, label_selector, secrets)
        self._state: dict[str, dict[str, Any]] = {}

    def lister(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return core_v1(self.secrets).list_namespaced_pod, (self.namespace,)

    def _emit(self, pod: Any, event: str, api_time: datetime | None = None) -> None:
        self.emit(pod.metadata.name, event, pod.spec.node_name if pod.spec else None, api_time)

    def observe(self, pod: Any, initial: bool = False) -> None:
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

    def known(self) -> set[str]:
        return set(self._state)

    def vanished(self, name: str) -> None:
        self.emit(name, "gone", (self._state.pop(name, None) or {}).get("node"))


class EndpointTimeline(Timeline):
    """The endpoints of one Service (its EndpointSlices): added, removed,
    ready, not_ready, terminating. An endpoint is named by the pod it
    targets (else its address)."""

    group = "endpoints"
    what = "EndpointSlices"

    def __init__(self, namespace: str, service: str, secrets: Secrets) -> None:
        super().__init__(namespace, f"{SERVICE_NAME_LABEL}={service}", secrets)
        self.service = service
        # slice name -> endpoint name -> (node, ready, terminating)
        self._state: dict[str, dict[str, tuple[str | None, bool, bool]]] = {}

    def lister(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return discovery_v1(self.secrets).list_namespaced_endpoint_slice, (self.namespace,)

    @staticmethod
    def _endpoints(endpoint_slice: Any) -> dict[str, tuple[str | None, bool, bool]]:
        out = {}
        for endpoint in endpoint_slice.endpoints or []:
            ref = endpoint.target_ref
            name = ref.name if ref is not None and ref.name else ",".join(endpoint.addresses or [])
            conditions = endpoint.conditions
            # Per the EndpointSlice API, an unknown ready condition means ready.
            ready = conditions is None or conditions.ready is not False
            terminating = bool(conditions is not None and conditions.terminating)
            out[name] = (endpoint.node_name, ready, terminating)
        return out

    def observe(self, endpoint_slice: Any, initial: bool = False) -> None:
        key = endpoint_slice.metadata.name
        before = self._state.get(key, {})
        now = self._endpoints(endpoint_slice)
        for name, (node, ready, terminating) in now.items():
            old = before.get(name)
            if old is None:
                self.emit(name, "present" if initial else "added", node,
                          ready=ready, terminating=terminating)  # fmt: skip
                continue
            if terminating and not old[2]:
                self.emit(name, "terminating", node, ready=ready)
            if ready != old[1]:
                self.emit(name, "ready" if ready else "not_ready", node, terminating=terminating)
        for name in set(before) - set(now):
            self.emit(name, "removed", before[name][0])
        self._state[key] = now

    def known(self) -> set[str]:
        return set(self._state)

    def vanished(self, name: str) -> None:
        # A slice went: every endpoint it held is removed.
        for endpoint, (node, _ready, _terminating) in self._state.pop(name, {}).items():
            self.emit(endpoint, "removed", node)


class NodeTimeline(Timeline):
    """Every node: cordoned, uncordoned, ready, not_ready, gone."""

    group = "nodes"
    what = "nodes"

    def __init__(self, secrets: Secrets) -> None:
        super().__init__("", None, secrets)
        self._state: dict[str, tuple[bool, bool]] = {}  # name -> (unschedulable, ready)

    def lister(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return core_v1(self.secrets).list_node, ()

    def observe(self, node: Any, initial: bool = False) -> None:
        name = node.metadata.name
        ready = next(
            (c.status == "True" for c in (node.status.conditions or []) if c.type == "Ready"),
            False,
        ) if node.status else False  # fmt: skip
        now = (bool(node.spec.unschedulable) if node.spec else False, ready)
        before = self._state.get(name)
        self._state[name] = now
        if before is None:
            if not initial:
                self.emit(name, "added", name)
            return
        if now[0] != before[0]:
            self.emit(name, "cordoned" if now[0] else "uncordoned", name)
        if now[1] != before[1]:
            self.emit(name, "ready" if now[1] else "not_ready", name)

    def known(self) -> set[str]:
        return set(self._state)

    def vanished(self, name: str) -> None:
        self._state.pop(name, None)
        self.emit(name, "gone", name)


class RayTimeline(Timeline):
    """Ray as its dashboard sees it, sampled every ``interval`` seconds:
    ``dashboard_unreachable`` / ``dashboard_answers`` (the head's dashboard
    down or back), each Ray node's state (``ALIVE``, ``DEAD``), each Serve
    proxy's status (``HEALTHY``, ``UNHEALTHY``, ``DRAINING``), and each
    deployment's replica states (``RUNNING x2, STARTING x1``). Subjects are
    short node ids with their IP (``node 1a2b3c4d (10.0.1.5)``)."""

    group = "ray"
    what = "the Ray dashboard"

    def __init__(
        self, namespace: str, cluster: str, url: str | None, interval: float, secrets: Secrets
    ) -> None:
        super().__init__(namespace, None, secrets)
        from chaosray.ray.dashboard import Dashboard

        self.dashboard = Dashboard.for_cluster(namespace, cluster, url or None, None)
        self.interval = interval
        self._answering: bool | None = None
        self._seen: dict[str, str] = {}  # subject -> last state

    def _record(
        self, subject: str, state: str, initial: bool, at: float, node: str | None = None
    ) -> None:
        if self._seen.get(subject) == state:
            return
        self.emit(subject, f"present {state}" if initial else state, node, at=at)
        self._seen[subject] = state

    def sample(self, initial: bool = False) -> None:
        """One look at Ray; its events carry the time the look began (a
        dashboard that does not answer can take its timeouts to say so)."""
        from chaosray.ray.dashboard import nodes, serve_applications

        asked = time.time()
        try:
            table = nodes(self.dashboard, self.secrets)
            serve = serve_applications(self.dashboard, self.secrets)
        except Exception as exc:  # the head is down: that is an event, not an error
            if self._answering is not False:
                self.emit("dashboard", "dashboard_unreachable", reason=str(exc)[:200], at=asked)
                self._answering = False
            return
        if self._answering is False:
            self.emit("dashboard", "dashboard_answers", at=asked)
        self._answering = True
        names: dict[str, str] = {}
        for row in table:
            node_id = str(row.get("node_id") or "")
            names[node_id] = f"node {node_id[:8]} ({row.get('node_ip')})"
            self._record(names[node_id], str(row.get("state")), initial, asked, row.get("node_ip"))
        for node_id, proxy in (serve.get("proxies") or {}).items():
            subject = f"proxy on {names.get(str(node_id), f'node {str(node_id)[:8]}')}"
            if isinstance(proxy, dict):
                self._record(
                    subject, str(proxy.get("status")), initial, asked, proxy.get("node_ip")
                )
        for app, detail in (serve.get("applications") or {}).items():
            for name, deployment in ((detail or {}).get("deployments") or {}).items():
                counts: dict[str, int] = {}
                for replica in (deployment or {}).get("replicas") or []:
                    state = str(replica.get("state"))
                    counts[state] = counts.get(state, 0) + 1
                summary = ", ".join(f"{k} x{v}" for k, v in sorted(counts.items())) or "none"
                self._record(f"deployment {app}/{name}", f"replicas {summary}", initial, asked)

    def start(self) -> None:
        self._thread.start()  # the first sample too: a dashboard that hangs delays nothing

    def _run(self) -> None:
        try:
            self.sample(initial=True)
            while not self._stop.wait(self.interval):
                self.sample()
            # One last look when the experiment ends (stop() waits up to 10 s
            # for it): the state Ray was left in, whatever the interval.
            self.sample()
        except Exception as exc:  # reported in the journal, never silently lost
            self.error = f"{type(exc).__name__}: {exc}"
            logger.error(f"timeline of {self.group}: sampling failed: {self.error}")


_active: list[Timeline] = []
# Groups whose watch could not start (the group and why): in the journal.
_unwatched: dict[str, str] = {}


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
        if group in (EndpointTimeline.group, NodeTimeline.group, RayTimeline.group, "disruption"):
            raise ValueError(f"group name {group!r} is taken by the {group} timeline")
    service = arguments.get("service")
    if service is not None and not isinstance(service, str):
        raise ValueError(f"service must be a Service name, got {service!r}")
    nodes = arguments.get("nodes", True)
    if not isinstance(nodes, bool):
        raise ValueError(f"nodes must be true or false, got {nodes!r}")
    for key in ("ray_cluster", "ray_dashboard_url"):
        value = arguments.get(key)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{key} must be text, got {value!r}")
    interval = arguments.get("ray_sample_s", DEFAULT_RAY_SAMPLE_S)
    if isinstance(interval, bool) or not isinstance(interval, int | float) or interval < 0.5:
        raise ValueError(f"ray_sample_s must be a number >= 0.5, got {interval!r}")
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
    """Start watching before the experiment begins: the pods of each selector,
    the endpoints of ``service`` (its EndpointSlices) when given, the nodes
    unless ``nodes`` is false, and, with ``ray_cluster``, Ray's nodes and
    Serve's proxies and replicas through the dashboard every
    ``ray_sample_s`` seconds (``ray_dashboard_url``: an explicit dashboard
    address; default: the API server's proxy)."""
    try:
        namespace, selectors = _selectors(arguments)
        timelines: list[Timeline] = [
            PodTimeline(group, namespace, selector, secrets)
            for group, selector in selectors.items()
        ]
        if arguments.get("service"):
            timelines.append(EndpointTimeline(namespace, arguments["service"], secrets))
        if arguments.get("nodes", True):
            timelines.append(NodeTimeline(secrets))
        if arguments.get("ray_cluster"):
            timelines.append(
                RayTimeline(
                    namespace,
                    arguments["ray_cluster"],
                    arguments.get("ray_dashboard_url"),
                    float(arguments.get("ray_sample_s", DEFAULT_RAY_SAMPLE_S)),
                    secrets,
                )
            )
        for timeline in timelines:
            try:
                timeline.start()
            except Exception as exc:
                if isinstance(timeline, PodTimeline):
                    raise
                # The endpoints and nodes only explain outages: without them
                # (RBAC not re-applied, say) the experiment runs on.
                _unwatched[timeline.group] = str(exc)
                logger.warning(f"timeline: not watching {timeline.group}: {exc}")
                continue
            _active.append(timeline)
    except Exception as exc:
        cleanup_control()
        logger.error(f"pod timeline: cannot start: {exc}")
        raise InterruptExecution(f"pod timeline: cannot start: {exc}") from None
    logger.info(f"Timeline recording {', '.join(t.group for t in timelines)} in {namespace}")


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
    unwatched = dict(_unwatched)
    cleanup_control()
    events = sorted((e for t in timelines for e in t.events), key=lambda e: e["t"])
    errors = {t.group: t.error for t in timelines if t.error}
    output = {
        "events": events,
        "errors": errors,
        "groups": {t.group: t.label_selector for t in timelines if isinstance(t, PodTimeline)},
        "watched": sorted(t.group for t in timelines),
        "unwatched": unwatched,
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
    _unwatched.clear()
