//! What a plugin reaches when it calls secrets without the grant.

use crate::bindings::capstan::plugin::secrets::Host;
use crate::bindings::capstan::plugin::types::Error;
use crate::capability::{CallScope, CapabilityId};
use wasmtime::component::HasData;

/// Marker selecting the deny implementation when linking.
pub(super) struct Withheld;

impl HasData for Withheld {
    type Data<'a> = CallScope<'a>;
}

impl Host for CallScope<'_> {
    fn get(&mut self, _name: String) -> Result<String, Error> {
        Err(self.refuse(CapabilityId::Secrets, "get"))
    }
}
