"""The shipped experiments and their source agree, and each experiment
declares exactly the configuration keys it uses. Pure: no cluster, no
`chaos run`.

The experiments are written by ``scripts/write_experiments.py`` from
``experiments/source/``. "Uses" is computed here from the committed JSON
itself: the keys its controls, hypothesis, method and rollbacks reference
as ``${key}``, and the keys ``experiments/source/reads.py`` lists for the
activities and controls it calls (the one table of what chaosray code reads
from the configuration mapping). The last test holds that table to the code.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from chaosray import ACTIVITY_MODULES

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = REPO / "experiments"
SCRIPT = REPO / "scripts" / "write_experiments.py"
CHAOSRAY = REPO / "chaosray"
NAMES = sorted(path.stem for path in EXPERIMENTS.glob("*.json"))
# ${key}, or $key: chaoslib substitutes both (string.Template).
REFERENCE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


@cache
def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("write_experiments", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def configuration_reads() -> dict[str, tuple[str, ...]]:
    reads: dict[str, tuple[str, ...]] = _generator().configuration_reads()
    return reads


def _experiment(name: str) -> dict[str, Any]:
    return dict(json.loads((EXPERIMENTS / f"{name}.json").read_text()))


def _write(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *argv], capture_output=True, text=True, timeout=120
    )


# --- the committed files are the source's output ----------------------------------------------


def test_the_committed_experiments_are_what_the_source_writes(tmp_path: Path) -> None:
    done = _write(["--out", str(tmp_path)])
    assert done.returncode == 0, done.stdout + done.stderr
    written = sorted(path.name for path in tmp_path.glob("*.json"))
    committed = sorted(path.name for path in EXPERIMENTS.glob("*.json"))
    assert written == committed, "experiments/ holds files the source does not write, or lacks some"
    stale = [n for n in written if (tmp_path / n).read_text() != (EXPERIMENTS / n).read_text()]
    assert not stale, (
        f"experiments/{', '.join(stale)} differ from experiments/source/: "
        "run .venv/bin/python scripts/write_experiments.py"
    )


def test_check_names_the_file_that_differs(tmp_path: Path) -> None:
    assert _write(["--out", str(tmp_path)]).returncode == 0
    assert _write(["--check", "--out", str(tmp_path)]).returncode == 0
    edited = tmp_path / "node-drain.json"
    edited.write_text(edited.read_text().replace('"version": "1.0.0"', '"version": "1.0.1"'))
    (tmp_path / "hand-written.json").write_text("{}\n")
    done = _write(["--check", "--out", str(tmp_path)])
    assert done.returncode == 1
    assert f"{edited}: differs from the source" in done.stdout
    assert "hand-written.json: has no source" in done.stdout
    assert "worker-delete" not in done.stdout
    assert edited.read_text().count('"1.0.1"') == 1  # --check writes nothing


# --- each experiment declares exactly what it uses --------------------------------------------


def _values(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _values(item)
    elif isinstance(value, list):
        for item in value:
            yield from _values(item)
    elif isinstance(value, str):
        yield value


def references(experiment: dict[str, Any]) -> set[str]:
    """The keys the parts chaoslib substitutes reference."""
    parts = [experiment.get(p) for p in ("controls", "steady-state-hypothesis", "method")]
    parts.append(experiment.get("rollbacks"))
    return {
        braced or bare
        for text in _values(parts)
        for braced, bare in REFERENCE.findall(text)
        if (braced or bare)
    }


def called(experiment: dict[str, Any]) -> set[str]:
    """``module`` of each control, ``module:func`` of each Python activity."""
    calls = {str(c["provider"]["module"]) for c in experiment.get("controls", [])}
    activities = [
        *experiment.get("steady-state-hypothesis", {}).get("probes", []),
        *experiment.get("method", []),
        *experiment.get("rollbacks", []),
    ]
    for activity in activities:
        provider = activity["provider"]
        if provider["type"] == "python":
            calls.add(f"{provider['module']}:{provider['func']}")
    return calls


def used(experiment: dict[str, Any]) -> set[str]:
    reads = configuration_reads()
    from_code = {key for call in called(experiment) for key in reads.get(call, ())}
    return references(experiment) | from_code


@pytest.mark.parametrize("name", NAMES)
def test_no_experiment_declares_a_key_it_does_not_use(name: str) -> None:
    experiment = _experiment(name)
    unused = sorted(set(experiment["configuration"]) - used(experiment))
    assert not unused, f"{name} declares keys it never uses: {', '.join(unused)}"


@pytest.mark.parametrize("name", NAMES)
def test_every_key_an_experiment_uses_is_declared(name: str) -> None:
    experiment = _experiment(name)
    missing = sorted(used(experiment) - set(experiment["configuration"]))
    assert not missing, f"{name} uses keys it does not declare: {', '.join(missing)}"


def test_the_keys_read_from_the_configuration_are_checked_by_the_experiments() -> None:
    # Not vacuous: the safety keys only reach the actions through reads.py.
    worker_delete = _experiment("worker-delete")
    assert "chaosray_max_pods_per_action" not in references(worker_delete)
    assert "chaosray_max_pods_per_action" in used(worker_delete)
    assert "chaosray_max_pods_per_action" not in used(_experiment("pre-validation"))


# --- reads.py agrees with the code ------------------------------------------------------------
#
# A static reading of chaosray/: a function reads key K when it calls
# ``<configuration>.get(K)`` or subscripts ``<configuration>[K]`` (K a string
# literal or a module constant), or calls a chaosray function passing its
# ``configuration`` on. A function that keeps the configuration in module
# state (``_state["configuration"] = configuration``) hands it to the
# functions of its module that take it back from there.

CONFIGURATION_NAMES = {"configuration"}


@dataclass
class _Module:
    name: str
    functions: dict[str, ast.FunctionDef] = field(default_factory=dict)
    constants: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)  # local name: dotted target


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _modules() -> dict[str, _Module]:
    modules: dict[str, _Module] = {}
    for path in sorted(CHAOSRAY.rglob("*.py")):
        if "experiments" in path.relative_to(CHAOSRAY).parts:
            continue
        name = _module_name(path)
        module = _Module(name)
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                module.functions[node.name] = node
            elif (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
            ):
                module.constants[node.targets[0].id] = node.value.value
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for anywhere in ast.walk(tree):  # function-level imports too
            if isinstance(anywhere, ast.ImportFrom):
                base = anywhere.module or ""
                if anywhere.level:
                    up = package.split(".")[: len(package.split(".")) - anywhere.level + 1]
                    base = ".".join([*up, *([base] if base else [])])
                for alias in anywhere.names:
                    module.aliases[alias.asname or alias.name] = f"{base}.{alias.name}"
            elif isinstance(anywhere, ast.Import):
                for alias in anywhere.names:
                    module.aliases[alias.asname or alias.name] = alias.name
        modules[name] = module
    return modules


def _resolve(module: _Module, dotted: str, depth: int = 0) -> tuple[str, str] | None:
    """The chaosray function (module, name) that ``dotted`` names in ``module``."""
    head, _, rest = dotted.partition(".")
    if not rest and head in module.functions:
        return module.name, head
    if head not in module.aliases or depth > 5:
        return None
    target = module.aliases[head] + (f".{rest}" if rest else "")
    if target in _modules():
        return None  # a module, not a function
    owner, _, attr = target.rpartition(".")
    if owner in _modules():
        return _resolve(_modules()[owner], attr, depth + 1)
    return None


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _is_configuration(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id in CONFIGURATION_NAMES
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
        return _is_configuration(node.values[0])
    return False


def _key(module: _Module, node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in module.constants:
            return module.constants[node.id]
        owner, _, attr = module.aliases.get(node.id, "").rpartition(".")
        if owner in _modules():
            return _modules()[owner].constants.get(attr)
    return None


def _state_slot(node: ast.expr) -> tuple[str, str] | None:
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Name)
        and isinstance(node.slice, ast.Constant)
        and isinstance(node.slice.value, str)
    ):
        return node.value.id, node.slice.value
    return None


@dataclass
class _Facts:
    reads: set[str] = field(default_factory=set)
    calls: set[tuple[str, str]] = field(default_factory=set)
    keeps: set[tuple[str, str]] = field(default_factory=set)
    takes: set[tuple[str, str]] = field(default_factory=set)


@cache
def _facts(module_name: str, function: str) -> _Facts:
    module = _modules()[module_name]
    facts = _Facts()
    for node in ast.walk(module.functions[function]):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr == "get" and node.args:
                key = _key(module, node.args[0]) if _is_configuration(func.value) else None
                if key:
                    facts.reads.add(key)
            passed = [*node.args, *(k.value for k in node.keywords)]
            dotted = _dotted(func)
            callee = _resolve(module, dotted) if dotted else None
            if callee and any(_is_configuration(arg) for arg in passed):
                facts.calls.add(callee)
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            key = _key(module, node.slice) if _is_configuration(node.value) else None
            if key:
                facts.reads.add(key)
            slot = _state_slot(node)
            if slot:
                facts.takes.add(slot)
        elif isinstance(node, ast.Assign) and _is_configuration(node.value):
            facts.keeps.update(s for s in map(_state_slot, node.targets) if s)
    return facts


def code_reads(
    module_name: str, function: str, seen: frozenset[tuple[str, str]] = frozenset()
) -> set[str]:
    """Every configuration key ``module_name.function`` reads, through its calls."""
    here = (module_name, function)
    if here in seen:
        return set()
    facts = _facts(module_name, function)
    keys = set(facts.reads)
    nexts = set(facts.calls)
    module = _modules()[module_name]
    for other in module.functions:
        if other != function and facts.keeps & _facts(module_name, other).takes:
            nexts.add((module_name, other))
    for callee in nexts:
        keys |= code_reads(*callee, seen=seen | {here})
    return keys


def _control_reads(module_name: str) -> set[str]:
    functions = _modules()[module_name].functions
    return {k for f in functions if f.endswith("_control") for k in code_reads(module_name, f)}


def test_reads_py_lists_what_the_code_reads_from_the_configuration() -> None:
    derived: dict[str, set[str]] = {}
    for module_name in ACTIVITY_MODULES:
        for function in importlib.import_module(module_name).__all__:
            derived[f"{module_name}:{function}"] = code_reads(module_name, function)
    controls = {str(c["provider"]["module"]) for n in NAMES for c in _experiment(n)["controls"]}
    for module_name in controls:
        derived[module_name] = _control_reads(module_name)
    table = configuration_reads()
    unknown = sorted(set(table) - set(derived))
    assert not unknown, f"reads.py lists what is neither an activity nor a control: {unknown}"
    wrong = {
        name: f"the code reads {sorted(keys)}, reads.py says {sorted(table.get(name, ()))}"
        for name, keys in sorted(derived.items())
        if keys != set(table.get(name, ()))
    }
    assert not wrong, f"experiments/source/reads.py disagrees with chaosray/: {wrong}"


def test_the_static_reading_sees_the_safety_checks() -> None:
    # The reading itself: direct, through a call, through the interrupt state.
    assert code_reads("chaosray.k8s.safety", "pod_limit") == {"chaosray_max_pods_per_action"}
    assert code_reads("chaosray.ray.actions", "delete_ray_head") == {
        "chaosray_allowed_contexts",
        "chaosray_dry_run",
    }
    assert "chaosray_dry_run" in code_reads("chaosray.interrupts", "hook")
    assert code_reads("chaosray.k8s.probes", "count_ready_pods") == set()
