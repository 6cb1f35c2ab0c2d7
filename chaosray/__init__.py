"""chaostoolkit-ray: chaos experiments for Ray Serve on Kubernetes (KubeRay)."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "discover"]

# The modules whose ``__all__`` lists activities, in the order `chaos discover`
# shows them. A module is listed once it has activities: no empty placeholders.
ACTIVITY_MODULES: list[str] = [
    "chaosray.k8s.probes",
    "chaosray.k8s.actions",
    "chaosray.load.probes",
    "chaosray.load.actions",
    "chaosray.nlb.probes",
    "chaosray.ray.probes",
    "chaosray.ray.actions",
    "chaosray.redis.probes",
    "chaosray.redis.actions",
]


def discover(discover_system: bool = True) -> dict[str, Any]:
    """Describe this extension and its activities for `chaos discover`."""
    from chaoslib.discovery.discover import (
        discover_actions,
        discover_probes,
        initialize_discovery_result,
    )

    discovery: dict[str, Any] = initialize_discovery_result("chaostoolkit-ray", __version__, "ray")
    for module in ACTIVITY_MODULES:
        if module.endswith(".probes"):
            discovery["activities"].extend(discover_probes(module))
        else:
            discovery["activities"].extend(discover_actions(module))
    return discovery
