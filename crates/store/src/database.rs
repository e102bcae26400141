//! A thin layer over the two databases keygate runs on, so that every store operation is
//! written once: SQL with `$1`-style parameters (SQLite and PostgreSQL both accept them),
//! values as [`SqlValue`], rows decoded into [`Row`] by column name.
//!
//! SQLite: one writer connection (`BEGIN IMMEDIATE`) and a read-only pool, WAL,
//! `synchronous=FULL`. PostgreSQL: one pool; write transactions that must not interleave
//! (a quota check and its insert) lock the account row.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{Column, PgPool, Postgres, Row as _, Sqlite, SqlitePool, TypeInfo, ValueRef};

use crate::StoreError;

/// Prepared statements each PostgreSQL connection keeps (see [`Database::open_postgres`]).
const STATEMENT_CACHE_CAPACITY: usize = 512;

/// A value bound to a statement. NULLs carry their type, which PostgreSQL needs.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Integer(i64),
    Text(String),
    Bytes(Vec<u8>),
    Boolean(bool),
    NullInteger,
    NullText,
    NullBytes,
}

impl From<i64> for SqlValue {
    fn from(value: i64) -> Self {
        SqlValue::Integer(value)
    }
}

impl From<bool> for SqlValue {
    fn from(value: bool) -> Self {
        SqlValue::Boolean(value)
    }
}

impl From<&str> for SqlValue {
    fn from(value: &str) -> Self {
        SqlValue::Text(value.to_string())
    }
}

impl From<String> for SqlValue {
    fn from(value: String) -> Self {
        SqlValue::Text(value)
    }
}

impl From<&String> for SqlValue {
    fn from(value: &String) -> Self {
        SqlValue::Text(value.clone())
    }
}

impl From<&[u8]> for SqlValue {
    fn from(value: &[u8]) -> Self {
        SqlValue::Bytes(value.to_vec())
    }
}

impl From<Vec<u8>> for SqlValue {
    fn from(value: Vec<u8>) -> Self {
        SqlValue::Bytes(value)
    }
}

impl From<Option<i64>> for SqlValue {
    fn from(value: Option<i64>) -> Self {
        value.map_or(SqlValue::NullInteger, SqlValue::Integer)
    }
}

impl From<Option<&str>> for SqlValue {
    fn from(value: Option<&str>) -> Self {
        value.map_or(SqlValue::NullText, SqlValue::from)
    }
}

impl From<Option<String>> for SqlValue {
    fn from(value: Option<String>) -> Self {
        value.map_or(SqlValue::NullText, SqlValue::Text)
    }
}

impl From<Option<Vec<u8>>> for SqlValue {
    fn from(value: Option<Vec<u8>>) -> Self {
        value.map_or(SqlValue::NullBytes, SqlValue::Bytes)
    }
}

impl From<Option<&[u8]>> for SqlValue {
    fn from(value: Option<&[u8]>) -> Self {
        value.map_or(SqlValue::NullBytes, SqlValue::from)
    }
}

/// Builds a parameter array: `&params![a, b, c]` (use `.to_vec()` to extend it).
macro_rules! params {
    ($($value:expr),* $(,)?) => { [$($crate::database::SqlValue::from($value)),*] };
}
pub(crate) use params;

