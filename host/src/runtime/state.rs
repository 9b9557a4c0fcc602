//! Per-call store data: the WASI context, limits, the deadline, log accounting and the
//! plugin context. Dropped with the store when the call ends.

use super::{CallLimiter, PluginContext};
use crate::capability::jobs::RunHandle;
use crate::capability::log::{CallLog, LogLevel, LogSource, LogTarget};
use crate::capability::wasi::CapturedOutput;
use crate::capability::{CallScope, Deadline};
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Bytes of stdout (and of stderr) kept per call before the rest is dropped.
pub const STDIO_CAP_BYTES: usize = 64 * 1024;

/// The data of one call's `Store`.
pub struct CallState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: CallLimiter,
    pub(crate) plugin: Arc<PluginContext>,
    pub(crate) call_id: String,
    pub(crate) deadline: Deadline,
    pub(crate) log: CallLog,
    /// The job run this call is, if it is one.
    pub(crate) run: Option<Arc<RunHandle>>,
    stdout: CapturedOutput,
    stderr: CapturedOutput,
}

impl CallState {
    /// Fresh state for call `call_id` of `plugin` ending at `deadline` (job run `run`, if
    /// it is one): empty environment, no arguments, no preopened directories, stdio
    /// captured.
    pub fn new(
        plugin: Arc<PluginContext>,
        call_id: String,
        deadline: Deadline,
        run: Option<Arc<RunHandle>>,
    ) -> Self {
        let stdout = CapturedOutput::new(STDIO_CAP_BYTES);
        let stderr = CapturedOutput::new(STDIO_CAP_BYTES);
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .build();
        CallState {
            wasi,
            table: ResourceTable::new(),
            limiter: CallLimiter::new(&plugin.policy.limits),
            plugin,
            call_id,
            deadline,
            log: CallLog::default(),
            run,
            stdout,
            stderr,
        }
    }

    /// The call as capabilities see it.
    pub(crate) fn scope_of<'a>(
        plugin: &'a PluginContext,
        call_id: &'a str,
        deadline: Deadline,
    ) -> CallScope<'a> {
        CallScope {
            plugin: &plugin.id,
            call_id,
            deadline,
            audit: &*plugin.services.audit,
            denials: &plugin.denials,
            faults: &plugin.faults,
        }
    }

    /// Where this call's log lines go.
    pub(crate) fn log_target<'a>(plugin: &'a PluginContext, call_id: &'a str) -> LogTarget<'a> {
        LogTarget {
            plugin: &plugin.id,
            call_id,
            policy: &plugin.policy.log,
            rate: &plugin.log_rate,
            drops: &plugin.log_drops,
            sink: &*plugin.services.logs,
            audit: &*plugin.services.audit,
        }
    }

    /// Write a host line about this call into the plugin's log (a warning the plugin's
    /// author should see).
    pub(crate) fn note(&mut self, message: &str) {
        let target = Self::log_target(&self.plugin, &self.call_id);
        self.log
            .write(&target, LogLevel::Warn, LogSource::Host, message);
    }

    /// Move captured stdio into the plugin's log and report anything dropped.
    pub(crate) fn finish(&mut self) {
        let target = Self::log_target(&self.plugin, &self.call_id);
        for (capture, source, level) in [
            (&self.stdout, LogSource::Stdout, LogLevel::Info),
            (&self.stderr, LogSource::Stderr, LogLevel::Warn),
        ] {
            let (bytes, dropped) = capture.take();
            let text = String::from_utf8_lossy(&bytes);
            for line in text.lines().filter(|l| !l.is_empty()) {
                self.log.write(&target, level, source, line);
            }
            if dropped > 0 {
                let note = format!(
                    "{dropped} bytes of {} dropped (cap {STDIO_CAP_BYTES} bytes per call)",
                    source.as_str()
                );
                self.log
                    .write(&target, LogLevel::Warn, LogSource::Host, &note);
            }
        }
        self.log.finish(&target);
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl crate::bindings::capstan::plugin::types::Host for CallState {}
