//! What a plugin reaches when it reads config without the grant, on every spelling.

use super::bindings::{draft, rc};
use crate::bindings::capstan::plugin::config::Host;
use crate::bindings::capstan::plugin::types::Error;
use crate::capability::{CallScope, CapabilityId};
use wasmtime::component::HasData;

/// Marker selecting the deny implementation when linking.
pub(super) struct Withheld;

impl HasData for Withheld {
    type Data<'a> = CallScope<'a>;
}

impl Host for CallScope<'_> {
    fn get(&mut self, _key: String) -> Result<Option<String>, Error> {
        Err(self.refuse(CapabilityId::Config, "get"))
    }

    fn get_all(&mut self) -> Result<Vec<(String, String)>, Error> {
        Err(self.refuse(CapabilityId::Config, "get-all"))
    }
}

/// The standard interface has no `denied` case: the refusal is an `upstream` error
/// carrying the same sentence.
fn upstream(scope: &CallScope<'_>, operation: &str) -> String {
    match scope.refuse(CapabilityId::Config, operation) {
        Error::Denied(why) => why,
        other => crate::wit_error::describe(&other),
    }
}

macro_rules! standard_deny {
    ($spelling:ident) => {
        impl $spelling::Host for CallScope<'_> {
            fn get(&mut self, _key: String) -> Result<Option<String>, $spelling::Error> {
                Err($spelling::Error::Upstream(upstream(self, "get")))
            }

            fn get_all(&mut self) -> Result<Vec<(String, String)>, $spelling::Error> {
                Err($spelling::Error::Upstream(upstream(self, "get-all")))
            }
        }
    };
}

standard_deny!(rc);
standard_deny!(draft);
