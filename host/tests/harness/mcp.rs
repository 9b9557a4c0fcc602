//! A small MCP client over raw HTTP for the gateway tests: 2026-07-28 requests (one POST
//! each, headers and `_meta` as the revision asks), 2025-11-25 sessions, and the two kinds
//! of notification stream, read on a thread into a channel so tests wait on events.

use super::Server;
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

pub const MODERN: &str = "2026-07-28";
pub const LEGACY: &str = "2025-11-25";

/// A client token for a new MCP client made through the admin API with `body`.
pub fn client(server: &Server, body: Value) -> (String, String) {
    let response = server
        .admin(reqwest::Method::POST, "/mcp/clients")
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(response.status(), 201, "creating client {body}");
    let created: Value = response.json().unwrap();
    (
        created["client"]["id"].as_str().unwrap().to_string(),
        created["token"].as_str().unwrap().to_string(),
    )
}

/// The JSON-RPC message in a response body: plain JSON, or the last `data:` of an SSE body.
pub fn message(text: &str) -> Value {
    if let Ok(value) = serde_json::from_str(text) {
        return value;
    }
    text.lines()
        .rev()
        .filter_map(|line| line.strip_prefix("data:"))
        .find_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .unwrap_or(Value::Null)
}

/// A client of one server's `/mcp` with one token (or none).
pub struct Mcp {
    pub url: String,
    pub token: Option<String>,
    http: Client,
}

impl Mcp {
    pub fn new(server: &Server, token: Option<&str>) -> Mcp {
        Mcp::at(&server.base, token)
    }

    /// A client of the server at `base` (for threads that outlive a borrow of it).
    pub fn at(base: &str, token: Option<&str>) -> Mcp {
        Mcp {
            url: format!("{base}/mcp"),
            token: token.map(str::to_string),
            http: Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
        }
    }

    fn post(&self) -> RequestBuilder {
        let request = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// A 2026-07-28 request as sent: the standard headers and `_meta`.
    pub fn modern(&self, method: &str, mut params: Value) -> RequestBuilder {
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "capstan-tests", "version": "1"},
        });
        let mut request = self
            .post()
            .header("mcp-protocol-version", MODERN)
            .header("mcp-method", method);
        if let Some(name) = params["name"].as_str() {
            request = request.header("mcp-name", name);
        }
        request.json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
    }

    /// Send a 2026-07-28 request: (HTTP status, the JSON-RPC message).
    pub fn request(&self, method: &str, params: Value) -> (u16, Value) {
        let response = self.modern(method, params).send().unwrap();
        let status = response.status().as_u16();
        (status, message(&response.text().unwrap()))
    }

    /// Every tool name, following cursors.
    pub fn list(&self) -> Vec<String> {
        let mut names = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let params = match &cursor {
                Some(cursor) => json!({"cursor": cursor}),
                None => json!({}),
            };
            let (status, answer) = self.request("tools/list", params);
            assert_eq!(status, 200, "{answer}");
            let result = &answer["result"];
            names.extend(
                result["tools"]
                    .as_array()
                    .unwrap_or_else(|| panic!("no tools in {answer}"))
                    .iter()
                    .map(|tool| tool["name"].as_str().unwrap().to_string()),
            );
            match result["nextCursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => return names,
            }
        }
    }

    /// Call `name` with `arguments`: the JSON-RPC message (a `result` or an `error`).
    pub fn call(&self, name: &str, arguments: Value) -> Value {
        let (status, answer) =
            self.request("tools/call", json!({"name": name, "arguments": arguments}));
        assert!(status == 200, "HTTP {status}: {answer}");
        answer
    }

    /// Open a 2026 `subscriptions/listen` stream for tool-list changes; returns once the
    /// server acknowledged it.
    pub fn listen(&self) -> Stream {
        let response = self
            .modern(
                "subscriptions/listen",
                json!({"notifications": {"toolsListChanged": true}}),
            )
            .send()
            .unwrap();
        assert_eq!(response.status(), 200);
        let stream = Stream::read(response);
        let first = stream
            .next(Duration::from_secs(10))
            .expect("acknowledgment");
        assert_eq!(
            first["method"], "notifications/subscriptions/acknowledged",
            "{first}"
        );
        stream
    }

    /// Open a 2025-11-25 session (initialize, initialized) and its GET stream.
    pub fn session(&self) -> Session<'_> {
        let response = self
            .post()
            .json(&json!({
                "jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {
                    "protocolVersion": LEGACY,
                    "capabilities": {},
                    "clientInfo": {"name": "capstan-tests", "version": "1"},
                },
            }))
            .send()
            .unwrap();
        assert_eq!(response.status(), 200);
        let id = response
            .headers()
            .get("mcp-session-id")
            .expect("a session id")
            .to_str()
            .unwrap()
            .to_string();
        let answer = message(&response.text().unwrap());
        assert_eq!(answer["result"]["protocolVersion"], LEGACY, "{answer}");
        let session = Session { mcp: self, id };
        let initialized = session
            .post()
            .json(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .send()
            .unwrap();
        assert_eq!(initialized.status(), 202);
        session
    }
}

/// A 2025-11-25 session.
pub struct Session<'a> {
    mcp: &'a Mcp,
    pub id: String,
}

impl Session<'_> {
    fn post(&self) -> RequestBuilder {
        self.mcp
            .post()
            .header("mcp-protocol-version", LEGACY)
            .header("mcp-session-id", &self.id)
    }

    /// A request in this session: the JSON-RPC message.
    pub fn request(&self, method: &str, params: Value) -> Value {
        let response = self
            .post()
            .json(&json!({"jsonrpc": "2.0", "id": 2, "method": method, "params": params}))
            .send()
            .unwrap();
        assert_eq!(response.status(), 200);
        message(&response.text().unwrap())
    }

    /// The session's GET stream of server messages (the server keeps what it sends before
    /// the stream opens and replays it then).
    pub fn stream(&self) -> Stream {
        let mut request = self
            .mcp
            .http
            .get(&self.mcp.url)
            .header("accept", "text/event-stream")
            .header("mcp-protocol-version", LEGACY)
            .header("mcp-session-id", &self.id);
        if let Some(token) = &self.mcp.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().unwrap();
        assert_eq!(response.status(), 200);
        Stream::read(response)
    }
}

/// Server messages arriving on a stream, in order.
pub struct Stream {
    messages: Receiver<Value>,
}

impl Stream {
    fn read(response: Response) -> Stream {
        let (send, messages) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(response).lines() {
                let Ok(line) = line else { return };
                if let Some(data) = line.strip_prefix("data:")
                    && let Ok(value) = serde_json::from_str::<Value>(data.trim())
                    && send.send(value).is_err()
                {
                    return;
                }
            }
        });
        Stream { messages }
    }

    /// The next message, waiting at most `within`.
    pub fn next(&self, within: Duration) -> Option<Value> {
        self.messages.recv_timeout(within).ok()
    }

    /// Whether the server ends the stream within `within` (messages before the end are
    /// skipped).
    pub fn ends_within(&self, within: Duration) -> bool {
        let deadline = std::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.messages.recv_timeout(left) {
                Ok(_) => continue,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return true,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => return false,
            }
        }
    }

    /// Messages already received, without waiting.
    pub fn pending(&self) -> Vec<Value> {
        self.messages.try_iter().collect()
    }
}
