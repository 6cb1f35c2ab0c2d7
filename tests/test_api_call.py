"""``chaosray.k8s.pods.api_call``: an API error becomes a clear
``ActivityFailed`` whose message never carries the response body; the body
goes to the ``chaostoolkit`` log at debug level. Pure: the errors are
``ApiException`` objects built by hand, no client and no cluster."""

from __future__ import annotations

import json
import logging
import traceback
from typing import NoReturn

import pytest
from chaoslib.exceptions import ActivityFailed
from kubernetes.client.exceptions import ApiException

from chaosray.k8s.pods import api_call, api_error

SECRET = "tok-3f9a1c7e5b2d48a6"  # looks like a credential; must stay out of messages


def _forbidden() -> ApiException:
    exc = ApiException(status=403, reason="Forbidden")
    exc.body = json.dumps(
        {
            "kind": "Status",
            "status": "Failure",
            "message": 'pods is forbidden: User "ci" cannot delete resource "pods"',
            "reason": "Forbidden",
            "details": {"kind": "pods", "token": SECRET},
            "code": 403,
        }
    )
    return exc


def _raise(exc: BaseException) -> NoReturn:
    raise exc


def test_the_message_names_the_call_and_the_hint_and_not_the_body(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="chaostoolkit")
    with pytest.raises(ActivityFailed) as failed:
        api_call(lambda: _raise(_forbidden()), "delete pod ns/web-0")
    message = str(failed.value)
    assert message.startswith("delete pod ns/web-0 failed: HTTP 403 ")
    assert 'pods is forbidden: User "ci" cannot delete resource "pods"' in message
    assert "not allowed to do this (RBAC)" in message
    assert SECRET not in message
    # Nor in what a journal records of the exception: the traceback.
    assert failed.value.__suppress_context__
    assert SECRET not in "".join(traceback.format_exception(failed.value))
    logged = [r for r in caplog.records if r.name == "chaostoolkit" and r.levelno == logging.DEBUG]
    assert any(SECRET in r.getMessage() and "delete pod ns/web-0" in r.getMessage() for r in logged)


def test_a_body_that_is_not_a_status_gives_the_reason() -> None:
    exc = ApiException(status=500, reason="Internal Server Error")
    exc.body = f"<html>upstream said {SECRET}</html>"
    with pytest.raises(ActivityFailed) as failed:
        api_call(lambda: _raise(exc), "list pods in 'ns'")
    assert str(failed.value) == "list pods in 'ns' failed: HTTP 500 Internal Server Error"


def test_missing_ok_returns_none_on_404_only() -> None:
    assert api_call(lambda: _raise(ApiException(404, "Not Found")), "x", missing_ok=True) is None
    with pytest.raises(ActivityFailed, match="HTTP 403"):
        api_call(lambda: _raise(_forbidden()), "x", missing_ok=True)
    assert api_call(lambda: "there", "x", missing_ok=True) == "there"


def test_retry_tries_a_read_again_on_a_transient_error() -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise ApiException(status=503, reason="Service Unavailable")
        return "read"

    assert api_call(flaky, "read thing", retry=True) == "read"
    assert len(calls) == 2
    calls.clear()
    with pytest.raises(ActivityFailed, match="HTTP 503"):
        api_call(flaky, "write thing")  # no retry: a write is tried once
    assert len(calls) == 1


def test_api_error_is_the_status_and_the_message(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="chaostoolkit")
    text = api_error(_forbidden(), "port-forward to pod ns/head:8265")
    assert text == 'HTTP 403 pods is forbidden: User "ci" cannot delete resource "pods"'
    assert any(SECRET in r.getMessage() for r in caplog.records if r.name == "chaostoolkit")
