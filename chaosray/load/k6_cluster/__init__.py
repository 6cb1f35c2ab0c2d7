"""In-cluster k6 runners: a Kubernetes Job, or a k6-operator TestRun.

Both put the load script in a ConfigMap and run the same image with every
parameter as an environment variable (as ``k6/job.yaml`` does by hand). k6 runs
with its REST API on port 6565; chaosray reaches it through the API server,
first by the pod proxy (``/api/v1/namespaces/NS/pods/POD:6565/proxy/``), else
by a port-forward (which only needs the API server to reach the kubelet, as
``kubectl logs`` does). The summary is read from the pod's log, where the
script prints it between marker lines (``SUMMARY_STDOUT=true``).

Everything a run creates carries the labels ``app.kubernetes.io/managed-by:
chaosray``, ``app.kubernetes.io/name: k6`` and ``chaosray.io/k6-run: <id>``,
and is deleted when the run ends, on every failure path, in the control's
``cleanup_control`` (Ctrl-C), and by :func:`delete_leftover_runs`. If chaos
itself dies, the Job stops at ``activeDeadlineSeconds`` (the duration plus a
margin) and Kubernetes deletes it ``ttlSecondsAfterFinished`` later; the
ConfigMap is owned by the Job (or TestRun), so it goes with it.

The package, by job: ``names`` (what a run is called and labelled), ``pods``
(the k6 pod's state), ``rest`` (k6's REST API through the API server),
``runs`` (``ClusterK6``, ``JobK6``, ``TestRunK6``), ``preflight`` (the TestRun
CRD, in-cluster target URLs) and ``cleanup`` (leftovers, Ctrl-C). Everything
is importable from ``chaosray.load.k6_cluster`` itself.
"""

from __future__ import annotations

from chaosray.load.k6_cluster.cleanup import (
    delete_leftover_runs,
    find_leftover_runs,
    stop_all_cluster_runs,
)
from chaosray.load.k6_cluster.names import (
    API_PORT,
    APP_NAME,
    CONTAINER,
    DEFAULT_IMAGE,
    MANAGED_BY,
    RUN_LABEL,
    SCRIPT_DIR,
    SCRIPT_KEY,
    SELECTOR,
    TESTRUN_API,
    TESTRUN_CRD,
    run_labels,
)
from chaosray.load.k6_cluster.pods import (
    FATAL_WAITING,
    describe_pod_state,
    exit_code,
    pod_ended,
    pod_running,
)
from chaosray.load.k6_cluster.preflight import (
    is_cluster_url,
    preflight_through_service_proxy,
    require_testrun_crd,
)
from chaosray.load.k6_cluster.rest import STOP_BODY, K6RestApi
from chaosray.load.k6_cluster.runs import (
    DEADLINE_MARGIN_S,
    K6_COMMAND,
    LOG_SETTLE_S,
    LOG_TAIL_LINES,
    TTL_AFTER_FINISHED_S,
    ClusterK6,
    JobK6,
    TestRunK6,
    duration_seconds,
)

# The package's public names: an engine, not activities (the control is
# chaosray.load.control; chaosray.ACTIVITY_MODULES does not list this package).
__all__ = [
    "API_PORT",
    "APP_NAME",
    "CONTAINER",
    "DEADLINE_MARGIN_S",
    "DEFAULT_IMAGE",
    "FATAL_WAITING",
    "K6_COMMAND",
    "LOG_SETTLE_S",
    "LOG_TAIL_LINES",
    "MANAGED_BY",
    "RUN_LABEL",
    "SCRIPT_DIR",
    "SCRIPT_KEY",
    "SELECTOR",
    "STOP_BODY",
    "TESTRUN_API",
    "TESTRUN_CRD",
    "TTL_AFTER_FINISHED_S",
    "ClusterK6",
    "JobK6",
    "K6RestApi",
    "TestRunK6",
    "delete_leftover_runs",
    "describe_pod_state",
    "duration_seconds",
    "exit_code",
    "find_leftover_runs",
    "is_cluster_url",
    "pod_ended",
    "pod_running",
    "preflight_through_service_proxy",
    "require_testrun_crd",
    "run_labels",
    "stop_all_cluster_runs",
]
