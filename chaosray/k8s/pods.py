"""Pod reading shared by the Kubernetes probes and actions (no activities).

- One list call per question, label and field selectors applied server-side.
- "Ready" means the Ready condition is True *and* the pod is not being
  deleted (chaostoolkit-kubernetes counts Terminating pods as running; we
  do not).
- API errors become ``ActivityFailed`` messages that say what to fix.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar, overload

from chaoslib.exceptions import ActivityFailed
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from chaosray.k8s.client import REQUEST_TIMEOUT
from chaosray.retry import retry_read

__all__: list[str] = []  # helpers, not activities

logger = logging.getLogger("chaostoolkit")

T = TypeVar("T")


def api_message(exc: ApiException) -> str:
    """The API server's own message of an error (its Status body), else the reason."""
    try:
        return str(json.loads(exc.body or "{}").get("message") or exc.reason or "")
    except (TypeError, ValueError, AttributeError):
        return str(exc.reason or "")


def api_error(exc: ApiException, what: str) -> str:
    """An API error in a few words, for a message: ``HTTP <status> <the API
    server's short message>`` (:func:`api_message`), never the response body.
    The whole error (status, reason, body) goes to the ``chaostoolkit`` log at
    debug level, with ``what`` failed, where a journal never has it."""
    logger.debug(f"{what} failed: HTTP {exc.status} {exc.reason}; response body: {exc.body!r}")
    return f"HTTP {exc.status} {api_message(exc)}"


def explain(exc: ApiException, what: str) -> ActivityFailed:
    """An ``ActivityFailed`` naming what failed and why, from an API error:
    :func:`api_error` and a hint."""
    hints = {
        400: "check the selector syntax (for example app=redis,tier in (a,b))",
        401: "the credentials of the kubeconfig were refused",
        403: "the kubeconfig's user is not allowed to do this (RBAC)",
        404: "it does not exist; check the name and namespace",
        429: "the API server refused (for an eviction: a PodDisruptionBudget)",
    }
    hint = hints.get(exc.status or 0, "")
    return ActivityFailed(f"{what} failed: {api_error(exc, what)}" + (f" ({hint})" if hint else ""))


@overload
def api_call(
    call: Callable[[], T], what: str, *, retry: bool = ..., missing_ok: Literal[False] = ...
) -> T: ...
@overload
def api_call(
    call: Callable[[], T], what: str, *, retry: bool = ..., missing_ok: bool
) -> T | None: ...
def api_call(
    call: Callable[[], T], what: str, *, retry: bool = False, missing_ok: bool = False
) -> T | None:
    """``call()``, one Kubernetes API call; an ``ApiException`` becomes the
    ``ActivityFailed`` of :func:`explain` (``what`` names the call, as in
    ``"delete pod ns/name"``), raised without the exception as its context.

    - ``retry``: a read, tried again on transient errors (``retry_read``).
      Never for a write: deleting twice is not deleting once.
    - ``missing_ok``: a 404 returns ``None`` (the object is absent, and that
      is fine) instead of failing.
    """
    try:
        return retry_read(call, description=what) if retry else call()
    except ApiException as exc:
        if missing_ok and exc.status == 404:
            return None
        raise explain(exc, what) from None


def read(call: Callable[[], T], what: str) -> T:
    """A read with the project's retry on transient errors, API errors explained."""
    return api_call(call, what, retry=True)


def ensure_namespace(core: client.CoreV1Api, namespace: str) -> None:
    """Fail clearly for a namespace that does not exist (a list in it would
    just be empty). Called only when a list came back empty, to keep probes at
    one API call in the common case."""
    try:
        retry_read(
            lambda: core.read_namespace(namespace, _request_timeout=REQUEST_TIMEOUT),
            description=f"read namespace {namespace}",
        )
    except ApiException as exc:
        if exc.status == 404:
            raise ActivityFailed(f"namespace {namespace!r} does not exist") from None
        if exc.status != 403:  # not allowed to read namespaces: nothing to tell
            raise explain(exc, f"read namespace {namespace}") from None


def list_pods(
    core: client.CoreV1Api,
    namespace: str,
    label_selector: str | None = None,
    field_selector: str | None = None,
) -> Any:
    """One list call (retried on transient errors); returns the V1PodList."""
    what = f"list pods in {namespace!r}" + (
        f" with selector {label_selector!r}" if label_selector else ""
    )
    kwargs: dict[str, Any] = {"_request_timeout": REQUEST_TIMEOUT}
    if label_selector:
        kwargs["label_selector"] = label_selector
    if field_selector:
        kwargs["field_selector"] = field_selector
    return read(lambda: core.list_namespaced_pod(namespace, **kwargs), what)


