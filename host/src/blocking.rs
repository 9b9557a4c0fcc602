//! Waiting inside a plugin call. A route or MCP tool call runs on one of the server's
//! async threads, so a host function that waits (a database round trip, an outbound
//! request, a query of unknown length) first hands that thread's other work to another
//! thread; on any other thread it just waits.

use tokio::runtime::{Handle, RuntimeFlavor};

/// Run `work`, which may block, without stalling the async thread it is called on.
pub fn off_executor<R>(work: impl FnOnce() -> R) -> R {
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}
