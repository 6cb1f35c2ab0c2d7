"""Write the shipped experiments, ``experiments/<name>.json``, from their
source, ``experiments/source/`` (one module per experiment, the shared
declarations and controls in ``shared.py``, what chaosray code reads from the
configuration in ``reads.py``).

Usage: .venv/bin/python scripts/write_experiments.py [--check] [--out DIR]

Each experiment declares exactly the configuration keys it uses: those it
references as ``${key}`` in its controls, hypothesis, method and rollbacks,
and those ``reads.py`` lists for the activities and controls it calls. A
source that declares a key no experiment uses, or uses a key it does not
declare, is refused. The output is deterministic: fixed key order, 2-space
indent, a trailing newline. Files whose content is unchanged are not
rewritten.

With ``--check`` nothing is written: it exits 1, naming each file that
differs from the source (or is missing, or has no source), when there is one.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import importlib.util
import json
import string
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS_DIR = REPO / "experiments"
SOURCE_DIR = EXPERIMENTS_DIR / "source"
# The source is loaded under this name, from its folder (it is not a package
# of chaosray, and nothing is added to sys.path).
PACKAGE = "_chaosray_experiment_source"

# The order of an experiment's top-level keys; "configuration" is computed.
ORDER = [
    "version",
    "title",
    "description",
    "tags",
    "contributions",
    "configuration",
    "controls",
    "steady-state-hypothesis",
    "method",
    "rollbacks",
    "runtime",
]
# The parts whose ${key} references are substituted when the experiment runs.
ACTIVE_PARTS = ["controls", "steady-state-hypothesis", "method", "rollbacks"]


class SourceError(ValueError):
    """The source is inconsistent; the message names the experiment and key."""


def load_source() -> ModuleType:
    """The source package, loaded once from ``experiments/source/``."""
    if PACKAGE in sys.modules:
        return sys.modules[PACKAGE]
    spec = importlib.util.spec_from_file_location(
        PACKAGE, SOURCE_DIR / "__init__.py", submodule_search_locations=[str(SOURCE_DIR)]
    )
    assert spec is not None and spec.loader is not None
    package = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = package
    spec.loader.exec_module(package)
    return package


def _module(name: str) -> ModuleType:
    """Module ``name`` of the source (``shared``, ``reads``, ``worker_delete``)."""
    load_source()
    return importlib.import_module(f"{PACKAGE}.{name}")


def source_module(name: str) -> ModuleType:
    """The module of experiment ``name`` (``worker-delete``: ``worker_delete.py``)."""
    return _module(name.replace("-", "_"))


def names() -> list[str]:
    """The experiments the source writes, in the suite's order."""
    return list(load_source().EXPERIMENTS)


def configuration_reads() -> dict[str, tuple[str, ...]]:
    """``reads.py``'s table: activity (``module:func``) or control (``module``)
    to the configuration keys it reads from the configuration mapping."""
    reads: dict[str, tuple[str, ...]] = _module("reads").CONFIGURATION_READS
    return reads


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def references(experiment: dict[str, Any]) -> set[str]:
    """The keys the experiment's active parts reference (``${key}`` or
    ``$key``, as chaoslib substitutes them)."""
    found: set[str] = set()
    for part in ACTIVE_PARTS:
        for text in _strings(experiment.get(part)):
            found.update(string.Template(text).get_identifiers())
    return found


def callers(experiment: dict[str, Any]) -> Iterator[str]:
    """The controls (``module``) and activities (``module:func``) it calls."""
    for control in experiment.get("controls") or []:
        yield str(control["provider"]["module"])
    hypothesis = experiment.get("steady-state-hypothesis") or {}
    activities = [
        *(hypothesis.get("probes") or []),
        *(experiment.get("method") or []),
        *(experiment.get("rollbacks") or []),
    ]
    for activity in activities:
        provider = activity.get("provider") or {}
        if provider.get("type") == "python":
            yield f"{provider['module']}:{provider['func']}"


