//! What a plugin reaches when it calls outbound HTTP without the grant.

use crate::bindings::capstan::plugin::http::{Host, Request, Response};
use crate::bindings::capstan::plugin::types::Error;
use crate::capability::{CallScope, CapabilityId};
use wasmtime::component::HasData;

/// Marker selecting the deny implementation when linking.
pub(super) struct Withheld;

impl HasData for Withheld {
    type Data<'a> = CallScope<'a>;
}

impl Host for CallScope<'_> {
    fn send(&mut self, _request: Request) -> Result<Response, Error> {
        Err(self.refuse(CapabilityId::Http, "send"))
    }
}
