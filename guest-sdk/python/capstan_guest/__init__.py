"""Write Capstan plugins in Python.

The same shape as the Rust SDK (`capstan_guest`): a `Plugin` whose decorated functions
serve routes and MCP tools, and thin wrappers over the capabilities the host grants
(`kv`, `http`, `secrets`, `config`, `log`) that raise `CapstanError` instead of returning
WIT results. Build with `componentize-py --stub-wasi` against a world that imports only
what the manifest declares (see `plugins/py-hello`), then embed the manifest with
`guest-sdk/python/capstan_embed.py`.

    from capstan_guest import Plugin, Response, kv

    app = Plugin()

    @app.route("GET", "/")
    def hello(request):
        return Response.text(200, f"hello, {request.query_param('name', 'world')}")

    Handler, Mcp = app.exports()
"""

from .errors import CapstanError
from .route import Request, Response
from .plugin import Plugin, CallContext
from . import config, http, kv, log, secrets

__all__ = [
    "CapstanError",
    "CallContext",
    "Plugin",
    "Request",
    "Response",
    "config",
    "http",
    "kv",
    "log",
    "secrets",
]
