"""The Kubernetes count/readiness probes against a naive namespace list, and
the lag of ``wait_for_ready_pods``, on the test rig's real control plane.

The rig's cluster (``tests/rig/kube.py``: kube-apiserver, etcd, scheduler,
controller-manager, four kwok fake nodes, KubeRay) is started in a temporary
directory, ``deploy/`` is applied, the nodes' pod capacity is raised, and a
ReplicaSet of ``--pods`` replicas (1,000 by default) is created in
``--namespace`` (``ray-serve`` by default, next to the Ray workers, so that a
namespace-wide list really carries the 1,000 pods); kwok makes them Ready.

1. **Probes** (``pod_counts``, ``count_ready_pods``, ``pods_on_distinct_nodes``)
   on the bulk selector and on the 3 Ray workers
   (``ray.io/cluster=ray-serve,ray.io/node-type=worker``): latency (median and
   p95 over ``--runs`` calls, methods interleaved so noise hits all alike) and
   API requests per call. Requests are counted on the server, from
   kube-apiserver's ``apiserver_request_total`` (``GET /metrics`` before and
   after ``--count-calls`` calls, series of pods, namespaces and nodes; the
   control plane's own traffic during the batch, leases, events, endpoints,
   discovery, is shown apart; the scrape is not counted by the server), and
   cross-checked on the client by counting ``RESTClientObject.request``
   calls. Baselines measured in the same run: **naive** (list every pod of the
   namespace without a selector, filter the labels and count the Ready pods
   client-side) and chaostoolkit-kubernetes' ``chaosk8s.pod.probes.count_pods``
   (a new client from the kubeconfig per call, selector list, counts pods in
   phase Running). Reference row: the probes' selector list parsed with
   ``json.loads`` instead of the kubernetes client's models.
2. **Wait lag**: a pod held unschedulable (a nodeSelector no node matches),
   ``wait_for_ready_pods(selector, 1, timeout)`` started in a thread, then a
   node labelled to match. The moment the pod's Ready condition turned true is
   the arrival of that update on an independent watch of our own (the API's
   lastTransitionTime has 1 s resolution); the lag is the time
   ``wait_for_ready_pods`` returned minus that moment. Target from the issue:
   within 1 s.

Run: ``.venv/bin/python benchmarks/k8s_bench.py`` (a few minutes; needs the
binaries of ``make cluster-binaries``). The cluster is always stopped.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from kubernetes import client, watch
from kubernetes.client import rest
from kubernetes.config import kube_config

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo's tests.rig

from chaosray.k8s.client import REQUEST_TIMEOUT, core_v1
from chaosray.k8s.pods import condition, is_ready
from chaosray.k8s.probes import (
    count_ready_pods,
    pod_counts,
    pods_on_distinct_nodes,
    wait_for_ready_pods,
)
from chaosray.metrics import exact_percentile
from tests.rig.kube import WORKERS, KubeCluster, apply_topology, start_cluster

BULK_LABEL = "bench.chaosray/bulk"
BULK_SELECTOR = f"{BULK_LABEL}=pods"
LAG_LABEL = "bench.chaosray/lag"
LAG_NODE_LABEL = "bench.chaosray/lag-node"
NODES = ("node-a", "node-b", "node-c", "node-d")


# --- counting API requests ---------------------------------------------------


class ClientCounter:
    """Counts the kubernetes client's HTTP requests, per thread, by wrapping
    ``RESTClientObject.request`` (every API call and watch goes through it)."""

    def __init__(self) -> None:
        self.counts: collections.Counter[int] = collections.Counter()
        self._lock = threading.Lock()
        self._original: Any = None

    def install(self) -> None:
        original = rest.RESTClientObject.request
        self._original = original
        counter = self

        def counted(self_: Any, *args: Any, **kwargs: Any) -> Any:
            with counter._lock:
                counter.counts[threading.get_ident()] += 1
            return original(self_, *args, **kwargs)

        rest.RESTClientObject.request = counted

    def uninstall(self) -> None:
        if self._original is not None:
            rest.RESTClientObject.request = self._original
            self._original = None

    def of(self, ident: int | None = None) -> int:
        with self._lock:
            return self.counts[threading.get_ident() if ident is None else ident]


_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
Labels = tuple[tuple[str, str], ...]


class ServerCounter:
    """kube-apiserver's own request counter (``apiserver_request_total``),
    read with ``requests`` and the admin client certificate, so the scrape is
    not seen by ``ClientCounter``."""

    def __init__(self, cluster: KubeCluster) -> None:
        cfg = cluster.api().configuration
        self.url = f"{cfg.host}/metrics"
        self.cert = (str(cfg.cert_file), str(cfg.key_file))
        self.verify: str | bool = str(cfg.ssl_ca_cert) if cfg.ssl_ca_cert else False
        self.session = requests.Session()

    def scrape(self) -> dict[Labels, float]:
        response = self.session.get(self.url, cert=self.cert, verify=self.verify, timeout=30)
        response.raise_for_status()
        found: dict[Labels, float] = {}
        for line in response.text.splitlines():
            if not line.startswith("apiserver_request_total{"):
                continue
            head, _, value = line.rpartition(" ")
            labels = tuple(sorted(_LABEL.findall(head)))
            found[labels] = found.get(labels, 0.0) + float(value)
        return found


def is_scrape(labels: dict[str, str]) -> bool:
    return labels.get("subresource") == "/metrics" or labels.get("resource") == "/metrics"


# Resources a count/readiness probe reads; every other series (leases, events,
# endpoints, discovery...) is the control plane's own background traffic.
PROBE_RESOURCES = frozenset({"pods", "namespaces", "nodes"})


@dataclass
class ServerDiff:
    attributed: collections.Counter[str] = field(default_factory=collections.Counter)
    background: collections.Counter[str] = field(default_factory=collections.Counter)
    scrapes: float = 0.0

    @property
    def total(self) -> float:
        return float(sum(self.attributed.values()))

    @property
    def other(self) -> float:
        return float(sum(self.background.values()))


def diff(before: dict[Labels, float], after: dict[Labels, float]) -> ServerDiff:
    out = ServerDiff()
    for key, value in after.items():
        delta = value - before.get(key, 0.0)
        if delta <= 0:
            continue
        labels = dict(key)
        if is_scrape(labels):
            out.scrapes += delta
            continue
        resource = labels.get("resource", "")
        what = resource or labels.get("subresource") or "?"
        if labels.get("subresource") and resource:
            what += "/" + labels["subresource"]
        what = f"{labels.get('verb', '?')} {what}"
        if labels.get("group") == "" and resource in PROBE_RESOURCES:
            out.attributed[what] += int(delta)
        else:
            out.background[what] += int(delta)
    return out


# --- what is measured -----------------------------------------------------------


def selector_labels(selector: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in selector.split(","))


def naive_count_ready(selector: str, namespace: str) -> int:
    """Every pod of the namespace, no selector; labels and readiness checked here."""
    wanted = selector_labels(selector)
    pods = core_v1().list_namespaced_pod(namespace, _request_timeout=REQUEST_TIMEOUT).items
    return sum(
        1
        for p in pods
        if all((p.metadata.labels or {}).get(k) == v for k, v in wanted.items()) and is_ready(p)
    )


def raw_list(namespace: str, selector: str | None) -> bytes:
    kwargs: dict[str, Any] = {"_request_timeout": REQUEST_TIMEOUT, "_preload_content": False}
    if selector:
        kwargs["label_selector"] = selector
    return bytes(core_v1().list_namespaced_pod(namespace, **kwargs).data)


def json_count_ready(selector: str, namespace: str) -> int:
    """Reference: the same selector list, parsed by ``json.loads`` instead of
    the kubernetes client's models (what the models cost)."""
    items = json.loads(raw_list(namespace, selector))["items"]
    return sum(
        1
        for p in items
        if not p["metadata"].get("deletionTimestamp")
        and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p.get("status", {}).get("conditions", [])
        )
    )


