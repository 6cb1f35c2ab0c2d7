"""A test host in a network namespace of our own, and TCP relays.

The Kubernetes API server refuses to proxy to loopback addresses, so a test
that reaches a local server *through the API server's service proxy* needs
an address that is neither loopback nor anywhere else: a veth pair into a
network namespace this test creates (198.18.0.0/15, the benchmarking range),
torn down afterwards. Traffic never leaves the machine.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.rig.procs import ComponentFailed, ManagedProcess, port_open

RELAY_SCRIPT = Path(__file__).with_name("tcp_relay.py")
_subnets = itertools.count(1)


def _ip(*args: str, netns: str | None = None) -> None:
    argv = ["ip", *(["netns", "exec", netns, "ip"] if netns else []), *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise ComponentFailed(f"{' '.join(argv)} failed: {done.stderr.strip()}")


@dataclass
class NetnsHost:
    """A network namespace joined to the host by a veth pair."""

    name: str
    host_ip: str  # our end, in the root namespace
    ns_ip: str  # the test host's address
    relays: list[ManagedProcess] = field(default_factory=list)

    def relay(
        self, work_dir: Path, listen_port: int, target: tuple[str, int], inside: bool
    ) -> None:
        """Forward TCP from ``listen_port`` (on the test host if ``inside``,
        else on our end of the link) to ``target``."""
        listen_ip = self.ns_ip if inside else self.host_ip
        argv = [
            sys.executable,
            str(RELAY_SCRIPT),
            listen_ip,
            str(listen_port),
            target[0],
            str(target[1]),
        ]
        if inside:
            argv = ["ip", "netns", "exec", self.name, *argv]
        proc = ManagedProcess(f"relay-{listen_ip}-{listen_port}", argv, work_dir)
        self.relays.append(proc)
        if inside:
            proc.wait_ready(lambda: "listening" in proc.output(), 15, "the relay to listen")
        else:
            proc.wait_ready(lambda: port_open(listen_ip, listen_port), 15, "the relay to listen")

    def stop(self) -> None:
        for relay in self.relays:
            relay.stop()
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=30)
        subprocess.run(["ip", "link", "del", f"{self.name}h"], capture_output=True, timeout=30)


def start_netns_host() -> NetnsHost:
    if os.geteuid() != 0:
        raise ComponentFailed("network namespaces need root (CI and the dev machines run as root)")
    index = next(_subnets) + (os.getpid() % 50) * 4
    name = f"crt{os.getpid() % 10000}x{index}"[:12]
    host_ip, ns_ip = f"198.18.{index}.1", f"198.18.{index}.2"
    _ip("netns", "add", name)
    host = NetnsHost(name, host_ip, ns_ip)
    try:
        _ip("link", "add", f"{name}h", "type", "veth", "peer", "name", f"{name}n")
        _ip("link", "set", f"{name}n", "netns", name)
        _ip("addr", "add", f"{host_ip}/30", "dev", f"{name}h")
        _ip("link", "set", f"{name}h", "up")
        _ip("addr", "add", f"{ns_ip}/30", "dev", f"{name}n", netns=name)
        _ip("link", "set", f"{name}n", "up", netns=name)
        _ip("link", "set", "lo", "up", netns=name)
    except BaseException:
        host.stop()
        raise
    return host
