"""A real multi-node Ray cluster with Ray Serve on one machine, for the rig.

It mirrors the users' KubeRay set-up as closely as one host allows:

- a real ``redis-server`` holds the GCS state (GCS fault tolerance: the head
  gets ``RAY_REDIS_ADDRESS`` and ``RAY_external_storage_namespace``), so a
  restarted head recovers the cluster and the workers reconnect to it;
- the head is ``ray start --head --block`` on 127.0.1.1, each worker is
  ``ray start --address=... --block`` on its own loopback address (127.0.0.2,
  127.0.0.3, ...), every node in a process group of its own, so killing a
  node's group is what deleting its pod does;
- Ray Serve runs ``tests/rig/ray_serve_app.py`` with a proxy on every node,
  deployed through the dashboard's REST API as KubeRay's RayService does.

One host has one port space, so every port a node would open at a fixed
default is chosen free up front (and kept across a head restart: the workers
reconnect to the same GCS address). Serve binds every proxy to the one
``http_options.host``, so worker proxies cannot share the head's port even on
distinct node IPs; Ray 2.60's ``RAY_SERVE_WORKER_PROXY_HTTP_PORT``, read by
the proxy actor from its node's environment, gives each worker proxy its own
(and ``SERVE_SOCKET_REUSE_PORT_ENABLED=0`` makes a shared port an error
rather than a silent kernel load balancer).

Every process the cluster starts carries an environment marker naming the
cluster and node, inherited by everything Ray spawns below it; ``stop()``
finds processes by it, by the cluster's temp dir in their command line, by
process group and by parentage, because Ray puts its actors (Serve
controller, proxies, replicas) in process groups of their own.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import requests

from chaosray.wait import WaitTimeout, wait_until
from tests.rig.procs import ComponentFailed, ManagedProcess, free_port, group_members, port_open
from tests.rig.ray_serve_app import APP_NAME, DEPLOYMENT_NAME, IMPORT_PATH, WORKER_RESOURCE
from tests.rig.redis import RedisServer, start_redis

REPO_ROOT = Path(__file__).resolve().parents[2]
MARKER_ENV = "CHAOSRAY_RIG_RAY"  # value: "<cluster id>/<node name>"
OBJECT_STORE_BYTES = 100 * 1024 * 1024  # Ray's minimum is ~75 MiB; its default 30% of RAM
HTTP_TIMEOUT = 5.0
# Ray swaps 127.0.0.1 ("localhost") for the host's routable IP wherever it
# meets it (node IP, --address, RAY_REDIS_ADDRESS), which would take traffic
# off loopback; so neither the head nor its Redis use 127.0.0.1.
HEAD_IP = "127.0.1.1"
REDIS_IP = "127.0.1.2"
PROXY_HOST = "127.0.0.1"  # Serve's http_options.host: every proxy binds it
DASHBOARD_HOST = "127.0.0.1"

# Fixed per node: without them a second node on the same host collides with
# the first on Ray's default ports.
_NODE_PORTS = (
    "node-manager-port",
    "object-manager-port",
    "metrics-export-port",
    "dashboard-agent-listen-port",
    "dashboard-agent-grpc-port",
    "runtime-env-agent-port",
)
_HEAD_PORTS = ("port", "dashboard-port", "ray-client-server-port")
# An empty autoscaler config: its presence is what stops Ray's cloud lookup.
RAY_BOOTSTRAP_CONFIG = "# no autoscaler; present so Ray asks no cloud metadata service\n{}\n"
RAY_USAGE_STATS_SINK = "http://127.0.0.1:9/"  # the discard port: nothing listens
# The raylet's line when it finds the GCS back after a failover.
_GCS_RESTART_LOG = "The GCS has restarted"


def _free_ports(names: tuple[str, ...], taken: set[int]) -> dict[str, int]:
    """Distinct free ports, distinct from ``taken`` too (free_port may repeat)."""
    ports: dict[str, int] = {}
    for name in names:
        port = free_port()
        while port in taken:
            port = free_port()
        taken.add(port)
        ports[name] = port
    return ports


@dataclass
class RayNode:
    """One node of the cluster: its ``ray start --block`` process(es) and ports."""

    name: str
    short: str  # names its temp dirs: <temp root>/<short>-<incarnation>
    ip: str
    ports: dict[str, int]
    argv: list[str]  # without --temp-dir, which is new for each incarnation
    env: dict[str, str]
    proxy_port: int
    incarnations: list[ManagedProcess] = field(default_factory=list)
    temp_dirs: list[Path] = field(default_factory=list)
    node_ids: list[str] = field(default_factory=list)  # Ray's id of each incarnation
    killed: bool = False

    @property
    def process(self) -> ManagedProcess | None:
        return self.incarnations[-1] if self.incarnations else None

    @property
    def node_id(self) -> str:
        """Ray's id of the current incarnation."""
        if not self.node_ids:
            raise RuntimeError(f"{self.name} has not been ALIVE yet")
        return self.node_ids[-1]

    @property
    def proxy_url(self) -> str:
        return f"http://{PROXY_HOST}:{self.proxy_port}"

    @property
    def marker(self) -> str:
        return self.env[MARKER_ENV]


