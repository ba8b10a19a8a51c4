"""moto server with a control endpoint for Stele's end-to-end tests.

Runs moto's own WSGI application in-process on 127.0.0.1 and adds:

  /stele/faults   GET: armed API errors; DELETE: clear them;
                  POST {"action": "RunInstances", "code": "InsufficientInstanceCapacity",
                        "count": 1, "httpStatus": 500, "message": "...", "service": "ec2"}
                  -> the next `count` calls of that action (optionally only of that service,
                  taken from the SigV4 credential scope) get an AWS error response in the
                  protocol's own shape (EC2 XML, query XML or JSON) instead of reaching moto.
  /stele/delays   GET: current delays;
                  POST {"pendingSeconds": 2, "shuttingDownSeconds": 2, "stoppingSeconds": 0}
                  -> EC2 instances stay `pending` that long after launch/start, `shutting-down`
                  after TerminateInstances, `stopping` after StopInstances (0 = moto's default,
                  which is the final state at once).
  /moto-api/reset POST: moto's reset, which here also clears armed faults and delays.

Usage: python3 moto_wrapper.py [--port N]   (0 picks a free port)
Prints one JSON line {"endpoint": "http://127.0.0.1:PORT"} once it is listening.
Set MOTO_ENABLE_AMI_VALIDATION etc. in the environment before starting, as for moto.server.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import re
import sys
import threading
import time
import uuid
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from moto.ec2.models.instances import Instance
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

# Status codes AWS uses for the errors tests most often inject; anything else defaults to 400.
DEFAULT_STATUS = {
    "InsufficientInstanceCapacity": 500,
    "InsufficientHostCapacity": 500,
    "InternalError": 500,
    "InternalFailure": 500,
    "ServerException": 500,
    "RequestLimitExceeded": 503,
    "ServiceUnavailable": 503,
    "Unavailable": 503,
    "Throttling": 400,
    "ThrottlingException": 400,
}

_lock = threading.Lock()
_faults: list[dict[str, Any]] = []
_delays = {"pendingSeconds": 0.0, "shuttingDownSeconds": 0.0, "stoppingSeconds": 0.0}


# --- EC2 instance state delays --------------------------------------------------------------
# moto keeps an instance's state in `Instance._state` (an InstanceState with name and code) and
# every reader (DescribeInstances, filters, DescribeInstanceStatus, waiters) goes through it.
# We turn `_state` into a property that applies a pending transition once its deadline passes,
# and wrap the methods that change state so they start in the interim state instead.

_STATE_KEY = "_stele_state"
_TRANSITION_KEY = "_stele_transition"  # (deadline in monotonic seconds, final name, final code)


def _get_state(self: Instance) -> Any:
    state = self.__dict__.get(_STATE_KEY)
    transition = self.__dict__.get(_TRANSITION_KEY)
    if state is not None and transition is not None and time.monotonic() >= transition[0]:
        state.name, state.code = transition[1], transition[2]
        self.__dict__[_TRANSITION_KEY] = None
    return state


def _set_state(self: Instance, value: Any) -> None:
    self.__dict__[_STATE_KEY] = value
    self.__dict__[_TRANSITION_KEY] = None


def _delay(self: Instance, key: str, interim: tuple[str, int], final: tuple[str, int]) -> None:
    with _lock:
        seconds = float(_delays[key])
    state = self.__dict__.get(_STATE_KEY)
    if seconds > 0 and state is not None and state.name == final[0]:
        state.name, state.code = interim
        self.__dict__[_TRANSITION_KEY] = (time.monotonic() + seconds, final[0], final[1])


def _patch_instances() -> None:
    orig_init = Instance.__init__
    orig_start = Instance.start
    orig_stop = Instance.stop
    orig_terminate = Instance.terminate

    def __init__(self: Instance, *args: Any, **kwargs: Any) -> None:
        orig_init(self, *args, **kwargs)
        _delay(self, "pendingSeconds", ("pending", 0), ("running", 16))

    def wrap(orig: Callable[..., Any], key: str, interim: tuple[str, int], final: tuple[str, int]) -> Callable[..., Any]:
        def method(self: Instance, *args: Any, **kwargs: Any) -> Any:
            _ = self._state  # apply a transition that is due, so PreviousState is right
            self.__dict__[_TRANSITION_KEY] = None  # this action supersedes one still in flight
            previous = orig(self, *args, **kwargs)
            _delay(self, key, interim, final)
            return previous

        method.__name__ = orig.__name__
        return method

    Instance._state = property(_get_state, _set_state)  # type: ignore[assignment]
    Instance.__init__ = __init__  # type: ignore[method-assign]
    Instance.start = wrap(orig_start, "pendingSeconds", ("pending", 0), ("running", 16))  # type: ignore[method-assign]
    Instance.stop = wrap(orig_stop, "stoppingSeconds", ("stopping", 64), ("stopped", 80))  # type: ignore[method-assign]
    Instance.terminate = wrap(orig_terminate, "shuttingDownSeconds", ("shutting-down", 32), ("terminated", 48))  # type: ignore[method-assign]


# --- API error injection --------------------------------------------------------------------

_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request")


def _request_facts(environ: dict[str, Any]) -> tuple[str | None, str | None, str]:
    """(action, service, protocol) of an AWS request; reads and restores a form body."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    match = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    service = match.group(1) if match else None
    if target:
        return target.rsplit(".", 1)[-1], service, "json"
    action = None
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if "Action" in query:
        action = query["Action"][0]
    content_type = environ.get("CONTENT_TYPE", "")
    if action is None and content_type.startswith("application/x-www-form-urlencoded"):
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > 0:
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(body)
            form = parse_qs(body.decode("utf-8", "replace"))
            if "Action" in form:
                action = form["Action"][0]
    protocol = "ec2" if service == "ec2" else "query"
    return action, service, protocol


