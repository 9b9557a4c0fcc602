//! The `sql` double: an in-memory SQLite database per test thread, with the manifest's
//! migrations applied on first use (from `[capabilities.sql.migrations]` or the crate's
//! `migrations/*.sql`, as the export macro embeds them).

use super::{Capability, with};
use crate::Error;
use crate::sql::{Rows, Statement, Value};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ToSql, params_from_iter};
use std::cell::RefCell;

thread_local! {
    static DATABASE: RefCell<Option<Connection>> = const { RefCell::new(None) };
}

/// Forget the database (the next call starts a fresh one, migrated again).
pub(super) fn reset() {
    DATABASE.with(|db| *db.borrow_mut() = None);
}

struct Param<'a>(&'a Value);

impl ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self.0 {
            Value::Null => ValueRef::Null,
            Value::Integer(n) => ValueRef::Integer(*n),
            Value::Real(x) => ValueRef::Real(*x),
            Value::Text(text) => ValueRef::Text(text.as_bytes()),
            Value::Blob(bytes) => ValueRef::Blob(bytes),
        }))
    }
}

fn invalid(error: rusqlite::Error) -> Error {
    Error::InvalidInput(error.to_string())
}

/// Run `work` on the test's database, after the host's checks (declared, not withheld).
fn on_database<R>(work: impl FnOnce(&mut Connection) -> Result<R, Error>) -> Result<R, Error> {
    let migrations = with(|s| {
        s.check(Capability::Sql)?;
        Ok::<_, Error>(s.declared().migrations.clone())
    })?;
    DATABASE.with(|db| {
        let mut db = db.borrow_mut();
        if db.is_none() {
            let conn = Connection::open_in_memory().map_err(invalid)?;
            for (name, sql) in &migrations {
                conn.execute_batch(sql)
                    .map_err(|e| Error::Internal(format!("migration `{name}` failed: {e}")))?;
            }
            *db = Some(conn);
        }
        work(db.as_mut().expect("opened above"))
    })
}

pub(crate) fn execute(sql: &str, params: &[Value]) -> Result<u64, Error> {
    on_database(|conn| {
        conn.execute(sql, params_from_iter(params.iter().map(Param)))
            .map(|n| n as u64)
            .map_err(invalid)
    })
}

pub(crate) fn query(sql: &str, params: &[Value]) -> Result<Rows, Error> {
    on_database(|conn| {
        let mut statement = conn.prepare(sql).map_err(invalid)?;
        let columns: Vec<String> = statement.column_names().map(str::to_string).collect();
        let mut rows = statement
            .query(params_from_iter(params.iter().map(Param)))
            .map_err(invalid)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(invalid)? {
            let values = (0..columns.len())
                .map(|index| {
                    Ok(match row.get_ref(index)? {
                        ValueRef::Null => Value::Null,
                        ValueRef::Integer(n) => Value::Integer(n),
                        ValueRef::Real(x) => Value::Real(x),
                        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                    })
                })
                .collect::<rusqlite::Result<Vec<Value>>>()
                .map_err(invalid)?;
            out.push(values);
        }
        Ok(Rows { columns, rows: out })
    })
}

pub(crate) fn batch(statements: &[Statement]) -> Result<Vec<u64>, Error> {
    on_database(|conn| {
        let tx = conn.transaction().map_err(invalid)?;
        let changed = statements
            .iter()
            .map(|s| {
                tx.execute(&s.sql, params_from_iter(s.params.iter().map(Param)))
                    .map(|n| n as u64)
            })
            .collect::<rusqlite::Result<Vec<u64>>>()
            .map_err(invalid)?;
        tx.commit().map_err(invalid)?;
        Ok(changed)
    })
}