/// `($1, ..., $width), ($width+1, ...), ...`: the placeholders of `rows` rows of `width`
/// values, for multi-row `INSERT ... VALUES` and `IN (...)`.
pub(crate) fn value_rows(rows: usize, width: usize) -> String {
    (0..rows)
        .map(|row| {
            let placeholders: Vec<String> = (1..=width).map(|column| format!("${}", row * width + column)).collect();
            format!("({})", placeholders.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A decoded row: its values, and the column names it shares with every row of its
/// result (one copy per statement, not one per row).
#[derive(Debug, Clone, Default)]
pub struct Row {
    names: Arc<[String]>,
    values: Vec<SqlValue>,
}

fn corrupt(column: &str, expected: &str) -> StoreError {
    StoreError::Corrupt(format!("column {column} is not {expected}"))
}

/// The typed reads of a row's columns by name, which the code that turns rows into
/// domain values is written against: a [`Row`], or a row that SQLite still holds
/// ([`crate::sqlite_snapshot`]). Text and bytes are borrowed from the row.
pub trait Columns {
    fn opt_i64(&self, column: &str) -> Result<Option<i64>, StoreError>;
    fn opt_text(&self, column: &str) -> Result<Option<&str>, StoreError>;
    fn opt_blob(&self, column: &str) -> Result<Option<&[u8]>, StoreError>;
    /// A boolean: PostgreSQL's BOOLEAN, or SQLite's 0/1 integer.
    fn boolean(&self, column: &str) -> Result<bool, StoreError>;

    fn i64(&self, column: &str) -> Result<i64, StoreError> {
        self.opt_i64(column)?.ok_or_else(|| corrupt(column, "a non-null integer"))
    }

    fn text(&self, column: &str) -> Result<&str, StoreError> {
        self.opt_text(column)?.ok_or_else(|| corrupt(column, "non-null text"))
    }

    fn blob(&self, column: &str) -> Result<&[u8], StoreError> {
        self.opt_blob(column)?.ok_or_else(|| corrupt(column, "non-null bytes"))
    }
}

impl Columns for Row {
    fn opt_i64(&self, column: &str) -> Result<Option<i64>, StoreError> {
        Row::opt_i64(self, column)
    }

    fn opt_text(&self, column: &str) -> Result<Option<&str>, StoreError> {
        Row::opt_text(self, column)
    }

    fn opt_blob(&self, column: &str) -> Result<Option<&[u8]>, StoreError> {
        match self.value(column)? {
            SqlValue::Bytes(value) => Ok(Some(value)),
            SqlValue::NullInteger | SqlValue::NullText | SqlValue::NullBytes => Ok(None),
            _ => Err(corrupt(column, "bytes")),
        }
    }

    fn boolean(&self, column: &str) -> Result<bool, StoreError> {
        Row::boolean(self, column)
    }
}

impl Row {
    /// A row of `values` under the column `names` of its result.
    pub(crate) fn from_parts(names: Arc<[String]>, values: Vec<SqlValue>) -> Row {
        Row { names, values }
    }

    fn value(&self, column: &str) -> Result<&SqlValue, StoreError> {
        self.names
            .iter()
            .position(|name| name == column)
            .map(|index| &self.values[index])
            .ok_or_else(|| StoreError::Corrupt(format!("no column {column}")))
    }

    pub fn i64(&self, column: &str) -> Result<i64, StoreError> {
        self.opt_i64(column)?.ok_or_else(|| corrupt(column, "a non-null integer"))
    }

    pub fn opt_i64(&self, column: &str) -> Result<Option<i64>, StoreError> {
        match self.value(column)? {
            SqlValue::Integer(value) => Ok(Some(*value)),
            SqlValue::NullInteger | SqlValue::NullText | SqlValue::NullBytes => Ok(None),
            _ => Err(corrupt(column, "an integer")),
        }
    }

    pub fn string(&self, column: &str) -> Result<String, StoreError> {
        self.opt_string(column)?.ok_or_else(|| corrupt(column, "non-null text"))
    }

    pub fn opt_string(&self, column: &str) -> Result<Option<String>, StoreError> {
        match self.value(column)? {
            SqlValue::Text(value) => Ok(Some(value.clone())),
            SqlValue::NullInteger | SqlValue::NullText | SqlValue::NullBytes => Ok(None),
            _ => Err(corrupt(column, "text")),
        }
    }

    /// Non-null text, borrowed from the row.
    pub fn text(&self, column: &str) -> Result<&str, StoreError> {
        self.opt_text(column)?.ok_or_else(|| corrupt(column, "non-null text"))
    }

    /// Text or NULL, borrowed from the row.
    pub fn opt_text(&self, column: &str) -> Result<Option<&str>, StoreError> {
        match self.value(column)? {
            SqlValue::Text(value) => Ok(Some(value)),
            SqlValue::NullInteger | SqlValue::NullText | SqlValue::NullBytes => Ok(None),
            _ => Err(corrupt(column, "text")),
        }
    }

    pub fn bytes(&self, column: &str) -> Result<Vec<u8>, StoreError> {
        self.opt_bytes(column)?.ok_or_else(|| corrupt(column, "non-null bytes"))
    }

    pub fn opt_bytes(&self, column: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self.value(column)? {
            SqlValue::Bytes(value) => Ok(Some(value.clone())),
            SqlValue::NullInteger | SqlValue::NullText | SqlValue::NullBytes => Ok(None),
            _ => Err(corrupt(column, "bytes")),
        }
    }

    /// A boolean: PostgreSQL's BOOLEAN, or SQLite's 0/1 integer.
    pub fn boolean(&self, column: &str) -> Result<bool, StoreError> {
        match self.value(column)? {
            SqlValue::Boolean(value) => Ok(*value),
            SqlValue::Integer(value) => Ok(*value != 0),
            _ => Err(corrupt(column, "a boolean")),
        }
    }

    /// The first column, as an integer (for `SELECT COUNT(*)` and `RETURNING id`).
    pub fn first_i64(&self) -> Result<i64, StoreError> {
        match self.values.first() {
            Some(SqlValue::Integer(value)) => Ok(*value),
            Some(SqlValue::Boolean(value)) => Ok(i64::from(*value)),
            _ => Err(StoreError::Corrupt("the first column is not an integer".into())),
        }
    }
}

/// Decodes every row of a result, the column names read once.
fn decode_rows<R: sqlx::Row>(rows: &[R], decode: fn(&R, &Arc<[String]>) -> Result<Row, StoreError>) -> Result<Vec<Row>, StoreError> {
    let Some(first) = rows.first() else { return Ok(Vec::new()) };
    let names: Arc<[String]> = first.columns().iter().map(|column| column.name().to_string()).collect();
    rows.iter().map(|row| decode(row, &names)).collect()
}

fn decode_sqlite_row(row: &SqliteRow, names: &Arc<[String]>) -> Result<Row, StoreError> {
    let mut values = Vec::with_capacity(row.len());
    for index in 0..row.len() {
        let raw = row.try_get_raw(index)?;
        // The storage class of this value, not the declared type: SQLite is dynamically typed.
        let value = if raw.is_null() {
            SqlValue::NullText
        } else {
            match raw.type_info().name() {
                "INTEGER" | "BOOLEAN" => SqlValue::Integer(row.try_get::<i64, _>(index)?),
                "BLOB" => SqlValue::Bytes(row.try_get::<Vec<u8>, _>(index)?),
                "REAL" => SqlValue::Integer(row.try_get::<f64, _>(index)? as i64),
                _ => SqlValue::Text(row.try_get::<String, _>(index)?),
            }
        };
        values.push(value);
    }
    Ok(Row { names: names.clone(), values })
}

fn decode_postgres_row(row: &PgRow, names: &Arc<[String]>) -> Result<Row, StoreError> {
    let mut values = Vec::with_capacity(row.len());
    for (index, column) in row.columns().iter().enumerate() {
        let raw = row.try_get_raw(index)?;
        let value = if raw.is_null() {
            SqlValue::NullText
        } else {
            match column.type_info().name() {
                "INT8" => SqlValue::Integer(row.try_get::<i64, _>(index)?),
                "INT4" => SqlValue::Integer(i64::from(row.try_get::<i32, _>(index)?)),
                "INT2" => SqlValue::Integer(i64::from(row.try_get::<i16, _>(index)?)),
                "BOOL" => SqlValue::Boolean(row.try_get::<bool, _>(index)?),
                "BYTEA" => SqlValue::Bytes(row.try_get::<Vec<u8>, _>(index)?),
                "TEXT" | "VARCHAR" | "NAME" | "BPCHAR" => SqlValue::Text(row.try_get::<String, _>(index)?),
                other => return Err(StoreError::Corrupt(format!("unsupported PostgreSQL type {other} in column {}", column.name()))),
            }
        };
        values.push(value);
    }
    Ok(Row { names: names.clone(), values })
}

macro_rules! bind_all {
    ($query:expr, $values:expr) => {{
        let mut query = $query;
        for value in $values {
            query = match value {
                SqlValue::Integer(value) => query.bind(*value),
                SqlValue::Text(value) => query.bind(value.as_str()),
                SqlValue::Bytes(value) => query.bind(value.as_slice()),
                SqlValue::Boolean(value) => query.bind(*value),
                SqlValue::NullInteger => query.bind(None::<i64>),
                SqlValue::NullText => query.bind(None::<String>),
                SqlValue::NullBytes => query.bind(None::<Vec<u8>>),
            };
        }
        query
    }};
}

/// Which SQL dialect a statement is for, where the two differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// `haystack` contains `needle` (case-sensitive), as SQL.
    pub fn contains(self, haystack: &str, needle: &str) -> String {
        match self {
            Dialect::Sqlite => format!("instr({haystack}, {needle}) > 0"),
            Dialect::Postgres => format!("strpos({haystack}, {needle}) > 0"),
        }
    }
}

/// The database a store runs on, and how many statements it has run.
#[derive(Debug, Clone)]
pub struct Database {
    pools: Pools,
    statements: Arc<AtomicU64>,
}

#[derive(Debug, Clone)]
enum Pools {
    /// `path`: the database file, which the full load reads on a connection of its own
    /// ([`crate::sqlite_snapshot`]).
    Sqlite {
        writer: SqlitePool,
        reader: SqlitePool,
        path: Arc<std::path::Path>,
    },
    Postgres {
        pool: PgPool,
    },
}

/// An open transaction on either database; dropped without commit, it rolls back.
pub struct Transaction {
    inner: TransactionInner,
    statements: Arc<AtomicU64>,
    /// PostgreSQL: this transaction holds the change feed's advisory lock.
    holds_change_feed_lock: bool,
    /// PostgreSQL: a group commit's transaction, which notifies followers once, at its end.
    grouped: bool,
}

enum TransactionInner {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Transaction")
    }
}

/// Gives `path` mode 0600, creating it empty first when `create` and it is missing (SQLite
/// then finds an empty file and makes a database of it).
fn make_owner_only(path: &std::path::Path, create: bool) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        if create && !path.exists() {
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(StoreError::Io)?;
        }
        if path.exists() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(StoreError::Io)?;
        }
    }
    #[cfg(not(unix))]
    let _ = (path, create);
    Ok(())
}

