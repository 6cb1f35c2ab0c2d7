"""Catch a Ray head asking for cloud metadata, without letting anything out.

Run as ``python -m tests.rig.egress_canary OUT.json WORK_DIR [--no-cloud-guards]``
by :func:`run_canary`, which starts it in network and mount namespaces of its
own (``unshare --net --mount``). Inside, the cloud metadata address
169.254.169.254 is an address of the canary's loopback with an HTTP listener
on port 80, and ``/etc/resolv.conf`` (bind-mounted in the private mount
namespace) names a DNS listener of the canary on 127.0.0.53: so every
metadata request and every name lookup Ray makes lands here and is recorded,
and nothing can leave while we check. It then starts the rig's Ray head
(Redis, head, dashboard; no workers, no Serve) and waits until the
dashboard's usage-stats module has logged "Usage reporting is disabled."
(it runs the metadata lookup before that line and sends its "disabled"
report right after it), plus a few seconds.
"""

from __future__ import annotations

import json
import socketserver
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

METADATA_IP = "169.254.169.254"
RESOLVER_IP = "127.0.0.53"
USAGE_MODULE_DONE = "Usage reporting is disabled."
SETTLE_S = 5.0


class _Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.http: list[dict[str, str]] = []
        self.dns: list[str] = []


def _http_handler(recorder: _Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            with recorder.lock:
                recorder.http.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "host": self.headers.get("Host", ""),
                    }
                )
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_PUT = do_POST = _record

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


def _qname(packet: bytes) -> str:
    """The first question's name of a DNS query."""
    labels, at = [], 12
    while at < len(packet) and packet[at]:
        length = packet[at]
        labels.append(packet[at + 1 : at + 1 + length].decode(errors="replace"))
        at += 1 + length
    return ".".join(labels)


def _dns_handler(recorder: _Recorder) -> type[socketserver.BaseRequestHandler]:
    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            packet, sock = self.request
            if len(packet) < 12:
                return
            with recorder.lock:
                recorder.dns.append(_qname(packet))
            # NXDOMAIN at once (QR set, RD copied, RA, RCODE 3), so a
            # lookup ends instead of waiting for a resolver time-out.
            flags = bytes([0x80 | (packet[2] & 0x01), 0x83])
            sock.sendto(
                packet[:2] + flags + packet[4:6] + b"\0\0\0\0\0\0" + packet[12:],
                self.client_address,
            )

    return Handler


def _inside(out: Path, work_dir: Path, cloud_guards: bool) -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "addr", "add", f"{METADATA_IP}/32", "dev", "lo"], check=True)
    resolv = work_dir / "resolv.conf"
    resolv.write_text(f"nameserver {RESOLVER_IP}\noptions timeout:1 attempts:1\n")
    subprocess.run(["mount", "--bind", str(resolv), "/etc/resolv.conf"], check=True)

    recorder = _Recorder()
    http = ThreadingHTTPServer((METADATA_IP, 80), _http_handler(recorder))
    dns = socketserver.ThreadingUDPServer((RESOLVER_IP, 53), _dns_handler(recorder))
    for server in (http, dns):
        threading.Thread(target=server.serve_forever, daemon=True).start()

    # Imported here: the rig is only needed inside the namespace.
    from tests.rig.ray_cluster import LocalRayCluster

    cluster = LocalRayCluster(work_dir, cloud_guards=cloud_guards)
    began = time.monotonic()
    finished = False
    try:
        cluster.start(workers=0, serve=False)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not finished:
            finished = any(
                USAGE_MODULE_DONE in log.read_text(errors="replace")
                for log in cluster.temp_root.glob("*/session_latest/logs/dashboard.log")
            )
            time.sleep(0.2)
        # Right after that line the module sends its "usage disabled"
        # report (a thread of its own): give it time to be seen.
        time.sleep(SETTLE_S)
    finally:
        cluster.stop(check=False)
        http.shutdown()
        dns.shutdown()
    with recorder.lock:
        out.write_text(
            json.dumps(
                {
                    "usage_module_finished": finished,
                    "seconds": round(time.monotonic() - began, 1),
                    "http": recorder.http,
                    "dns": recorder.dns,
                }
            )
        )


def run_canary(work_dir: Path, *, cloud_guards: bool = True) -> dict[str, Any]:
    """Start a rig Ray head inside the canary's namespaces; what it asked for."""
    work_dir.mkdir(parents=True, exist_ok=True)
    out = work_dir / "canary.json"
    argv = ["unshare", "--net", "--mount", "--propagation", "private", "--",
            sys.executable, "-m", "tests.rig.egress_canary", str(out), str(work_dir)]  # fmt: skip
    if not cloud_guards:
        argv.append("--no-cloud-guards")
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=300, cwd=Path(__file__).parents[2]
    )
    if done.returncode != 0 or not out.exists():
        raise RuntimeError(f"the canary failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return dict(json.loads(out.read_text()))


if __name__ == "__main__":
    _inside(Path(sys.argv[1]), Path(sys.argv[2]), "--no-cloud-guards" not in sys.argv[3:])
