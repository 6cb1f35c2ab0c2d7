"""Fixtures of the real-process test rig (README.md, "Testing: real
components"), and the markers that say which rig a test needs.

Each fixture starts a real component, yields it, and stops it, leaving no
process behind. A component that cannot start fails the test with its own
output; nothing is skipped silently.

Each fixture imports its rig module when it runs, not when this file is
loaded: the tests that start no component (``make check``) need neither
the rig's modules nor their dependencies (boto3, redis, Ray).

Markers (registered in pyproject.toml) are applied here, not in the test
files: a test gets a rig's marker when it uses that rig's fixture, when it
calls something from the rig module (directly or through a helper of its
own module), or when its module imports a rig module that needs the rig's
dependencies (then the whole module does); tests under tests/lab get
``lab``. With ``-m``, a test module none of whose tests can match is not
even imported (:func:`pytest_ignore_collect`).
"""

from __future__ import annotations

import ast
import functools
import inspect
import itertools
import re
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from tests.rig.containment import why_not_contained

if TYPE_CHECKING:
    from tests.rig.http_server import ScheduledServer
    from tests.rig.kube import KubeCluster
    from tests.rig.moto import MotoServer
    from tests.rig.ray_cluster import LocalRayCluster
    from tests.rig.redis import RedisSentinelSet, RedisServer

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
LAB = TESTS / "lab"


@dataclass(frozen=True)
class Rig:
    marker: str
    # whether importing the module imports the rig's own dependencies or
    # components (then a test module that imports it needs the rig as a whole)
    heavy: bool


# tests/rig modules that are a rig component, and their markers. Any other
# tests/rig module counts through what it imports (tests/rig/ray_pods.py
# imports kube.py, so it is `cluster`; egress_canary.py starts the Ray rig).
RIGS: dict[str, Rig] = {
    "tests.rig.kube": Rig("cluster", heavy=True),
    "tests.rig.kwok_extras": Rig("cluster", heavy=True),
    "tests.rig.lb_controller": Rig("cluster", heavy=True),
    "tests.rig.ray_cluster": Rig("ray", heavy=True),
    "tests.rig.ray_serve_app": Rig("ray", heavy=True),
    "tests.rig.moto": Rig("aws", heavy=True),
    "tests.rig.redis": Rig("redis", heavy=True),
    "tests.rig.http_server": Rig("server", heavy=False),
    "tests.rig.k6": Rig("k6", heavy=False),
    "tests.rig.netns": Rig("netns", heavy=False),
}
# Fixtures of a test module that start something heavy without a rig module.
OTHER_FIXTURES = {"installed": "packaging"}  # tests/test_packaging.py: wheel + fresh venv
# Every marker this file applies; `make check` deselects all of them.
RIG_MARKERS = sorted({rig.marker for rig in RIGS.values()} | set(OTHER_FIXTURES.values()) | {"lab"})

_RIG_OF_FIXTURE: dict[str, str] = {}  # fixture name -> the tests/rig module it starts
_F = TypeVar("_F", bound=Callable[..., Any])


def _rig(module: str) -> Callable[[_F], _F]:
    """Declare the rig module a fixture starts: its tests get its markers."""

    def declare(fixture: _F) -> _F:
        _RIG_OF_FIXTURE[fixture.__name__] = module
        return fixture

    return declare


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


# --- which rig a test needs -------------------------------------------------------


def _module_name(path: Path) -> str:
    if ROOT not in path.parents:
        return path.stem
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(body: list[ast.stmt], top_level: bool) -> Iterator[ast.stmt]:
    """The statements of ``body`` and of the blocks in it, leaving out
    ``if TYPE_CHECKING:`` and, for ``top_level``, function and class bodies."""
    for node in body:
        yield node
        if top_level and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _statements(node.orelse, top_level)
            continue
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                yield from _statements([child], top_level)
            elif isinstance(child, ast.ExceptHandler | ast.match_case):
                yield from _statements(child.body, top_level)


