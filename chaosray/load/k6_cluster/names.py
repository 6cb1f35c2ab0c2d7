"""What every in-cluster k6 run is called and labelled (no activities)."""

from __future__ import annotations

__all__: list[str] = []  # engine; the control is chaosray.load.control

DEFAULT_IMAGE = "grafana/k6:1.1.0"
API_PORT = 6565
SCRIPT_KEY = "load.js"
SCRIPT_DIR = "/scripts"
CONTAINER = "k6"
MANAGED_BY = ("app.kubernetes.io/managed-by", "chaosray")
APP_NAME = ("app.kubernetes.io/name", "k6")
RUN_LABEL = "chaosray.io/k6-run"
SELECTOR = f"{MANAGED_BY[0]}={MANAGED_BY[1]},{APP_NAME[0]}={APP_NAME[1]}"
TESTRUN_CRD = "testruns.k6.io"
TESTRUN_API = ("k6.io", "v1alpha1", "testruns")


def run_labels(run_id: str) -> dict[str, str]:
    """The labels of everything run ``run_id`` creates."""
    return {MANAGED_BY[0]: MANAGED_BY[1], APP_NAME[0]: APP_NAME[1], RUN_LABEL: run_id}
