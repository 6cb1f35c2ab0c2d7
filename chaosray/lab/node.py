"""One real node: its own containerd (root, state, sockets, runc root, NRI
off) and its own kubelet (root-dir, cgroupRoot, podLogsDir, node IP), both
in the lab's network namespace.

Kubelets sharing a containerd, a cgroupRoot or a podLogsDir kill or clean
each other's pods (kubelet_pods.go "orphaned pod", cleanupOrphanedPodCgroups,
kuberuntime_gc.go evictPodLogsDirectories), hence one of each per node.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from chaosray.lab import layout
from chaosray.lab.host import (
    LabError,
    log_tail,
    make_cgroup,
    pid_of,
    run,
    spawn,
    stop,
    write_config,
)

__all__: list[str] = []


def containerd_config(node: layout.Node, bins: dict[str, str], pause_image: str) -> str:
    d = node.dir
    return f"""\
version = 3
root = "{d}/containerd/root"
state = "{d}/containerd/state"
disabled_plugins = ["io.containerd.nri.v1.nri"]

[grpc]
  address = "{node.containerd_socket}"
[ttrpc]
  address = "{node.containerd_socket}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""

[plugins.'io.containerd.internal.v1.opt']
  path = "{d}/containerd/opt"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "{pause_image}"
  [plugins.'io.containerd.cri.v1.images'.registry]
    # Any pull goes to a closed loopback port, never to a registry.
    config_path = "{d}/certs.d"

[plugins.'io.containerd.cri.v1.runtime']
  # The machine withholds CAP_SYS_RESOURCE: runc cannot lower oom_score_adj
  # below containerd's own (the pause container's -998 would fail).
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["{bins["CNI_BIN_DIR"]}"]
    conf_dir = "{d}/cni"
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
      Root = "{d}/runc"
      SystemdCgroup = false

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "{node.address}"
  stream_server_port = "0"
"""


def cni_config(node: layout.Node) -> dict[str, object]:
    start, end = node.pod_range
    return {
        "cniVersion": "1.0.0",
        "name": "lab",
        "plugins": [
            {
                "type": "bridge",
                "bridge": layout.BRIDGE,
                "isGateway": True,
                "ipMasq": False,  # nothing to masquerade to: there is no way out
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(node.dir / "cni-ipam"),
                    "ranges": [
                        [
                            {
                                "subnet": layout.POD_CIDR,
                                "rangeStart": start,
                                "rangeEnd": end,
                                "gateway": layout.BRIDGE_ADDRESS,
                            }
                        ]
                    ],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def kubelet_config(node: layout.Node) -> dict[str, object]:
    d = node.dir
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": node.address,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": node.address,
        "healthzPort": 10248,
        # The API server dials kubelets with no client certificate (kwokctl
        # sets none); the kubelet port is only reachable inside the lab.
        "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
        "authorization": {"mode": "AlwaysAllow"},
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": node.cgroup,
        "failCgroupV1": False,  # the machine mounts cgroup v1 hierarchies
        "containerRuntimeEndpoint": f"unix://{node.containerd_socket}",
        "podLogsDir": str(d / "pod-logs"),
        "clusterDNS": [layout.DNS_ADDRESS],
        "clusterDomain": "cluster.local",
        "resolvConf": str(node.lab.dir / "resolv.conf"),
        # Every kubelet sees the whole machine: leave each a share of it.
        "systemReserved": {"memory": "18Gi"},
        # kind's disk settings: a shared disk at any fill level evicts nothing
        # and collects no image (the images cannot be pulled again).
        "imageGCHighThresholdPercent": 100,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "0%",
            "nodefs.inodesFree": "0%",
            "imagefs.available": "0%",
        },
        "maxOpenFiles": 20000,  # the hard limit here; no CAP_SYS_RESOURCE to raise it
        "failSwapOn": False,
        "serializeImagePulls": False,
        "volumePluginDir": str(d / "volume-plugins"),
        "staticPodPath": "",
        "containerLogMaxSize": "10Mi",
    }


def prepare(node: layout.Node, bins: dict[str, str], pause_image: str) -> None:
    d = node.dir
    for sub in (
        "containerd",
        "cni",
        "cni-ipam",
        "pod-logs",
        "kubelet",
        "runc",
        "certs.d/_default",
        "volume-plugins",
    ):
        (d / sub).mkdir(parents=True, exist_ok=True)
    write_config(d / "containerd.toml", containerd_config(node, bins, pause_image))
    (d / "certs.d" / "_default" / "hosts.toml").write_text(
        'server = "http://127.0.0.1:1"\n[host."http://127.0.0.1:1"]\n  capabilities = []\n'
    )
    write_config(d / "cni" / "10-lab.conflist", json.dumps(cni_config(node), indent=2))
    write_config(d / "kubelet.yaml", yaml.safe_dump(kubelet_config(node), sort_keys=False))
    make_cgroup(node.cgroup)


def ctr(node: layout.Node, bins: dict[str, str], *args: str, timeout: float = 300) -> str:
    return run(
        [bins["CTR"], "--address", str(node.containerd_socket), "-n", "k8s.io", *args],
        timeout=timeout,
    )


def start_containerd(node: layout.Node, bins: dict[str, str]) -> None:
    lab = node.lab
    shim_dir = str(Path(bins["CONTAINERD_SHIM"]).parent)
    spawn(
        f"containerd-{node.index}",
        [bins["CONTAINERD"], "--config", str(node.dir / "containerd.toml")],
        pids=lab.pids,
        logs=lab.logs,
        netns=lab.netns,
        env={"PATH": f"{shim_dir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
    )


def containerd_ready(node: layout.Node, bins: dict[str, str]) -> bool:
    if not pid_of(node.lab.pids, f"containerd-{node.index}"):
        tail = log_tail(node.lab.logs, f"containerd-{node.index}")
        raise LabError(f"containerd of {node.name} exited:\n{tail}")
    try:
        ctr(node, bins, "version", timeout=10)
    except LabError:
        return False
    return True


def images(node: layout.Node, bins: dict[str, str]) -> set[str]:
    listing = ctr(node, bins, "images", "list", "-q", timeout=30)
    return {line.strip() for line in listing.splitlines() if line.strip()}


def import_image(node: layout.Node, bins: dict[str, str], name: str, archive: str) -> None:
    if name in images(node, bins):
        return
    if not Path(archive).is_file():
        raise LabError(f"image archive {archive} is missing: run `make lab-image`")
    ctr(
        node, bins, "images", "import", "--local", "--discard-unpacked-layers", archive, timeout=600
    )
    if name not in images(node, bins):
        raise LabError(f"{archive} did not give image {name} on {node.name}")


def start_kubelet(node: layout.Node, bins: dict[str, str]) -> None:
    lab = node.lab
    spawn(
        f"kubelet-{node.index}",
        [
            bins["KUBELET"],
            "--config",
            str(node.dir / "kubelet.yaml"),
            "--kubeconfig",
            str(lab.internal_kubeconfig),
            "--root-dir",
            str(node.dir / "kubelet"),
            # Its default is /var/lib/kubelet/pki whatever the root-dir.
            "--cert-dir",
            str(node.dir / "kubelet" / "pki"),
            "--hostname-override",
            node.name,
            "--node-ip",
            node.address,
            "--node-labels",
            f"topology.kubernetes.io/zone={node.zone},chaosray.io/lab=true",
        ],
        pids=lab.pids,
        logs=lab.logs,
        netns=lab.netns,
    )


def stop_node(node: layout.Node) -> None:
    stop(node.lab.pids, f"kubelet-{node.index}")
    stop(node.lab.pids, f"containerd-{node.index}")