@dataclass
class Method:
    name: str
    selector_name: str
    selector: str
    call: Callable[[], Any]
    expected: int
    times: list[float] = field(default_factory=list)
    server_per_call: float = 0.0
    server_what: str = ""
    server_other: float = 0.0  # background requests during the batch (not per call)
    client_per_call: float = 0.0


def methods_for(
    selector_name: str, selector: str, namespace: str, expected: int, chaosk8s: bool
) -> list[Method]:
    found = [
        Method(
            "pod_counts",
            selector_name,
            selector,
            lambda: pod_counts(selector, namespace)["ready"],
            expected,
        ),
        Method(
            "count_ready_pods",
            selector_name,
            selector,
            lambda: count_ready_pods(selector, namespace),
            expected,
        ),
        Method(
            "pods_on_distinct_nodes",
            selector_name,
            selector,
            lambda: len(pods_on_distinct_nodes(selector, namespace)["nodes"]),
            expected,
        ),
        Method(
            "naive: list ns + filter",
            selector_name,
            selector,
            lambda: naive_count_ready(selector, namespace),
            expected,
        ),
        Method(
            "ref: selector LIST, json.loads",
            selector_name,
            selector,
            lambda: json_count_ready(selector, namespace),
            expected,
        ),
    ]
    if chaosk8s:
        from chaosk8s.pod.probes import count_pods

        found.append(
            Method(
                "chaosk8s count_pods",
                selector_name,
                selector,
                lambda: count_pods(selector, phase="Running", ns=namespace),
                expected,
            )
        )
    return found


