"""Drives Capstan's /mcp gateway with the official Python SDK (`mcp` 2.3.0).

Run with the venv scripts/mcp-clients installs: target/mcp-clients/venv/bin/python
tests/mcp-clients/python_client.py --mode legacy|modern. `legacy` is the 2025-11-25
initialize handshake with a session and its GET stream; `modern` adopts 2026-07-28
directly (stateless requests, `subscriptions/listen`).

Environment: MCP_URL (the gateway), MCP_TOKEN (a client token scoped to plugin `tools`),
MCP_REVOKED_TOKEN (a revoked one). Prints one JSON object per line to stdout, one per step
of the scenario (list, call, bad-args, no-token, revoked, ready, list_changed); diagnostics
go to stderr. After `ready` it waits for the tool list to change (the harness installs a
new version of `tools`) and exits 0, or 3 after 30 s.
"""

import argparse
import json
import os
import sys

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.client.subscriptions import ToolsListChanged
from mcp.shared.exceptions import MCPError

LIST_CHANGED_TIMEOUT = 30


def emit(**fields):
    print(json.dumps(fields, separators=(",", ":")), flush=True)


def log(*args):
    print("python_client:", *args, file=sys.stderr, flush=True)


class StatusRecorder:
    """An httpx2 response hook remembering each response's status, and when the GET stream opens.

    The SDK turns a non-2xx answer whose body is not a JSON-RPC error into a generic
    MCPError ("Server returned an error response") without the HTTP status, so the status
    is read from the HTTP client the SDK sends through. Response hooks run once the status
    line and headers are in, before the body, so for the legacy transport's standalone GET
    stream (started as the `notifications/initialized` POST is sent; it logs nothing we
    could wait for) a 200 to the GET is the deterministic sign the server has the stream.
    """

    def __init__(self):
        self.statuses = []
        self.get_stream_open = anyio.Event()

    async def __call__(self, response):
        self.statuses.append(response.status_code)
        if response.request.method == "GET" and response.status_code == 200:
            self.get_stream_open.set()


def http_client(token, recorder):
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    # The SDK's own default timeouts: 30 s, but 300 s reads since streams stay open.
    timeout = httpx2.Timeout(30, read=300)
    return httpx2.AsyncClient(headers=headers, timeout=timeout, event_hooks={"response": [recorder]})


async def list_all_tools(client):
    names, cursor = [], None
    while True:
        page = await client.list_tools(cursor=cursor, cache_mode="bypass")
        names += [tool.name for tool in page.tools]
        cursor = page.next_cursor
        if cursor is None:
            return sorted(names)


def leaves(group):
    for error in group.exceptions:
        yield from leaves(error) if isinstance(error, BaseExceptionGroup) else [error]


def first_text(result):
    return next((c.text for c in result.content if c.type == "text"), None)


async def rejected_status(url, token, mode):
    """Connect and list tools with `token` (None: no Authorization); the HTTP status the server gave."""
    recorder = StatusRecorder()
    async with http_client(token, recorder) as http:
        try:
            async with Client(streamable_http_client(url, http_client=http), mode=mode) as client:
                await client.list_tools(cache_mode="bypass")
            log("expected a refusal, but connecting and listing succeeded")
        except* MCPError as group:
            # The SDK's task groups wrap the error in an ExceptionGroup, hence except*.
            log("rejected as expected:", *(f"MCPError {e.code}: {e}" for e in leaves(group)))
    return recorder.statuses[-1] if recorder.statuses else None


async def scenario(url, token, revoked, mode):
    recorder = StatusRecorder()
    changed = anyio.Event()

    async def on_message(message):
        # Legacy: server notifications from the session's GET stream land here.
        if getattr(message, "method", None) == "notifications/tools/list_changed":
            changed.set()
        elif isinstance(message, Exception):
            log("transport error:", repr(message))

    async with http_client(token, recorder) as http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(transport, mode=mode, message_handler=on_message) as client:
            log("negotiated", client.protocol_version)
            emit(step="list", tools=await list_all_tools(client))

            result = await client.call_tool("tools__add", {"a": 2, "b": 40})
            emit(step="call", isError=result.is_error, text=first_text(result))

            result = await client.call_tool("tools__add", {"a": "x"})
            emit(step="bad-args", isError=result.is_error, text=first_text(result))

            emit(step="no-token", status=await rejected_status(url, None, mode))
            emit(step="revoked", status=await rejected_status(url, revoked, mode))

            if mode == "legacy":
                # The GET stream was started with notifications/initialized; wait for its 200.
                with anyio.fail_after(10):
                    await recorder.get_stream_open.wait()
                emit(step="ready")
                with anyio.fail_after(LIST_CHANGED_TIMEOUT):
                    await changed.wait()
            else:
                # Entering listen() returns once the server acknowledged the subscription.
                async with client.listen(tools_list_changed=True) as subscription:
                    log("listen acknowledged, honored:", subscription.honored)
                    emit(step="ready")
                    with anyio.fail_after(LIST_CHANGED_TIMEOUT):
                        async for event in subscription:
                            log("event:", event)
                            if isinstance(event, ToolsListChanged):
                                break
                        else:
                            raise RuntimeError("the subscription ended without a tools list change")
            emit(step="list_changed")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["legacy", "modern"], required=True)
    args = parser.parse_args()
    mode = "legacy" if args.mode == "legacy" else "2026-07-28"
    url, token, revoked = (os.environ[k] for k in ("MCP_URL", "MCP_TOKEN", "MCP_REVOKED_TOKEN"))
    try:
        anyio.run(scenario, url, token, revoked, mode)
    except* TimeoutError:
        # The SDK's task groups may wrap it in an ExceptionGroup, hence except*.
        log(f"timed out waiting for the GET stream or the tool list change ({LIST_CHANGED_TIMEOUT} s)")
        sys.exit(3)


if __name__ == "__main__":
    main()