impl Database {
    /// Opens (creating if needed) an SQLite database file and migrates it. The file and
    /// its WAL and shared-memory files are readable by the owner only (0600), whatever the
    /// umask: they hold every key digest, AccessKey ciphertext and password hash.
    pub async fn open_sqlite(path: &std::path::Path) -> Result<Database, StoreError> {
        make_owner_only(path, true)?;
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk before it is acknowledged, in WAL mode too.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // One writer connection serializes writes inside this process.
        let writer = SqlitePoolOptions::new().max_connections(1).connect_with(options.clone()).await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let reader = SqlitePoolOptions::new().max_connections(4).connect_with(options.read_only(true)).await?;
        // SQLite gives the WAL and shared-memory files the database file's mode; make sure.
        for suffix in ["-wal", "-shm"] {
            let mut companion = path.as_os_str().to_owned();
            companion.push(suffix);
            make_owner_only(std::path::Path::new(&companion), false)?;
        }
        Ok(Database { pools: Pools::Sqlite { writer, reader, path: Arc::from(path) }, statements: Arc::default() })
    }

    /// Connects to PostgreSQL and migrates it.
    pub async fn open_postgres(url: &str) -> Result<Database, StoreError> {
        // Each connection keeps its statements prepared. A group commit's statements differ
        // with the batch's size (one per size up to its 64 requests, for each of its
        // multi-row statements), and so do a follower's: with sqlx's default of 100, they
        // pushed one another out and were prepared again and again.
        let mut options = PgConnectOptions::from_str(url)?.statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
        // A statement kept prepared is planned again at every run with its values and the
        // tables' sizes of the moment, not once for good: with PostgreSQL's default, a
        // statement prepared while `api_keys` was small (a fresh deployment, a new schema)
        // kept the plan made then, a sequential scan of the keys, while the table grew; the
        // key reads of every group commit and every follower then took longer with every
        // key (docs/PERFORMANCE.md, "Plans made when the tables were small"). An operator's
        // own `plan_cache_mode` in the URL's options is left as it is.
        if !url.contains("plan_cache_mode") {
            options = options.options([("plan_cache_mode", "force_custom_plan")]);
        }
        let pool = PgPoolOptions::new().max_connections(8).acquire_timeout(Duration::from_secs(5)).connect_with(options).await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Database { pools: Pools::Postgres { pool }, statements: Arc::default() })
    }

    pub fn dialect(&self) -> Dialect {
        match &self.pools {
            Pools::Sqlite { .. } => Dialect::Sqlite,
            Pools::Postgres { .. } => Dialect::Postgres,
        }
    }

    /// How many statements this database (and every transaction on it) has run since it
    /// was opened: tests and benchmarks count what an operation costs with it.
    pub fn statements_run(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    fn count_statement(&self) {
        self.statements.fetch_add(1, Ordering::Relaxed);
    }

    /// A write transaction. SQLite takes the write lock at once (`BEGIN IMMEDIATE`).
    pub async fn begin_write(&self) -> Result<Transaction, StoreError> {
        let inner = match &self.pools {
            Pools::Sqlite { writer, .. } => TransactionInner::Sqlite(writer.begin_with("BEGIN IMMEDIATE").await?),
            Pools::Postgres { pool } => TransactionInner::Postgres(pool.begin().await?),
        };
        Ok(Transaction { inner, statements: self.statements.clone(), holds_change_feed_lock: false, grouped: false })
    }

    /// A write transaction that will append to the change feed. PostgreSQL takes the
    /// change feed's advisory lock first, before any row lock: every transaction that
    /// writes the feed then takes its locks in the same order (the feed, then rows), so a
    /// group commit holding the feed across many requests' rows cannot deadlock with one.
    pub async fn begin_change(&self) -> Result<Transaction, StoreError> {
        let mut transaction = self.begin_write().await?;
        transaction.lock_change_feed().await?;
        Ok(transaction)
    }

    /// A read-only transaction that sees one consistent snapshot.
    pub async fn begin_snapshot(&self) -> Result<Transaction, StoreError> {
        let inner = match &self.pools {
            Pools::Sqlite { reader, .. } => TransactionInner::Sqlite(reader.begin().await?),
            Pools::Postgres { pool } => {
                TransactionInner::Postgres(pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?)
            }
        };
        Ok(Transaction { inner, statements: self.statements.clone(), holds_change_feed_lock: false, grouped: false })
    }

    pub async fn fetch_all(&self, sql: &str, values: &[SqlValue]) -> Result<Vec<Row>, StoreError> {
        self.count_statement();
        match &self.pools {
            Pools::Sqlite { reader, .. } => decode_rows(&bind_all!(sqlx::query(sql), values).fetch_all(reader).await?, decode_sqlite_row),
            Pools::Postgres { pool } => decode_rows(&bind_all!(sqlx::query(sql), values).fetch_all(pool).await?, decode_postgres_row),
        }
    }

    pub async fn fetch_optional(&self, sql: &str, values: &[SqlValue]) -> Result<Option<Row>, StoreError> {
        Ok(self.fetch_all(sql, values).await?.into_iter().next())
    }

    pub async fn fetch_one(&self, sql: &str, values: &[SqlValue]) -> Result<Row, StoreError> {
        self.fetch_optional(sql, values).await?.ok_or_else(|| StoreError::Database(sqlx::Error::RowNotFound))
    }

    /// A statement outside any transaction, on the writer (SQLite) or the pool.
    pub async fn execute(&self, sql: &str, values: &[SqlValue]) -> Result<u64, StoreError> {
        self.count_statement();
        Ok(match &self.pools {
            Pools::Sqlite { writer, .. } => bind_all!(sqlx::query(sql), values).execute(writer).await?.rows_affected(),
            Pools::Postgres { pool } => bind_all!(sqlx::query(sql), values).execute(pool).await?.rows_affected(),
        })
    }

    /// On SQLite, runs `read` on a snapshot of the database read through rusqlite on a
    /// connection of its own, on a blocking thread ([`crate::sqlite_snapshot`]); `None` on
    /// PostgreSQL.
    pub(crate) async fn read_sqlite_snapshot<T: Send + 'static>(
        &self,
        read: impl FnOnce(&crate::sqlite_snapshot::Snapshot) -> Result<T, StoreError> + Send + 'static,
    ) -> Option<Result<T, StoreError>> {
        match &self.pools {
            Pools::Sqlite { path, .. } => {
                Some(crate::sqlite_snapshot::read_snapshot(path.to_path_buf(), self.statements.clone(), read).await)
            }
            Pools::Postgres { .. } => None,
        }
    }

    /// The PostgreSQL pool, for the change-feed listener.
    pub fn postgres_pool(&self) -> Option<&PgPool> {
        match &self.pools {
            Pools::Postgres { pool } => Some(pool),
            Pools::Sqlite { .. } => None,
        }
    }
}