@functools.cache
def _imports(path: Path, top_level: bool) -> frozenset[str]:
    """The modules a file imports: at import time (``top_level``: not in a
    function, a class or ``if TYPE_CHECKING:``), or anywhere in it."""
    package = _module_name(path).rsplit(".", 1)[0]
    found: set[str] = set()
    for node in _statements(ast.parse(path.read_text(), str(path)).body, top_level):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return frozenset(found)


def _rig_file(module: str) -> Path | None:
    if not module.startswith("tests.rig."):
        return None
    path = ROOT.joinpath(*module.split(".")).with_suffix(".py")
    return path if path.is_file() else None


@functools.cache
def _rig_closure(module: str, top_level: bool) -> frozenset[str]:
    """``module`` and the tests/rig modules it imports, transitively."""
    seen = {module}
    todo = [module]
    while todo:
        path = _rig_file(todo.pop())
        if path is None:
            continue
        for imported in _imports(path, top_level):
            if _rig_file(imported) and imported not in seen:
                seen.add(imported)
                todo.append(imported)
    return frozenset(seen)


@functools.cache
def _use_markers(module: str) -> frozenset[str]:
    """The markers of a test that uses something of tests/rig ``module``: its
    own, and those of the heavy rigs it imports (anywhere: a function of
    egress_canary.py starts the Ray rig, which runs on the Redis rig)."""
    markers = {RIGS[module].marker} if module in RIGS else set()
    for imported in _rig_closure(module, False):
        if imported in RIGS and RIGS[imported].heavy:
            markers.add(RIGS[imported].marker)
    return frozenset(markers)


@functools.cache
def _path_markers(path: Path) -> frozenset[str]:
    """The markers every test in ``path`` (a test module or a directory) has:
    ``lab`` under tests/lab, and the heavy rigs its module imports."""
    markers = {"lab"} if path == LAB or LAB in path.parents else set()
    if path.suffix == ".py":
        rigs: set[str] = set()
        for imported in _imports(path, True):
            if _rig_file(imported):
                rigs |= _rig_closure(imported, True)
        markers |= {RIGS[m].marker for m in rigs if m in RIGS and RIGS[m].heavy}
    return frozenset(markers)


def _referenced_markers(function: Callable[..., Any]) -> set[str]:
    """The markers of the rig objects a test function refers to, itself or
    through the functions and classes of its own module it calls."""
    home = function.__module__
    names: dict[str, Any] = function.__globals__
    markers: set[str] = set()
    seen: set[types.CodeType] = set()
    todo = [function.__code__]
    while todo:
        code = todo.pop()
        if code in seen:
            continue
        seen.add(code)
        todo.extend(const for const in code.co_consts if isinstance(const, types.CodeType))
        for name in code.co_names:
            if _rig_file(name):  # imported in the function: import tests.rig.<name>
                markers |= _use_markers(name)
            obj = names.get(name)
            if obj is None or isinstance(obj, types.ModuleType):
                continue
            owners = [c.__module__ for c in obj.__mro__] if inspect.isclass(obj) else []
            owner = getattr(obj, "__module__", None)
            for module in [owner, *owners]:
                if isinstance(module, str) and _rig_file(module):
                    markers |= _use_markers(module)
            if owner == home and inspect.isfunction(obj):
                todo.append(obj.__code__)
            elif owner == home and inspect.isclass(obj):
                todo.extend(
                    member.__code__ for member in vars(obj).values() if inspect.isfunction(member)
                )
    return markers


def rig_markers(item: pytest.Item) -> set[str]:
    """The rig markers of a collected test."""
    markers = set(_path_markers(item.path))
    for name in getattr(item, "fixturenames", ()):
        if name in _RIG_OF_FIXTURE:
            markers |= _use_markers(_RIG_OF_FIXTURE[name])
        if name in OTHER_FIXTURES:
            markers.add(OTHER_FIXTURES[name])
    function = getattr(item, "function", None)
    if inspect.isfunction(function):
        markers |= _referenced_markers(function)
    return markers


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for marker in sorted(rig_markers(item) - {m.name for m in item.iter_markers()}):
            item.add_marker(marker)


def _has_marker(present: frozenset[str]) -> Callable[..., bool]:
    return lambda name, /, **_kwargs: name in present