class LocalRayCluster:
    """Redis + a Ray head + workers + Serve, all real processes on loopback.

    ``start()`` brings it up; ``kill_worker``/``kill_head``/``restart_head``
    break and mend it; ``stop()`` leaves nothing behind (and may be called
    more than once).
    """

    def __init__(self, work_dir: Path, *, worker_cpus: int = 1, cloud_guards: bool = True) -> None:
        self.work_dir = work_dir  # the ``ray start`` and Redis logs
        self.cluster_id = uuid.uuid4().hex[:8]
        # Short, because Ray puts unix sockets under it (limit ~107 chars).
        self.temp_root = Path(tempfile.mkdtemp(prefix="rr-", dir="/tmp"))
        # Every Ray process's HOME. Ray's dashboard reads
        # ~/ray_bootstrap_config.yaml before it checks whether usage stats
        # are enabled, and when the file is missing it asks the cloud
        # metadata services (169.254.169.254, metadata.google.internal)
        # which cloud it runs on (ray/_common/usage/usage_lib.py
        # get_cluster_config_to_report). An empty mapping skips that lookup.
        # ``cloud_guards=False`` leaves it (and RAY_USAGE_STATS_REPORT_URL)
        # out: only the containment test's control run does that, inside a
        # namespace where those addresses are its own.
        self.cloud_guards = cloud_guards
        self.home = self.temp_root / "home"
        self.home.mkdir()
        if cloud_guards:
            (self.home / "ray_bootstrap_config.yaml").write_text(RAY_BOOTSTRAP_CONFIG)
        self.worker_cpus = worker_cpus
        self._taken: set[int] = set()
        self.redis: RedisServer | None = None
        self.head: RayNode | None = None
        self.workers: list[RayNode] = []
        self.head_http_port = _free_ports(("http",), self._taken)["http"]
        self._sampler = _MemorySampler(self)
        self.start_seconds = 0.0  # how long start() took
        self.stopped = False

    # --- addresses -------------------------------------------------------------------------

    @property
    def storage_namespace(self) -> str:
        """The GCS's key namespace in Redis (``RAY_external_storage_namespace``)."""
        return f"rig-{self.cluster_id}"

    @property
    def gcs_address(self) -> str:
        return f"{HEAD_IP}:{self._head().ports['port']}"

    @property
    def dashboard_url(self) -> str:
        return f"http://{DASHBOARD_HOST}:{self._head().ports['dashboard-port']}"

    @property
    def head_proxy_url(self) -> str:
        return f"http://{PROXY_HOST}:{self.head_http_port}"

    @property
    def worker_proxy_urls(self) -> dict[str, str]:
        """Proxy URL of every worker not killed, by node IP."""
        return {w.ip: w.proxy_url for w in self.live_workers()}

    def proxy_urls(self) -> list[str]:
        """The head's proxy URL, then every live worker's."""
        return [self.head_proxy_url, *self.worker_proxy_urls.values()]

    def live_workers(self) -> list[RayNode]:
        return [w for w in self.workers if not w.killed]

    def _head(self) -> RayNode:
        if self.head is None:
            raise RuntimeError("the head has not been started")
        return self.head

    def _nodes(self) -> list[RayNode]:
        return [n for n in [self.head, *self.workers] if n is not None]

    # --- start -----------------------------------------------------------------------------

    def start(self, workers: int = 3, *, serve: bool = True) -> None:
        """Redis, the head, ``workers`` workers one at a time, then Serve."""
        began = time.monotonic()
        try:
            self._sampler.start()
            self.redis = start_redis(
                self.work_dir, f"ray-gcs-redis-{self.cluster_id}", host=REDIS_IP
            )
            self.start_head()
            for _ in range(workers):
                self.add_worker()
            if serve:
                self.deploy_serve()
            self.start_seconds = time.monotonic() - began
        except BaseException:
            self.stop(check=False)
            raise

    def _common_env(self, node_name: str) -> dict[str, str]:
        guards = {
            # With usage stats disabled the dashboard still sends a "disabled"
            # report to https://usage-stats.ray.io/ (usage_stats_head.py
            # _report_disabled_usage_sync); this sends it to a closed port
            # on loopback instead.
            "RAY_USAGE_STATS_REPORT_URL": RAY_USAGE_STATS_SINK,
        }
        return {
            "HOME": str(self.home),
            "RAY_USAGE_STATS_ENABLED": "0",
            **(guards if self.cloud_guards else {}),
            # The Serve app is imported by path on every node, as from an image.
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p
            ),
            # KubeRay's value: a worker waits this long for a lost GCS before
            # giving up, which is what lets it outlive a head restart.
            "RAY_gcs_rpc_server_reconnect_timeout_s": "600",
            # Serve's proxies set SO_REUSEPORT by default: proxies of several
            # nodes on one host would then share a port silently, the kernel
            # spreading requests among them. One listener per port, as pods have.
            "SERVE_SOCKET_REUSE_PORT_ENABLED": "0",
            MARKER_ENV: f"{self.cluster_id}/{node_name}",
        }

    def _node_argv(self, ip: str, ports: dict[str, int]) -> list[str]:
        argv = [
            str(Path(sys.executable).with_name("ray")),
            "start",
            "--block",
            f"--node-ip-address={ip}",
            f"--object-store-memory={OBJECT_STORE_BYTES}",
            "--disable-usage-stats",
            # 0..0: the OS picks each core worker's port, so the nodes'
            # default ranges (10002-19999) cannot collide.
            "--min-worker-port=0",
            "--max-worker-port=0",
        ]
        argv += [f"--{name}={port}" for name, port in ports.items() if name in _NODE_PORTS]
        return argv

    def start_head(self, timeout: float = 90) -> RayNode:
        if self.redis is None:
            raise RuntimeError("start Redis first")
        ports = _free_ports(_NODE_PORTS + _HEAD_PORTS, self._taken)
        argv = self._node_argv(HEAD_IP, ports)
        argv += [
            "--head",
            f"--port={ports['port']}",
            "--num-cpus=1",
            "--include-dashboard=true",
            f"--dashboard-host={DASHBOARD_HOST}",
            f"--dashboard-port={ports['dashboard-port']}",
            f"--ray-client-server-port={ports['ray-client-server-port']}",
        ]
        env = self._common_env("head")
        env.update(
            {
                # GCS fault tolerance: the GCS keeps its tables in this Redis,
                # under a namespace of its own, and reloads them on restart.
                "RAY_REDIS_ADDRESS": f"{self.redis.host}:{self.redis.port}",
                "RAY_external_storage_namespace": self.storage_namespace,
                # Quicker than the defaults (3 s x 5) to call a lost node DEAD.
                "RAY_health_check_period_ms": "1000",
                "RAY_health_check_failure_threshold": "3",
            }
        )
        self.head = RayNode("head", "h", HEAD_IP, ports, argv, env, self.head_http_port)
        try:
            self._launch(self.head, timeout)
        except ComponentFailed as exc:
            # ``ray start`` gives the raylet a fixed 30 s to register
            # (node.py ``raylet_start_wait_time_s``); on two busy cores a
            # first start has missed it once in CI. One more try, on a clean
            # slate: the failed GCS may have stored its node table in Redis,
            # and a GCS that reloads it would show the stale head ALIVE.
            if RAY_STARTUP_TIMEOUT not in str(exc):
                raise
            warnings.warn(
                f"the Ray head missed Ray's start-up deadline; starting it again:\n{exc}",
                stacklevel=2,
            )
            self._forget_gcs_state()
            self._launch(self.head, timeout)
        return self.head

    def _forget_gcs_state(self) -> None:
        """Delete the GCS tables this cluster keeps in Redis."""
        if self.redis is None:
            return
        client = self.redis.client()
        for key in client.scan_iter(match=f"RAY{self.storage_namespace}@*"):
            client.delete(key)

    def add_worker(self, timeout: float = 90) -> RayNode:
        """Start one more worker on the next loopback address; wait until ALIVE."""
        index = len(self.workers) + 1
        name = f"worker{index}"
        ports = _free_ports((*_NODE_PORTS, "proxy"), self._taken)
        ip = f"127.0.0.{index + 1}"
        argv = self._node_argv(ip, ports)
        argv += [
            f"--address={self.gcs_address}",
            f"--num-cpus={self.worker_cpus}",
            f"--resources={json.dumps({WORKER_RESOURCE: 1})}",
        ]
        env = self._common_env(name)
        # Read by the Serve proxy actor on this node; the head's proxy keeps
        # http_options.port. Proxies all bind PROXY_HOST, hence a port each.
        env["RAY_SERVE_WORKER_PROXY_HTTP_PORT"] = str(ports["proxy"])
        worker = RayNode(name, f"w{index}", ip, ports, argv, env, ports["proxy"])
        self.workers.append(worker)
        self._launch(worker, timeout)
        return worker

    def _launch(self, node: RayNode, timeout: float) -> None:
        """Start a new incarnation of ``node``; wait until the node table shows
        it ALIVE with a node id it has not had before."""
        incarnation = len(node.incarnations) + 1
        # A fresh temp dir for each incarnation, as a new pod has: ``ray start
        # --head`` refuses to start when the previous session's address file
        # is there and raylets (the workers') still name that GCS address.
        temp_dir = self.temp_root / f"{node.short}-{incarnation}"
        temp_dir.mkdir()
        node.temp_dirs.append(temp_dir)
        process = ManagedProcess(
            f"ray-{node.name}-{incarnation}",
            [*node.argv, f"--temp-dir={temp_dir}"],
            self.work_dir,
            env=node.env,
        )
        node.incarnations.append(process)
        node.killed = False
        found: list[str] = []

        def alive() -> bool:
            for entry in self.nodes():
                node_id = str(entry["node_id"])
                if (
                    entry["node_ip"] == node.ip
                    and entry["state"] == "ALIVE"
                    and node_id not in node.node_ids
                ):
                    found.append(node_id)
                    return True
            return False

        try:
            process.wait_ready(alive, timeout, f"{node.name} to be ALIVE in the node table")
        except ComponentFailed as exc:
            # ``ray start`` often says little; the GCS and raylet say why.
            raise ComponentFailed(f"{exc}\n{_ray_log_tails(temp_dir)}") from None
        node.node_ids.append(found[-1])

    # --- Serve -----------------------------------------------------------------------------

    def serve_config(self) -> dict[str, Any]:
        """The Serve config the rig deploys (KubeRay's ``serveConfigV2``)."""
        return {
            "proxy_location": "EveryNode",
            "http_options": {"host": PROXY_HOST, "port": self.head_http_port},
            "applications": [
                {
                    "name": APP_NAME,
                    "route_prefix": "/",
                    "import_path": IMPORT_PATH,
                    # One replica per worker: Serve runs proxies only on the
                    # head and on nodes holding a replica.
                    "deployments": [
                        {"name": DEPLOYMENT_NAME, "num_replicas": len(self.live_workers())}
                    ],
                }
            ],
        }

    def deploy_serve(self, timeout: float = 120) -> None:
        """PUT the Serve config to the dashboard (as KubeRay does); wait until
        the app is RUNNING and every proxy answers."""
        head = self._head()
        assert head.process is not None
        answer = requests.put(
            f"{self.dashboard_url}/api/serve/applications/", json=self.serve_config(), timeout=60
        )
        if answer.status_code != 200:
            raise head.process.fail(
                f"the dashboard refused the Serve config: {answer.status_code} {answer.text}"
            )
        self.wait_serving(timeout)

    def wait_serving(self, timeout: float = 120) -> None:
        """Wait until the app is RUNNING and every live node's proxy answers;
        fail with Serve's own status and logs."""
        try:
            self.wait_app_running(timeout)
            for url in self.proxy_urls():
                wait_until(
                    lambda url=url: self.infer(url),  # type: ignore[misc]
                    timeout=timeout,
                    description=f"the Serve proxy at {url} to answer",
                    ignore=(requests.RequestException,),
                )
            # A proxy answers before the controller's first health check
            # marks it HEALTHY (it reports STARTING until then).
            wait_until(
                self.proxies_healthy,
                timeout=timeout,
                description="every live node's Serve proxy to be HEALTHY",
                ignore=(requests.RequestException, ValueError),
                max_interval=2,
            )
        except WaitTimeout as exc:
            raise ComponentFailed(
                f"Ray Serve did not come up: {exc}\n{self.serve_diagnostics()}"
            ) from None

    def proxies_healthy(self) -> bool:
        """Whether Serve lists a proxy on every live node, each HEALTHY."""
        proxies = self.serve_status().get("proxies", {})
        live = {node.node_id for node in [self._head(), *self.live_workers()]}
        return set(proxies) == live and all(p["status"] == "HEALTHY" for p in proxies.values())

    def serve_status(self) -> dict[str, Any]:
        """The dashboard's ``/api/serve/applications/`` answer."""
        answer = requests.get(f"{self.dashboard_url}/api/serve/applications/", timeout=HTTP_TIMEOUT)
        answer.raise_for_status()
        return dict(answer.json())

    def app_status(self) -> str | None:
        app = self.serve_status().get("applications", {}).get(APP_NAME)
        return str(app["status"]) if app else None

    def wait_app_running(self, timeout: float = 120) -> None:
        wait_until(
            lambda: self.app_status() == "RUNNING",
            timeout=timeout,
            description=f"Serve application {APP_NAME!r} to be RUNNING",
            ignore=(requests.RequestException, ValueError),
            max_interval=2,
        )

    def serve_diagnostics(self) -> str:
        """Serve's own account of what is wrong, and the tails of its logs."""
        parts: list[str] = []
        try:
            parts.append(json.dumps(self.serve_status(), indent=1)[-6000:])
        except (requests.RequestException, ValueError) as exc:
            parts.append(f"(no Serve status: {exc})")
        for log in sorted(self.temp_root.glob("*/session_latest/logs/serve/*.log")):
            with contextlib.suppress(OSError):
                parts.append(f"--- {log}\n{log.read_text(errors='replace')[-1500:]}")
        return "\n".join(parts)

    @staticmethod
    def infer(url: str, path: str = "/infer") -> dict[str, Any]:
        """One inference request through a Serve proxy; its JSON answer."""
        answer = requests.get(f"{url}{path}", timeout=HTTP_TIMEOUT)
        answer.raise_for_status()
        return dict(answer.json())

    # --- the node table --------------------------------------------------------------------

    def nodes(self) -> list[dict[str, Any]]:
        """Every node the GCS knows (ALIVE and DEAD), from the dashboard's state
        API: ``node_id``, ``node_ip``, ``state``, ``is_head_node``, ...

        (The dashboard's ``/nodes?view=summary`` lags: it kept a killed node
        ALIVE and missed a new one for many seconds.)"""
        answer = requests.get(
            f"{self.dashboard_url}/api/v0/nodes",
            params={"detail": "1", "limit": "1000"},
            timeout=HTTP_TIMEOUT,
        )
        answer.raise_for_status()
        body = answer.json()
        if not body.get("result"):
            raise requests.RequestException(f"state API error: {body.get('msg')}")
        return list(body["data"]["result"]["result"])

    def node_states(self) -> dict[str, str]:
        """``{node_id: state}`` for every node of the table."""
        return {str(n["node_id"]): str(n["state"]) for n in self.nodes()}

    def alive_nodes(self) -> list[dict[str, Any]]:
        return [n for n in self.nodes() if n["state"] == "ALIVE"]

    def node_reports(self) -> dict[str, float]:
        """``{node_id: time of the node's last report}`` from the dashboard's
        ``/nodes?view=summary``: each node's agent reports there through the
        GCS, so a fresh time proves the node talks to the current head."""
        answer = requests.get(
            f"{self.dashboard_url}/nodes", params={"view": "summary"}, timeout=HTTP_TIMEOUT
        )
        answer.raise_for_status()
        reports: dict[str, float] = {}
        for entry in answer.json()["data"]["summary"]:
            if entry.get("ip") and entry.get("now"):  # nodes that have reported
                reports[str(entry["raylet"]["nodeId"])] = float(entry["now"])
        return reports

    def dashboard_up(self) -> bool:
        with contextlib.suppress(requests.RequestException):
            return requests.get(f"{self.dashboard_url}/api/version", timeout=2).ok
        return False

    def wait_node_state(self, node_id: str, state: str, timeout: float = 60) -> None:
        wait_until(
            lambda: self.node_states().get(node_id) == state,
            timeout=timeout,
            description=f"node {node_id} to be {state}",
            ignore=(requests.RequestException, ValueError),
        )

    def wait_alive_count(self, count: int, timeout: float = 60) -> list[dict[str, Any]]:
        """Wait until exactly ``count`` nodes are ALIVE; return them."""
        alive: list[dict[str, Any]] = []

        def exactly() -> bool:
            alive[:] = self.alive_nodes()
            return len(alive) == count

        wait_until(
            exactly,
            timeout=timeout,
            description=f"{count} ALIVE nodes",
            ignore=(requests.RequestException, ValueError),
        )
        return alive

    def wait_workers_reconnected(self, since: float, timeout: float = 120) -> float:
        """Wait until every live worker is back with the current head: same
        node id ALIVE in the node table, every earlier head DEAD, and a report
        from the worker's agent later than ``since`` (epoch seconds) in the new
        dashboard. Returns the epoch time this was first seen."""
        head = self._head()
        workers = self.live_workers()

        def reconnected() -> bool:
            states = self.node_states()
            if any(states.get(w.node_id) != "ALIVE" for w in workers):
                return False
            if any(states.get(old) != "DEAD" for old in head.node_ids[:-1]):
                return False
            reports = self.node_reports()
            return all(reports.get(w.node_id, 0.0) > since for w in workers)

        wait_until(
            reconnected,
            timeout=timeout,
            description="every worker to reconnect to the restarted head",
            ignore=(requests.RequestException, ValueError, KeyError),
        )
        return time.time()

    def gcs_restart_seen(self, worker: RayNode) -> list[float]:
        """Epoch times at which the worker's raylet logged that the GCS came
        back (Ray's own record of the reconnection)."""
        times = []
        for log in worker.temp_dirs[-1].glob("session_*/logs/raylet.out"):
            for line in log.read_text(errors="replace").splitlines():
                if _GCS_RESTART_LOG in line and line.startswith("["):
                    stamp = line[1:24]  # "[2026-11-26 06:14:59,237 I ..."
                    with contextlib.suppress(ValueError):
                        times.append(datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp())
        return sorted(times)

    # --- faults ----------------------------------------------------------------------------

    def kill_worker(self, worker: RayNode) -> None:
        """SIGKILL the worker's whole process group (and any process of that
        node in another group), as a crash or a pod deletion does."""
        self._kill_node(worker)

    def kill_head(self) -> None:
        """SIGKILL the head's process group: GCS, dashboard, Serve controller."""
        self._kill_node(self._head())

    def restart_head(self, timeout: float = 120) -> RayNode:
        """Start the head again on the same ports and the same GCS Redis; wait
        until it is ALIVE with a new node id. The workers reconnect on their
        own; :meth:`wait_workers_reconnected` waits for that."""
        head = self._head()
        if head.process is not None and head.process.running():
            raise RuntimeError("the head is still running; kill it first")
        self._launch(head, timeout)
        return head

    def _kill_node(self, node: RayNode) -> None:
        if node.process is None:
            return
        # Collect first: once the raylet dies its children are reparented
        # and no longer found by parentage.
        doomed = self.node_processes(node)
        node.process.signal_group(signal.SIGKILL)
        _kill_all(doomed)
        wait_until(
            lambda: not _kill_all(self.node_processes(node)),
            timeout=15,
            description=f"every process of {node.name} to die",
        )
        with contextlib.suppress(subprocess.TimeoutExpired):
            node.process.popen.wait(timeout=5)
        node.killed = True

    # --- processes -------------------------------------------------------------------------

    def _marked_processes(self, node: RayNode | None = None) -> list[psutil.Process]:
        """Live processes whose environment carries the cluster's marker (or
        ``node``'s), or whose command line names the cluster's (node's) temp
        dir. Either alone can miss: Ray's agents and workers rename themselves
        ``ray::...`` (setproctitle), which rewrites the command line and may
        clobber what /proc shows of the environment."""
        roots = [f"{self.temp_root}/"] if node is None else [f"{d}/" for d in node.temp_dirs]
        found = []
        for proc in psutil.process_iter(["pid", "status", "cmdline"]):
            try:
                if proc.info["status"] == psutil.STATUS_ZOMBIE or proc.pid == os.getpid():
                    continue
                cmdline = " ".join(proc.info["cmdline"] or ())
                value = proc.environ().get(MARKER_ENV) or ""
                if node is None:
                    marked = value.startswith(f"{self.cluster_id}/")
                else:
                    marked = value == node.marker
                if marked or any(root in cmdline for root in roots):
                    found.append(proc)
            except (psutil.Error, OSError):
                continue
        return found

    def node_processes(self, node: RayNode) -> list[psutil.Process]:
        """Every live process of one node, in its process group or not."""
        groups = [p for proc in node.incarnations for p in group_members(proc.pgid)]
        return _with_descendants([*self._marked_processes(node), *groups])

    def processes(self) -> list[psutil.Process]:
        """Every live process of the rig: Redis, all nodes, what Ray spawned
        (found by marker, temp dir, process group, and parentage)."""
        found = self._marked_processes()
        leaders = [self.redis.process] if self.redis is not None else []
        for node in self._nodes():
            leaders.extend(node.incarnations)
        for process in leaders:
            found.extend(group_members(process.pgid))
        return _with_descendants(found)

    def memory(self) -> tuple[int, int]:
        """(sum of RSS, sum of PSS) of every rig process, in bytes. RSS counts
        the libraries all Ray processes share once per process; PSS shares
        them out, so its sum is what the rig really takes."""
        rss = pss = 0
        for proc in self.processes():
            with contextlib.suppress(psutil.Error):
                info = proc.memory_full_info()
                rss += info.rss
                pss += getattr(info, "pss", info.rss)
        return rss, pss

    @property
    def peak_memory(self) -> tuple[int, int]:
        """Peaks of :meth:`memory`, sampled every second from start() to stop()."""
        return self._sampler.peak_rss, self._sampler.peak_pss

    def listening_ports(self) -> list[tuple[str, int]]:
        """Every fixed TCP port of the rig, with each address to try it on
        (Ray binds some to the node IP, some to all addresses, the dashboard
        and the proxies to 127.0.0.1)."""
        found = [(PROXY_HOST, self.head_http_port)]
        if self.redis is not None:
            found.append((self.redis.host, self.redis.port))
        for node in self._nodes():
            for port in [*node.ports.values(), node.proxy_port]:
                found += [(node.ip, port), ("127.0.0.1", port)]
        return sorted(set(found))

    def open_ports(self) -> list[tuple[str, int]]:
        """The rig's ports that accept a connection right now."""
        return [(host, port) for host, port in self.listening_ports() if port_open(host, port)]

    def _keep_logs(self) -> None:
        """Copy every node's Ray logs next to the ``ray start`` logs, since the
        temp dir goes (pytest keeps its tmp dirs of the last runs)."""
        for node_dir in sorted(self.temp_root.glob("*-*")):
            for logs in node_dir.glob("session_2*/logs"):
                with contextlib.suppress(OSError, shutil.Error):
                    shutil.copytree(
                        logs, self.work_dir / f"ray-logs-{node_dir.name}", symlinks=True
                    )

    # --- stop ------------------------------------------------------------------------------

    def stop(self, *, check: bool = True) -> None:
        """Stop everything, leave no process behind, remove the temp dir.
        Raises ComponentFailed when a process survives (``check``)."""
        self._sampler.stop()
        # SIGKILL at once: an orderly Ray shutdown is slow (the raylet drains
        # for up to 30 s) and buys the rig nothing.
        doomed = self.processes()
        for node in self._nodes():
            for process in node.incarnations:
                process.signal_group(signal.SIGKILL)
        _kill_all(doomed)
        for node in self._nodes():
            for process in node.incarnations:
                process.stop(grace=5)  # reaps it and closes its log
            node.killed = True
        if self.redis is not None:
            self.redis.stop()
        with contextlib.suppress(WaitTimeout):
            wait_until(
                lambda: not _kill_all(self.processes()),
                timeout=15,
                description="every rig process to exit",
            )
        # Orphans die as zombies of init; give it a moment to reap them, so
        # not even a ``<defunct>`` entry remains.
        with contextlib.suppress(WaitTimeout):
            wait_until(
                lambda: not any(_exists(p) for p in doomed),
                timeout=10,
                description="the rig's dead processes to be reaped",
            )
        leftovers = self.processes()
        self._keep_logs()
        shutil.rmtree(self.temp_root, ignore_errors=True)
        self.stopped = True
        if leftovers and check:
            names = [f"{p.pid} {_cmdline(p)}" for p in leftovers]
            raise ComponentFailed(f"the Ray rig left processes behind: {names}")


