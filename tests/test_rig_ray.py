"""The rig's local Ray cluster is the real thing: real nodes in the GCS's node
table, real Serve proxies on every node, GCS fault tolerance on a real Redis,
and nothing left behind.

The tests share one cluster (starting one takes ~25 s on 2 cores) and run in
file order: the worker crash mends the cluster with a replacement worker, the
head crash restarts the head, and the fourth test stops the cluster.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from tests.rig.procs import ComponentFailed, port_open
from tests.rig.ray_cluster import HEAD_IP, MARKER_ENV, LocalRayCluster, RayNode
from tests.rig.ray_serve_app import APP_NAME, RESULT

pytestmark = pytest.mark.slow

MiB = 1024 * 1024


def _loopback(addr: Any) -> bool:
    """Whether a psutil (ip, port) address is in 127.0.0.0/8 (or ::1, or v4-mapped)."""
    address = ipaddress.ip_address(addr[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_loopback


def _listeners(port: int) -> set[int | None]:
    """The pids listening on TCP ``port``."""
    return {
        conn.pid
        for conn in psutil.net_connections(kind="tcp")
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port
    }


def _round(cluster: LocalRayCluster, urls: list[str], tally: dict[str, list[int]]) -> None:
    """One request to each URL; count successes and failures per URL."""
    for url in urls:
        ok = False
        with contextlib.suppress(requests.RequestException, ValueError):
            ok = cluster.infer(url)["result"] == RESULT
        tally.setdefault(url, [0, 0])[0 if ok else 1] += 1


def _healthy(cluster: LocalRayCluster) -> None:
    """Precondition of a fault test: every live node ALIVE, every proxy serving."""
    cluster.wait_alive_count(1 + len(cluster.live_workers()))
    cluster.wait_serving(timeout=60)


def test_nodes_serve_and_proxies_are_real(ray_cluster: LocalRayCluster) -> None:
    cluster = ray_cluster
    head = cluster.head
    assert head is not None
    workers = cluster.live_workers()
    print(f"\ncluster up in {cluster.start_seconds:.1f}s")

    # The GCS's node table (through the dashboard) has exactly our 4 nodes ALIVE.
    alive = cluster.alive_nodes()
    assert sorted(n["node_ip"] for n in alive) == sorted([HEAD_IP, *[w.ip for w in workers]])
    assert {n["node_id"] for n in alive} == {head.node_id, *[w.node_id for w in workers]}
    assert [n["node_ip"] for n in alive if n["is_head_node"]] == [HEAD_IP]

    # Serve: the app RUNNING, one replica on each worker, a HEALTHY proxy on every node.
    status = cluster.serve_status()
    app = status["applications"][APP_NAME]
    assert app["status"] == "RUNNING"
    (deployment,) = app["deployments"].values()
    replicas = [r for r in deployment["replicas"] if r["state"] == "RUNNING"]
    assert sorted(r["node_ip"] for r in replicas) == sorted(w.ip for w in workers)
    proxies = status["proxies"]
    assert set(proxies) == {head.node_id, *[w.node_id for w in workers]}
    assert {p["status"] for p in proxies.values()} == {"HEALTHY"}

    # Each proxy answers, from its own port, owned by a process of its own node.
    nodes: list[RayNode] = [head, *workers]
    urls = cluster.proxy_urls()
    assert len(set(urls)) == 4
    for node, url in zip(nodes, urls, strict=True):
        answer = cluster.infer(url)
        assert answer["result"] == RESULT
        assert answer["node"] in {w.ip for w in workers}  # replicas live on workers only
        port = int(url.rsplit(":", 1)[1])
        (owner,) = _listeners(port)  # one listener: no port shared by SO_REUSEPORT
        assert owner in {p.pid for p in cluster.node_processes(node)}, (node.name, url)
        assert psutil.Process(owner).name().startswith("ray::ProxyActor")

    # GCS fault tolerance is on: the GCS keeps its tables in our Redis.
    assert cluster.redis is not None
    keys = cluster.redis.client().keys(f"RAY{cluster.storage_namespace}@*")
    assert f"RAY{cluster.storage_namespace}@NODE".encode() in keys, keys

    # All the rig's traffic stays on loopback (Ray listens on all addresses).
    rig_pids = {p.pid for p in cluster.processes()}
    for conn in psutil.net_connections(kind="inet"):
        if conn.pid in rig_pids and conn.raddr:
            assert _loopback(conn.laddr) and _loopback(conn.raddr), conn

    rss, pss = cluster.memory()
    print(f"rig: {len(rig_pids)} processes, RSS sum {rss / MiB:.0f} MiB, PSS {pss / MiB:.0f} MiB")


def test_worker_crash_turns_node_dead_and_others_keep_serving(
    ray_cluster: LocalRayCluster,
) -> None:
    cluster = ray_cluster
    _healthy(cluster)
    victim = cluster.live_workers()[0]
    survivors = [w for w in cluster.live_workers() if w is not victim]
    urls = [cluster.head_proxy_url, *[w.proxy_url for w in survivors]]

    began = time.monotonic()
    cluster.kill_worker(victim)
    assert not cluster.node_processes(victim)

    # Keep requesting through the other proxies until the GCS calls it DEAD.
    tally: dict[str, list[int]] = {}
    deadline = began + 60
    while cluster.node_states().get(victim.node_id) != "DEAD":
        assert time.monotonic() < deadline, "the killed worker never turned DEAD"
        _round(cluster, urls, tally)
        time.sleep(0.1)
    dead_after = time.monotonic() - began
    print(f"\n{victim.name} DEAD after {dead_after:.1f}s; meanwhile (ok, failed): {tally}")

    states = cluster.node_states()
    assert states[victim.node_id] == "DEAD"
    assert all(states[n.node_id] == "ALIVE" for n in [cluster.head, *survivors] if n)
    ok = sum(t[0] for t in tally.values())
    failed = sum(t[1] for t in tally.values())
    assert ok >= len(urls) and failed <= 0.05 * (ok + failed), tally
    # Once it is DEAD every other proxy serves every request, from the survivors.
    for url in urls:
        for _ in range(10):
            assert cluster.infer(url)["node"] in {w.ip for w in survivors}
    assert not port_open("127.0.0.1", victim.proxy_port)

    # Mend the cluster as KubeRay would: a replacement worker takes the replica.
    began = time.monotonic()
    replacement = cluster.add_worker()
    cluster.wait_serving()
    print(f"replacement {replacement.name} serving after {time.monotonic() - began:.1f}s")
    assert cluster.app_status() == "RUNNING"
    assert len(cluster.alive_nodes()) == 4
    assert cluster.infer(replacement.proxy_url)["result"] == RESULT


def test_head_crash_workers_keep_serving_then_reconnect(ray_cluster: LocalRayCluster) -> None:
    cluster = ray_cluster
    _healthy(cluster)
    head = cluster.head
    assert head is not None
    workers = cluster.live_workers()
    old_head_id = head.node_id
    worker_urls = [w.proxy_url for w in workers]

    cluster.kill_head()
    assert not cluster.dashboard_up()
    assert not port_open(HEAD_IP, head.ports["port"])  # the GCS is gone

    # With the GCS down, the workers' proxies keep serving from their replicas.
    tally: dict[str, list[int]] = {}
    until = time.monotonic() + 10
    while time.monotonic() < until:
        _round(cluster, worker_urls, tally)
        time.sleep(0.1)
    print(f"\nhead down 10s, worker proxies (ok, failed): {tally}")
    assert all(t[0] >= 20 and t[1] == 0 for t in tally.values()), tally
    assert len(tally) == len(workers)
    assert not cluster.dashboard_up()

    # Restart the head on the same Redis: the workers reconnect to it.
    restarted_at = time.time()
    cluster.restart_head()
    head_up = time.time() - restarted_at
    assert head.node_id != old_head_id
    reconnected = cluster.wait_workers_reconnected(since=restarted_at) - restarted_at
    raylet_seen = [max(cluster.gcs_restart_seen(w), default=0.0) - restarted_at for w in workers]
    print(
        f"head ALIVE {head_up:.1f}s after its restart; workers reconnected (reporting to the "
        f"new dashboard) after {reconnected:.1f}s; raylets logged the GCS back after "
        + ", ".join(f"{s:.1f}s" for s in raylet_seen)
    )
    states = cluster.node_states()
    assert states[old_head_id] == "DEAD"
    assert states[head.node_id] == "ALIVE"
    # The same worker nodes, not new registrations.
    assert all(states[w.node_id] == "ALIVE" for w in workers)
    assert len(cluster.alive_nodes()) == 1 + len(workers)
    assert all(0 < s < reconnected + 5 for s in raylet_seen), raylet_seen

    # Serve is whole again: the controller came back on the new head.
    cluster.wait_serving()
    for url in cluster.proxy_urls():
        assert cluster.infer(url)["result"] == RESULT


def test_stop_leaves_no_process_and_no_port(ray_cluster: LocalRayCluster) -> None:
    cluster = ray_cluster
    procs = cluster.processes()
    raylets = [p for p in procs if p.name() == "raylet"]
    assert len(raylets) == 1 + len(cluster.live_workers())
    assert cluster.open_ports()
    temp_root = cluster.temp_root
    marker_prefix = f"{cluster.cluster_id}/"
    assert cluster.redis is not None
    leaders = [cluster.redis.process]
    for node in [cluster.head, *cluster.workers]:
        assert node is not None
        leaders += node.incarnations

    cluster.stop()

    peak_rss, peak_pss = cluster.peak_memory
    print(
        f"\npeak memory of the rig (head + 3 workers + Serve + Redis): RSS sum "
        f"{peak_rss / MiB:.0f} MiB, PSS sum {peak_pss / MiB:.0f} MiB"
    )
    assert peak_rss > 500 * MiB  # a real Ray cluster, not an imitation

    survivors = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                survivors.append(proc)
        except psutil.NoSuchProcess:
            continue
    assert not survivors
    assert not [p for leader in leaders for p in leader.leftovers()]  # nothing in the groups
    # Nothing anywhere on the machine still belongs to this cluster.
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if proc.pid == os.getpid():
                continue
            assert str(temp_root) not in " ".join(proc.info["cmdline"] or ()), proc
            assert not proc.environ().get(MARKER_ENV, "").startswith(marker_prefix), proc
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    assert not cluster.open_ports()
    assert not temp_root.exists()


class _UnstartableCluster(LocalRayCluster):
    """Every ``ray start`` gets an invalid flag value (the last one wins)."""

    def _node_argv(self, ip: str, ports: dict[str, int]) -> list[str]:
        return [*super()._node_argv(ip, ports), "--object-store-memory=lots"]


def test_a_node_that_cannot_start_fails_with_rays_own_output(tmp_path: Path) -> None:
    cluster = _UnstartableCluster(tmp_path)
    with pytest.raises(ComponentFailed) as failure:
        cluster.start(workers=1)
    message = str(failure.value)
    assert "ray-head-1" in message and "exited before head to be ALIVE" in message
    assert "Invalid value for '--object-store-memory'" in message  # ray start's own words
    assert cluster.stopped and not cluster.processes()
    assert not cluster.temp_root.exists()
