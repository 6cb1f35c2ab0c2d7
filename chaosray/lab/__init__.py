"""The lab: a real Kubernetes on one machine where the pods really run.

``chaosray lab up | down | status`` (root only). The control plane is the
test cluster's (etcd, kube-apiserver, kube-controller-manager, kube-scheduler
started by kwokctl's binary runtime, with no kwok-controller), plus four real
nodes: a kubelet and a containerd (with runc) each, on a CNI bridge; one
kube-proxy, CoreDNS, the KubeRay operator and a LoadBalancer address
allocator. The data plane lives in a network namespace of its own with no
default route (see docs/lab.md). Every binary comes from the cache that
``scripts/cluster-binaries.sh`` and ``scripts/lab-image.sh`` fill.
"""

__all__: list[str] = []  # not an activity module
