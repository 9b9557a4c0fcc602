"""Helpers for the side-by-side bench scripts: start a `capstan serve`, install plugins
(with sidecar manifests), time requests. Python standard library only."""

import http.client
import json
import os
import statistics
import subprocess
import time
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLUGINS = os.path.join(ROOT, "target/plugins/wasm32-wasip2/release")
TOKEN = "bench-admin-token-0123456789"


class Server:
    """A `capstan serve` on an ephemeral port with its state under `data_dir`."""

    def __init__(self, binary, data_dir, policy, extra=()):
        os.makedirs(data_dir, exist_ok=True)
        policy_path = os.path.join(data_dir, "policy.toml")
        with open(policy_path, "w") as f:
            f.write(policy)
        env = dict(os.environ, CAPSTAN_ADMIN_TOKEN=TOKEN, CAPSTAN_LOG="error")
        env.pop("RUST_BACKTRACE", None)
        self.process = subprocess.Popen(
            [binary, "serve", "--listen", "127.0.0.1:0", "--data-dir",
             os.path.join(data_dir, "data"), "--policy", policy_path, *extra],
            stdout=subprocess.PIPE, env=env, text=True)
        first = self.process.stdout.readline().strip()
        assert first.startswith("listening on http://"), first
        self.base = first.removeprefix("listening on ")
        self.host, port = self.base.removeprefix("http://").split(":")
        self.port = int(port)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=60)

    def admin(self, method, path, body=None, content_type=None):
        request = urllib.request.Request(self.base + "/admin/v1" + path, data=body, method=method)
        request.add_header("Authorization", "Bearer " + TOKEN)
        if content_type:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=300) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def install(self, wasm_name, manifest=None):
        wasm = read_plugin(wasm_name)
        if manifest is None:
            return self.admin("POST", "/plugins", wasm, "application/wasm")
        body, content_type = form([("component", wasm), ("manifest", manifest.encode())])
        return self.admin("POST", "/plugins", body, content_type)

    def open_session(self, name, ttl="1h"):
        """A new session: (id, token)."""
        body = json.dumps({"name": name, "ttl": ttl}).encode()
        status, answer = self.admin("POST", "/sessions", body, "application/json")
        assert status == 201, answer
        created = json.loads(answer)
        return created["session"]["id"], created["token"]

    def session_install(self, token, parts):
        """Install plugins into a session: `parts` are (form part name, bytes)."""
        body, content_type = form(parts)
        request = urllib.request.Request(self.base + "/v1/session/plugins", data=body, method="POST")
        request.add_header("Authorization", "Bearer " + token)
        request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=300) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def pid(self):
        return self.process.pid


def read_plugin(wasm_name):
    with open(os.path.join(PLUGINS, wasm_name + ".wasm"), "rb") as f:
        return f.read()


def form(parts):
    """A multipart/form-data body of (name, bytes) parts, and its content type."""
    boundary = uuid.uuid4().hex
    chunks = [f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n".encode()
              + data + b"\r\n" for name, data in parts]
    body = b"".join(chunks) + f"--{boundary}--\r\n".encode()
    return body, "multipart/form-data; boundary=" + boundary


class Connection:
    """One kept-alive HTTP/1.1 connection timing GETs."""

    def __init__(self, server):
        self.connection = http.client.HTTPConnection(server.host, server.port, timeout=60)

    def get(self, path, headers=None):
        started = time.perf_counter()
        self.connection.request("GET", path, headers=headers or {})
        response = self.connection.getresponse()
        response.read()
        return response.status, time.perf_counter() - started

    def get_polite(self, path, headers=None):
        """GET `path` as a well-behaved client: after a 429 or 503, wait as long as its
        `Retry-After` says. Returns the status."""
        self.connection.request("GET", path, headers=headers or {})
        response = self.connection.getresponse()
        response.read()
        if response.status in (429, 503):
            time.sleep(float(response.getheader("Retry-After", "1")))
        return response.status

    def get_body(self, path):
        self.connection.request("GET", path)
        response = self.connection.getresponse()
        return response.status, response.read()

    def post(self, path, body, headers):
        started = time.perf_counter()
        self.connection.request("POST", path, body, headers)
        response = self.connection.getresponse()
        response.read()
        return response.status, time.perf_counter() - started


def mcp_client(server, plugins):
    """A new MCP client token scoped to `plugins`."""
    body = json.dumps({"name": "bench", "plugins": plugins}).encode()
    status, answer = server.admin("POST", "/mcp/clients", body, "application/json")
    assert status == 201, answer
    return json.loads(answer)["token"]


def tool_call(token, name, arguments):
    """The path, body and headers of a 2026-07-28 `tools/call` of `name`."""
    meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {}}
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": {"name": name, "arguments": arguments, "_meta": meta}})
    headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json",
               "Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": name}
    return "/mcp", body, headers


def percentile(samples, p):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def summary(samples):
    return {"p50_ms": percentile(samples, 0.50) * 1000, "p99_ms": percentile(samples, 0.99) * 1000,
            "mean_ms": statistics.mean(samples) * 1000}


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def write_report(name, markdown, rows):
    out = os.path.join(ROOT, "target", name)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(markdown)
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(rows, f, indent=2)
    return out
