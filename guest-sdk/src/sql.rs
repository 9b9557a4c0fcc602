//! A relational database of the plugin's own (capability `sql`). Parameters are
//! positional: `?` works on every host (the portable dialect), `?1` on SQLite and `$1` on
//! PostgreSQL. Put migrations in `migrations/*.sql` beside `capstan.toml`: the export macro
//! embeds them and the host applies them at install, in name order.
//!
//! ```ignore
//! use capstan_guest::prelude::*;
//!
//! sql::execute("INSERT INTO notes (body) VALUES (?)", &["hello".into()])?;
//! for row in sql::query("SELECT id, body FROM notes", &[])?.iter() {
//!     let id: i64 = row.get("id")?;
//!     let body: String = row.get("body")?;
//! }
//! ```

use crate::Error;

pub use crate::bindings::capstan::plugin::sql::{Rows, Statement, Value};

/// Run `statement` (no result rows); returns the rows it changed.
pub fn execute(statement: &str, params: &[Value]) -> Result<u64, Error> {
    #[cfg(target_arch = "wasm32")]
    return crate::bindings::capstan::plugin::sql::execute(statement, params).map_err(Error::from);
    #[cfg(not(target_arch = "wasm32"))]
    return crate::testing::sql::execute(statement, params);
}

/// Run `statement` and return its rows (`too-large` past the policy's caps).
pub fn query(statement: &str, params: &[Value]) -> Result<Rows, Error> {
    #[cfg(target_arch = "wasm32")]
    return crate::bindings::capstan::plugin::sql::query(statement, params).map_err(Error::from);
    #[cfg(not(target_arch = "wasm32"))]
    return crate::testing::sql::query(statement, params);
}

/// Run `statements` in one transaction: all or none.
pub fn batch(statements: &[Statement]) -> Result<Vec<u64>, Error> {
    #[cfg(target_arch = "wasm32")]
    return crate::bindings::capstan::plugin::sql::batch(statements).map_err(Error::from);
    #[cfg(not(target_arch = "wasm32"))]
    return crate::testing::sql::batch(statements);
}

impl Statement {
    /// A statement of a batch.
    pub fn new(sql: &str, params: &[Value]) -> Statement {
        Statement {
            sql: sql.to_string(),
            params: params.to_vec(),
        }
    }
}

impl Rows {
    /// Each row, with access by column name.
    pub fn iter(&self) -> impl Iterator<Item = Row<'_>> {
        self.rows.iter().map(|values| Row {
            columns: &self.columns,
            values,
        })
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// One row of a result.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    columns: &'a [String],
    values: &'a [Value],
}

impl Row<'_> {
    /// Column `name` as a `T`, naming the column when it is missing or of another type.
    pub fn get<T: FromValue>(&self, name: &str) -> Result<T, Error> {
        let index = self
            .columns
            .iter()
            .position(|column| column == name)
            .ok_or_else(|| Error::InvalidInput(format!("no column `{name}` in the result")))?;
        T::from_value(&self.values[index])
            .ok_or_else(|| Error::InvalidInput(format!("column `{name}` is not a {}", T::NAME)))
    }

    /// The raw values, in column order.
    pub fn values(&self) -> &[Value] {
        self.values
    }
}

/// A Rust type a column value converts to.
pub trait FromValue: Sized {
    /// What the type is called in errors.
    const NAME: &'static str;
    fn from_value(value: &Value) -> Option<Self>;
}

impl FromValue for i64 {
    const NAME: &'static str = "integer";
    fn from_value(value: &Value) -> Option<i64> {
        match value {
            Value::Integer(n) => Some(*n),
            _ => None,
        }
    }
}

impl FromValue for f64 {
    const NAME: &'static str = "real";
    fn from_value(value: &Value) -> Option<f64> {
        match value {
            Value::Real(x) => Some(*x),
            Value::Integer(n) => Some(*n as f64),
            _ => None,
        }
    }
}

impl FromValue for bool {
    const NAME: &'static str = "boolean (integer)";
    fn from_value(value: &Value) -> Option<bool> {
        i64::from_value(value).map(|n| n != 0)
    }
}

impl FromValue for String {
    const NAME: &'static str = "text";
    fn from_value(value: &Value) -> Option<String> {
        match value {
            Value::Text(text) => Some(text.clone()),
            _ => None,
        }
    }
}

impl FromValue for Vec<u8> {
    const NAME: &'static str = "blob";
    fn from_value(value: &Value) -> Option<Vec<u8>> {
        match value {
            Value::Blob(bytes) => Some(bytes.clone()),
            _ => None,
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    const NAME: &'static str = T::NAME;
    fn from_value(value: &Value) -> Option<Option<T>> {
        match value {
            Value::Null => Some(None),
            other => T::from_value(other).map(Some),
        }
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Integer(n)
    }
}

impl From<f64> for Value {
    fn from(x: f64) -> Value {
        Value::Real(x)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Integer(i64::from(b))
    }
}

impl From<&str> for Value {
    fn from(text: &str) -> Value {
        Value::Text(text.to_string())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Value {
        Value::Text(text)
    }
}

impl From<Vec<u8>> for Value {
    fn from(bytes: Vec<u8>) -> Value {
        Value::Blob(bytes)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(value: Option<T>) -> Value {
        value.map_or(Value::Null, Into::into)
    }
}
