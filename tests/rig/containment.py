"""The test session's network containment (scripts/contained.sh).

The tests run in a network namespace with a loopback interface and nothing
else; the test hosts they create join it through veth pairs. These helpers
read that state from the kernel (``/proc/<pid>/net/*`` is per namespace), so
the session can refuse to start outside it, and the containment test can
compare it with the machine's own namespace.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

MACHINE_NETNS_PID = 1  # PID 1 lives in the machine's own network namespace


def interfaces(pid: int | str = "self") -> list[str]:
    """The network interfaces of the namespace ``pid`` lives in."""
    lines = Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]
    return [line.split(":", 1)[0].strip() for line in lines]


def ipv4_routes(pid: int | str = "self") -> list[tuple[str, str, str]]:
    """(interface, destination/prefix, gateway) of the namespace's main table."""
    routes = []
    for line in Path(f"/proc/{pid}/net/route").read_text().splitlines()[1:]:
        iface, dest, gateway, _flags, _ref, _use, _metric, mask, *_ = line.split()
        dest_ip = ipaddress.IPv4Address(bytes.fromhex(dest)[::-1])
        mask_ip = ipaddress.IPv4Address(bytes.fromhex(mask)[::-1])
        prefix = ipaddress.IPv4Network(f"{dest_ip}/{mask_ip}").prefixlen
        routes.append(
            (iface, f"{dest_ip}/{prefix}", str(ipaddress.IPv4Address(bytes.fromhex(gateway)[::-1])))
        )
    return routes


def has_default_route(pid: int | str = "self") -> bool:
    """Whether the namespace has an IPv4 or IPv6 default route."""
    if any(dest == "0.0.0.0/0" for _iface, dest, _gw in ipv4_routes(pid)):
        return True
    ipv6 = Path(f"/proc/{pid}/net/ipv6_route")
    if ipv6.exists():
        for line in ipv6.read_text().splitlines():
            fields = line.split()
            # destination ::/0 on any interface but lo (lo carries the
            # kernel's unreachable default entry)
            if fields[0] == "0" * 32 and fields[1] == "00" and fields[-1] != "lo":
                return True
    return False


def machine_gateway() -> str | None:
    """The machine's own default gateway (read from PID 1's namespace)."""
    for _iface, dest, gateway in ipv4_routes(MACHINE_NETNS_PID):
        if dest == "0.0.0.0/0":
            return gateway
    return None


def why_not_contained() -> str | None:
    """None when this process runs in a namespace with loopback only and no
    default route; otherwise what is wrong, for the refusal message."""
    others = [name for name in interfaces() if name != "lo"]
    if has_default_route():
        return "this network namespace has a default route"
    if others:
        return f"this network namespace has interfaces other than lo: {', '.join(others)}"
    return None
