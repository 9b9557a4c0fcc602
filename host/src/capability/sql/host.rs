//! Host side of the WIT `sql` interface: the plugin's own database through its backend.

use super::{Grant, SqlEngine};
use crate::bindings::capstan::plugin::sql::{Host, Rows, Statement, Value};
use crate::bindings::capstan::plugin::types::Error;
use crate::capability::CallScope;

/// The granted database, seen from one call.
pub struct SqlHost<'a> {
    pub scope: CallScope<'a>,
    pub grant: &'a Grant,
    pub engine: &'a dyn SqlEngine,
}

impl Host for SqlHost<'_> {
    #[tracing::instrument(level = "debug", skip_all, fields(plugin = %self.scope.plugin))]
    fn execute(&mut self, statement: String, params: Vec<Value>) -> Result<u64, Error> {
        self.engine.execute(
            self.scope.plugin,
            self.grant,
            self.scope.deadline,
            &statement,
            &params,
        )
    }

    #[tracing::instrument(level = "debug", skip_all, fields(plugin = %self.scope.plugin))]
    fn query(&mut self, statement: String, params: Vec<Value>) -> Result<Rows, Error> {
        self.engine.query(
            self.scope.plugin,
            self.grant,
            self.scope.deadline,
            &statement,
            &params,
        )
    }

    #[tracing::instrument(level = "debug", skip_all, fields(plugin = %self.scope.plugin))]
    fn batch(&mut self, statements: Vec<Statement>) -> Result<Vec<u64>, Error> {
        self.engine.batch(
            self.scope.plugin,
            self.grant,
            self.scope.deadline,
            &statements,
        )
    }
}
