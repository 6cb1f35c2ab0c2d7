"""Real ``redis-server`` processes on loopback: a single server, and a
primary with two replicas watched by three Sentinels (quorum 2)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from tests.rig.procs import ComponentFailed, ManagedProcess, free_port

SENTINEL_MASTER = "rig-primary"


def redis_server_binary() -> str:
    path = shutil.which("redis-server")
    if not path:
        raise ComponentFailed(
            "redis-server is not installed: install the Debian package redis-server "
            "(the project's .ci/run does)"
        )
    return path


@dataclass
class RedisServer:
    """One real redis-server on 127.0.0.1."""

    process: ManagedProcess
    host: str
    port: int
    password: str | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host=self.host, port=self.port, password=self.password, socket_timeout=2)

    def stop(self) -> None:
        self.process.stop()


def start_redis(
    work_dir: Path,
    name: str = "redis",
    *,
    password: str | None = None,
    replica_of: RedisServer | None = None,
    host: str = "127.0.0.1",
) -> RedisServer:
    """Start a redis-server without persistence and wait until it answers PING."""
    port = free_port(host)
    data_dir = work_dir / name
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        redis_server_binary(),
        "--bind",
        host,
        "--port",
        str(port),
        "--dir",
        str(data_dir),
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "no",
        "--daemonize",
        "no",
    ]
    if password:
        argv += ["--requirepass", password, "--masterauth", password]
    if replica_of:
        argv += ["--replicaof", replica_of.host, str(replica_of.port)]
    proc = ManagedProcess(name, argv, work_dir)
    server = RedisServer(proc, host, port, password)
    proc.wait_ready(lambda: server.client().ping(), 15, f"{name} to answer PING")
    return server


@dataclass
class RedisSentinelSet:
    """A primary, two replicas and three Sentinels monitoring them."""

    primary: RedisServer
    replicas: list[RedisServer]
    sentinels: list[RedisServer]
    master_name: str = SENTINEL_MASTER

    def servers(self) -> list[RedisServer]:
        return [self.primary, *self.replicas]

    def sentinel_primary(self, sentinel: RedisServer) -> tuple[str, int]:
        answer: Any = sentinel.client().sentinel_get_master_addr_by_name(self.master_name)
        host, port = answer
        return (host.decode() if isinstance(host, bytes) else str(host), int(port))

    def stop(self) -> None:
        for server in [*self.sentinels, *self.replicas, self.primary]:
            server.stop()


def start_redis_sentinel_set(work_dir: Path) -> RedisSentinelSet:
    """Start primary + 2 replicas + 3 Sentinels; wait until replication is up
    and every Sentinel knows the two replicas."""
    started: list[RedisServer] = []
    try:
        primary = start_redis(work_dir, "redis-primary")
        started.append(primary)
        replicas = []
        for i in (1, 2):
            replica = start_redis(work_dir, f"redis-replica-{i}", replica_of=primary)
            started.append(replica)
            replicas.append(replica)
        for replica in replicas:
            replica.process.wait_ready(
                lambda r=replica: r.client().info("replication").get("master_link_status") == "up",
                20,
                f"{replica.process.name} to sync with the primary",
            )
        sentinels = []
        for i in (1, 2, 3):
            port = free_port()
            conf = work_dir / f"sentinel-{i}.conf"
            conf.write_text(
                f"bind 127.0.0.1\nport {port}\nprotected-mode no\n"
                f"dir {work_dir}\n"
                f"sentinel monitor {SENTINEL_MASTER} {primary.host} {primary.port} 2\n"
                f"sentinel down-after-milliseconds {SENTINEL_MASTER} 1000\n"
                f"sentinel failover-timeout {SENTINEL_MASTER} 5000\n"
                f"sentinel parallel-syncs {SENTINEL_MASTER} 1\n"
            )
            proc = ManagedProcess(
                f"redis-sentinel-{i}", [redis_server_binary(), str(conf), "--sentinel"], work_dir
            )
            sentinel = RedisServer(proc, "127.0.0.1", port)
            started.append(sentinel)
            proc.wait_ready(lambda s=sentinel: s.client().ping(), 15, "Sentinel to answer PING")
            sentinels.append(sentinel)
        ha = RedisSentinelSet(primary, replicas, sentinels)
        for sentinel in sentinels:
            sentinel.process.wait_ready(
                lambda s=sentinel: _sentinel_sees_all(s),
                30,
                "Sentinel to discover both replicas and the other Sentinels",
            )
        return ha
    except BaseException:
        for server in reversed(started):
            server.stop()
        raise


def _sentinel_sees_all(sentinel: RedisServer) -> bool:
    state: Any = sentinel.client().sentinel_master(SENTINEL_MASTER)
    return int(state["num-slaves"]) == 2 and int(state["num-other-sentinels"]) == 2