def uses(experiment: dict[str, Any], reads: dict[str, tuple[str, ...]]) -> set[str]:
    """Every configuration key the experiment uses."""
    used = references(experiment)
    for caller in callers(experiment):
        used.update(reads.get(caller, ()))
    return used


def build(name: str) -> dict[str, Any]:
    """Experiment ``name`` as it is written to ``experiments/<name>.json``."""
    shared = _module("shared")
    module = source_module(name)
    body: dict[str, Any] = copy.deepcopy(module.EXPERIMENT)
    own: dict[str, Any] = module.CONFIGURATION
    unknown = set(body) - set(ORDER)
    if "configuration" in body or "version" in body or unknown:
        wrong = sorted(unknown | ({"configuration", "version"} & set(body)))
        raise SourceError(f"{name}: EXPERIMENT must not set {', '.join(wrong)}")
    used = uses(body, configuration_reads())
    available = {**shared.CONFIGURATION, **shared.SAFETY}
    for key, declaration in own.items():
        if available.get(key) == declaration:
            raise SourceError(f"{name}: {key!r} is declared as in shared.py; drop it")
    unused = sorted(set(own) - used)
    if unused:
        raise SourceError(f"{name}: declares {', '.join(unused)} but never uses it")
    configuration: dict[str, Any] = {}
    for group in (shared.CONFIGURATION, own, shared.SAFETY):
        for key, declaration in group.items():
            if key in used and key not in configuration:
                configuration[key] = copy.deepcopy(own.get(key, declaration))
    undeclared = sorted(used - set(configuration))
    if undeclared:
        raise SourceError(f"{name}: uses {', '.join(undeclared)}, declared nowhere")
    whole = {**body, "version": shared.VERSION, "configuration": configuration}
    return {key: whole[key] for key in ORDER if key in whole}


def build_all() -> dict[str, dict[str, Any]]:
    """Every experiment; refuses shared keys that no experiment uses."""
    shared = _module("shared")
    experiments = {name: build(name) for name in names()}
    declared = {key for e in experiments.values() for key in e["configuration"]}
    dead = [k for k in [*shared.CONFIGURATION, *shared.SAFETY] if k not in declared]
    if dead:
        raise SourceError(f"shared.py declares {', '.join(dead)}, used by no experiment")
    return experiments


def render(experiment: dict[str, Any]) -> str:
    return json.dumps(experiment, indent=2) + "\n"


def differences(out: Path, rendered: dict[str, str]) -> list[str]:
    """The files of ``out`` that differ from the source, with why."""
    found: list[str] = []
    for file_name, text in rendered.items():
        path = out / file_name
        if not path.is_file():
            found.append(f"{path}: missing")
        elif path.read_text() != text:
            found.append(f"{path}: differs from the source")
    for path in sorted(out.glob("*.json")):
        if path.name not in rendered:
            found.append(f"{path}: has no source in {SOURCE_DIR}")
    return found


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 on a difference"
    )
    parser.add_argument("--out", type=Path, default=EXPERIMENTS_DIR, help="default: experiments/")
    args = parser.parse_args(None if argv is None else list(argv))
    try:
        rendered = {f"{name}.json": render(e) for name, e in build_all().items()}
    except SourceError as exc:
        print(f"write_experiments: {exc}", file=sys.stderr)
        return 2
    out: Path = args.out
    if args.check:
        found = differences(out, rendered)
        for line in found:
            print(line)
        if found:
            print("run: .venv/bin/python scripts/write_experiments.py", file=sys.stderr)
        return 1 if found else 0
    out.mkdir(parents=True, exist_ok=True)
    for file_name, text in rendered.items():
        path = out / file_name
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote {path}")
    for path in sorted(out.glob("*.json")):
        if path.name not in rendered:
            print(f"{path}: has no source in {SOURCE_DIR}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
