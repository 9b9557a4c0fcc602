//! `log`: always granted. Lines are levelled, tagged with plugin and call id, capped in
//! size, counted per call and rate-limited per plugin so a flood cannot starve the host.

mod batched;
mod host;
mod limiter;
mod sink;

pub use batched::BatchedLogs;
pub use limiter::{CallLog, RateLimiter};
pub use sink::{LogQuery, LogRecord, LogSink, LogSource, MemoryLogs, mirror_to_tracing};

use super::{CapabilityId, CapabilityInfo, Direction};
use crate::runtime::CallState;
use wasmtime::component::{HasSelf, Linker};

/// Registry entry.
pub const INFO: CapabilityInfo = CapabilityInfo {
    id: CapabilityId::Log,
    name: "log",
    key: "log",
    interface: "log",
    direction: Direction::Import,
};

/// Link the real implementation (log is never denied).
pub(crate) fn link(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    crate::bindings::capstan::plugin::log::add_to_linker::<CallState, HasSelf<CallState>>(
        linker,
        |state| state,
    )
}
