"""An HTTP "inference" server that fails on a schedule: the ground truth for
downtime measurements.

Run as its own process (``python scheduled_server.py PORT``). Every path but
``/_rig/...`` is the service: it answers 200 with a small JSON body, unless
the current time falls in an armed window:

- ``down``: answers ``status`` (default 503) at once;
- ``reset``: closes the connection without an answer;
- ``slow``: answers 200 after ``delay`` seconds;
- ``error``: answers ``status`` (default 500) with an error body.

``POST /_rig/schedule`` with ``{"windows": [{"start": 1.0, "end": 3.0,
"mode": "down"}]}`` arms windows relative to the moment it is received and
answers with the absolute (epoch) times it will apply: that answer is the
truth a measurement is compared with. ``GET /_rig/requests`` lists every
request served (arrival time, path, status or "reset").
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_lock = threading.Lock()
_windows: list[dict[str, Any]] = []
_requests: list[dict[str, Any]] = []


def _active_window(now: float) -> dict[str, Any] | None:
    with _lock:
        for window in _windows:
            if window["start"] <= now < window["end"]:
                return window
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without TCP_NODELAY the body
    # waits ~40 ms for the client's delayed ACK and every answer is slow.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _rig(self) -> None:
        if self.command == "POST" and self.path == "/_rig/schedule":
            spec = json.loads(self._read_body() or b"{}")
            armed_at = time.time()
            armed = []
            for w in spec.get("windows", []):
                armed.append(
                    {
                        "start": armed_at + float(w["start"]),
                        "end": armed_at + float(w["end"]),
                        "mode": w.get("mode", "down"),
                        "status": int(w.get("status", 500 if w.get("mode") == "error" else 503)),
                        "delay": float(w.get("delay", 0.0)),
                    }
                )
            with _lock:
                _windows[:] = armed
                _requests.clear()
            self._send(200, {"armed_at": armed_at, "windows": armed})
        elif self.path == "/_rig/requests":
            with _lock:
                body = {"requests": list(_requests)}
            self._send(200, body)
        else:
            self._send(404, {"error": "unknown rig path"})

    def _serve(self) -> None:
        arrived = time.time()
        self._read_body()
        window = _active_window(arrived)
        mode = window["mode"] if window else "up"
        record: dict[str, Any] = {"t": arrived, "path": self.path, "mode": mode}
        if mode == "reset":
            record["status"] = "reset"
            with _lock:
                _requests.append(record)
            self.close_connection = True
            self.connection.close()
            return
        if mode == "slow":
            time.sleep(window["delay"])  # type: ignore[index]
        status = window["status"] if mode in ("down", "error") else 200  # type: ignore[index]
        record["status"] = status
        with _lock:
            _requests.append(record)
        if status == 200:
            self._send(200, {"result": "ok", "model": "rig", "t": arrived})
        else:
            self._send(status, {"error": f"scheduled {mode}"})

    def do_GET(self) -> None:
        self._rig() if self.path.startswith("/_rig/") else self._serve()

    def do_POST(self) -> None:
        self._rig() if self.path.startswith("/_rig/") else self._serve()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512


def main() -> None:
    port = int(sys.argv[1])
    server = Server(("127.0.0.1", port), Handler)
    print(f"listening on 127.0.0.1:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