impl Transaction {
    pub fn dialect(&self) -> Dialect {
        match self.inner {
            TransactionInner::Sqlite(_) => Dialect::Sqlite,
            TransactionInner::Postgres(_) => Dialect::Postgres,
        }
    }

    pub async fn fetch_all(&mut self, sql: &str, values: &[SqlValue]) -> Result<Vec<Row>, StoreError> {
        self.statements.fetch_add(1, Ordering::Relaxed);
        match &mut self.inner {
            TransactionInner::Sqlite(transaction) => {
                decode_rows(&bind_all!(sqlx::query(sql), values).fetch_all(&mut **transaction).await?, decode_sqlite_row)
            }
            TransactionInner::Postgres(transaction) => {
                decode_rows(&bind_all!(sqlx::query(sql), values).fetch_all(&mut **transaction).await?, decode_postgres_row)
            }
        }
    }

    pub async fn fetch_optional(&mut self, sql: &str, values: &[SqlValue]) -> Result<Option<Row>, StoreError> {
        Ok(self.fetch_all(sql, values).await?.into_iter().next())
    }

    pub async fn fetch_one(&mut self, sql: &str, values: &[SqlValue]) -> Result<Row, StoreError> {
        self.fetch_optional(sql, values).await?.ok_or_else(|| StoreError::Database(sqlx::Error::RowNotFound))
    }

