"""Where the lab's parts live: names, addresses and paths, in one place.

Everything is in 198.19.0.0/16 (RFC 2544 benchmarking space, never routed on
the Internet), reached from the host through one veth:

- 198.19.1.1/30 host end of the veth, 198.19.1.2/30 the lab's end;
- 198.19.0.10 CoreDNS, 198.19.0.11-14 the nodes (on the namespace's ``lo``);
- 198.19.64.0/18 pods on the bridge ``cni0`` (gateway .64.1), node N
  allocating from 198.19.(64+N).0/24;
- 198.19.128.0/20 Service ClusterIPs, 198.19.200.0/24 LoadBalancer addresses.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__: list[str] = []

LAB_RANGE = "198.19.0.0/16"
HOST_VETH_ADDRESS = "198.19.1.1"
LAB_VETH_ADDRESS = "198.19.1.2"
VETH_PREFIX = 30
DNS_ADDRESS = "198.19.0.10"
BRIDGE = "cni0"
BRIDGE_ADDRESS = "198.19.64.1"
POD_CIDR = "198.19.64.0/18"
SERVICE_CIDR = "198.19.128.0/20"
LB_POOL = "198.19.200.0/24"
NODE_COUNT = 4
# Three zones, like a small EKS node group (lab-node-4 shares zone a).
ZONES = ("lab-a", "lab-b", "lab-c", "lab-a")
# The machine-wide sysctls the kubelet writes at start
# (pkg/kubelet/cm/container_manager_linux.go setupKernelTunables, v1.34.12).
KUBELET_SYSCTLS = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
)
# The kubelet's device manager puts its socket here whatever its --root-dir
# (k8s.io/kubelet pkg/apis/deviceplugin/v1beta1 DevicePluginPath).
KUBELET_SHARED_DIR = Path("/var/lib/kubelet")
CACHE = Path(os.environ.get("CHAOSRAY_CACHE", Path.home() / ".cache" / "chaosray"))
CLUSTER_BIN_ENV = CACHE / "cluster-bin.env"
LAB_BIN_ENV = CACHE / "lab-bin.env"
LAB_IMAGES_ENV = CACHE / "lab-images.env"


@dataclass(frozen=True)
class Node:
    index: int  # 1..NODE_COUNT
    lab: Lab

    @property
    def name(self) -> str:
        return f"lab-node-{self.index}"

    @property
    def address(self) -> str:
        return f"198.19.0.{10 + self.index}"

    @property
    def zone(self) -> str:
        return ZONES[self.index - 1]

    @property
    def pod_range(self) -> tuple[str, str]:
        third = 64 + self.index
        return f"198.19.{third}.2", f"198.19.{third}.254"

    @property
    def dir(self) -> Path:
        return self.lab.dir / f"node{self.index}"

    @property
    def containerd_socket(self) -> Path:
        return self.dir / "containerd.sock"

    @property
    def cgroup(self) -> str:
        """The kubelet's cgroupRoot, relative to every hierarchy's root."""
        return f"{self.lab.cgroup_parent}/node{self.index}"


@dataclass(frozen=True)
class Lab:
    """One lab on this machine, named (``chaoslab`` by default)."""

    name: str = "chaoslab"
    base_dir: Path = Path("/var/lib/chaosray")

    @property
    def dir(self) -> Path:
        return self.base_dir / self.name

    @property
    def netns(self) -> Path:
        return Path("/run/netns") / self.name

    @property
    def host_veth(self) -> str:
        return f"{self.name[:12]}-h"

    @property
    def lab_veth(self) -> str:
        return f"{self.name[:12]}-l"

    @property
    def nodes(self) -> list[Node]:
        return [Node(i, self) for i in range(1, NODE_COUNT + 1)]

    @property
    def cgroup_parent(self) -> str:
        """Under the caller's memory cgroup (so the pods stay inside whatever
        limit the machine gives us), the same path in every hierarchy."""
        return f"{own_memory_cgroup().rstrip('/')}/{self.name}"

    @property
    def kwok_dir(self) -> Path:
        return self.dir / "kwok"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.kwok_dir / "clusters" / self.name / "kubeconfig.yaml"

    @property
    def internal_kubeconfig(self) -> Path:
        """The admin kubeconfig with the API server's veth address, for the
        components inside the lab's network namespace."""
        return self.dir / "internal.kubeconfig"

    @property
    def chaosray_kubeconfig(self) -> Path:
        """The bearer-token kubeconfig of deploy/base/40-chaosray-rbac.yaml."""
        return self.dir / "chaosray.kubeconfig"

    @property
    def sysctl_record(self) -> Path:
        return self.dir / "sysctls.json"

    @property
    def logs(self) -> Path:
        return self.dir / "logs"

    @property
    def pids(self) -> Path:
        return self.dir / "pids"


def own_memory_cgroup() -> str:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return path
    return "/"


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines (the build scripts' output files)."""
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            found[key.strip()] = value.strip()
    return found
