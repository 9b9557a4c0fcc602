//! What a plugin reaches when it calls `events` without the grant.

use crate::bindings::capstan::plugin::events::Host;
use crate::bindings::capstan::plugin::types::Error;
use crate::capability::{CallScope, CapabilityId};
use wasmtime::component::HasData;

/// Marker selecting the deny implementation when linking.
pub(super) struct Withheld;

impl HasData for Withheld {
    type Data<'a> = CallScope<'a>;
}

impl Host for CallScope<'_> {
    fn publish(
        &mut self,
        _topic: String,
        _payload: Vec<u8>,
        _content_type: String,
    ) -> Result<String, Error> {
        Err(self.refuse(CapabilityId::Events, "publish"))
    }

    fn request(&mut self, _kind: String, _payload: Vec<u8>) -> Result<Vec<u8>, Error> {
        Err(self.refuse(CapabilityId::Events, "request"))
    }
}
