"""Redis probes: the StatefulSet behind Ray's GCS fault tolerance, roles and
replication, Sentinel's view, and how long a replacement takes to rejoin.

Two ways to reach Redis:
- ``exec`` (default): ``redis-cli`` run inside each pod through the Kubernetes
  exec API (``kubectl exec``) in container ``redis`` (the reference
  deployment's; pods of deploy/base also run a Sentinel container), so
  nothing but a kubeconfig is needed. A
  password, if any, is taken from the container's own ``REDIS_PASSWORD``
  environment variable inside the pod: it never passes through chaosray.
- ``direct``: a connection with redis-py (the ``redis`` extra) to
  ``addresses`` (pod name -> host:port), for runners that can reach Redis;
  the password comes from the experiment's secrets (key ``redis_password``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream

from chaosray.contract import RECOVERIES_KEY, RecoveryTimeout, recovery
from chaosray.k8s import placement
from chaosray.k8s.client import core_v1, core_v1_for_streams
from chaosray.k8s.pods import explain, is_ready, require_pods
from chaosray.k8s.probes import statefulset_ready, wait_for_ready_pods
from chaosray.metrics import to_epoch

__all__ = [
    "redis_primary_node",
    "redis_replication_status",
    "redis_statefulset_health",
    "wait_for_redis_rejoin",
]

logger = logging.getLogger("chaostoolkit")

EXEC_TIMEOUT_S = 15


class RedisUnreachable(ActivityFailed):  # type: ignore[misc]
    """One Redis did not answer: a finding about the system, reported as a
    problem of that pod rather than a failure of the probe."""


def parse_info(text: str) -> dict[str, str]:
    """``INFO`` output (``key:value`` lines, ``#`` sections) as a dict."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and ":" in line:
            key, value = line.split(":", 1)
            out[key] = value
    return out


def _exec(core: Any, pod: str, namespace: str, container: str | None, command: str) -> str:
    kwargs: dict[str, Any] = {
        "command": ["sh", "-c", command],
        "stderr": True,
        "stdout": True,
        "stdin": False,
        "tty": False,
        "_request_timeout": EXEC_TIMEOUT_S,
    }
    if container:
        kwargs["container"] = container
    try:
        return str(stream(core.connect_get_namespaced_pod_exec, pod, namespace, **kwargs))
    except ApiException as exc:
        raise explain(exc, f"exec redis-cli in pod {namespace}/{pod}") from None
    except Exception as exc:  # websocket errors: the pod has no shell, exec refused...
        raise RedisUnreachable(f"exec redis-cli in pod {namespace}/{pod} failed: {exc}") from None


def _cli(port: int, args: str) -> str:
    # Only with a password: an empty REDISCLI_AUTH still sends AUTH, and a
    # server without a password answers with an error that lands in the output.
    return (
        'if [ -n "${REDIS_PASSWORD:-}" ]; then export REDISCLI_AUTH="$REDIS_PASSWORD"; fi; '
        f"redis-cli --no-auth-warning -p {port} {args}"
    )


def _reader(
    mode: str,
    namespace: str,
    container: str | None,
    addresses: dict[str, str] | None,
    secrets: Secrets,
) -> Callable[[str, int, str], str]:
    """A function (pod, port, redis command) -> raw answer text."""
    if mode == "exec":
        core = core_v1_for_streams(secrets)
        return lambda pod, port, command: _exec(
            core, pod, namespace, container, _cli(port, command)
        )
    if mode != "direct":
        raise ActivityFailed(f"mode must be 'exec' or 'direct', got {mode!r}")
    try:
        import redis
    except ImportError:
        raise ActivityFailed(
            "mode 'direct' needs redis-py: pip install 'chaostoolkit-ray[redis]'"
        ) from None
    scoped = dict(secrets or {})
    where = dict(addresses or {})

    def direct(pod: str, port: int, command: str) -> str:
        # An address's own port wins; a bare host uses `port`.
        target = where.get(pod)
        if not target:
            raise ActivityFailed(f"no address given for pod {pod!r} (addresses: {sorted(where)})")
        host, sep, own_port = target.rpartition(":")
        if not sep:
            host, own_port = target, ""
        sentinel = command.startswith("SENTINEL")
        client = redis.Redis(
            host=host,
            port=int(own_port) if own_port else port,
            password=scoped.get("redis_sentinel_password" if sentinel else "redis_password"),
            socket_timeout=5,
            socket_connect_timeout=5,
            decode_responses=True,
        )
        try:
            answer = client.execute_command(*command.split())
        except redis.AuthenticationError:
            raise ActivityFailed(
                f"Redis at {target} refused the password (secret redis_password)"
            ) from None
        except redis.RedisError as exc:
            raise RedisUnreachable(f"Redis at {target}: {exc}") from None
        finally:
            client.close()
        if isinstance(answer, dict):
            return "\n".join(f"{k}:{v}" for k, v in answer.items())
        if isinstance(answer, list | tuple):
            return "\n".join(str(a) for a in answer)
        return str(answer)

    return direct


def redis_replication_status(
    namespace: str = "default",
    label_selector: str = "app=redis",
    mode: str = "exec",
    port: int = 6379,
    container: str | None = "redis",
    addresses: dict[str, str] | None = None,
    sentinel_port: int | None = None,
    sentinel_master: str = "mymaster",
    sentinel_addresses: dict[str, str] | None = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Roles and replication of the Redis pods of `label_selector`: exactly
    one primary, every replica linked to it (master_link_status up), and, when
    `sentinel_port` is given, every Sentinel naming the same primary.

    `mode` is `exec` (redis-cli in each Ready pod through the Kubernetes exec
    API, in the pod's `container`, default `redis` as in deploy/base; the
    Sentinel beside it shares the pod's network) or `direct` (redis-py to
    `addresses`: pod -> host:port; Sentinels at `sentinel_addresses`, or at the
    pods' hosts on `sentinel_port`).

    Returns `healthy`, `primary` (pod), `primaries` (all pods claiming the
    role), `nodes` (Ready pod -> its node), `replicas` (pod -> link status
    and master), `connected_replicas` (as the primary counts them),
    `sentinels` (pod -> primary address they name), `sentinels_agree`,
    `problems` (what is wrong, in words).
    """
    core = core_v1(secrets)
    pods, _ = require_pods(core, namespace, label_selector)
    ready = sorted((p for p in pods if is_ready(p)), key=lambda p: p.metadata.name)
    if not ready:
        raise ActivityFailed(f"no Ready Redis pod matches {label_selector!r} in {namespace!r}")
    ask = _reader(mode, namespace, container, addresses, secrets)
    roles: dict[str, dict[str, str]] = {}
    problems: list[str] = []
    for pod in ready:
        name = pod.metadata.name
        try:
            info = parse_info(ask(name, port, "INFO replication"))
        except RedisUnreachable as exc:
            problems.append(f"{name}: {exc}")
            continue
        if "role" not in info:
            problems.append(f"{name}: no INFO answer ({next(iter(info.values()), 'empty')})")
            continue
        roles[name] = info
    primaries = sorted(n for n, i in roles.items() if i["role"] == "master")
    replicas = {
        n: {
            "link": i.get("master_link_status"),
            "master": f"{i.get('master_host')}:{i.get('master_port')}",
        }
        for n, i in roles.items()
        if i["role"] == "slave"
    }
    if len(primaries) != 1:
        problems.append(
            f"{len(primaries)} primaries ({', '.join(primaries) or 'none'}); expected 1"
        )
    for name, state in replicas.items():
        if state["link"] != "up":
            problems.append(f"{name}: replication link {state['link']} to {state['master']}")
    connected = int(roles[primaries[0]].get("connected_slaves", 0)) if len(primaries) == 1 else None
    if connected is not None and connected != len(replicas):
        problems.append(f"the primary counts {connected} replicas, {len(replicas)} report to one")
    sentinels: dict[str, str] = {}
    if sentinel_port or sentinel_addresses:
        hosts_only = {k: v.rpartition(":")[0] or v for k, v in (addresses or {}).items()}
        sentinel_ask = _reader(
            mode, namespace, container, sentinel_addresses or hosts_only, secrets
        )
        for name in sentinel_addresses or [p.metadata.name for p in ready]:
            command = f"SENTINEL get-master-addr-by-name {sentinel_master}"
            try:
                answer = sentinel_ask(name, sentinel_port or 26379, command)
            except RedisUnreachable as exc:
                problems.append(f"Sentinel {name}: {exc}")
                continue
            sentinels[name] = ":".join(answer.split())
        if len(set(sentinels.values())) > 1:
            problems.append(f"Sentinels disagree on the primary: {sentinels}")
    return {
        "healthy": not problems,
        "primary": primaries[0] if len(primaries) == 1 else None,
        "primaries": primaries,
        "nodes": {p.metadata.name: p.spec.node_name for p in ready},
        "replicas": replicas,
        "connected_replicas": connected,
        "sentinels": sentinels,
        "sentinels_agree": len(set(sentinels.values())) <= 1,
        "problems": problems,
    }


def single_primary(
    refusal: str,
    namespace: str,
    label_selector: str,
    mode: str,
    port: int,
    container: str | None,
    addresses: dict[str, str] | None,
    secrets: Secrets,
) -> tuple[dict[str, Any], str]:
    """The replication status and its one primary; ``ActivityFailed``
    saying ``refusal`` and what is wrong when there is not exactly one."""
    status = redis_replication_status(
        namespace, label_selector, mode, port, container, addresses, secrets=secrets
    )
    if status["primary"] is None:
        raise ActivityFailed(
            f"no single Redis primary among {label_selector!r} in {namespace!r} ("
            + "; ".join(status["problems"])
            + f"): {refusal}"
        )
    return status, str(status["primary"])


def redis_primary_node(
    namespace: str = "default",
    label_selector: str = "app=redis",
    mode: str = "exec",
    port: int = 6379,
    container: str | None = "redis",
    addresses: dict[str, str] | None = None,
    spare_in_drains: bool = True,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """The Redis primary, as Redis itself reports it (`INFO replication`),
    and its node. With `spare_in_drains` (the default) every later drain
    choice of this experiment (`drain_node`, `node_running_pod`,
    `spare_node_for_drain`) spares that node: draining it would take the
    primary along with the worker, adding a Sentinel failover and a GCS
    restart to the drain the scenario measures. Place it before them.

    Fails when the pods do not have exactly one primary. `mode`, `port`,
    `container`, `addresses`: as for `redis_replication_status`; `mode`
    `none` (a cluster without Redis, or one chaosray may not reach) spares
    nothing and says so in the log. Returns `primary` (pod), `node` and
    `spared_in_drains`."""
    if mode == "none":
        placement.spare_in_drains("redis primary", None)
        logger.warning("redis_mode is none: drains do not spare the Redis primary's node")
        return {"primary": None, "node": None, "spared_in_drains": False}
    status, primary = single_primary(
        "a drain cannot be told which node to spare",
        namespace, label_selector, mode, port, container, addresses, secrets,
    )  # fmt: skip
    node = status["nodes"].get(primary)
    if node is None:
        raise ActivityFailed(f"the Redis primary {primary} is not scheduled on any node")
    if spare_in_drains:
        placement.spare_in_drains("redis primary", node, f"runs the Redis primary {primary}")
        logger.info(f"Drains spare {node}: it runs the Redis primary {primary}")
    return {"primary": primary, "node": node, "spared_in_drains": spare_in_drains}


def redis_statefulset_health(
    name: str = "redis",
    namespace: str = "default",
    label_selector: str = "app=redis",
    min_ready: int | None = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """The Redis StatefulSet `name` and its pods: `ready` (all replicas Ready,
    or at least `min_ready` when given, e.g. 2 while one pod is replaced),
    `replicas`, `ready_replicas`, `ready_pods` (names)."""
    sts = statefulset_ready(name, namespace, configuration, secrets)
    pods, _ = require_pods(core_v1(secrets), namespace, label_selector)
    ready_pods = sorted(p.metadata.name for p in pods if is_ready(p))
    wanted = sts["replicas"] if min_ready is None else min_ready
    return {
        "ready": len(ready_pods) >= wanted and (min_ready is not None or sts["ready"]),
        "replicas": sts["replicas"],
        "ready_replicas": sts["ready_replicas"],
        "ready_pods": ready_pods,
    }


# The last Redis pod deleted by role, per (namespace, selector): what
# wait_for_redis_rejoin compares the primary after with (activities of one
# experiment share this process).
_deleted_roles: dict[tuple[str, str], dict[str, str]] = {}


def record_deleted_role(
    namespace: str, label_selector: str, pod: str, role: str, primary_before: str
) -> None:
    _deleted_roles[(namespace, label_selector)] = {
        "pod": pod,
        "role": role,
        "primary_before": primary_before,
    }


def wait_for_redis_rejoin(
    namespace: str = "default",
    label_selector: str = "app=redis",
    count: int = 3,
    timeout: float = 120.0,
    mode: str = "exec",
    port: int = 6379,
    container: str | None = "redis",
    addresses: dict[str, str] | None = None,
    since: str | float | None = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Wait until `count` Redis pods are Ready again and replication is whole
    (one primary, every replica linked): the replacement has rejoined. Both
    must happen at most `timeout` seconds (default 120) **after the
    deletion**: `since` (epoch seconds or RFC 3339) when given, else the last
    pod a chaosray action deleted here, else the start of the wait. Run it
    in the background right after the deletion, so `rejoin_s` is measured
    while it happens (replication is checked every 0.5 s).

    Returns `recovery_s` (deletion to Ready, from Kubernetes' timestamps),
    `rejoin_s` (from the deletion until replication was seen whole),
    `ready_wait` (the pod wait's details) and `replication` (the final status);
    after `delete_redis_pod`, also `deleted` (pod and role) and `failover`
    (`primary_before`, `primary_after`, `happened`: the Sentinels promoted
    another pod).
    Fails naming what was still wrong at the timeout.
    """
    ready = wait_for_ready_pods(
        label_selector, count, namespace, timeout, since, configuration, secrets
    )
    since_epoch = to_epoch(ready["since"])
    status: dict[str, Any] = {}
    while True:
        try:
            status = redis_replication_status(
                namespace,
                label_selector,
                mode,
                port,
                container,
                addresses,
                configuration=configuration,
                secrets=secrets,
            )
        except ActivityFailed as exc:  # a pod still starting: not yet
            status = {"healthy": False, "problems": [str(exc)]}
        if status["healthy"] and len(status.get("replicas", {})) == count - 1:
            break
        if time.time() - since_epoch > timeout:
            wrong = "; ".join(status["problems"]) or "replicas missing"
            raise RecoveryTimeout(
                f"Redis did not rejoin within {timeout:g}s of the {ready['since_source']}: {wrong}"
            )
        time.sleep(0.5)
    rejoin_s = max(0.0, time.time() - since_epoch)
    result = {
        RECOVERIES_KEY: [
            recovery("recovery_s", ready["recovery_s"], ready, bound_s=timeout),
            recovery("rejoin_s", rejoin_s, ready, primary=False, bound_s=timeout),
        ],
        "recovery_s": ready["recovery_s"],
        "rejoin_s": rejoin_s,
        "ready_wait": ready,
        "replication": status,
    }
    deleted = _deleted_roles.get((namespace, label_selector))
    if deleted is not None:
        result["deleted"] = dict(deleted)
        result["failover"] = {
            "primary_before": deleted["primary_before"],
            "primary_after": status["primary"],
            "happened": status["primary"] != deleted["primary_before"],
        }
    return result
