//! The WASI baseline every plugin gets: clocks, random, stdio captured into the plugin's
//! log, an empty environment. Filesystem and sockets are never linked.

use crate::runtime::CallState;
use std::sync::{Arc, Mutex};
use wasmtime::component::{HasData, Linker, ResourceTable};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream, WasiCli, WasiCliView};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
use wasmtime_wasi::p2::bindings::{cli, clocks, random, sync};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};
use wasmtime_wasi::random::WasiRandom;

/// How the host treats a WASI import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasiClass {
    /// Linked for every plugin.
    Baseline,
    /// Never linked; the text says why, for the refusal message.
    Forbidden(&'static str),
}

/// Classify `wasi:<package>/<interface>@<version>`; `None` if not a WASI import.
pub fn classify(import: &str) -> Option<WasiClass> {
    let rest = import.strip_prefix("wasi:")?;
    let (package, interface) = rest.split_once('/')?;
    let interface = interface.split('@').next().unwrap_or(interface);
    Some(match package {
        "io" | "clocks" | "random" => WasiClass::Baseline,
        "cli" if BASELINE_CLI.contains(&interface) => WasiClass::Baseline,
        "cli" => WasiClass::Forbidden("this wasi:cli interface is not provided to plugins"),
        "filesystem" => WasiClass::Forbidden(
            "filesystem access is not available to plugins; use the kv capability for state",
        ),
        "sockets" => WasiClass::Forbidden(
            "raw sockets are not available to plugins; use the capstan:plugin/http capability",
        ),
        "http" => WasiClass::Forbidden(
            "wasi:http is not provided; use the capstan:plugin/http capability",
        ),
        _ => return None,
    })
}

const BASELINE_CLI: [&str; 10] = [
    "environment",
    "exit",
    "stdin",
    "stdout",
    "stderr",
    "terminal-input",
    "terminal-output",
    "terminal-stdin",
    "terminal-stdout",
    "terminal-stderr",
];

struct HasIo;

impl HasData for HasIo {
    type Data<'a> = &'a mut ResourceTable;
}

/// Link the baseline interfaces (and nothing else) into `linker`.
pub(crate) fn link_baseline(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    let l = linker;
    wasmtime_wasi_io::bindings::wasi::io::error::add_to_linker::<CallState, HasIo>(l, |t| {
        &mut t.table
    })?;
    sync::io::poll::add_to_linker::<CallState, HasIo>(l, |t| &mut t.table)?;
    sync::io::streams::add_to_linker::<CallState, HasIo>(l, |t| &mut t.table)?;
    clocks::wall_clock::add_to_linker::<CallState, WasiClocks>(l, CallState::clocks)?;
    clocks::monotonic_clock::add_to_linker::<CallState, WasiClocks>(l, CallState::clocks)?;
    random::random::add_to_linker::<CallState, WasiRandom>(l, |t| t.wasi.random())?;
    random::insecure::add_to_linker::<CallState, WasiRandom>(l, |t| t.wasi.random())?;
    random::insecure_seed::add_to_linker::<CallState, WasiRandom>(l, |t| t.wasi.random())?;
    cli::exit::add_to_linker::<CallState, WasiCli>(l, CallState::cli)?;
    cli::environment::add_to_linker::<CallState, WasiCli>(l, CallState::cli)?;
    cli::stdin::add_to_linker::<CallState, WasiCli>(l, CallState::cli)?;
    cli::stdout::add_to_linker::<CallState, WasiCli>(l, CallState::cli)?;
    cli::stderr::add_to_linker::<CallState, WasiCli>(l, CallState::cli)?;
    cli::terminal_input::add_to_linker::<CallState, WasiCli>(l, CallState::cli)?;
    cli::terminal_output::add_to_linker::<CallState, WasiCli>(l, CallState::cli)?;
    cli::terminal_stdin::add_to_linker::<CallState, WasiCli>(l, CallState::cli)?;
    cli::terminal_stdout::add_to_linker::<CallState, WasiCli>(l, CallState::cli)?;
    cli::terminal_stderr::add_to_linker::<CallState, WasiCli>(l, CallState::cli)?;
    Ok(())
}

/// A guest stdout/stderr that keeps the first `cap` bytes and counts the rest, so a
/// flood neither fails the guest's writes nor grows host memory.
#[derive(Clone)]
pub struct CapturedOutput {
    inner: Arc<Mutex<Captured>>,
}

#[derive(Default)]
struct Captured {
    bytes: Vec<u8>,
    cap: usize,
    dropped: u64,
}

impl CapturedOutput {
    /// A capture keeping at most `cap` bytes.
    pub fn new(cap: usize) -> Self {
        CapturedOutput {
            inner: Arc::new(Mutex::new(Captured {
                cap,
                ..Captured::default()
            })),
        }
    }

    /// The kept bytes and how many were dropped, leaving the capture empty.
    pub fn take(&self) -> (Vec<u8>, u64) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let dropped = std::mem::take(&mut inner.dropped);
        (std::mem::take(&mut inner.bytes), dropped)
    }

    fn append(&self, data: &[u8]) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let room = inner.cap.saturating_sub(inner.bytes.len());
        let kept = room.min(data.len());
        inner.bytes.extend_from_slice(&data[..kept]);
        inner.dropped += (data.len() - kept) as u64;
    }
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CapturedOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for CapturedOutput {
    fn write(&mut self, bytes: bytes::Bytes) -> Result<(), StreamError> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for CapturedOutput {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.append(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_baseline_and_forbidden() {
        assert_eq!(classify("wasi:io/streams@0.2.6"), Some(WasiClass::Baseline));
        assert_eq!(
            classify("wasi:cli/environment@0.2.0"),
            Some(WasiClass::Baseline)
        );
        assert!(matches!(
            classify("wasi:filesystem/types@0.2.6"),
            Some(WasiClass::Forbidden(_))
        ));
        assert!(matches!(
            classify("wasi:sockets/tcp@0.2.6"),
            Some(WasiClass::Forbidden(_))
        ));
        assert_eq!(classify("capstan:plugin/kv@0.1.0"), None);
        assert_eq!(classify("wasi:unknown/thing@1.0.0"), None);
    }

    #[test]
    fn capture_keeps_cap_and_counts_overflow() {
        let capture = CapturedOutput::new(4);
        capture.append(b"abcdef");
        capture.append(b"gh");
        assert_eq!(capture.take(), (b"abcd".to_vec(), 4));
        assert_eq!(capture.take(), (Vec::new(), 0));
    }
}
