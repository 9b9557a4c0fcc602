//! The WASI baseline every plugin gets: clocks, random, stdio captured into the plugin's
//! log, an empty environment. Filesystem and sockets are never linked.

use super::Deadline;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream, WasiCli, WasiCliView};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksCtxView, WasiClocksView};
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock;
use wasmtime_wasi::p2::bindings::{cli, clocks, random};
use wasmtime_wasi::p2::{DynPollable, OutputStream, Pollable, StreamError};
use wasmtime_wasi::random::{WasiRandom, WasiRandomView};

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

/// The monotonic clock of one call: its timers never outlast the call's deadline.
pub struct BoundedClock<'a> {
    pub clocks: WasiClocksCtxView<'a>,
    pub deadline: Deadline,
}

/// Marker selecting [`BoundedClock`] when linking.
struct Bounded;

impl HasData for Bounded {
    type Data<'a> = BoundedClock<'a>;
}

/// Slack past the deadline for a cut-short timer, so that the epoch interrupt has fired
/// by the time the guest resumes and it traps instead of spinning.
const TIMER_SLACK: Duration = Duration::from_millis(10);

impl BoundedClock<'_> {
    /// `wanted` nanoseconds, cut to the time left before the deadline.
    fn bound(&self, wanted: Duration) -> u64 {
        let cap = self.deadline.remaining() + TIMER_SLACK;
        u64::try_from(wanted.min(cap).as_nanos()).unwrap_or(u64::MAX)
    }
}

impl monotonic_clock::Host for BoundedClock<'_> {
    fn now(&mut self) -> wasmtime::Result<monotonic_clock::Instant> {
        self.clocks.now()
    }

    fn resolution(&mut self) -> wasmtime::Result<monotonic_clock::Duration> {
        self.clocks.resolution()
    }

    fn subscribe_instant(
        &mut self,
        when: monotonic_clock::Instant,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let now = self.clocks.now()?;
        let wait = self.bound(Duration::from_nanos(when.saturating_sub(now)));
        self.clocks.subscribe_duration(wait)
    }

    fn subscribe_duration(
        &mut self,
        duration: monotonic_clock::Duration,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let wait = self.bound(Duration::from_nanos(duration));
        self.clocks.subscribe_duration(wait)
    }
}

/// Link the baseline interfaces (and nothing else) into `linker`, the monotonic clock
/// through `clock` so that no WASI wait outlasts the call's deadline.
pub fn link_baseline<T: WasiView + 'static>(
    linker: &mut Linker<T>,
    clock: fn(&mut T) -> BoundedClock<'_>,
) -> wasmtime::Result<()> {
    let l = linker;
    wasmtime_wasi_io::bindings::wasi::io::error::add_to_linker::<T, HasIo>(l, |t| t.ctx().table)?;
    wasmtime_wasi_io::bindings::wasi::io::poll::add_to_linker::<T, HasIo>(l, |t| t.ctx().table)?;
    wasmtime_wasi_io::bindings::wasi::io::streams::add_to_linker::<T, HasIo>(l, |t| t.ctx().table)?;
    clocks::wall_clock::add_to_linker::<T, WasiClocks>(l, <T as WasiClocksView>::clocks)?;
    monotonic_clock::add_to_linker::<T, Bounded>(l, clock)?;
    random::random::add_to_linker::<T, WasiRandom>(l, <T as WasiRandomView>::random)?;
    random::insecure::add_to_linker::<T, WasiRandom>(l, <T as WasiRandomView>::random)?;
    random::insecure_seed::add_to_linker::<T, WasiRandom>(l, <T as WasiRandomView>::random)?;
    let cli = <T as WasiCliView>::cli;
    cli::exit::add_to_linker::<T, WasiCli>(l, cli)?;
    cli::environment::add_to_linker::<T, WasiCli>(l, cli)?;
    cli::stdin::add_to_linker::<T, WasiCli>(l, cli)?;
    cli::stdout::add_to_linker::<T, WasiCli>(l, cli)?;
    cli::stderr::add_to_linker::<T, WasiCli>(l, cli)?;
    cli::terminal_input::add_to_linker::<T, WasiCli>(l, cli)?;
    cli::terminal_output::add_to_linker::<T, WasiCli>(l, cli)?;
    cli::terminal_stdin::add_to_linker::<T, WasiCli>(l, cli)?;
    cli::terminal_stdout::add_to_linker::<T, WasiCli>(l, cli)?;
    cli::terminal_stderr::add_to_linker::<T, WasiCli>(l, cli)?;
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
        assert_eq!(classify("capstan:plugin/kv@0.2.0"), None);
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
