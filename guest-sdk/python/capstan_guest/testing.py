"""In-memory doubles for the host, so Python plugins are unit-tested with plain
`python3 -m unittest`, outside any component: `install()` puts stand-ins for the
generated `wit_world` bindings in place (call it before importing the plugin), `reset()`
clears their state between tests.

    from capstan_guest import testing
    testing.install()
    import app

    testing.set_secret("api-token", "s3cret")
    testing.respond("https://api.example.com/", 200, b"{}")
"""

import enum
import json
import sys
import types
from dataclasses import dataclass
from typing import Generic, TypeVar

_state = {"kv": {}, "secrets": {}, "responses": [], "requests": [], "logs": []}

E = TypeVar("E")


def reset() -> None:
    """Forget every key, secret, canned response, request and log line."""
    for value in _state.values():
        value.clear()


def set_secret(name: str, value: str) -> None:
    _state["secrets"][name] = value


def respond(url_prefix: str, status: int, body: bytes = b"") -> None:
    """Answer outbound requests whose URL starts with `url_prefix`."""
    _state["responses"].append((url_prefix, status, body))


def http_requests() -> list:
    return list(_state["requests"])


def kv_snapshot() -> dict:
    return dict(_state["kv"])


def logs() -> list:
    return list(_state["logs"])


def call_tool(mcp_class, name: str, arguments: dict):
    """Call tool `name` on the plugin's `Mcp` export; its result decoded from JSON."""
    context = sys.modules["wit_world.exports.mcp"].CallContext("test", "test", "call-1")
    return json.loads(mcp_class().call_tool(name, json.dumps(arguments), context))


def _module(name: str, **members) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(members)
    sys.modules[name] = module
    return module


def install() -> None:
    """Put the doubles in place of the bindings componentize-py generates."""
    @dataclass
    class Ok:
        value: object

    @dataclass(frozen=True)
    class Err(Generic[E], Exception):
        value: E

    _module("componentize_py_types", Ok=Ok, Err=Err, Some=Ok, Result=object)

    errors = {}
    for case in ["Denied", "QuotaExceeded", "InvalidInput", "TooLarge", "Internal"]:
        errors[f"Error_{case}"] = dataclass(type(f"Error_{case}", (), {"__annotations__": {"value": str}}))
    for case in ["NotFound", "Timeout"]:
        errors[f"Error_{case}"] = dataclass(type(f"Error_{case}", (), {}))
    wit_types = _module("wit_world.imports.types", **errors)

    class Level(enum.Enum):
        TRACE = 0
        DEBUG = 1
        INFO = 2
        WARN = 3
        ERROR = 4

    def write(level, message):
        _state["logs"].append((level.name.lower(), message))

    def kv_get(key):
        return _state["kv"].get(key)

    def kv_set(key, value):
        _state["kv"][key] = bytes(value)

    def kv_delete(key):
        return _state["kv"].pop(key, None) is not None

    def kv_increment(key, delta):
        current = int(_state["kv"].get(key, b"0"))
        _state["kv"][key] = str(current + delta).encode()
        return current + delta

    def secret_get(name):
        if name not in _state["secrets"]:
            raise Err(wit_types.Error_NotFound())
        return _state["secrets"][name]

    class Method(enum.Enum):
        GET = 0
        HEAD = 1
        POST = 2
        PUT = 3
        PATCH = 4
        DELETE = 5
        OPTIONS = 6

    @dataclass
    class HttpRequest:
        method: Method
        url: str
        headers: list
        body: object
        timeout_ms: object
        client_cert: object

    @dataclass
    class HttpResponse:
        status: int
        headers: list
        body: bytes

    def send(request):
        _state["requests"].append(request)
        for prefix, status, body in _state["responses"]:
            if request.url.startswith(prefix):
                return HttpResponse(status, [], body)
        raise Err(wit_types.Error_Denied(f"no canned response for {request.url}"))

    @dataclass
    class Request:
        method: str
        path: str
        query: str
        headers: list
        body: bytes

    @dataclass
    class Response:
        status: int
        headers: list
        body: bytes

    @dataclass
    class Tool:
        name: str
        description: str
        input_schema: str

    @dataclass
    class CallContext:
        client_id: str
        client_name: str
        call_id: str

    class Handler:
        pass

    class Mcp:
        pass

    _module("wit_world")
    _module("wit_world.imports")
    _module("wit_world.imports.log", Level=Level, write=write)
    _module("wit_world.imports.kv", get=kv_get, set=kv_set, delete=kv_delete, increment=kv_increment)
    _module("wit_world.imports.secrets", get=secret_get)
    _module("wit_world.imports.http", Method=Method, Request=HttpRequest, Response=HttpResponse, send=send)
    exports = _module("wit_world.exports", Handler=Handler, Mcp=Mcp)
    exports.handler = _module("wit_world.exports.handler", Request=Request, Response=Response)
    exports.mcp = _module("wit_world.exports.mcp", Tool=Tool, CallContext=CallContext)
    sys.modules["wit_world"].exports = exports
    imports = sys.modules["wit_world.imports"]
    for name in ["types", "log", "kv", "secrets", "http"]:
        setattr(imports, name, sys.modules[f"wit_world.imports.{name}"])
    sys.modules["wit_world"].imports = imports
