"""`chaos discover` lists every activity with the right type, arguments and doc."""

from __future__ import annotations

import importlib
import inspect
import json
import subprocess
import sys
from pathlib import Path

import chaosray

PACKAGE_DIR = Path(chaosray.__file__).parent


def _chaos() -> str:
    return str(Path(sys.executable).with_name("chaos"))


def test_chaos_discover_writes_every_activity(tmp_path: Path) -> None:
    out = tmp_path / "discovery.json"
    done = subprocess.run(
        [
            _chaos(),
            "--no-version-check",
            "--no-log-file",
            "discover",
            "chaostoolkit-ray",
            "--no-install",
            "--discovery-path",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    discovery = json.loads(out.read_text())
    assert discovery["extension"] == {"name": "chaostoolkit-ray", "version": chaosray.__version__}
    assert discovery["target"] == "ray"

    listed = {(a["mod"], a["name"]): a for a in discovery["activities"]}
    expected = set()
    for module_name in chaosray.ACTIVITY_MODULES:
        module = importlib.import_module(module_name)
        kind = "probe" if module_name.endswith(".probes") else "action"
        for name in module.__all__:
            expected.add((module_name, name))
            entry = listed[(module_name, name)]
            func = getattr(module, name)
            assert entry["type"] == kind, f"{module_name}.{name} listed as {entry['type']}"
            doc = inspect.getdoc(func)
            assert doc and entry["doc"] == doc, f"{module_name}.{name} needs a docstring"
            params = [p for p in inspect.signature(func).parameters]
            assert [a["name"] for a in entry["arguments"]] == params
    assert set(listed) == expected


def test_every_activity_module_is_registered() -> None:
    """A probes.py or actions.py that exists but is not in ACTIVITY_MODULES
    would be invisible to `chaos discover`."""
    on_disk = {
        "chaosray." + ".".join(path.relative_to(PACKAGE_DIR).with_suffix("").parts)
        for pattern in ("**/probes.py", "**/actions.py")
        for path in PACKAGE_DIR.glob(pattern)
    }
    assert on_disk == set(chaosray.ACTIVITY_MODULES)
    for name in chaosray.ACTIVITY_MODULES:
        assert importlib.import_module(name).__all__, f"{name} lists no activity"


def test_chaos_info_lists_the_extension() -> None:
    done = subprocess.run(
        [_chaos(), "--no-log-file", "info", "extensions"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("chaostoolkit-ray "))
    assert chaosray.__version__ in line
