"""Every action chaosray ships honours the safety settings of
``chaosray/k8s/safety.py``: it takes ``dry_run``, and it refuses to run in a
context outside ``chaosray_allowed_contexts`` before it calls the cluster.

The kubeconfig points at a closed port on loopback: an action that called the
API server before checking the context would fail with a connection error
instead of the refusal (nothing listens, so nothing can be changed)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from chaoslib.exceptions import ActivityFailed

import chaosray
from chaosray.k8s.safety import ALLOWED_CONTEXTS_KEY

# Actions that touch no cluster: stopping this process's own monitor threads.
NOT_ON_THE_CLUSTER = {"chaosray.load.actions.stop_availability_monitors"}

# Arguments that are optional alone but required in pairs ("a node or a selector").
ONE_OF = {
    "chaosray.k8s.actions.drain_node": {"name": "x"},
    "chaosray.ray.actions.delete_ray_head": {"cluster": "x"},
    "chaosray.ray.actions.delete_ray_worker": {"cluster": "x"},
}

KUBECONFIG = """
apiVersion: v1
kind: Config
clusters:
- name: nowhere
  cluster: {server: "https://127.0.0.1:9"}
users:
- name: someone
  user: {token: not-a-real-token}
contexts:
- name: production-by-mistake
  context: {cluster: nowhere, user: someone}
current-context: production-by-mistake
"""


def _actions() -> list[tuple[str, Callable[..., Any]]]:
    found = []
    for module_info in pkgutil.walk_packages(chaosray.__path__, "chaosray."):
        if not module_info.name.endswith(".actions"):
            continue
        module = importlib.import_module(module_info.name)
        for name in getattr(module, "__all__", []):
            found.append((f"{module_info.name}.{name}", getattr(module, name)))
    return sorted(found)


ACTIONS = _actions()


def test_the_action_modules_are_found() -> None:
    modules = {name.rsplit(".", 1)[0] for name, _f in ACTIONS}
    assert {"chaosray.k8s.actions", "chaosray.ray.actions", "chaosray.redis.actions"} <= modules


def _placeholder(parameter: inspect.Parameter) -> Any:
    """A value of the parameter's type for a required argument."""
    annotation = str(parameter.annotation)
    if "int" in annotation or "float" in annotation:
        return 1
    if "list" in annotation:
        return ["x"]
    return "x"


@pytest.mark.parametrize(("name", "action"), ACTIONS, ids=[n for n, _a in ACTIONS])
def test_every_action_takes_dry_run_and_checks_the_context_first(
    name: str, action: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if name in NOT_ON_THE_CLUSTER:
        assert "secrets" not in inspect.signature(action).parameters, name
        return
    parameters = inspect.signature(action).parameters
    assert "dry_run" in parameters, f"{name} takes no dry_run"
    assert parameters["dry_run"].default is False, name

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    arguments = {
        p.name: _placeholder(p)
        for p in parameters.values()
        if p.default is inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    arguments.update(ONE_OF.get(name, {}))
    configuration = {ALLOWED_CONTEXTS_KEY: "lab,staging"}
    with pytest.raises(ActivityFailed) as refused:
        action(**arguments, configuration=configuration)
    message = str(refused.value)
    assert message.startswith("refusing to "), f"{name}: {message}"
    assert "'production-by-mistake' is not in chaosray_allowed_contexts (lab, staging)" in message
