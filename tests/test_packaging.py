"""The package as a user installs it: the wheel built from a copy of the
sources, installed into a fresh virtual environment outside the checkout
(its dependencies from the wheelhouse `make setup` fills, since the test
session has no route to PyPI), used from an empty directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaosray.suite.runner import ALL
from tests.chaos_cli import k6_control_experiment
from tests.rig.http_server import ScheduledServer

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("CHAOSRAY_CACHE", Path.home() / ".cache" / "chaosray"))
WHEELHOUSE = CACHE / "wheelhouse"
SUITE_ORDER = ALL  # the suite's order, as `chaosray experiments list` prints them


def _run(argv: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    # A clean environment: nothing of the checkout's venv or PYTHONPATH leaks in.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert done.returncode == 0, f"{' '.join(argv)}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(the fresh venv's bin dir, the wheel)."""
    if not any(WHEELHOUSE.glob("*.whl")):
        raise RuntimeError(f"{WHEELHOUSE} has no wheels: run `make setup` first")
    work = tmp_path_factory.mktemp("packaging")
    source = work / "source"
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    for name in files:
        origin = REPO / name
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if origin.is_symlink():
            target.symlink_to(os.readlink(origin))
        elif origin.is_file():
            shutil.copy2(origin, target)
    dist = work / "dist"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-index",
             "--find-links", str(WHEELHOUSE), "--wheel-dir", str(dist), str(source)]  # fmt: skip
    _run(build, work)
    (wheel,) = dist.glob("chaostoolkit_ray-*.whl")
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], work)
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index",
          "--find-links", str(WHEELHOUSE), str(wheel)], work)  # fmt: skip
    yield venv / "bin", wheel


def test_the_wheel_carries_the_k6_script_the_experiments_and_the_deployment(
    installed: tuple[Path, Path],
) -> None:
    _bin, wheel = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "chaosray/load/assets/load.js" in names
    for experiment in SUITE_ORDER:
        assert f"chaosray/experiments/{experiment}.json" in names
    # `chaosray lab demo` runs the suite with it.
    assert "chaosray/experiments/profiles/short.json" in names
    # `chaosray lab up` applies the reference deployment from the package.
    deploy = {n for n in names if n.startswith("chaosray/deploy/")}
    assert {f"chaosray/deploy/base/{n}" for n in (
        "kustomization.yaml", "00-namespace.yaml", "10-redis.yaml", "20-raycluster.yaml",
        "30-service.yaml", "40-chaosray-rbac.yaml")} <= deploy  # fmt: skip
    assert "chaosray/deploy/lab/kustomization.yaml" in deploy
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    requires = [
        line for line in zipfile.ZipFile(wheel).read(metadata).decode().splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]  # fmt: skip
    assert any(line.startswith("Requires-Dist: kubernetes<38,>=37") for line in requires), requires
    assert not any("chaostoolkit-kubernetes" in line or "logzero" in line for line in requires)


def test_discover_lists_every_activity_from_an_empty_directory(
    installed: tuple[Path, Path], tmp_path: Path
) -> None:
    bin_dir, _wheel = installed
    out = tmp_path / "discovery.json"
    _run([str(bin_dir / "chaos"), "--no-version-check", "--no-log-file", "discover",
          "chaostoolkit-ray", "--no-install", "--discovery-path", str(out)], tmp_path)  # fmt: skip
    activities = json.loads(out.read_text())["activities"]
    names = {(a["type"], a["mod"], a["name"]) for a in activities}
    # The same as the source tree's own discovery (tests/test_discovery.py checks that one).
    import chaosray

    expected = {
        (a["type"], a["mod"], a["name"])
        for a in chaosray.discover(discover_system=False)["activities"]
    }
    assert names == expected and len(names) > 30


def test_the_packaged_experiments_are_found_and_validate(
    installed: tuple[Path, Path], tmp_path: Path
) -> None:
    bin_dir, _wheel = installed
    listed = _run([str(bin_dir / "chaosray"), "experiments", "list"], tmp_path).stdout.split()
    assert [Path(p).stem for p in listed] == SUITE_ORDER
    assert all("site-packages/chaosray/experiments" in p for p in listed)
    for path in listed:
        _run([str(bin_dir / "chaos"), "--no-version-check", "--no-log-file", "validate", path],
             tmp_path)  # fmt: skip
    helped = _run([str(bin_dir / "chaosray"), "suite", "run", "--help"], tmp_path).stdout
    assert "--allowed-contexts" in helped


def test_a_k6_control_experiment_runs_from_the_wheel(
    installed: tuple[Path, Path], tmp_path: Path, scheduled_server: ScheduledServer
) -> None:
    bin_dir, _wheel = installed
    experiment = tmp_path / "k6.json"
    experiment.write_text(
        json.dumps(k6_control_experiment({"target_url": scheduled_server.url, "rate": 10}, 3))
    )
    _run([str(bin_dir / "chaos"), "--no-version-check", "--no-log-file", "run",
          "--journal-path", str(tmp_path / "journal.json"), str(experiment)], tmp_path)  # fmt: skip
    journal = json.loads((tmp_path / "journal.json").read_text())
    k6 = journal["chaosray"]["k6"]
    # k6 ran the packaged script (load.js reports the target it was given)
    assert k6["status"] == "passed" and k6["requests"] >= 20, k6
    assert k6["target"].startswith(scheduled_server.url), k6
