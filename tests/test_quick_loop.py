"""The quick loop (``make check``): the rig markers tests/conftest.py applies,
and a run of the tests that have none of them importing no rig at all."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests import conftest
from tests.rig.egress_canary import run_canary
from tests.rig.netns import start_netns_host
from tests.rig.procs import free_port

ROOT = Path(__file__).resolve().parent.parent
HEAVY = sorted({rig.marker for rig in conftest.RIGS.values() if rig.heavy})
# Modules a run of the pure tests must not import: the heavy rig modules,
# their dependencies, and the lab's tests.
FORBIDDEN = (
    *(module for module, rig in conftest.RIGS.items() if rig.heavy),
    "boto3",
    "botocore",
    "moto",
    "redis",
    "ray",
    "tests.lab",
)

# A child pytest that collects with the given -m expression (or none) and
# writes what it collected, with markers and fixtures, and the modules loaded.
CHILD = """
import json, sys
import pytest

class Record:
    def pytest_collection_finish(self, session):
        self.items = {
            item.nodeid: {
                "markers": sorted({m.name for m in item.iter_markers()}),
                "fixtures": sorted(getattr(item, "fixturenames", [])),
            }
            for item in session.items
        }
        self.modules = sorted(sys.modules)

record = Record()
args = ["--collect-only", "-q", "-p", "no:cacheprovider"]
if sys.argv[2]:
    args += ["-m", sys.argv[2]]
code = pytest.main(args, plugins=[record])
with open(sys.argv[1], "w") as out:
    json.dump({"code": int(code), "items": record.items, "modules": record.modules}, out)
"""


def _pure_expression() -> str:
    makefile = (ROOT / "Makefile").read_text()
    match = re.search(r"^PURE_TESTS := (.+)$", makefile, re.MULTILINE)
    assert match, "the Makefile has no PURE_TESTS line"
    return match.group(1).strip()


def _collect(tmp_path: Path, expression: str) -> dict[str, Any]:
    out = tmp_path / f"collected-{len(list(tmp_path.iterdir()))}.json"
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(out), expression],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result: dict[str, Any] = json.loads(out.read_text())
    assert result["code"] == 0, done.stdout[-3000:]
    return result


def test_make_check_deselects_every_rig_marker(pytestconfig: pytest.Config) -> None:
    registered = {line.split(":", 1)[0].strip() for line in pytestconfig.getini("markers")}
    assert set(conftest.RIG_MARKERS) <= registered
    assert _pure_expression() == " and ".join(f"not {m}" for m in conftest.RIG_MARKERS)


def test_a_run_of_the_pure_tests_imports_no_rig(tmp_path: Path) -> None:
    """Fails when conftest.py (or a rig-free test module) imports a rig
    module at the top again, or a module's marker goes missing."""
    pure = _collect(tmp_path, _pure_expression())
    loaded = [m for m in pure["modules"] if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]
    assert loaded == []
    assert len(pure["items"]) > 40
    assert not any(set(i["markers"]) & set(conftest.RIG_MARKERS) for i in pure["items"].values())
    this = f"tests/{Path(__file__).name}::test_a_run_of_the_pure_tests_imports_no_rig"
    assert this in pure["items"]


# Test-like functions for the marker rules: kept in a dict, so that the tests
# below, which refer to the dict, do not count as calling them.
def _calls_netns_through_a_helper() -> None:
    _helper()


def _helper() -> None:
    start_netns_host()


def _calls_the_canary() -> None:
    run_canary(Path("/nonexistent"))


def _imports_the_cluster_rig_inside() -> None:
    from tests.rig.kube import start_cluster

    start_cluster(Path("/nonexistent"))


def _uses_only_generic_helpers() -> None:
    free_port()


SAMPLES = {
    "netns": _calls_netns_through_a_helper,
    "canary": _calls_the_canary,
    "inside": _imports_the_cluster_rig_inside,
    "generic": _uses_only_generic_helpers,
}


def test_a_test_gets_the_markers_of_the_rig_it_calls() -> None:
    markers = {name: conftest._referenced_markers(f) for name, f in SAMPLES.items()}
    assert markers == {
        "netns": {"netns"},
        "canary": {"ray", "redis"},  # egress_canary starts the Ray rig, which runs Redis
        "inside": {"cluster"},
        "generic": set(),
    }


def test_a_module_gets_the_markers_of_the_heavy_rigs_it_imports(tmp_path: Path) -> None:
    module = tmp_path / "test_sample.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "from tests.rig.http_server import ScheduledServer\n"  # light: no marker
        "from tests.rig.ray_pods import RIG_CLUSTER\n"  # imports tests/rig/kube.py
        "if TYPE_CHECKING:\n"
        "    from tests.rig.moto import MotoServer\n"
        "def test_x():\n"
        "    from tests.rig.redis import start_redis\n"
    )
    assert conftest._path_markers(module) == {"cluster"}
    assert conftest._path_markers(conftest.LAB) == {"lab"}
    assert conftest._path_markers(conftest.LAB / "test_lab.py") >= {"lab"}


# This one collects every test, so it imports every rig module.
@pytest.mark.aws
@pytest.mark.cluster
@pytest.mark.ray
@pytest.mark.redis
def test_the_pure_selection_is_every_test_without_a_rig_marker(tmp_path: Path) -> None:
    assert HEAVY == ["aws", "cluster", "ray", "redis"]  # the marks above
    everything = _collect(tmp_path, "")["items"]
    pure = _collect(tmp_path, _pure_expression())["items"]
    rigless = {
        nodeid
        for nodeid, item in everything.items()
        if not set(item["markers"]) & set(conftest.RIG_MARKERS)
    }
    assert set(pure) == rigless  # skipping whole modules under -m lost no test
    for nodeid, item in everything.items():
        if nodeid.startswith("tests/lab/"):
            assert "lab" in item["markers"], nodeid
        for fixture in set(item["fixtures"]) & set(conftest._RIG_OF_FIXTURE):
            wanted = conftest._use_markers(conftest._RIG_OF_FIXTURE[fixture])
            assert wanted <= set(item["markers"]), (nodeid, fixture)
