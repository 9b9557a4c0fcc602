//! What a plugin reaches when it calls kv without the grant: the WIT `denied` error and
//! an audit record, for every function. The deny implementation needs only the call's
//! [`CallScope`].

use crate::bindings::capstan::plugin::kv::{Host, KeyPage};
use crate::bindings::capstan::plugin::types::Error;
use crate::capability::{CallScope, CapabilityId};
use wasmtime::component::HasData;

/// Marker selecting the deny implementation when linking.
pub(super) struct Withheld;

impl HasData for Withheld {
    type Data<'a> = CallScope<'a>;
}

fn refuse(scope: &CallScope<'_>, operation: &str) -> Error {
    scope.refuse(CapabilityId::Kv, operation)
}

impl Host for CallScope<'_> {
    fn get(&mut self, _key: String) -> Result<Option<Vec<u8>>, Error> {
        Err(refuse(self, "get"))
    }

    fn set(&mut self, _key: String, _value: Vec<u8>) -> Result<(), Error> {
        Err(refuse(self, "set"))
    }

    fn delete(&mut self, _key: String) -> Result<bool, Error> {
        Err(refuse(self, "delete"))
    }

    fn list_keys(
        &mut self,
        _prefix: String,
        _cursor: Option<String>,
        _limit: u32,
    ) -> Result<KeyPage, Error> {
        Err(refuse(self, "list-keys"))
    }

    fn increment(&mut self, _key: String, _delta: i64) -> Result<i64, Error> {
        Err(refuse(self, "increment"))
    }

    fn compare_and_swap(
        &mut self,
        _key: String,
        _expected: Option<Vec<u8>>,
        _value: Vec<u8>,
    ) -> Result<bool, Error> {
        Err(refuse(self, "compare-and-swap"))
    }
}