def time_methods(methods: Sequence[Method], runs: int) -> None:
    for method in methods:  # warm-up, and check each answer once
        got = method.call()
        if got != method.expected:
            print(f"  ! {method.name} on {method.selector_name}: {got}, expected {method.expected}")
    for _ in range(runs):
        for method in methods:  # interleaved: noise hits every method alike
            started = time.perf_counter()
            method.call()
            method.times.append(time.perf_counter() - started)


def count_requests(
    methods: Sequence[Method], calls: int, server: ServerCounter, counter: ClientCounter
) -> None:
    for method in methods:
        before = server.scrape()
        client_before = counter.of()
        for _ in range(calls):
            method.call()
        client_after = counter.of()
        time.sleep(0.1)  # the server records a request once its answer is written
        found = diff(before, server.scrape())
        method.server_per_call = found.total / calls
        method.server_what = ", ".join(
            f"{what} {n / calls:g}" for what, n in sorted(found.attributed.items())
        )
        method.server_other = found.other
        method.client_per_call = (client_after - client_before) / calls


# --- the wait's lag ---------------------------------------------------------------


@dataclass
class LagRun:
    index: int
    node: str
    schedulable_to_ready_s: float
    lag_s: float
    waited_s: float
    after_transition_s: float  # return (wall) minus Ready lastTransitionTime (1 s resolution)
    wait_requests: int


class ReadyWatcher(threading.Thread):
    """Our own watch on the selector: when did the Ready=True update arrive?"""

    def __init__(self, core: Any, namespace: str, selector: str, timeout: float) -> None:
        super().__init__(daemon=True, name="ready-watcher")
        self.core, self.namespace, self.selector, self.timeout = core, namespace, selector, timeout
        self.watching = threading.Event()
        self.seen_at: float | None = None
        self.pod: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            listing = self.core.list_namespaced_pod(
                self.namespace, label_selector=self.selector, _request_timeout=REQUEST_TIMEOUT
            )
            stream = watch.Watch()
            self.watching.set()
            for event in stream.stream(
                self.core.list_namespaced_pod,
                self.namespace,
                label_selector=self.selector,
                resource_version=listing.metadata.resource_version,
                timeout_seconds=int(self.timeout),
                _request_timeout=(REQUEST_TIMEOUT[0], self.timeout + 5),
            ):
                if event["type"] in ("ADDED", "MODIFIED") and is_ready(event["object"]):
                    self.seen_at = time.monotonic()
                    self.pod = event["object"]
                    stream.stop()
                    return
        except BaseException as exc:
            self.error = exc
            self.watching.set()


class WaitRunner(threading.Thread):
    def __init__(
        self, selector: str, namespace: str, timeout: float, counter: ClientCounter
    ) -> None:
        super().__init__(daemon=True, name="wait-for-ready")
        self.selector, self.namespace, self.timeout = selector, namespace, timeout
        self.counter = counter
        self.returned_at: float | None = None
        self.returned_wall: float | None = None
        self.result: dict[str, Any] | None = None
        self.error: BaseException | None = None
        self.requests = 0

    def run(self) -> None:
        before = self.counter.of()  # thread idents are reused: count from here
        try:
            self.result = wait_for_ready_pods(
                self.selector, 1, namespace=self.namespace, timeout=self.timeout
            )
            self.returned_at = time.monotonic()
            self.returned_wall = time.time()
        except BaseException as exc:
            self.error = exc
        self.requests = self.counter.of() - before


