"""The lab (``chaoslab-test``) comes up once for the session and goes down at
its end; the order is set below: the lab's own tests on a fresh lab, then
the experiments, then the test that proves ``down`` leaves nothing behind."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config

from chaosray.lab import lab
from tests.lab.helpers import LAB, admin, machine_state, wait_whole


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


@pytest.fixture
def whole_lab(the_lab: dict[str, str], as_chaosray: client.CoreV1Api) -> dict[str, str]:
    """The reference deployment whole before the test (the dashboard probes
    act with the lab's chaosray token, as_chaosray sets it)."""
    wait_whole(admin(the_lab), "the reference deployment whole before the test")
    return the_lab


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The lab's own tests (tests/lab/test_lab.py) on a fresh lab first, then
    the experiments (which disrupt it for half an hour), and ``down`` last."""

    def order(item: pytest.Item) -> int:
        if item.name == "test_down_leaves_nothing_behind":
            return 2
        return 1 if "experiments" in item.nodeid.split("::")[0] else 0

    items.sort(key=order)  # stable: each module keeps its own order