def require_pods(
    core: client.CoreV1Api, namespace: str, label_selector: str
) -> tuple[list[Any], str]:
    """The pods of a selector, failing clearly when there are none (after
    telling a missing namespace apart). Returns the pods and the list's
    resourceVersion (to start a watch from)."""
    if not label_selector or not label_selector.strip():
        raise ActivityFailed("label_selector is empty: name the pods, for example app=redis")
    listing = list_pods(core, namespace, label_selector)
    if not listing.items:
        ensure_namespace(core, namespace)
        raise ActivityFailed(f"no pod in namespace {namespace!r} matches {label_selector!r}")
    return list(listing.items), str(listing.metadata.resource_version)


def pick_pod(pods: list[Any], pick: str = "oldest", seed: int | None = None) -> Any:
    """Choose one pod: the ``oldest`` (creation time, then name), or a
    ``random`` one, reproducible with ``seed``."""
    if not pods:
        raise ActivityFailed("no pod to choose from")
    if pick == "oldest":
        return min(pods, key=lambda p: (p.metadata.creation_timestamp, p.metadata.name))
    if pick == "random":
        return random.Random(seed).choice(sorted(pods, key=lambda p: p.metadata.name))
    raise ActivityFailed(f"pick must be 'oldest' or 'random', got {pick!r}")


def condition(pod: Any, kind: str) -> Any | None:
    for cond in (pod.status.conditions if pod.status else None) or []:
        if cond.type == kind:
            return cond
    return None


def is_terminating(pod: Any) -> bool:
    return pod.metadata.deletion_timestamp is not None


def is_ready(pod: Any) -> bool:
    """Ready condition True and not being deleted."""
    ready = condition(pod, "Ready")
    return ready is not None and ready.status == "True" and not is_terminating(pod)


def is_running(pod: Any) -> bool:
    return bool(pod.status and pod.status.phase == "Running") and not is_terminating(pod)


def ready_since(pod: Any) -> datetime | None:
    """When the pod last became Ready (the API server's timestamp, 1 s resolution)."""
    ready = condition(pod, "Ready")
    if ready is None or ready.status != "True":
        return None
    return ready.last_transition_time  # type: ignore[no-any-return]