def held_pod(index: int) -> Any:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=f"bench-lag-{index}", labels={LAG_LABEL: str(index)}),
        spec=client.V1PodSpec(
            node_selector={LAG_NODE_LABEL: str(index)},
            termination_grace_period_seconds=0,
            containers=[client.V1Container(name="c", image="busybox")],
        ),
    )


def measure_lag(
    cluster: KubeCluster,
    namespace: str,
    index: int,
    args: argparse.Namespace,
    counter: ClientCounter,
) -> LagRun:
    core = cluster.core()
    selector = f"{LAG_LABEL}={index}"
    node = NODES[index % len(NODES)]
    core.create_namespaced_pod(namespace, held_pod(index))
    try:
        watcher = ReadyWatcher(cluster.core(), namespace, selector, args.lag_timeout + 10)
        watcher.start()
        watcher.watching.wait(15)
        waiter = WaitRunner(selector, namespace, args.lag_timeout, counter)
        waiter.start()
        time.sleep(args.settle)  # both watches established, the pod found unschedulable
        made_schedulable = time.monotonic()
        core.patch_node(node, {"metadata": {"labels": {LAG_NODE_LABEL: str(index)}}})
        waiter.join(args.lag_timeout + 15)
        watcher.join(15)
        if waiter.error is not None:
            raise RuntimeError(f"wait_for_ready_pods failed: {waiter.error}")
        if watcher.error is not None:
            raise RuntimeError(f"the independent watch failed: {watcher.error}")
        if (
            waiter.returned_at is None
            or waiter.returned_wall is None
            or watcher.seen_at is None
            or waiter.result is None
        ):
            raise RuntimeError("the pod did not become Ready in time")
        ready = condition(watcher.pod, "Ready")
        transition = ready.last_transition_time if ready is not None else None
        return LagRun(
            index=index,
            node=node,
            schedulable_to_ready_s=watcher.seen_at - made_schedulable,
            lag_s=waiter.returned_at - watcher.seen_at,
            waited_s=float(waiter.result["waited_s"]),
            after_transition_s=(
                waiter.returned_wall - transition.timestamp() if transition else float("nan")
            ),
            wait_requests=waiter.requests,
        )
    finally:
        core.delete_namespaced_pod(f"bench-lag-{index}", namespace, grace_period_seconds=0)
        core.patch_node(node, {"metadata": {"labels": {LAG_NODE_LABEL: None}}})


# --- setup ------------------------------------------------------------------------


def raise_pod_capacity(cluster: KubeCluster, pods: int) -> None:
    core = cluster.core()
    body = {"status": {"capacity": {"pods": str(pods)}, "allocatable": {"pods": str(pods)}}}
    for node in NODES:
        core.patch_node_status(node, body)
    for node in NODES:
        got = core.read_node(node).status.allocatable.get("pods")
        if got != str(pods):
            print(f"  ! {node}: allocatable pods is {got}, not {pods}")


def create_bulk(cluster: KubeCluster, namespace: str, replicas: int, timeout: float) -> float:
    """A ReplicaSet of ``replicas`` pods; returns the seconds until all were Ready."""
    apps = client.AppsV1Api(cluster.api())
    labels = {BULK_LABEL: "pods"}
    replica_set = client.V1ReplicaSet(
        metadata=client.V1ObjectMeta(name="bench-bulk", labels=labels),
        spec=client.V1ReplicaSetSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    termination_grace_period_seconds=0,
                    containers=[client.V1Container(name="c", image="busybox")],
                ),
            ),
        ),
    )
    started = time.monotonic()
    apps.create_namespaced_replica_set(namespace, replica_set)
    last_report = started
    while True:
        status = apps.read_namespaced_replica_set_status("bench-bulk", namespace).status
        ready = status.ready_replicas or 0
        now = time.monotonic()
        if ready >= replicas:
            return now - started
        if now - started > timeout:
            raise RuntimeError(f"only {ready} of {replicas} pods Ready after {timeout:g}s")
        if now - last_report >= 15:
            print(
                f"  {status.replicas or 0} created, {ready} Ready after {now - started:.0f}s",
                flush=True,
            )
            last_report = now
        time.sleep(1.0)


