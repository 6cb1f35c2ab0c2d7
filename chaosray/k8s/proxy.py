"""The one way chaosray reaches HTTP servers inside the cluster.

- :func:`api_proxy`: through the API server's ``services/.../proxy`` or
  ``pods/.../proxy`` subresource. The request is built with
  ``ApiClient.param_serialize(..., auth_settings=["BearerToken"])``, so it
  carries the kubeconfig's credentials like every generated API call does
  (``call_api`` on its own sends only the headers it is given: a bearer
  token, as EKS uses, would be missing).
- :func:`port_forward_http`: through a port-forward to a pod (the kubelet's
  streaming port), for clusters whose API server cannot reach pod IPs (EKS
  with restricted security groups); the HTTP exchange over the forwarded
  socket is Python's ``http.client``.
- :func:`api_server_cannot_reach` and :func:`answer_text`: what an answer
  says, for the callers' fallbacks and messages.
"""

from __future__ import annotations

import http.client
import json
import threading
from typing import Any
from urllib.parse import quote, urlencode

from chaoslib.types import Secrets
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import portforward

from chaosray.k8s.client import REQUEST_TIMEOUT, api_client, core_v1_for_streams
from chaosray.k8s.pods import api_message

__all__: list[str] = []  # helpers, not activities


def api_proxy(
    method: str,
    kind: str,
    namespace: str,
    target: str,
    path: str,
    *,
    query: dict[str, str] | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = REQUEST_TIMEOUT[1],
    secrets: Secrets = None,
) -> tuple[int, bytes]:
    """``method`` ``path`` on ``kind`` (``services`` or ``pods``) ``target``
    (``name``, ``name:port`` or ``https:name:port``) through the API server's
    proxy, authenticated. Returns (HTTP status, body); an error status is
    returned, not raised (the API server's own errors included)."""
    api = api_client(secrets)
    # Built here rather than as path parameters, which the client would quote
    # whole (a "/" in the proxied path would become %2F).
    resource_path = (
        f"/api/v1/namespaces/{quote(namespace, safe='')}/{kind}/{quote(target, safe=':')}"
        f"/proxy/{quote(path.lstrip('/'), safe='/')}"
    )
    url_method, url, header_params, payload, _ = api.param_serialize(
        method=method,
        resource_path=resource_path,
        header_params={"Accept": "application/json", **(headers or {})},
        body=body,
        auth_settings=["BearerToken"],
    )
    if query:
        url += ("&" if "?" in url else "?") + urlencode(query)
    try:
        response = api.call_api(
            url_method,
            url,
            header_params=header_params,
            body=payload,
            _request_timeout=(REQUEST_TIMEOUT[0], timeout),
        )
        response.read()
    except ApiException as exc:
        return int(exc.status or 0), str(api_message(exc) or exc.body or "").encode()
    return int(response.status), bytes(response.data or b"")


def api_server_cannot_reach(status: int, body: bytes) -> bool:
    """An :func:`api_proxy` answer that is the API server's own: it could not
    reach the backend (a Status object with 502/503/504, or no answer), not
    the backend's answer."""
    if status == 0:
        return True
    return status in (502, 503, 504) and (
        b'"kind":"Status"' in body or b"error trying to reach" in body
    )


def answer_text(body: bytes, limit: int = 200) -> str:
    """A proxied answer in a few words, for a message: the ``message`` of a
    JSON answer (a Kubernetes Status has one), else its first ``limit``
    bytes as text."""
    try:
        message = json.loads(body).get("message") or body[:limit].decode("utf-8", "replace")
    except (ValueError, AttributeError):
        message = body[:limit].decode("utf-8", "replace")
    return str(message)


def port_forward_http(
    namespace: str,
    pod: str,
    port: int,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = REQUEST_TIMEOUT[1],
    secrets: Secrets = None,
) -> tuple[int, bytes]:
    """One HTTP request to ``pod``'s ``port`` over a port-forward. Returns
    (HTTP status, body); raises ``ConnectionError`` or ``TimeoutError`` when
    no answer comes."""
    result: list[tuple[int, bytes]] = []
    failure: list[BaseException] = []

    def exchange() -> None:
        # A private ApiClient: kubernetes.stream swaps the client's request
        # function while it connects, which must not touch other threads'.
        core = core_v1_for_streams(secrets)
        try:
            forward = portforward(
                core.connect_get_namespaced_pod_portforward, pod, namespace, ports=str(port)
            )
            try:
                result.append(_http(forward, port, method, path, body, headers, timeout))
            finally:
                forward.close()
        except BaseException as exc:
            failure.append(exc)
        finally:
            core.api_client.close()

    worker = threading.Thread(target=exchange, name="chaosray-port-forward", daemon=True)
    worker.start()
    worker.join(timeout + 10)
    if failure:
        raise failure[0]
    if not result:
        raise TimeoutError(f"no answer through the port-forward within {timeout + 10:g}s")
    return result[0]


def _http(
    forward: Any,
    port: int,
    method: str,
    path: str,
    body: bytes | None,
    headers: dict[str, str] | None,
    timeout: float,
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("localhost", port, timeout=timeout)
    sock = forward.socket(port)
    sock.settimeout(timeout)
    connection.sock = sock  # the forwarded stream instead of a TCP connect
    try:
        connection.request(
            method, path, body=body, headers={"Connection": "close", **(headers or {})}
        )
        response = connection.getresponse()
        return int(response.status), response.read()
    except (http.client.HTTPException, OSError) as exc:
        error = forward.error(port)
        raise ConnectionError(error or f"the port-forward gave no HTTP answer: {exc}") from None
    finally:
        connection.close()
