"""The lab (``chaoslab-test``) comes up once for the session and goes down at
its end; tests/lab/test_lab.py's last test proves ``down`` leaves nothing
behind (its module runs last)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config

from chaosray.lab import lab
from tests.lab.helpers import LAB, machine_state


@pytest.fixture(scope="session")
def before() -> dict[str, Any]:
    lab.down(LAB, print)  # a lab left by an aborted run must not be counted as "before"
    return machine_state()


@pytest.fixture(scope="session")
def the_lab(before: dict[str, Any]) -> Iterator[dict[str, str]]:
    started = time.monotonic()
    try:
        result = lab.up(LAB, print)
    except BaseException:
        print(f"lab logs in {LAB.logs}")
        lab.down(LAB, print)
        raise
    print(f"lab up in {time.monotonic() - started:.0f}s")
    yield result
    lab.down(LAB, print)


@pytest.fixture
def as_chaosray(the_lab: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> client.CoreV1Api:
    """chaosray's activities (and this client) act with the lab's token."""
    monkeypatch.setenv("KUBECONFIG", the_lab["kubeconfig"])
    monkeypatch.delenv("KUBERNETES_CONTEXT", raising=False)
    return client.CoreV1Api(config.new_client_from_config(config_file=the_lab["kubeconfig"]))