# --- output -----------------------------------------------------------------------


def table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], left: Sequence[int] = (0, 1)
) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    for cells in (headers, ["-" * w for w in widths], *rows):
        print(
            "  ".join(
                c.ljust(w) if i in left else c.rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()
        )


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}"


def median(values: list[float]) -> float:
    return statistics.median(values)


def p95(values: list[float]) -> float:
    return exact_percentile(sorted(values), 95)


@contextmanager
def running_cluster(work: Path) -> Iterator[KubeCluster]:
    cluster = start_cluster(work)
    try:
        yield cluster
    finally:
        cluster.stop()
        left = cluster.leftovers()
        print(f"\ncluster stopped; processes left from {work}: {len(left)}")


def run(args: argparse.Namespace, work: Path, counter: ClientCounter) -> None:
    t0 = time.monotonic()
    with running_cluster(work) as cluster:
        started_s = time.monotonic() - t0
        apply_topology(cluster)
        topology_s = time.monotonic() - t0 - started_s
        os.environ["KUBECONFIG"] = str(cluster.kubeconfig)
        # The kubernetes client reads KUBECONFIG once, at import: chaosk8s relies on that.
        kube_config.KUBE_CONFIG_DEFAULT_LOCATION = str(cluster.kubeconfig)
        raise_pod_capacity(cluster, args.node_pods)
        print(f"cluster up in {started_s:.1f}s, topology Ready in {topology_s:.1f}s", flush=True)
        bulk_s = create_bulk(cluster, args.namespace, args.pods, args.ready_timeout)
        print(f"{args.pods} pods Ready in {bulk_s:.1f}s", flush=True)
        namespace_pods = len(
            cluster.core().list_namespaced_pod(args.namespace, _request_timeout=60).items
        )
        spread = collections.Counter(
            p.spec.node_name
            for p in cluster.core()
            .list_namespaced_pod(args.namespace, label_selector=BULK_SELECTOR)
            .items
        )
        print(f"namespace {args.namespace}: {namespace_pods} pods; bulk spread {dict(spread)}")

        methods = methods_for(
            f"bulk ({args.pods})", BULK_SELECTOR, args.namespace, args.pods, args.chaosk8s
        ) + methods_for("workers (3)", WORKERS, "ray-serve", 3, args.chaosk8s)
        server = ServerCounter(cluster)
        idle = server.scrape()
        time.sleep(2.0)
        idle_after = server.scrape()
        idle_diff = diff(idle, idle_after)
        metric_series = [k for k in idle_after if any("metrics" in v for _, v in k)]
        print(
            f"idle 2 s: {idle_diff.total:g} pod/namespace/node requests, background "
            f"{dict(idle_diff.background)}; the /metrics scrape itself counted: "
            f"{idle_diff.scrapes:g} (series naming metrics: {len(metric_series)})",
            flush=True,
        )
        sizes = {
            "bulk selector": len(raw_list(args.namespace, BULK_SELECTOR)),
            "workers selector": len(raw_list("ray-serve", WORKERS)),
            f"whole {args.namespace}": len(raw_list(args.namespace, None)),
        }
        print(
            "LIST response sizes: "
            + ", ".join(f"{k} {v / 1024:,.0f} KiB" for k, v in sizes.items()),
            flush=True,
        )
        count_requests(methods, args.count_calls, server, counter)
        print(f"timing {len(methods)} methods x {args.runs} runs...", flush=True)
        time_methods(methods, args.runs)

        lag_runs: list[LagRun] = []
        if args.lag_runs:
            print(f"measuring the wait's lag x {args.lag_runs}...", flush=True)
            for index in range(args.lag_runs):
                lag_runs.append(measure_lag(cluster, args.namespace, index, args, counter))
        report(args, methods, lag_runs, started_s, topology_s, bulk_s, namespace_pods, sizes)