    /// Rows affected.
    pub async fn execute(&mut self, sql: &str, values: &[SqlValue]) -> Result<u64, StoreError> {
        self.statements.fetch_add(1, Ordering::Relaxed);
        Ok(match &mut self.inner {
            TransactionInner::Sqlite(transaction) => bind_all!(sqlx::query(sql), values).execute(&mut **transaction).await?.rows_affected(),
            TransactionInner::Postgres(transaction) => {
                bind_all!(sqlx::query(sql), values).execute(&mut **transaction).await?.rows_affected()
            }
        })
    }

    /// Runs `sql`, one or more statements without parameters, in one round trip (the
    /// simple query protocol): a group commit's savepoints between two requests.
    pub(crate) async fn execute_script(&mut self, sql: &'static str) -> Result<(), StoreError> {
        self.statements.fetch_add(1, Ordering::Relaxed);
        match &mut self.inner {
            // A `&str` without arguments goes as a simple query.
            TransactionInner::Sqlite(transaction) => {
                sqlx::Executor::execute(&mut **transaction, sql).await?;
            }
            TransactionInner::Postgres(transaction) => {
                sqlx::Executor::execute(&mut **transaction, sql).await?;
            }
        }
        Ok(())
    }

    /// Serializes writers of one account (quota checks): PostgreSQL locks the account row;
    /// SQLite's `BEGIN IMMEDIATE` already serializes every writer.
    pub async fn lock_account(&mut self, account_id: i64) -> Result<(), StoreError> {
        if self.dialect() == Dialect::Postgres {
            self.execute("SELECT account_id FROM accounts WHERE account_id = $1 FOR UPDATE", &params![account_id]).await?;
        }
        Ok(())
    }

