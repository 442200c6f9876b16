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
    pub fn write<R>(&self, f: impl FnMut(&mut dyn Tx) -> StoreResult<R>) -> StoreResult<R> {
        let (out, commit) = self.write_pipelined(f)?;
        commit.wait();
        Ok(out)
    }

    /// As `write`, but returns as soon as the transaction is committed, possibly before
    /// it is on disk: nothing that depends on it may leave the process before
    /// [`Commit::then`] runs. What the batch writer uses, so that it can run the next
    /// batch while this one's fsync runs.
    pub fn write_pipelined<R>(
        &self,
        mut f: impl FnMut(&mut dyn Tx) -> StoreResult<R>,
    ) -> StoreResult<(R, Commit)> {
        let mut attempt = 0;
        loop {
            let mut out = None;
            let mut once = |tx: &mut dyn Tx| -> StoreResult<()> {
                out = Some(f(tx)?);
                Ok(())
            };
            let result = match self {
                Database::Sqlite(db) => db
                    .commit_once(&mut once)
                    .map(|n| Commit(Some((db.clone(), n)))),
                // PostgreSQL's COMMIT returns once the commit is on disk.
                Database::Postgres(db) => db.write_once(&mut once).map(|()| Commit(None)),
            };
            match result {
                Ok(commit) => {
                    let out = out.ok_or_else(|| StoreError::Other("no result".into()))?;
                    return Ok((out, commit));
                }
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

    /// Blocks until every commit so far is on disk, or `max` has passed (at once on
    /// PostgreSQL, whose commits are on disk when they return).
    pub fn settle(&self, max: std::time::Duration) {
        if let Database::Sqlite(db) = self {
            db.settle(max);
        }
    }

    /// Brings the planner's statistics up to date now (PostgreSQL's `ANALYZE`, which
    /// autovacuum runs some time after a large change; nothing on SQLite, whose search
    /// reads FTS5's own counts). Blocking.
    pub fn analyze(&self) -> StoreResult<()> {
        match self {
            Database::Sqlite(_) => Ok(()),
            Database::Postgres(db) => db.analyze(),
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

/// A committed transaction of `Database::write_pipelined`, which may not be on disk yet.
#[must_use = "a commit may not be on disk yet: wait for it or pass `then` what depends on it"]
pub struct Commit(Option<(Arc<sqlite::SqliteDb>, u64)>);

impl Commit {
    /// Blocks until the commit is on disk.
    pub fn wait(self) {
        if let Some((db, n)) = self.0 {
            db.wait_durable(n);
        }
    }

    /// Runs `f` once the commit is on disk: on SQLite on the fsync thread, in commit order
    /// (so `f` must be quick: send answers); on PostgreSQL at once, on this thread.
    pub fn then(self, f: impl FnOnce() + Send + 'static) {
        match self.0 {
            Some((db, n)) => db.after_durable(n, Box::new(f)),
            None => f(),
        }
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
