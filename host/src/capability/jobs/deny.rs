//! What a plugin reaches when it calls `job` without the `jobs` grant: the attempt is
//! audited and nothing happens (the interface has no error to return).

use crate::bindings::capstan::plugin::job::Host;
use crate::capability::{CallScope, CapabilityId};
use wasmtime::component::HasData;

/// Marker selecting the deny implementation when linking.
pub(super) struct Withheld;

impl HasData for Withheld {
    type Data<'a> = CallScope<'a>;
}

impl Host for CallScope<'_> {
    fn heartbeat(&mut self, _progress: Option<String>) {
        self.refuse(CapabilityId::Jobs, "heartbeat");
    }

    fn cancelled(&mut self) -> bool {
        self.refuse(CapabilityId::Jobs, "cancelled");
        false
    }
}