def describe(pod: Any) -> dict[str, Any]:
    """What the probes say about a pod."""
    ready = condition(pod, "Ready")
    return {
        "name": pod.metadata.name,
        "node": pod.spec.node_name,
        "phase": pod.status.phase if pod.status else None,
        "ready": is_ready(pod),
        "terminating": is_terminating(pod),
        "created": _iso(pod.metadata.creation_timestamp),
        "ready_since": _iso(ready.last_transition_time)
        if ready and ready.status == "True"
        else None,
        "uid": pod.metadata.uid,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@dataclass
class Disruption:
    """A pod our actions deleted or evicted, with the API server's timestamp."""

    namespace: str
    label_selector: str | None
    pod: str
    node: str | None
    at: datetime
    kind: str  # "delete" or "evict"
    # The pod's labels, for a disruption recorded without a selector (a
    # drain evicts every pod of a node): a wait for a selector's pods times
    # its recovery only from the disruption of a pod it selects.
    labels: dict[str, str] | None = None


def equality_labels(label_selector: str) -> dict[str, str] | None:
    """The labels an equality-based selector (``a=b,c==d``) asks for; None
    when it has another kind of term (``!=``, ``in``, ``exists``)."""
    labels = {}
    for part in label_selector.split(","):
        key, sep, value = part.replace("==", "=").partition("=")
        if not sep or not key.strip() or key.endswith("!"):
            return None
        labels[key.strip()] = value.strip()
    return labels


def may_select(label_selector: str, labels: dict[str, str]) -> bool:
    """Whether ``label_selector`` selects ``labels``; True for a selector
    that is not equality-based: it may."""
    wanted = equality_labels(label_selector)
    return wanted is None or all(labels.get(k) == v for k, v in wanted.items())


_disruptions: list[Disruption] = []
_disruptions_lock = threading.Lock()


def record_disruption(disruption: Disruption) -> None:
    with _disruptions_lock:
        _disruptions.append(disruption)


def last_disruption(namespace: str, label_selector: str | None = None) -> Disruption | None:
    """The latest disruption our actions made in a namespace (for a selector
    when given), so a wait can measure recovery from it."""
    with _disruptions_lock:
        for item in reversed(_disruptions):
            if item.namespace == namespace and (
                label_selector is None
                or item.label_selector == label_selector
                or (
                    item.label_selector is None
                    and (item.labels is None or may_select(label_selector, item.labels))
                )
            ):
                return item
    return None


def _resource_version(obj: Any) -> str:
    if isinstance(obj, dict):
        return str(obj["metadata"]["resourceVersion"])
    return str(obj.metadata.resource_version)


def watch_pods(
    core: client.CoreV1Api,
    namespace: str | None,
    label_selector: str | None,
    resource_version: str,
    deadline: float,
    field_selector: str | None = None,
    stop: threading.Event | None = None,
) -> Iterator[tuple[str, Any]]:
    """Pod events ``(type, pod)`` until ``deadline`` (monotonic) or until
    ``stop`` is set (noticed within a few seconds), in one namespace or all
    (``namespace=None``), resuming after dropped watches. After a 410 (history
    expired) it relists and yields ``("RELIST", [pods])``: consumers then
    replace their state."""
    if namespace is None:
        lister: Callable[..., Any] = core.list_pod_for_all_namespaces
        args: tuple[Any, ...] = ()
    else:
        lister, args = core.list_namespaced_pod, (namespace,)
    return watch_objects(
        lister, args, "pods", label_selector, resource_version, deadline, field_selector, stop
    )


def watch_objects(
    lister: Callable[..., Any],
    args: tuple[Any, ...],
    what: str,
    label_selector: str | None,
    resource_version: str,
    deadline: float,
    field_selector: str | None = None,
    stop: threading.Event | None = None,
) -> Iterator[tuple[str, Any]]:
    """Events ``(type, object)`` of any list call (``lister(*args)``: pods,
    EndpointSlices, nodes), as :func:`watch_pods` describes."""
    version = resource_version
    selectors: dict[str, Any] = {}
    if label_selector:
        selectors["label_selector"] = label_selector
    if field_selector:
        selectors["field_selector"] = field_selector
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or (stop is not None and stop.is_set()):
            return
        # With a stop event, reconnect every few seconds to look at it.
        window = min(remaining, 3.0) if stop is not None else remaining
        stream = watch.Watch()
        try:
            for event in stream.stream(
                lister,
                *args,
                resource_version=version,
                timeout_seconds=max(1, int(window)),
                allow_watch_bookmarks=True,
                _request_timeout=(REQUEST_TIMEOUT[0], window + 5),
                **selectors,
            ):
                obj = event["object"]
                if event["type"] == "BOOKMARK":
                    version = _resource_version(obj)
                    continue
                if event["type"] == "ERROR":
                    raise ApiException(status=410, reason="watch expired")
                version = obj.metadata.resource_version
                yield event["type"], obj
                if time.monotonic() >= deadline or (stop is not None and stop.is_set()):
                    return
        except ApiException as exc:
            if exc.status != 410:
                raise
            listing = read(
                lambda: lister(*args, _request_timeout=REQUEST_TIMEOUT, **selectors),
                f"relist {what}",
            )
            version = listing.metadata.resource_version
            yield "RELIST", list(listing.items)
        except Exception as exc:  # connection dropped mid-watch: resume
            if time.monotonic() >= deadline:
                return
            logger.debug(f"{what} watch interrupted ({exc}); resuming")
            time.sleep(0.2)
        finally:
            stream.stop()


class PodSet:
    """Pods by name, kept current from a list and then watch events."""

    def __init__(self, pods: list[Any]) -> None:
        self.pods = {p.metadata.name: p for p in pods}

    def apply(self, kind: str, obj: Any) -> None:
        if kind == "RELIST":
            self.pods = {p.metadata.name: p for p in obj}
        elif kind == "DELETED":
            self.pods.pop(obj.metadata.name, None)
        else:
            self.pods[obj.metadata.name] = obj

    def ready(self) -> list[Any]:
        return [p for p in self.pods.values() if is_ready(p)]


@dataclass
class ReadyObservation:
    """What a watch of a selector's Ready pods saw over a span of time."""

    fewest: int  # the fewest Ready pods at any moment
    fewest_at: float  # epoch seconds: when the fewest was first seen
    not_ready_then: list[str]  # the pods that were not Ready at that moment
    ready_at_end: int
    watched_s: float


def observe_ready(
    core: client.CoreV1Api, namespace: str, label_selector: str, seconds: float
) -> ReadyObservation:
    """Watch ``label_selector`` for ``seconds`` (events, not polls): the fewest
    Ready pods seen, when, and which pods were not Ready then."""
    started = time.monotonic()
    listing = list_pods(core, namespace, label_selector)
    state = PodSet(listing.items)

    def not_ready() -> list[str]:
        return sorted(n for n, p in state.pods.items() if not is_ready(p))

    fewest, fewest_at, missing = len(state.ready()), time.time(), not_ready()
    deadline = started + max(0.0, seconds)
    if seconds > 0:
        version = str(listing.metadata.resource_version)
        for kind, obj in watch_pods(core, namespace, label_selector, version, deadline):
            state.apply(kind, obj)
            if len(state.ready()) < fewest:
                fewest, fewest_at, missing = len(state.ready()), time.time(), not_ready()
        remaining = deadline - time.monotonic()
        if remaining > 0:  # the watch ended early (API server gone): keep the cadence
            time.sleep(remaining)
    return ReadyObservation(
        fewest, fewest_at, missing, len(state.ready()), time.monotonic() - started
    )
