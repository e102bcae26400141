//! A read-only snapshot of an SQLite database read through rusqlite on a connection of its
//! own, for the full load of the registry (the start, and every resync of a follower).
//!
//! sqlx's SQLite driver runs each connection on a worker thread, copies every column value
//! out of SQLite and sends each row to the task through a channel: for a million keys that
//! was most of the start's time. Here the statements run on the calling thread (a blocking
//! one: [`read_snapshot`] takes it from tokio's blocking pool), and a row's values are read
//! where SQLite holds them, borrowed for as long as the row is current. The SQL is the
//! store's own, with the same `$1` parameters and the same [`SqlValue`]s and [`Row`]s as
//! [`crate::database`]; only this module and `database` know the drivers.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::OpenFlags;

use crate::database::{Columns, Row, SqlValue};
use crate::StoreError;

impl rusqlite::ToSql for SqlValue {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            SqlValue::Integer(value) => ToSqlOutput::from(*value),
            SqlValue::Text(value) => ToSqlOutput::from(value.as_str()),
            SqlValue::Bytes(value) => ToSqlOutput::from(value.as_slice()),
            SqlValue::Boolean(value) => ToSqlOutput::from(*value),
            SqlValue::NullInteger | SqlValue::NullText | SqlValue::NullBytes => ToSqlOutput::from(rusqlite::types::Null),
        })
    }
}

/// One read transaction on a read-only connection of its own: every statement sees the
/// database as it was at the first one (WAL), until the snapshot is dropped.
pub(crate) struct Snapshot {
    connection: rusqlite::Connection,
    statements: Arc<AtomicU64>,
}

/// Runs `read` on a snapshot of the SQLite database at `path`, on a thread of tokio's
/// blocking pool, counting its statements in `statements`.
pub(crate) async fn read_snapshot<T: Send + 'static>(
    path: PathBuf,
    statements: Arc<AtomicU64>,
    read: impl FnOnce(&Snapshot) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let outcome = tokio::task::spawn_blocking(move || {
        let snapshot = Snapshot::begin(&path, statements)?;
        read(&snapshot)
    })
    .await;
    match outcome {
        Ok(result) => result,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(error) => Err(StoreError::Refused(format!("the read of the database was cancelled: {error}"))),
    }
}

impl Snapshot {
    fn begin(path: &Path, statements: Arc<AtomicU64>) -> Result<Snapshot, StoreError> {
        // The pool's read connections are opened the same way: read-only, and waiting for
        // a writer's lock rather than failing at once.
        let connection = rusqlite::Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        connection.busy_timeout(Duration::from_secs(10))?;
        connection.execute_batch("BEGIN")?;
        Ok(Snapshot { connection, statements })
    }

    /// Every row of `sql`, decoded as [`crate::database::Database::fetch_all`] decodes them.
    pub(crate) fn fetch_all(&self, sql: &str, values: &[SqlValue]) -> Result<Vec<Row>, StoreError> {
        let mut rows = Vec::new();
        self.for_each_row(sql, values, |row| {
            rows.push(row.to_row()?);
            Ok(())
        })?;
        Ok(rows)
    }

    /// Calls `each` with every row of `sql` in turn, its values borrowed from SQLite: none
    /// is copied unless `each` copies it.
    pub(crate) fn for_each_row(
        &self,
        sql: &str,
        values: &[SqlValue],
        mut each: impl FnMut(&BorrowedRow<'_>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.statements.fetch_add(1, Ordering::Relaxed);
        let mut statement = self.connection.prepare(sql)?;
        let names: Arc<[String]> = statement.column_names().into_iter().map(str::to_string).collect();
        let mut rows = statement.query(rusqlite::params_from_iter(values))?;
        while let Some(row) = rows.next()? {
            each(&BorrowedRow { names: &names, row })?;
        }
        Ok(())
    }
}

/// The current row of a statement, read in place.
pub(crate) struct BorrowedRow<'a> {
    names: &'a Arc<[String]>,
    row: &'a rusqlite::Row<'a>,
}

impl BorrowedRow<'_> {
    fn value(&self, column: &str) -> Result<ValueRef<'_>, StoreError> {
        let index = self.names.iter().position(|name| name == column).ok_or_else(|| StoreError::Corrupt(format!("no column {column}")))?;
        Ok(self.row.get_ref(index)?)
    }

    /// The row copied out, as [`crate::database`] decodes an SQLite row: by each value's
    /// storage class, not its declared type.
    fn to_row(&self) -> Result<Row, StoreError> {
        let values = (0..self.names.len())
            .map(|index| {
                Ok(match self.row.get_ref(index)? {
                    ValueRef::Null => SqlValue::NullText,
                    ValueRef::Integer(value) => SqlValue::Integer(value),
                    ValueRef::Real(value) => SqlValue::Integer(value as i64),
                    ValueRef::Text(bytes) => SqlValue::Text(text(bytes)?.to_string()),
                    ValueRef::Blob(bytes) => SqlValue::Bytes(bytes.to_vec()),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Row::from_parts(self.names.clone(), values))
    }
}

fn text(bytes: &[u8]) -> Result<&str, StoreError> {
    std::str::from_utf8(bytes).map_err(|_| StoreError::Corrupt("text that is not UTF-8".into()))
}

fn corrupt(column: &str, expected: &str) -> StoreError {
    StoreError::Corrupt(format!("column {column} is not {expected}"))
}

impl Columns for BorrowedRow<'_> {
    fn opt_i64(&self, column: &str) -> Result<Option<i64>, StoreError> {
        match self.value(column)? {
            ValueRef::Integer(value) => Ok(Some(value)),
            ValueRef::Real(value) => Ok(Some(value as i64)),
            ValueRef::Null => Ok(None),
            _ => Err(corrupt(column, "an integer")),
        }
    }

    fn opt_text(&self, column: &str) -> Result<Option<&str>, StoreError> {
        match self.value(column)? {
            ValueRef::Text(bytes) => Ok(Some(text(bytes)?)),
            ValueRef::Null => Ok(None),
            _ => Err(corrupt(column, "text")),
        }
    }

    fn opt_blob(&self, column: &str) -> Result<Option<&[u8]>, StoreError> {
        match self.value(column)? {
            ValueRef::Blob(bytes) => Ok(Some(bytes)),
            ValueRef::Null => Ok(None),
            _ => Err(corrupt(column, "bytes")),
        }
    }

    fn boolean(&self, column: &str) -> Result<bool, StoreError> {
        match self.value(column)? {
            ValueRef::Integer(value) => Ok(value != 0),
            _ => Err(corrupt(column, "a boolean")),
        }
    }
}
