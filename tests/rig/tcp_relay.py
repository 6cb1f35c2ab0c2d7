"""A TCP relay: ``python tcp_relay.py LISTEN_IP LISTEN_PORT TARGET_IP TARGET_PORT``."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def main() -> None:
    listen_ip, listen_port, target_ip, target_port = sys.argv[1:5]
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((listen_ip, int(listen_port)))
    server.listen(64)
    print(f"listening on {listen_ip}:{listen_port}", flush=True)
    while True:
        client, _ = server.accept()
        try:
            upstream = socket.create_connection((target_ip, int(target_port)), timeout=10)
        except OSError:
            client.close()
            continue
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pipe, args=(a, b), daemon=True).start()


if __name__ == "__main__":
    main()
