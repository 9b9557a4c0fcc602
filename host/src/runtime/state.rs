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
    pub(crate) wasi: CallWasi,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: CallLimiter,
    pub(crate) plugin: Arc<PluginContext>,
    pub(crate) call_id: String,
    pub(crate) deadline: Deadline,
    pub(crate) log: CallLog,
    /// The job run this call is, if it is one.
    pub(crate) run: Option<Arc<RunHandle>>,
}

/// A call's WASI context, built the first time the guest reaches a WASI interface: most
/// calls never do, and building one (two seeded random generators, two stdio captures)
/// cost about 3 % of a fresh-instance no-op call (`benches/callgrind-guard`).
#[derive(Default)]
pub(crate) struct CallWasi {
    built: Option<BuiltWasi>,
}

/// The context and the captures of its stdout and stderr.
struct BuiltWasi {
    ctx: WasiCtx,
    stdout: CapturedOutput,
    stderr: CapturedOutput,
}

impl CallWasi {
    /// The context, built now on first use: empty environment, no arguments, no
    /// preopened directories, stdout and stderr captured.
    pub(crate) fn ctx(&mut self) -> &mut WasiCtx {
        &mut self
            .built
            .get_or_insert_with(|| {
                let stdout = CapturedOutput::new(STDIO_CAP_BYTES);
                let stderr = CapturedOutput::new(STDIO_CAP_BYTES);
                let ctx = WasiCtx::builder()
                    .stdout(stdout.clone())
                    .stderr(stderr.clone())
                    .build();
                BuiltWasi {
                    ctx,
                    stdout,
                    stderr,
                }
            })
            .ctx
    }

    /// The captured stdout and stderr, if the guest reached WASI at all.
    fn captures(&self) -> Option<[&CapturedOutput; 2]> {
        self.built
            .as_ref()
            .map(|built| [&built.stdout, &built.stderr])
    }
}

impl CallState {
    /// Fresh state for call `call_id` of `plugin` ending at `deadline` (job run `run`, if
    /// it is one); its WASI context is built on first use ([`CallWasi`]).
    pub fn new(
        plugin: Arc<PluginContext>,
        call_id: String,
        deadline: Deadline,
        run: Option<Arc<RunHandle>>,
    ) -> Self {
        CallState {
            wasi: CallWasi::default(),
            table: ResourceTable::new(),
            limiter: CallLimiter::new(&plugin.policy.limits),
            plugin,
            call_id,
            deadline,
            log: CallLog::default(),
            run,
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
        let captures = self
            .wasi
            .captures()
            .into_iter()
            .flat_map(|[stdout, stderr]| {
                [
                    (stdout, LogSource::Stdout, LogLevel::Info),
                    (stderr, LogSource::Stderr, LogLevel::Warn),
                ]
            });
        for (capture, source, level) in captures {
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
            ctx: self.wasi.ctx(),
            table: &mut self.table,
        }
    }
}

impl crate::bindings::capstan::plugin::types::Host for CallState {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wasi_context_is_built_on_first_use_and_only_then_captures_stdio() {
        let mut wasi = CallWasi::default();
        assert!(
            wasi.captures().is_none(),
            "a call that never reaches WASI builds nothing"
        );
        wasi.ctx();
        let [stdout, stderr] = wasi.captures().expect("built on first use");
        assert_eq!(stdout.take(), (Vec::new(), 0));
        assert_eq!(stderr.take(), (Vec::new(), 0));
    }
}
