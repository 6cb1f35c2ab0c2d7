"""AWS through moto's server mode (a real HTTP server speaking the AWS APIs
from moto's in-memory backends). It is moto, not AWS: it serves our NLB
probes' API calls (ELBv2 describe-target-health and friends)."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import requests

from tests.rig.procs import ComponentFailed, ManagedProcess, free_port

REGION = "us-east-1"
# moto accepts any credentials; these fake ones keep boto3 from looking for real ones.
FAKE_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@dataclass
class MotoServer:
    process: ManagedProcess
    port: int

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, service: str) -> Any:
        return boto3.client(
            service, endpoint_url=self.endpoint_url, region_name=REGION, **FAKE_CREDENTIALS
        )

    def reset(self) -> None:
        """Drop every resource moto holds (its documented reset endpoint)."""
        requests.post(f"{self.endpoint_url}/moto-api/reset", timeout=5).raise_for_status()

    def stop(self) -> None:
        self.process.stop()


def start_moto_server(work_dir: Path) -> MotoServer:
    binary = Path(sys.executable).with_name("moto_server")
    if not binary.exists():
        found = shutil.which("moto_server")
        if not found:
            raise ComponentFailed("moto_server not found: install the `moto[server]` extra")
        binary = Path(found)
    port = free_port()
    argv = [str(binary), "-H", "127.0.0.1", "-p", str(port)]
    proc = ManagedProcess("moto-server", argv, work_dir)
    server = MotoServer(proc, port)
    proc.wait_ready(
        lambda: requests.get(f"{server.endpoint_url}/moto-api/", timeout=1).status_code < 500,
        30,
        "moto_server to answer",
    )
    return server