def _take_fault(action: str | None, service: str | None) -> dict[str, Any] | None:
    if action is None:
        return None
    with _lock:
        for fault in _faults:
            if fault["action"] != action or (fault.get("service") and fault["service"] != service):
                continue
            fault["count"] -= 1
            fault["fired"] += 1
            if fault["count"] <= 0:
                _faults.remove(fault)
            return dict(fault)
    return None


def _error_response(fault: dict[str, Any], protocol: str) -> tuple[int, list[tuple[str, str]], bytes]:
    code, message = fault["code"], fault["message"]
    status = int(fault["httpStatus"])
    request_id = str(uuid.uuid4())
    if protocol == "json":
        body = json.dumps({"__type": code, "message": message}).encode()
        headers = [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", code)]
    elif protocol == "ec2":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Response><Errors><Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
            f"</Error></Errors><RequestID>{request_id}</RequestID></Response>"
        ).encode()
        headers = [("Content-Type", "text/xml;charset=UTF-8")]
    else:
        kind = "Receiver" if status >= 500 else "Sender"
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<ErrorResponse><Error><Type>{kind}</Type><Code>{escape(code)}</Code>"
            f"<Message>{escape(message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers = [("Content-Type", "text/xml;charset=UTF-8")]
    headers += [("x-amzn-RequestId", request_id), ("Content-Length", str(len(body)))]
    return status, headers, body


# --- control endpoints ----------------------------------------------------------------------

_REASONS = {200: "OK", 201: "Created", 400: "Bad Request", 405: "Method Not Allowed", 500: "Internal Server Error",
            503: "Service Unavailable"}


def _reply(start_response: Any, status: int, payload: Any) -> list[bytes]:
    body = json.dumps(payload).encode()
    start_response(
        f"{status} {_REASONS.get(status, 'Status')}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]


def _read_json(environ: dict[str, Any]) -> Any:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length > 0 else b""
    return json.loads(raw or b"{}")


def _faults_endpoint(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    method = environ["REQUEST_METHOD"]
    if method == "GET":
        with _lock:
            return _reply(start_response, 200, {"faults": [dict(f) for f in _faults]})
    if method == "DELETE":
        with _lock:
            cleared = len(_faults)
            _faults.clear()
        return _reply(start_response, 200, {"cleared": cleared})
    if method != "POST":
        return _reply(start_response, 405, {"error": "use GET, POST or DELETE"})
    try:
        req = _read_json(environ)
        action, code = req.get("action"), req.get("code")
        if not isinstance(action, str) or not action or not isinstance(code, str) or not code:
            raise ValueError("action and code are required strings")
        count = int(req.get("count", 1))
        if count < 1:
            raise ValueError("count must be at least 1")
        status = int(req.get("httpStatus") or DEFAULT_STATUS.get(code, 400))
        if not 400 <= status <= 599:
            raise ValueError("httpStatus must be 4xx or 5xx")
        service = req.get("service")
        if service is not None and not isinstance(service, str):
            raise ValueError("service must be a string")
        message = str(req.get("message") or f"Injected by the Stele test peer: {code}")
    except (ValueError, TypeError, json.JSONDecodeError) as err:
        return _reply(start_response, 400, {"error": str(err)})
    fault = {"action": action, "code": code, "count": count, "httpStatus": status, "message": message,
             "service": service, "fired": 0}
    with _lock:
        _faults.append(fault)
        return _reply(start_response, 201, dict(fault))


def _delays_endpoint(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    method = environ["REQUEST_METHOD"]
    if method == "GET":
        with _lock:
            return _reply(start_response, 200, dict(_delays))
    if method != "POST":
        return _reply(start_response, 405, {"error": "use GET or POST"})
    try:
        req = _read_json(environ)
        update = {}
        for key, value in req.items():
            if key not in _delays:
                raise ValueError(f"unknown delay {key!r}; known: {', '.join(_delays)}")
            seconds = float(value)
            if not 0 <= seconds <= 3600:
                raise ValueError(f"{key} must be between 0 and 3600")
            update[key] = seconds
    except (ValueError, TypeError, AttributeError, json.JSONDecodeError) as err:
        return _reply(start_response, 400, {"error": str(err)})
    with _lock:
        _delays.update(update)
        return _reply(start_response, 200, dict(_delays))


def _reset_ours() -> None:
    with _lock:
        _faults.clear()
        for key in _delays:
            _delays[key] = 0.0


class SteleMoto:
    def __init__(self, moto_app: Callable[..., Iterable[bytes]]):
        self.moto_app = moto_app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/stele/faults":
            return _faults_endpoint(environ, start_response)
        if path == "/stele/delays":
            return _delays_endpoint(environ, start_response)
        if path == "/stele/health":
            return _reply(start_response, 200, {"ok": True})
        if path == "/moto-api/reset" and environ.get("REQUEST_METHOD") == "POST":
            _reset_ours()
        elif not path.startswith("/moto-api"):
            action, service, protocol = _request_facts(environ)
            fault = _take_fault(action, service)
            if fault is not None:
                status, headers, body = _error_response(fault, protocol)
                start_response(f"{status} {_REASONS.get(status, 'Error')}", headers)
                return [body]
        return self.moto_app(environ, start_response)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    _patch_instances()
    moto_app = DomainDispatcherApplication(create_backend_app)
    server = make_server(args.host, args.port, SteleMoto(moto_app), threaded=True)
    os.environ.setdefault("MOTO_PORT", str(server.server_port))  # moto calls itself on this port
    print(json.dumps({"endpoint": f"http://{args.host}:{server.server_port}"}), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
