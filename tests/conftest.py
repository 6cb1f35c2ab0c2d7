"""Fixtures of the real-process test rig (tier 2 of DESIGN.md).

Each fixture starts a real component, yields it, and stops it, leaving no
process behind. A component that cannot start fails the test with its own
output; nothing is skipped silently.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.rig.containment import why_not_contained
from tests.rig.http_server import ScheduledServer, start_scheduled_server
from tests.rig.kube import (
    KubeCluster,
    apply_topology,
    restore_topology,
    start_cluster,
    wait_topology,
)
from tests.rig.moto import MotoServer, start_moto_server
from tests.rig.ray_cluster import LocalRayCluster
from tests.rig.redis import RedisSentinelSet, RedisServer, start_redis, start_redis_sentinel_set


def pytest_configure(config: pytest.Config) -> None:
    """Refuse to run outside the test session's own network namespace: the
    components the tests start must have no route off the machine."""
    problem = why_not_contained()
    if problem:
        pytest.exit(
            f"the tests run only inside their own network namespace ({problem}): "
            "use `make pytest` or `scripts/contained.sh .venv/bin/python -m pytest ...`",
            returncode=2,
        )


@pytest.fixture
def scheduled_server(tmp_path: Path) -> Iterator[ScheduledServer]:
    """The inference server that fails on a schedule the test arms."""
    server = start_scheduled_server(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """One real redis-server on a free loopback port."""
    server = start_redis(tmp_path)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def redis_sentinel_set(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisSentinelSet]:
    """A real primary, two replicas and three Sentinels (quorum 2)."""
    ha = start_redis_sentinel_set(tmp_path_factory.mktemp("redis-ha"))
    yield ha
    ha.stop()


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """moto's AWS server mode (ELBv2 and the rest) on a free loopback port."""
    server = start_moto_server(tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def kube_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    """A real control plane (kwokctl binary runtime) with 4 kwok nodes, the
    KubeRay operator and the test LB controller; or the cluster of
    CHAOSRAY_TEST_KUBECONFIG."""
    cluster = start_cluster(tmp_path_factory.mktemp("kube"))
    yield cluster
    cluster.stop()
    assert not cluster.leftovers(), "the test cluster left processes behind"


@pytest.fixture(scope="session")
def _topology_applied(kube_cluster: KubeCluster) -> KubeCluster:
    apply_topology(kube_cluster)
    return kube_cluster


@pytest.fixture
def topology(_topology_applied: KubeCluster) -> Iterator[KubeCluster]:
    """The reference deployment of deploy/, healthy before the test; after it
    the nodes are uncordoned and the test waits for the topology to heal, so
    the next test starts from the same state."""
    wait_topology(_topology_applied)
    yield _topology_applied
    restore_topology(_topology_applied)


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRayCluster]:
    """A real Ray cluster shared by a module's tests: Redis for GCS fault
    tolerance, a head, 3 workers, and Serve with a proxy on every node.
    Tests that break it mend it (or run last)."""
    cluster = LocalRayCluster(tmp_path_factory.mktemp("ray"))
    cluster.start(workers=3)
    try:
        yield cluster
    finally:
        cluster.stop()