    /// [`Transaction::lock_account`] for several accounts in one statement, in order of id
    /// (a group commit's batch locks the accounts of all its requests before the first).
    pub async fn lock_accounts(&mut self, account_ids: &[i64]) -> Result<(), StoreError> {
        if self.dialect() == Dialect::Postgres && !account_ids.is_empty() {
            let sql = format!(
                "SELECT account_id FROM accounts WHERE account_id IN {} ORDER BY account_id FOR UPDATE",
                value_rows(1, account_ids.len())
            );
            let values: Vec<SqlValue> = account_ids.iter().map(|&account_id| SqlValue::from(account_id)).collect();
            self.execute(&sql, &values).await?;
        }
        Ok(())
    }

    /// PostgreSQL: takes the change feed's transaction-scoped advisory lock, once (the
    /// lock that serializes version assignment). SQLite's writer is already alone.
    pub async fn lock_change_feed(&mut self) -> Result<(), StoreError> {
        if self.dialect() == Dialect::Postgres && !self.holds_change_feed_lock {
            self.execute("SELECT pg_advisory_xact_lock($1)", &params![crate::feed::CHANGE_FEED_LOCK]).await?;
            self.holds_change_feed_lock = true;
        }
        Ok(())
    }

    /// Marks this transaction as a group commit's: its changes notify followers once, at
    /// the end, instead of once each.
    pub(crate) fn set_grouped(&mut self) {
        self.grouped = true;
    }

    pub(crate) fn is_grouped(&self) -> bool {
        self.grouped
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        match self.inner {
            TransactionInner::Sqlite(transaction) => transaction.commit().await?,
            TransactionInner::Postgres(transaction) => transaction.commit().await?,
        }
        Ok(())
    }

    /// Rolls back now, releasing its locks before this returns (a drop rolls back later,
    /// when the connection is next used).
    pub async fn rollback(self) -> Result<(), StoreError> {
        match self.inner {
            TransactionInner::Sqlite(transaction) => transaction.rollback().await?,
            TransactionInner::Postgres(transaction) => transaction.rollback().await?,
        }
        Ok(())
    }
}
