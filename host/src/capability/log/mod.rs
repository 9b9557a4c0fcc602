//! `log`: always granted. Lines are levelled, tagged with plugin and call id, capped in
//! size, counted per call and rate-limited per plugin so a flood cannot starve the host.

mod host;
mod limiter;
mod settings;
mod sink;

pub use host::LogHost;
pub use limiter::{CallLog, DropReport, DropReports, LogTarget, Redactions};
pub use settings::{LogLevel, LogPolicy, LogSettings};
pub use sink::{LogQuery, LogRecord, LogSink, LogSource, MemoryLogs, mirror_to_tracing};

use super::{Baseline, CapabilityId, CapabilityInfo, Direction};
use wasmtime::component::{HasData, Linker};

/// The `log` capability.
pub struct Log;

impl Baseline for Log {
    const INFO: CapabilityInfo = CapabilityInfo {
        id: CapabilityId::Log,
        name: "log",
        key: "log",
        interface: "log",
        standard: &[],
        exports: &[],
        direction: Direction::Import,
    };

    type View<'a> = LogHost<'a>;

    fn link<T: 'static>(
        linker: &mut Linker<T>,
        view: fn(&mut T) -> LogHost<'_>,
    ) -> wasmtime::Result<()> {
        crate::bindings::capstan::plugin::log::add_to_linker::<T, Log>(linker, view)
    }
}

impl HasData for Log {
    type Data<'a> = LogHost<'a>;
}