def report(
    args: argparse.Namespace,
    methods: Sequence[Method],
    lag_runs: Sequence[LagRun],
    started_s: float,
    topology_s: float,
    bulk_s: float,
    namespace_pods: int,
    sizes: dict[str, int],
) -> None:
    print(
        f"\nk8s_bench {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, "
        f"python {sys.version.split()[0]}; cluster up {started_s:.1f}s, topology "
        f"{topology_s:.1f}s, {args.pods} pods Ready {bulk_s:.1f}s; {namespace_pods} pods in "
        f"namespace {args.namespace}; LIST response sizes: "
        + ", ".join(f"{k} {v / 1024:,.0f} KiB" for k, v in sizes.items())
        + "\n"
    )
    print(
        f"Probe latency over {args.runs} interleaved calls; requests per call over "
        f"{args.count_calls} calls (server: apiserver_request_total on pods/namespaces/nodes; "
        f"bg = the control plane's other requests during those calls, not per call; "
        f"client: RESTClientObject.request)\n"
    )
    naive = {m.selector_name: median(m.times) for m in methods if m.name.startswith("naive")}
    rows = []
    for m in methods:
        rows.append(
            [
                m.selector_name,
                m.name,
                ms(median(m.times)),
                ms(p95(m.times)),
                f"{median(m.times) / naive[m.selector_name]:.2f}",
                f"{m.server_per_call:g}",
                f"{m.server_other:g}",
                f"{m.client_per_call:g}",
                m.server_what,
            ]
        )
    table(
        [
            "selector",
            "method",
            "median ms",
            "p95 ms",
            "/naive",
            "server req",
            "bg",
            "client req",
            "server requests by verb",
        ],
        rows,
        left=(0, 1, 8),
    )
    if not lag_runs:
        return
    print(
        f"\nwait_for_ready_pods lag, {len(lag_runs)} runs: the pod made schedulable, kwok makes"
        " it Ready; lag = the wait's return minus the Ready update's arrival on an independent"
        " watch\n"
    )
    table(
        [
            "run",
            "node",
            "schedulable->Ready ms",
            "lag ms",
            "waited s",
            "return - Ready lTT s (1 s res.)",
            "client req",
        ],
        [
            [
                str(r.index),
                r.node,
                ms(r.schedulable_to_ready_s),
                ms(r.lag_s),
                f"{r.waited_s:.2f}",
                f"{r.after_transition_s:.2f}",
                str(r.wait_requests),
            ]
            for r in lag_runs
        ],
    )
    lags = [r.lag_s for r in lag_runs]
    within = sum(1 for lag in lags if lag <= 1.0)
    print(
        f"\nlag min {ms(min(lags))} ms, median {ms(median(lags))} ms, max {ms(max(lags))} ms; "
        f"within the 1,000 ms target in {within} of {len(lags)} runs"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=1000, help="bulk pods (a ReplicaSet)")
    parser.add_argument(
        "--namespace", default="ray-serve", help="namespace of the bulk and lag pods"
    )
    parser.add_argument("--node-pods", type=int, default=500, help="pod capacity per kwok node")
    parser.add_argument("--runs", type=int, default=20, help="timed calls per method")
    parser.add_argument(
        "--count-calls", type=int, default=5, help="calls per method for request counts"
    )
    parser.add_argument("--lag-runs", type=int, default=10, help="wait-lag repetitions")
    parser.add_argument("--lag-timeout", type=float, default=60.0, help="wait timeout, s")
    parser.add_argument(
        "--settle", type=float, default=1.5, help="s between starting the wait and the Ready"
    )
    parser.add_argument("--ready-timeout", type=float, default=600.0, help="bulk Ready limit, s")
    parser.add_argument(
        "--no-chaosk8s",
        dest="chaosk8s",
        action="store_false",
        help="skip chaostoolkit-kubernetes' count_pods",
    )
    args = parser.parse_args()
    if (args.pods + 7) > args.node_pods * len(NODES):
        parser.error(f"--node-pods {args.node_pods} x 4 nodes cannot hold {args.pods} pods")

    def terminated(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)  # unwinds through the finally that stops the cluster

    signal.signal(signal.SIGTERM, terminated)
    work = Path(tempfile.mkdtemp(prefix="k8s-bench-"))
    counter = ClientCounter()
    counter.install()
    try:
        run(args, work, counter)
    finally:
        counter.uninstall()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
