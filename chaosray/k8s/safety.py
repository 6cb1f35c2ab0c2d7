"""The safety settings every destructive action honours, in one place.

Configuration keys (every experiment declares them, read from the
environment variables named below when set, else empty):

- ``chaosray_allowed_contexts`` (``CHAOSRAY_ALLOWED_CONTEXTS``): a list or a
  comma-separated string of kube contexts; destructive actions refuse to run
  in any other;
- ``chaosray_dry_run`` (``CHAOSRAY_DRY_RUN``): true, yes, on or 1 makes every
  action report what it would do and change nothing;
- ``chaosray_max_pods_per_action`` (``CHAOSRAY_MAX_PODS_PER_ACTION``): the most
  pods one action may delete or evict (default 10).

The keys a node cordoned by chaosray carries also live here, so that the
cordon, the uncordon and the probes agree on them.
"""

from __future__ import annotations

from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from chaosray.k8s.client import KubeTarget, resolve_target

__all__: list[str] = []  # helpers, not activities

ALLOWED_CONTEXTS_KEY = "chaosray_allowed_contexts"
DRY_RUN_KEY = "chaosray_dry_run"
MAX_PODS_KEY = "chaosray_max_pods_per_action"
SAFETY_KEYS = {
    ALLOWED_CONTEXTS_KEY: "CHAOSRAY_ALLOWED_CONTEXTS",
    DRY_RUN_KEY: "CHAOSRAY_DRY_RUN",
    MAX_PODS_KEY: "CHAOSRAY_MAX_PODS_PER_ACTION",
}
DEFAULT_MAX_PODS = 10

CORDON_LABEL = "chaosray.io/cordoned"
CORDON_ANNOTATION = "chaosray.io/cordoned-at"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off", "none"}


def parse_bool(value: Any, name: str) -> bool:
    """A boolean from a setting that may come as a string (``--var``, env)."""
    if isinstance(value, bool) or value is None:
        return bool(value)
    if isinstance(value, int | float):
        return value != 0
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ActivityFailed(f"{name} must be true or false, got {value!r}")


def is_dry_run(dry_run: Any, configuration: Configuration) -> bool:
    """Whether an action only reports what it would do: its own ``dry_run``
    argument or the configuration's ``chaosray_dry_run``."""
    return parse_bool(dry_run, "dry_run") or parse_bool(
        (configuration or {}).get(DRY_RUN_KEY), DRY_RUN_KEY
    )


def pod_limit(explicit: Any, configuration: Configuration) -> int:
    """How many pods one action may touch: ``max_pods``, else the
    configuration's ``chaosray_max_pods_per_action``, else 10."""
    value = explicit or (configuration or {}).get(MAX_PODS_KEY) or DEFAULT_MAX_PODS
    try:
        parsed = int(value)
    except (TypeError, ValueError):
        raise ActivityFailed(f"max_pods must be a whole number, got {value!r}") from None
    if parsed < 1:
        raise ActivityFailed(f"max_pods must be at least 1, got {parsed}")
    return parsed


def allowed_contexts(configuration: Configuration) -> list[str]:
    """The allow-list of kube contexts, empty when none is set."""
    allowed = (configuration or {}).get(ALLOWED_CONTEXTS_KEY)
    if not allowed:
        return []
    if isinstance(allowed, str):
        return [c.strip() for c in allowed.split(",") if c.strip()]
    return [str(c) for c in allowed]


def require_allowed_context(
    configuration: Configuration, secrets: Secrets, action: str
) -> KubeTarget:
    """Refuse a destructive ``action`` outside the contexts listed in the
    configuration key ``chaosray_allowed_contexts`` (when it is set)."""
    target = resolve_target(secrets)
    allowed = allowed_contexts(configuration)
    if allowed and target.context not in allowed:
        raise ActivityFailed(
            f"refusing to {action}: Kubernetes context {target.context!r} is not in "
            f"{ALLOWED_CONTEXTS_KEY} ({', '.join(allowed)})"
        )
    return target
