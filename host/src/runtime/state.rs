//! Per-call store data: the WASI context, limits, log accounting and the plugin context.

use super::{CallLimiter, PluginContext};
use crate::capability::log::{CallLog, LogSource};
use crate::capability::wasi::CapturedOutput;
use crate::policy::LogLevel;
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Bytes of stdout (and of stderr) kept per call before the rest is dropped.
pub const STDIO_CAP_BYTES: usize = 64 * 1024;

/// The data of one call's `Store`; dropped with the store when the call ends.
pub struct CallState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: CallLimiter,
    pub(crate) plugin: Arc<PluginContext>,
    pub(crate) call_id: String,
    pub(crate) log: CallLog,
    stdout: CapturedOutput,
    stderr: CapturedOutput,
}

impl CallState {
    /// Fresh state for call `call_id` of `plugin`: empty environment, no arguments,
    /// no preopened directories, stdio captured.
    pub fn new(plugin: Arc<PluginContext>, call_id: String) -> Self {
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
            log: CallLog::default(),
            stdout,
            stderr,
        }
    }

    /// Move captured stdio into the plugin's log and report anything dropped.
    pub(crate) fn finish(&mut self) {
        for (capture, source, level) in [
            (&self.stdout, LogSource::Stdout, LogLevel::Info),
            (&self.stderr, LogSource::Stderr, LogLevel::Warn),
        ] {
            let (bytes, dropped) = capture.take();
            let text = String::from_utf8_lossy(&bytes);
            for line in text.lines().filter(|l| !l.is_empty()) {
                self.log
                    .write(&self.plugin, &self.call_id, level, source, line);
            }
            if dropped > 0 {
                let note = format!(
                    "{dropped} bytes of {source:?} dropped (cap {STDIO_CAP_BYTES} bytes per call)"
                );
                self.log.write(
                    &self.plugin,
                    &self.call_id,
                    LogLevel::Warn,
                    LogSource::Host,
                    &note,
                );
            }
        }
        self.log.finish(&self.plugin, &self.call_id);
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
