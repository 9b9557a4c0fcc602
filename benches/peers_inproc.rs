//! The in-process half of `benches/peers`: one call of count-vowels (Extism's benchmark
//! workload) on the script's 4 KiB input, and of a no-op, made five ways on this machine:
//! a native Rust function (the baseline), a Capstan fresh-instance call of the `bench`
//! plugin, a kept-alive child process spoken to in JSON lines, and a process per call. Prints
//! `name nanoseconds-per-call`, the median of `--batches` batches of `--calls` calls.
//!
//! Not a criterion bench: the script runs it in rounds alternating with Extism's host.
//! `cargo bench --bench peers_inproc -- --input FILE [--calls 2000] [--batches 15]`.

use capstan_host::runtime::Request;
use capstan_host::storage::MemoryKv;
use capstan_host::{Plugin, Policy, Runtime, Services};
use std::hint::black_box;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;

#[path = "peers-kit/timing.rs"]
mod timing;
use timing::median_ns;

/// The value following `flag` on the command line (cargo adds its own `--bench`).
fn arg(flag: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1).cloned())
}

/// The vowels in `text`, counted byte by byte as every peer counts them.
fn count_vowels(text: &[u8]) -> usize {
    text.iter().filter(|b| b"aeiouAEIOU".contains(b)).count()
}

/// The answer every peer gives for `op` on `input`: count-vowels' JSON, or the no-op's `done`.
fn answer(op: &str, input: &[u8]) -> String {
    match op {
        "count-vowels" => format!("{{\"count\":{}}}", count_vowels(input)),
        _ => "done".into(),
    }
}

/// The `bench` plugin on a server-sized runtime, granted only its routes.
fn capstan_bench_plugin() -> (Runtime, Plugin) {
    let (services, _audit, _logs) = Services::in_memory();
    let services = Services {
        state: Arc::new(MemoryKv::default()),
        ..services
    };
    let runtime = Runtime::new(services).expect("runtime");
    let policy =
        Policy::parse("[defaults.capabilities.routes]\n[defaults.log]\nlevel = \"error\"\n")
            .expect("policy");
    let wasm = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/plugins/wasm32-wasip2/release/bench.wasm");
    let bytes = std::fs::read(&wasm)
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/build-plugins", wasm.display()));
    let plugin = runtime.load(&bytes, None, &policy).expect("load bench");
    (runtime, plugin)
}

fn request(method: &str, path: &str, body: &[u8]) -> Request {
    Request {
        method: method.into(),
        path: path.into(),
        query: String::new(),
        headers: Vec::new(),
        body: body.to_vec(),
    }
}

/// A child process answering one JSON line per request line (the kept-alive model).
struct LineChild {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    line: String,
}

impl LineChild {
    fn spawn() -> Self {
        let mut child = Command::new(std::env::current_exe().expect("own path"))
            .arg("--child")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawning the JSON-lines child");
        let stdin = child.stdin.take().expect("child stdin");
        let stdout = BufReader::new(child.stdout.take().expect("child stdout"));
        LineChild {
            child,
            stdin,
            stdout,
            line: String::new(),
        }
    }

    /// One request and its answer, parsed.
    fn call(&mut self, op: &str, input: &str) -> serde_json::Value {
        let mut request = serde_json::to_vec(&serde_json::json!({"op": op, "input": input}))
            .expect("request json");
        request.push(b'\n');
        self.stdin
            .write_all(&request)
            .expect("writing to the child");
        self.line.clear();
        self.stdout
            .read_line(&mut self.line)
            .expect("reading the child");
        serde_json::from_str(&self.line).expect("the child's answer")
    }
}

impl Drop for LineChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The child's side of the JSON-lines model: a request per line, an answer per line.
fn serve_lines() {
    let stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    for line in stdin.lines() {
        let line = line.expect("a request line");
        let request: serde_json::Value = serde_json::from_str(&line).expect("request json");
        let op = request["op"].as_str().unwrap_or_default();
        let input = request["input"].as_str().unwrap_or_default();
        let answer: serde_json::Value = match op {
            "count-vowels" => serde_json::json!({"count": count_vowels(input.as_bytes())}),
            _ => serde_json::json!("done"),
        };
        serde_json::to_writer(&mut stdout, &answer).expect("answer json");
        stdout.write_all(b"\n").expect("answering");
        stdout.flush().expect("answering");
    }
}

/// One process per call: the input on stdin, the answer on stdout (the job model).
fn process_call(op: &str, input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .args(["--once", op])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawning a process");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("writing the input");
    let output = child.wait_with_output().expect("the process's answer");
    assert!(output.status.success(), "the process failed");
    output.stdout
}

fn main() {
    if std::env::args().any(|a| a == "--child") {
        return serve_lines();
    }
    if let Some(op) = arg("--once") {
        let mut input = Vec::new();
        std::io::stdin().read_to_end(&mut input).expect("input");
        print!("{}", answer(&op, &input));
        return;
    }
    let input = std::fs::read(arg("--input").expect("--input FILE")).expect("reading --input");
    let text = String::from_utf8(input.clone()).expect("--input is UTF-8 text");
    let calls: u32 = arg("--calls").map_or(2000, |n| n.parse().expect("--calls N"));
    let batches: u32 = arg("--batches").map_or(15, |n| n.parse().expect("--batches N"));
    let expected = answer("count-vowels", &input);

    let (_runtime, plugin) = capstan_bench_plugin();
    let vowels = request("POST", "/count-vowels", &input);
    let noop = request("GET", "/noop", b"");
    let response = plugin.handle(&vowels).expect("count-vowels");
    assert_eq!(
        String::from_utf8_lossy(&response.body),
        expected,
        "capstan answer"
    );
    let mut child = LineChild::spawn();
    assert_eq!(
        child.call("count-vowels", &text).to_string(),
        expected,
        "child answer"
    );
    assert_eq!(
        process_call("count-vowels", &input),
        expected.as_bytes(),
        "process answer"
    );

    let mut rows = vec![
        (
            "native/noop",
            median_ns(calls, batches, || {
                black_box(answer(black_box("noop"), black_box(b"")));
            }),
        ),
        (
            "native/count-vowels",
            median_ns(calls, batches, || {
                black_box(answer(black_box("count-vowels"), black_box(&input)));
            }),
        ),
    ];
    rows.push((
        "capstan/noop",
        median_ns(calls, batches, || {
            black_box(plugin.handle(&noop).expect("noop"));
        }),
    ));
    rows.push((
        "capstan/count-vowels",
        median_ns(calls, batches, || {
            black_box(plugin.handle(&vowels).expect("count-vowels"));
        }),
    ));
    rows.push((
        "json-lines-child/noop",
        median_ns(calls, batches, || {
            black_box(child.call("noop", ""));
        }),
    ));
    rows.push((
        "json-lines-child/count-vowels",
        median_ns(calls, batches, || {
            black_box(child.call("count-vowels", &text));
        }),
    ));
    let spawn_calls = (calls / 20).max(10);
    rows.push((
        "process-per-call/noop",
        median_ns(spawn_calls, batches, || {
            black_box(process_call("noop", b""));
        }),
    ));
    rows.push((
        "process-per-call/count-vowels",
        median_ns(spawn_calls, batches, || {
            black_box(process_call("count-vowels", &input));
        }),
    ));
    for (name, ns) in rows {
        println!("{name} {ns:.0}");
    }
}
