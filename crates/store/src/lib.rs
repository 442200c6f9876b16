//! Storage for onestock: the `Tx` trait of `onestock-core`, implemented on SQLite (the
//! embedded default, a file) and on PostgreSQL (production). The backend is picked once,
//! from the database URL's scheme, when the server starts.
//!
//! Architecture Invariant: this is the only crate that knows SQL or which database runs.

mod page_cache;
pub mod postgres;
pub mod sqlite;

use std::sync::Arc;

use onestock_core::storage::{StoreError, StoreResult, Tx};

/// How many times a transaction that hit a serialization failure or deadlock is run
/// again before the error reaches the caller. Each retry starts from scratch.
pub const WRITE_RETRIES_MAX: usize = 8;

/// An open database: a writer and readers. Cheap to clone.
#[derive(Clone)]
pub enum Database {
    Sqlite(Arc<sqlite::SqliteDb>),
    Postgres(Arc<postgres::PgDb>),
}

impl Database {
    /// Opens `sqlite:PATH` (created if missing) or `postgres://...`, and applies the
    /// migrations.
    pub fn open(url: &str) -> StoreResult<Database> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Database::Postgres(Arc::new(postgres::PgDb::open(url)?)))
        } else if let Some(path) = url.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            Ok(Database::Sqlite(Arc::new(sqlite::SqliteDb::open(path)?)))
        } else {
            Err(StoreError::Other(format!(
                "unsupported database URL {url:?}: use sqlite:PATH or postgres://..."
            )))
        }
    }

    /// `sqlite` or `postgres`.
    pub fn kind(&self) -> &'static str {
        match self {
            Database::Sqlite(_) => "sqlite",
            Database::Postgres(_) => "postgres",
        }
    }

    /// Runs `f` in one write transaction and commits it durably (the commit is on disk
    /// when this returns). On `StoreError::Retry` the transaction is rolled back and `f`
    /// runs again, up to `WRITE_RETRIES_MAX` times. Blocking: call it from a thread of
    /// its own, not from an async task.
    pub fn write<R>(&self, mut f: impl FnMut(&mut dyn Tx) -> StoreResult<R>) -> StoreResult<R> {
        let mut attempt = 0;
        loop {
            let mut out = None;
            let mut once = |tx: &mut dyn Tx| -> StoreResult<()> {
                out = Some(f(tx)?);
                Ok(())
            };
            let result = match self {
                Database::Sqlite(db) => db.write_once(&mut once),
                Database::Postgres(db) => db.write_once(&mut once),
            };
            match result {
                Ok(()) => return out.ok_or_else(|| StoreError::Other("no result".into())),
                Err(StoreError::Retry(why)) if attempt < WRITE_RETRIES_MAX => {
                    attempt += 1;
                    tracing::debug!(attempt, %why, "retrying transaction");
                    std::thread::sleep(std::time::Duration::from_millis(
                        (attempt as u64) * (1 + rand_jitter()),
                    ));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Runs `f` in a read-only transaction on a reader connection. Blocking.
    pub fn read<R>(&self, f: impl FnOnce(&mut dyn Tx) -> StoreResult<R>) -> StoreResult<R> {
        let mut f = Some(f);
        let mut out = None;
        let mut once = |tx: &mut dyn Tx| -> StoreResult<()> {
            if let Some(f) = f.take() {
                out = Some(f(tx)?);
            }
            Ok(())
        };
        match self {
            Database::Sqlite(db) => db.read_once(&mut once)?,
            Database::Postgres(db) => db.read_once(&mut once)?,
        }
        out.ok_or_else(|| StoreError::Other("no result".into()))
    }
}

/// A few milliseconds of jitter so two processes that deadlocked do not retry in step.
fn rand_jitter() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::from(d.subsec_nanos() % 5))
        .unwrap_or(1)
}
