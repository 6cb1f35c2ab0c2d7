"""The configuration keys chaosray code reads from the ``configuration``
mapping itself rather than through a ``${key}`` argument: Chaos Toolkit
passes an activity or a control only the keys the experiment declares, so an
experiment that calls one of these must declare what it reads, or the
setting (a var file, ``--var``, the environment variable) is silently lost.

Keys are ``"module:function"`` for an activity and ``"module"`` for a
control. ``tests/test_experiment_sources.py`` checks this table against the
code (``configuration.get(...)`` and the calls that pass ``configuration``
on); change it when that test says so.
"""

from __future__ import annotations

# chaosray/k8s/safety.py
ALLOWED_CONTEXTS = "chaosray_allowed_contexts"  # require_allowed_context
DRY_RUN = "chaosray_dry_run"  # is_dry_run
MAX_PODS = "chaosray_max_pods_per_action"  # pod_limit

CONFIGURATION_READS: dict[str, tuple[str, ...]] = {
    # Activities.
    "chaosray.k8s.actions:delete_pod": (DRY_RUN, ALLOWED_CONTEXTS),
    "chaosray.k8s.actions:delete_pods_sequentially": (DRY_RUN, ALLOWED_CONTEXTS, MAX_PODS),
    "chaosray.k8s.actions:cordon_node": (DRY_RUN, ALLOWED_CONTEXTS),
    "chaosray.k8s.actions:uncordon_node": (DRY_RUN, ALLOWED_CONTEXTS),
    "chaosray.k8s.actions:uncordon_all": (DRY_RUN, ALLOWED_CONTEXTS),
    # drain_node cordons the node (cordon_node) first.
    "chaosray.k8s.actions:drain_node": (DRY_RUN, ALLOWED_CONTEXTS, MAX_PODS),
    # Through delete_pod.
    "chaosray.ray.actions:delete_ray_head": (DRY_RUN, ALLOWED_CONTEXTS),
    "chaosray.ray.actions:delete_ray_worker": (DRY_RUN, ALLOWED_CONTEXTS),
    "chaosray.redis.actions:delete_redis_pod": (DRY_RUN, ALLOWED_CONTEXTS),
    "chaosray.load.actions:delete_k6_leftovers": (DRY_RUN, ALLOWED_CONTEXTS),
    "chaosray.nlb.probes:aws_target_health": ("aws_region",),
    # Controls. Both hand the configuration to chaosray.interrupts.hook: on a
    # second Ctrl-C it uncordons with uncordon_all and that configuration.
    "chaosray.guard": (DRY_RUN, ALLOWED_CONTEXTS),
    "chaosray.load.control": (DRY_RUN, ALLOWED_CONTEXTS),
}
