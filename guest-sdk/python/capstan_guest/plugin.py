"""A plugin: routes and MCP tools registered with decorators, exported as the classes
componentize-py looks for (`Handler`, `Mcp`)."""

import json
from dataclasses import dataclass

from .errors import CapstanError
from .route import Request, Response


@dataclass
class CallContext:
    """Who calls a tool: the MCP client's id and name, and the call id."""

    client_id: str
    client_name: str
    call_id: str


class Plugin:
    def __init__(self):
        self._routes = []
        self._tools = {}

    def route(self, method: str, path: str):
        """Serve `method path` (exact path, or a prefix when it ends with `/*`)."""

        def register(function):
            self._routes.append((method.upper(), path, function))
            return function

        return register

    def tool(self, name: str, description: str, input_schema: dict):
        """Offer MCP tool `name`; the function gets the arguments (a dict) and a
        `CallContext`, and returns anything JSON can encode."""

        def register(function):
            self._tools[name] = (description, input_schema, function)
            return function

        return register

    def handle(self, request: Request) -> Response:
        for method, path, function in self._routes:
            if method != request.method:
                continue
            if path == request.path or (
                path.endswith("/*") and request.path.startswith(path[:-1])
            ):
                try:
                    return function(request)
                except CapstanError as error:
                    status = 403 if error.kind == "denied" else 500
                    return Response.json(status, {"error": error.kind, "detail": error.detail})
        return Response.text(404, "no such route")

    def exports(self):
        """The `Handler` and `Mcp` classes for componentize-py to export: each is None
        when the plugin's world does not export that interface."""
        from wit_world import exports as wit_exports

        base_handler = getattr(wit_exports, "Handler", None)
        base_mcp = getattr(wit_exports, "Mcp", None)
        handler_class = _handler_class(self, base_handler) if base_handler else None
        mcp_class = _mcp_class(self, base_mcp) if base_mcp else None
        return handler_class, mcp_class


def _handler_class(plugin, base):
    class Handler(base):
        def handle(self, request):
            from wit_world.exports import handler

            ours = Request(request.method, request.path, request.query,
                           list(request.headers), bytes(request.body))
            answer = plugin.handle(ours)
            return handler.Response(answer.status, list(answer.headers), bytes(answer.body))

    return Handler


def _mcp_class(plugin, base):
    from componentize_py_types import Err

    class Mcp(base):
        def list_tools(self):
            from wit_world.exports import mcp

            return [mcp.Tool(name, description, json.dumps(schema))
                    for name, (description, schema, _) in plugin._tools.items()]

        def call_tool(self, name, arguments, context):
            entry = plugin._tools.get(name)
            if entry is None:
                raise Err(CapstanError("not-found").to_wit())
            ctx = CallContext(context.client_id, context.client_name, context.call_id)
            try:
                return json.dumps(entry[2](json.loads(arguments), ctx))
            except CapstanError as error:
                raise Err(error.to_wit())
            except (KeyError, TypeError, ValueError) as error:
                raise Err(CapstanError("invalid-input", str(error)).to_wit())

    return Mcp
