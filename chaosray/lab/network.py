"""The lab's network namespace: everything the pods can reach, nothing more.

Its interfaces are ``lo`` (which also holds CoreDNS's and the nodes' addresses),
the bridge ``cni0`` with the pods' veths, and the lab's end of the veth to
the host. It has **no default route**: a packet to any address outside the
lab's ranges and the host end of the veth has nowhere to go, so nothing a
pod does can leave the machine. The host gets one route, to 198.19.0.0/16
through the veth, so chaosray, the monitor, k6 and the API server reach
pods, Services and LoadBalancer addresses.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from chaosray.lab import layout
from chaosray.lab.host import LabError, in_netns, run

__all__: list[str] = []


def _ip(netns: Path | None, *args: str, check: bool = True) -> str:
    return run(in_netns(netns, ["ip", *args]), check=check)


def exists(lab: layout.Lab) -> bool:
    return lab.netns.exists()


def create(lab: layout.Lab) -> None:
    """Create the namespace, its interfaces and routes (idempotent)."""
    if not exists(lab):
        run(["ip", "netns", "add", lab.name])
    ns = lab.netns
    links = _ip(ns, "-o", "link", "show")
    if f" {lab.lab_veth}@" not in links:
        _ip(None, "link", "del", lab.host_veth, check=False)  # a half-made earlier try
        _ip(
            None,
            "link",
            "add",
            lab.host_veth,
            "type",
            "veth",
            "peer",
            "name",
            lab.lab_veth,
            "netns",
            lab.name,
        )
    host_addresses = _ip(None, "-o", "addr", "show", "dev", lab.host_veth)
    if f" {layout.HOST_VETH_ADDRESS}/" not in host_addresses:
        _ip(
            None,
            "addr",
            "add",
            f"{layout.HOST_VETH_ADDRESS}/{layout.VETH_PREFIX}",
            "dev",
            lab.host_veth,
        )
    _ip(None, "link", "set", lab.host_veth, "up")
    _ip(None, "route", "replace", layout.LAB_RANGE, "via", layout.LAB_VETH_ADDRESS)

    _ip(ns, "link", "set", "lo", "up")
    _ensure_address(ns, lab.lab_veth, f"{layout.LAB_VETH_ADDRESS}/{layout.VETH_PREFIX}")
    _ip(ns, "link", "set", lab.lab_veth, "up")
    # CoreDNS and node addresses on lo: this kernel has no dummy interfaces
    # (CONFIG_DUMMY is not set); the kubelet only asks for a local,
    # non-loopback address.
    for address in [layout.DNS_ADDRESS, *(node.address for node in lab.nodes)]:
        _ensure_address(ns, "lo", f"{address}/32")
    # The bridge exists before any CNI ADD, so four containerds never race to create it.
    if f" {layout.BRIDGE}:" not in links:
        _ip(ns, "link", "add", layout.BRIDGE, "type", "bridge")
    _ensure_address(ns, layout.BRIDGE, f"{layout.BRIDGE_ADDRESS}/18")
    _ip(ns, "link", "set", layout.BRIDGE, "up")
    # connect() picks a route before kube-proxy's OUTPUT DNAT, so locally made
    # connections to Service and LoadBalancer addresses need one.
    for cidr in (layout.SERVICE_CIDR, layout.LB_POOL):
        _ip(ns, "route", "replace", cidr, "dev", layout.BRIDGE)
    for key, value in (
        ("net.ipv4.ip_forward", "1"),
        ("net.bridge.bridge-nf-call-iptables", "1"),
        ("net.ipv4.conf.all.route_localnet", "1"),
    ):
        run(in_netns(ns, ["sysctl", "-q", "-w", f"{key}={value}"]))
    if default_routes(lab):
        raise LabError(f"network namespace {lab.name} has a default route: refusing to go on")


def _ensure_address(netns: Path, device: str, cidr: str) -> None:
    if f" {cidr} " not in _ip(netns, "-o", "addr", "show", "dev", device):
        _ip(netns, "addr", "add", cidr, "dev", device)


def default_routes(lab: layout.Lab) -> list[str]:
    routes = _ip(lab.netns, "route", "show", "default") if exists(lab) else ""
    return [line for line in routes.splitlines() if line.strip()]


def delete(lab: layout.Lab) -> None:
    """Delete the namespace (its veth end goes with it, and so the host's end
    and route)."""
    if exists(lab):
        run(["ip", "netns", "del", lab.name])
    with contextlib.suppress(LabError):
        run(["ip", "link", "del", lab.host_veth])


def host_veth_exists(lab: layout.Lab) -> bool:
    return run(["ip", "link", "show", lab.host_veth], check=False).strip() != ""