def _can_match(expression: str, markers: frozenset[str]) -> bool:
    """Whether a test with ``markers`` and perhaps others can match the ``-m``
    expression. True when unsure (pytest then reports or applies it)."""
    try:
        from _pytest.mark.expression import Expression

        compiled = Expression.compile(expression)
    except Exception:
        return True
    words = set(re.findall(r"[\w:+\-.\[\]\\/]+", expression)) - {"and", "or", "not", "(", ")"}
    free = sorted(words - markers)
    if len(free) > 12:
        return True
    for count in range(len(free) + 1):
        for others in itertools.combinations(free, count):
            if compiled.evaluate(_has_marker(markers | frozenset(others))):
                return True
    return False


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """With ``-m``, skip a test module (or tests/lab) none of whose tests can
    match: its rig modules are then not imported at all."""
    expression = config.option.markexpr
    if not expression:
        return None
    if not (collection_path.is_dir() or collection_path.name.startswith("test_")):
        return None
    if collection_path.suffix not in ("", ".py") or TESTS not in collection_path.parents:
        return None
    try:
        markers = _path_markers(collection_path)
    except (OSError, SyntaxError):
        return None  # collected as usual: pytest reports the problem
    if markers and not _can_match(expression, markers):
        return True
    return None


# --- the fixtures -----------------------------------------------------------------


@pytest.fixture
@_rig("tests.rig.http_server")
def scheduled_server(tmp_path: Path) -> Iterator[ScheduledServer]:
    """The inference server that fails on a schedule the test arms."""
    from tests.rig.http_server import start_scheduled_server

    server = start_scheduled_server(tmp_path)
    yield server
    server.stop()


@pytest.fixture
@_rig("tests.rig.redis")
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """One real redis-server on a free loopback port."""
    from tests.rig.redis import start_redis

    server = start_redis(tmp_path)
    yield server
    server.stop()


@pytest.fixture(scope="module")
@_rig("tests.rig.redis")
def redis_sentinel_set(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisSentinelSet]:
    """A real primary, two replicas and three Sentinels (quorum 2)."""
    from tests.rig.redis import start_redis_sentinel_set

    ha = start_redis_sentinel_set(tmp_path_factory.mktemp("redis-ha"))
    yield ha
    ha.stop()


@pytest.fixture(scope="session")
@_rig("tests.rig.moto")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """moto's AWS server mode (ELBv2 and the rest) on a free loopback port."""
    from tests.rig.moto import start_moto_server

    server = start_moto_server(tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
@_rig("tests.rig.kube")
def kube_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    """A real control plane (kwokctl binary runtime) with 4 kwok nodes, the
    KubeRay operator and the test LB controller; or the cluster of
    CHAOSRAY_TEST_KUBECONFIG."""
    from tests.rig.kube import start_cluster

    cluster = start_cluster(tmp_path_factory.mktemp("kube"))
    yield cluster
    cluster.stop()
    assert not cluster.leftovers(), "the test cluster left processes behind"


@pytest.fixture(scope="session")
@_rig("tests.rig.kube")
def _topology_applied(kube_cluster: KubeCluster) -> KubeCluster:
    from tests.rig.kube import apply_topology

    apply_topology(kube_cluster)
    return kube_cluster


@pytest.fixture
@_rig("tests.rig.kube")
def topology(_topology_applied: KubeCluster) -> Iterator[KubeCluster]:
    """The reference deployment of deploy/, healthy before the test; after it
    the nodes are uncordoned and the test waits for the topology to heal, so
    the next test starts from the same state."""
    from tests.rig.kube import restore_topology, wait_topology

    wait_topology(_topology_applied)
    yield _topology_applied
    restore_topology(_topology_applied)


@pytest.fixture(scope="module")
@_rig("tests.rig.ray_cluster")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRayCluster]:
    """A real Ray cluster shared by a module's tests: Redis for GCS fault
    tolerance, a head, 3 workers, and Serve with a proxy on every node.
    Tests that break it mend it (or run last)."""
    from tests.rig.ray_cluster import LocalRayCluster

    cluster = LocalRayCluster(tmp_path_factory.mktemp("ray"))
    cluster.start(workers=3)
    try:
        yield cluster
    finally:
        cluster.stop()