RAY_STARTUP_TIMEOUT = "The current node timed out during startup"
"""What ``ray start`` says when its raylet did not register in time."""


def _ray_log_tails(temp_dir: Path, tail: int = 1500) -> str:
    """The ends of a node's main Ray logs, for an error message."""
    parts = []
    names = ("ray_process_exit.log", "gcs_server.out", "raylet.out", "raylet.err", "dashboard.log")
    for name in names:
        for log in temp_dir.glob(f"session_*/logs/{name}"):
            with contextlib.suppress(OSError):
                parts.append(f"--- {log}\n{log.read_text(errors='replace')[-tail:]}")
    return "\n".join(parts) or f"(no Ray logs under {temp_dir})"


def _with_descendants(procs: list[psutil.Process]) -> list[psutil.Process]:
    by_pid = {p.pid: p for p in procs}
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            for child in proc.children(recursive=True):
                by_pid.setdefault(child.pid, child)
    return [p for p in by_pid.values() if _alive(p)]


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _exists(proc: psutil.Process) -> bool:
    """Whether the process still has a pid (zombies included)."""
    try:
        return proc.is_running()  # also false when the pid was reused
    except psutil.Error:
        return False


def _kill_all(procs: list[psutil.Process]) -> list[psutil.Process]:
    """SIGKILL each live one; return those that were still alive."""
    alive = [p for p in procs if _alive(p)]
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    return alive


def _cmdline(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())[:200]
    except psutil.Error:
        return "?"


class _MemorySampler:
    """Samples the rig's total memory in the background; keeps the peaks."""

    def __init__(self, cluster: LocalRayCluster, interval: float = 1.0) -> None:
        self.cluster = cluster
        self.interval = interval
        self.peak_rss = 0
        self.peak_pss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ray-rig-memory", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(Exception):  # a sample racing a dying process
                rss, pss = self.cluster.memory()
                self.peak_rss = max(self.peak_rss, rss)
                self.peak_pss = max(self.peak_pss, pss)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
