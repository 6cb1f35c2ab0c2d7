"""Nothing the tests start can reach beyond this machine.

The session runs in a network namespace of its own (scripts/contained.sh):
these tests prove that an outside address is unreachable by construction,
and that the rig's Ray head does not even try to ask for cloud metadata
(checked where that address is a listener of the test, so nothing leaves).
"""

from __future__ import annotations

import errno
import socket
import time
from pathlib import Path

import pytest

from tests.rig.containment import has_default_route, interfaces, ipv4_routes, machine_gateway
from tests.rig.egress_canary import METADATA_IP, run_canary
from tests.rig.netns import start_netns_host


def _connect(address: str, port: int) -> tuple[int, float]:
    """errno of a TCP connect to ``address`` and how long it took."""
    began = time.monotonic()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        code = sock.connect_ex((address, port))
    return code, time.monotonic() - began


def test_the_session_has_loopback_only_and_the_machine_does_not() -> None:
    # The machine's own namespace (PID 1's) has a way out; ours has none.
    assert has_default_route(1), (
        "the machine's namespace should have a default route to compare with"
    )
    gateway = machine_gateway()
    assert gateway is not None
    assert not has_default_route()
    assert interfaces(1) != ["lo"]
    # Only loopback and the veths of test hosts the tests created.
    for iface, dest, _gw in ipv4_routes():
        assert iface.startswith("crt"), f"unexpected route {dest} via {iface}"


@pytest.mark.parametrize("where", ["gateway", METADATA_IP, "1.1.1.1", "10.255.255.53"])
def test_an_outside_address_is_unreachable_at_once(where: str) -> None:
    address = machine_gateway() if where == "gateway" else where
    assert address is not None
    code, took = _connect(address, 80)
    # ENETUNREACH: the kernel found no route, so no packet was built, let alone sent.
    assert code == errno.ENETUNREACH, f"connect to {address}: {errno.errorcode.get(code, code)}"
    assert took < 1.0, f"connect to {address} took {took:.2f}s: something waited for an answer"


def test_a_name_lookup_fails_without_waiting_for_the_resolver() -> None:
    began = time.monotonic()
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("metadata.google.internal", 80)
    assert time.monotonic() - began < 2.0


def test_a_test_host_is_reachable_and_nothing_beyond_it() -> None:
    """The namespaces the tests create join this one, and only this one."""
    host = start_netns_host()
    try:
        assert any(
            dest.startswith(host.host_ip.rsplit(".", 1)[0]) for _i, dest, _g in ipv4_routes()
        )
        assert not has_default_route()
        code, _took = _connect(machine_gateway() or "192.0.2.1", 80)
        assert code == errno.ENETUNREACH
    finally:
        host.stop()


def test_the_rig_ray_head_asks_no_cloud_metadata_service(tmp_path: Path) -> None:
    # The control run first: without the rig's guards, Ray 2.60 does ask
    # (so the canary would see a lookup if a guard did not work).
    control = run_canary(tmp_path / "control", cloud_guards=False)
    assert control["usage_module_finished"], control
    asked = {entry["path"] for entry in control["http"]}
    assert "/latest/meta-data/" in asked, control  # AWS
    assert any(path.startswith("/metadata/instance") for path in asked), control  # Azure
    assert "metadata.google.internal" in control["dns"], control  # GCP
    assert "usage-stats.ray.io" in control["dns"], control  # the "disabled" report

    guarded = run_canary(tmp_path / "guarded")
    assert guarded["usage_module_finished"], guarded
    assert guarded["http"] == [], guarded
    # No name lookup at all: not the GCP metadata host, not usage-stats.ray.io
    # (which Ray reports to even with usage stats disabled).
    assert guarded["dns"] == [], guarded
