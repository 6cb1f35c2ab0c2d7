"""The tiny Ray Serve application the rig's local Ray cluster serves.

It stands in for the users' inference service: every request gets a small
JSON answer naming the node whose replica computed it, so a test can tell
which part of the cluster served it. The Serve controller imports it by path
(:data:`IMPORT_PATH`, an application builder), as KubeRay's RayService does;
the rig puts the repository on every node's ``PYTHONPATH``.

Ray is imported only inside :func:`build_app`, i.e. in the cluster's own
processes: the test process reads the names below without paying for
``import ray`` (over a second and ~120 MB).
"""

from __future__ import annotations

import os
from typing import Any

APP_NAME = "rig"
IMPORT_PATH = "tests.rig.ray_serve_app:build_app"
DEPLOYMENT_NAME = "Infer"
RESULT = "ok"
# Replicas ask for this custom resource, which only worker nodes offer, so the
# replicas live on workers and keep answering while the head is down (KubeRay
# set-ups give the head no CPUs for the same reason).
WORKER_RESOURCE = "rig_worker"


def build_app(args: dict[str, Any]) -> Any:
    """Serve's application builder: returns the bound ``Infer`` deployment.

    One replica per node at most (the rig sets ``num_replicas`` to the number
    of workers): Serve runs proxies only on the head and on nodes that hold a
    replica, so this is what puts a proxy on every worker.
    """
    import ray
    from ray import serve

    class Infer:
        """Answers ``{"result": "ok", "node": <node ip>, ...}`` to any request."""

        def __init__(self) -> None:
            self._node_ip = ray.util.get_node_ip_address()
            self._node_id = ray.get_runtime_context().get_node_id()

        async def __call__(self, request: Any) -> dict[str, Any]:
            return {
                "result": RESULT,
                "path": str(request.url.path),
                "node": self._node_ip,
                "node_id": self._node_id,
                "pid": os.getpid(),
            }

    deployment = serve.deployment(
        name=DEPLOYMENT_NAME,
        num_replicas=int(args.get("num_replicas", 3)),
        max_replicas_per_node=1,
        ray_actor_options={"num_cpus": 0, "resources": {WORKER_RESOURCE: 0.01}},
        health_check_period_s=2,
    )(Infer)
    return deployment.bind()
