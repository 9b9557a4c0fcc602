//! What a plugin reaches when it calls `sql` without the grant.

use crate::bindings::capstan::plugin::sql::{Host, Rows, Statement, Value};
use crate::bindings::capstan::plugin::types::Error;
use crate::capability::{CallScope, CapabilityId};
use wasmtime::component::HasData;

/// Marker selecting the deny implementation when linking.
pub(super) struct Withheld;

impl HasData for Withheld {
    type Data<'a> = CallScope<'a>;
}

impl Host for CallScope<'_> {
    fn execute(&mut self, _statement: String, _params: Vec<Value>) -> Result<u64, Error> {
        Err(self.refuse(CapabilityId::Sql, "execute"))
    }

    fn query(&mut self, _statement: String, _params: Vec<Value>) -> Result<Rows, Error> {
        Err(self.refuse(CapabilityId::Sql, "query"))
    }

    fn batch(&mut self, _statements: Vec<Statement>) -> Result<Vec<u64>, Error> {
        Err(self.refuse(CapabilityId::Sql, "batch"))
    }
}
