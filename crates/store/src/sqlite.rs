//! The SQLite backend: one file, one writer connection behind a mutex, a few reader
//! connections (WAL lets them read while the writer writes), embedded migrations.
//!
//! A write transaction buffers the SKU states it saves and writes only what changed
//! when it commits (see `tx.rs`), so a batch of many orders on one SKU costs one
//! `UPDATE` of the pool plus its ledger and event rows, and one durable commit. The
//! commit's fsync is made by `durability.rs`, beside the writer, before anything that
//! depends on the commit is answered.

mod codec;
mod durability;
mod search;
mod tx;
mod walbuf;

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use onestock_core::storage::{StoreError, StoreResult, Tx};
use rusqlite::Connection;

use self::codec::db_err;
use self::durability::{Durability, OnFailure, SyncFn, WalSync};
use self::tx::SqliteTx;

pub use self::durability::AfterDurable;

/// How long a connection waits for a lock another connection holds before giving up
/// with SQLITE_BUSY (then `StoreError::Retry`).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Reader connections kept open between reads; more are opened when needed and closed
/// after use.
const READERS_KEPT_MAX: usize = 4;
/// Prepared statements kept per connection: every statement of `tx.rs` fits.
const STATEMENT_CACHE_CAPACITY: usize = 96;
/// How much of the database file each connection reads through a memory map instead
/// of a `read` call per page: the map is the kernel's page cache, shared by all
/// connections, so it costs address space, not memory. Without it a search over a
/// million-page catalog spent a fifth of its time copying pages out of the kernel.
const MMAP_BYTES: i64 = 4 * 1024 * 1024 * 1024;

/// A step of a migration that SQL cannot make alone, run after its SQL in the same
/// transaction.
type MigrationStep = fn(&Connection) -> StoreResult<()>;

/// The migrations, in order; each runs once, in its own transaction, and is recorded
/// in `schema_version`.
const MIGRATIONS: &[(i64, &str, Option<MigrationStep>)] = &[
    (1, include_str!("../migrations/sqlite/0001_init.sql"), None),
    (
        2,
        include_str!("../migrations/sqlite/0002_report_and_uploads.sql"),
        None,
    ),
    (
        3,
        include_str!("../migrations/sqlite/0003_listing_tables_without_rowid.sql"),
        None,
    ),
    (
        4,
        include_str!("../migrations/sqlite/0004_title_key.sql"),
        Some(fill_title_keys),
    ),
    (
        5,
        include_str!("../migrations/sqlite/0005_title_key_index.sql"),
        None,
    ),
    (
        6,
        include_str!("../migrations/sqlite/0006_orders_appended.sql"),
        None,
    ),
];

/// Pages whose title keys are computed per statement while migrating: a bound on the
/// memory a large catalog's migration holds at once.
const TITLE_KEYS_PER_BATCH: i64 = 10_000;

/// An open SQLite database.
pub struct SqliteDb {
    path: String,
    /// SQLite allows one writer at a time; a `std::sync::Mutex` (not an async one)
    /// because every caller is a blocking thread.
    writer: Mutex<Connection>,
    /// Idle reader connections.
    readers: Mutex<Vec<Connection>>,
    /// Shared with the checkpoint thread.
    wal: Arc<WalState>,
    /// Commit numbers and the WAL's fsync, beside the writer (see `durability.rs`).
    durability: Durability,
}

impl Drop for SqliteDb {
    fn drop(&mut self) {
        self.wal.stop.store(true, Ordering::Relaxed);
    }
}

/// How often the background thread copies the WAL back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// WAL frames (pages of 4 KiB) past which the writer starts the WAL again from its
/// first frame (see `restart_wal`). SQLite does that only when a write begins with
/// every frame copied back, which a background checkpoint never sees while commits
/// keep coming: the WAL then grew without a limit (1.2 GiB in a 10 s HTTP benchmark,
/// every commit appending pages the kernel had to allocate and zero). Each start
/// again costs the writer about a millisecond (the last frames, a sync of the WAL and
/// one of the database file, and a sync of the new WAL header), so not too often:
/// 64 MiB is about a second of the busiest load measured, and stays in the page cache.
/// The WAL passes it by what is committed in up to one `CHECKPOINT_EVERY` and a pass.
const WAL_RESTART_FRAMES: i64 = 16_384;

/// When the WAL is copied back and started again: the constants above, smaller in
/// tests.
#[derive(Clone, Copy)]
struct WalLimits {
    checkpoint_every: Duration,
    restart_frames: i64,
}

impl Default for WalLimits {
    fn default() -> Self {
        WalLimits {
            checkpoint_every: CHECKPOINT_EVERY,
            restart_frames: WAL_RESTART_FRAMES,
        }
    }
}

/// How long the writer waits for the reads in progress when a first, passive attempt
/// to start the WAL again did not: with a read almost always in flight, each one
/// holds the copy or the start back, and the WAL grew as if nothing were done (911 MB
/// in a test with two readers). New reads begin from the database file and do not hold
/// it; most reads of onestock last milliseconds.
const WAL_RESTART_WAIT: Duration = Duration::from_millis(50);

/// What the checkpoint thread asks of the writer (`WalState::restart`).
const RESTART_NONE: u8 = 0;
/// Copy the last frames without waiting for anyone.
const RESTART_PASSIVE: u8 = 1;
/// The passive attempt did not start the WAL again: wait up to `WAL_RESTART_WAIT` for
/// the reads in progress (SQLite's RESTART checkpoint).
const RESTART_WAITING: u8 = 2;

/// What the checkpoint thread and the writer share.
#[derive(Default)]
struct WalState {
    /// Set by the checkpoint thread when the WAL is past `WAL_RESTART_FRAMES` and it has
    /// just copied what it could: the writer copies the rest before its next write
    /// (`RESTART_PASSIVE` or `RESTART_WAITING`).
    restart: AtomicU8,
    /// Tells the checkpoint thread to stop when the database is dropped.
    stop: AtomicBool,
}

/// `PRAGMA wal_checkpoint(MODE)` on `conn`: returns the WAL's frames (as the WAL was
/// when the checkpoint began).
fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<i64> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
        row.get(1)
    })
}

/// A disk error in a checkpoint. After a failed fsync, Linux may drop the pages and
/// report the next fsync as a success, and the checkpoint that follows lets the WAL be
/// written over: as for the WAL's own fsync (`durability::stop_the_process`), the
/// process stops rather than risk a commit it has answered.
fn stop_after_disk_error(what: &str, e: &dyn std::fmt::Display) {
    tracing::error!(error = %e, "{what} failed: stopping, so that no answered commit can be lost; restart onestock once the disk is fixed");
    eprintln!("onestock: {what} failed ({e}); stopping");
    std::process::abort();
}

fn is_disk_error(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::SystemIoFailure)
    )
}

/// One pass of the checkpoint thread: copy what the WAL has (PASSIVE never waits for
/// the writer or readers) and, past `limits.restart_frames`, sync the database file
/// and ask the writer to start the WAL again. `asked` is the WAL's length at the last
/// request: a WAL no shorter at the next pass was not started again, and the writer is
/// asked to wait for the reads in progress.
fn checkpoint_pass(
    conn: &Connection,
    db_file: &std::fs::File,
    wal: &WalState,
    limits: WalLimits,
    asked: &mut Option<i64>,
) {
    match checkpoint(conn, "PASSIVE") {
        Ok(frames) if frames > limits.restart_frames => {
            // SQLite syncs the database file only after a checkpoint that copied every
            // frame, which is the writer's: sync what this pass copied here, so the
            // writer's sync has only its own few pages to write (else it took the
            // writer 7 ms).
            if let Err(e) = db_file.sync_data() {
                stop_after_disk_error("sync of the SQLite database file after a checkpoint", &e);
                return;
            }
            let held_back = asked.is_some_and(|before| frames >= before);
            let ask = if held_back {
                RESTART_WAITING
            } else {
                RESTART_PASSIVE
            };
            wal.restart.store(ask, Ordering::Relaxed);
            *asked = Some(frames);
        }
        Ok(_) => *asked = None,
        Err(e) if is_disk_error(&e) => stop_after_disk_error("SQLite WAL checkpoint", &e),
        Err(e) => tracing::debug!(error = %e, "WAL checkpoint"),
    }
}

/// Checkpoints the WAL from a connection of its own, so the writer's commits do not pay
/// for copying it (SQLite's automatic checkpoint runs inside the committing call).
fn spawn_checkpointer(path: &str, wal: Arc<WalState>, limits: WalLimits) -> StoreResult<()> {
    let conn = Connection::open(path).map_err(db_err)?;
    configure(&conn)?;
    let db_file = std::fs::File::open(path)
        .map_err(|e| StoreError::Other(format!("open {path} for the checkpoint thread: {e}")))?;
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            let mut asked = None;
            while !wal.stop.load(Ordering::Relaxed) {
                std::thread::sleep(limits.checkpoint_every);
                checkpoint_pass(&conn, &db_file, &wal, limits, &mut asked);
            }
        })
        .map_err(|e| StoreError::Other(format!("start the checkpoint thread: {e}")))?;
    Ok(())
}

/// Copies the frames the checkpoint thread's last pass left (those committed during
/// it) from the writer's connection, between two commits, so that the next write
/// starts the WAL again. `RESTART_WAITING` first waits up to `WAL_RESTART_WAIT` for the
/// reads in progress, which hold the copy and the start back.
fn restart_wal(conn: &Connection, ask: u8) {
    let result = if ask == RESTART_WAITING {
        let _ = conn.busy_timeout(WAL_RESTART_WAIT);
        let r = checkpoint(conn, "RESTART");
        let _ = conn.busy_timeout(BUSY_TIMEOUT);
        r
    } else {
        checkpoint(conn, "PASSIVE")
    };
    match result {
        Ok(_) => {}
        Err(e) if is_disk_error(&e) => stop_after_disk_error("SQLite WAL checkpoint", &e),
        Err(e) => tracing::debug!(error = %e, "writer checkpoint to start the WAL again"),
    }
}

impl SqliteDb {
    /// Opens the file (created if missing), switches it to WAL with durable commits and
    /// applies the migrations.
    pub fn open(path: &str) -> StoreResult<SqliteDb> {
        let mut wal = WalSync::new(path);
        Self::open_with_sync(
            path,
            Box::new(move || wal.sync()),
            Box::new(durability::stop_the_process),
            WalLimits::default(),
        )
    }

    /// `open`, with `sync` as the way commits are made durable and `on_failure` as what a
    /// failed one does (tests slow the first down and record the second).
    fn open_with_sync(
        path: &str,
        sync: SyncFn,
        on_failure: OnFailure,
        limits: WalLimits,
    ) -> StoreResult<SqliteDb> {
        if let Err(rc) = walbuf::register() {
            // Correct without it, only slower: SQLite's own VFS writes each frame itself.
            tracing::warn!(code = rc, "SQLite VFS {} not registered", walbuf::VFS_NAME);
        }
        let writer = Connection::open(path).map_err(db_err)?;
        configure(&writer)?;
        let mode: String = writer
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(db_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(%mode, path, "SQLite did not switch to WAL");
        }
        migrate(&writer)?;
        writer
            .pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(db_err)?;
        // The writer reads through its own page cache, not the map: once the WAL starts
        // again, the pages a long upload reads come from the database file, and mapped
        // they count in the process's memory (a 1,000,000-row upload peaked at 265 MiB
        // mapped, against 100 MiB read).
        writer.pragma_update(None, "mmap_size", 0).map_err(db_err)?;
        // The writer's COMMIT writes the WAL frames without an fsync; the syncer thread
        // makes them durable before anything that depends on them is answered.
        writer
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(db_err)?;
        let durability = Durability::start(sync, on_failure)
            .map_err(|e| StoreError::Other(format!("start the fsync thread: {e}")))?;
        let wal = Arc::new(WalState::default());
        spawn_checkpointer(path, wal.clone(), limits)?;
        Ok(SqliteDb {
            path: path.to_owned(),
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            wal,
            durability,
        })
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction, writes what it buffered and
    /// commits; rolls back on any error. Returns once the commit is on disk.
    pub fn write_once(&self, f: &mut dyn FnMut(&mut dyn Tx) -> StoreResult<()>) -> StoreResult<()> {
        let n = self.commit_once(f)?;
        self.durability.wait(n);
        Ok(())
    }

    /// Blocks until commit `n` (of `commit_once`) is on disk.
    pub fn wait_durable(&self, n: u64) {
        self.durability.wait(n);
    }

    /// Blocks until every commit so far is on disk, or `max` has passed.
    pub fn settle(&self, max: Duration) {
        self.durability.settle(max);
    }

    /// Runs `f` on the fsync thread once `commit` is on disk.
    pub fn after_durable(&self, commit: u64, f: AfterDurable) {
        self.durability.then(commit, f);
    }

    /// As `write_once`, but returns when the commit is written, before it is on disk,
    /// with its number: whatever depends on it must wait for `after_durable`.
    pub fn commit_once(
        &self,
        f: &mut dyn FnMut(&mut dyn Tx) -> StoreResult<()>,
    ) -> StoreResult<u64> {
        let conn = self
            .writer
            .lock()
            // A writer that panicked mid-transaction leaves the mutex poisoned: take the
            // connection back and roll its transaction away rather than stop writing.
            .unwrap_or_else(|poisoned| {
                let conn = poisoned.into_inner();
                if !conn.is_autocommit() {
                    rollback(&conn);
                }
                conn
            });
        let ask = self.wal.restart.swap(RESTART_NONE, Ordering::Relaxed);
        if ask != RESTART_NONE {
            restart_wal(&conn, ask);
        }
        conn.execute_batch("BEGIN IMMEDIATE").map_err(db_err)?;
        let result = (|| {
            let mut tx = SqliteTx::new(&conn, true);
            f(&mut tx)?;
            tx.flush()
        })();
        match result {
            Ok(()) => {
                let written = self.durability.begin();
                let n = written.n;
                let committed = conn.execute_batch("COMMIT");
                drop(written);
                match committed {
                    Ok(()) => Ok(n),
                    Err(e) => {
                        rollback(&conn);
                        Err(db_err(e))
                    }
                }
            }
            Err(e) => {
                rollback(&conn);
                Err(e)
            }
        }
    }

    /// Runs `f` in a read transaction on a reader connection; its writes fail. Returns
    /// once every commit the read may have seen is on disk.
    pub fn read_once(&self, f: &mut dyn FnMut(&mut dyn Tx) -> StoreResult<()>) -> StoreResult<()> {
        let conn = self.take_reader()?;
        let result = (|| {
            conn.execute_batch("BEGIN").map_err(db_err)?;
            let mut tx = SqliteTx::new(&conn, false);
            let out = f(&mut tx);
            drop(tx);
            let end = conn.execute_batch("COMMIT").map_err(db_err);
            out.and(end)
        })();
        if result.is_err() && !conn.is_autocommit() {
            rollback(&conn);
        }
        self.give_back_reader(conn);
        self.durability.fence();
        result
    }

    fn take_reader(&self) -> StoreResult<Connection> {
        let idle = self
            .readers
            .lock()
            .map_err(|_| StoreError::Other("SQLite reader pool mutex poisoned".into()))?
            .pop();
        if let Some(conn) = idle {
            return Ok(conn);
        }
        let conn = Connection::open(&self.path).map_err(db_err)?;
        configure(&conn)?;
        // A reader never writes, whatever a caller tries.
        conn.pragma_update(None, "query_only", true)
            .map_err(db_err)?;
        Ok(conn)
    }

    fn give_back_reader(&self, conn: Connection) {
        if !conn.is_autocommit() {
            // Left inside a transaction somehow: do not reuse it.
            return;
        }
        if let Ok(mut idle) = self.readers.lock()
            && idle.len() < READERS_KEPT_MAX
        {
            idle.push(conn);
        }
    }
}

/// Settings every connection needs.
fn configure(conn: &Connection) -> StoreResult<()> {
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db_err)?;
    // FULL: the WAL is synced at every commit, so a commit returned is on disk. The
    // writer alone commits with NORMAL and its own fsync (`durability.rs`).
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(db_err)?;
    // No foreign keys are declared: a SKU's listings and pools are written together
    // from one `SkuState`, so the rows are consistent by construction.
    conn.pragma_update(None, "mmap_size", MMAP_BYTES)
        .map_err(db_err)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    // `rarray(?)`: a statement looks up a list of keys bound as one parameter
    // (`SqliteTx::prefetch_skus`).
    rusqlite::vtab::array::load_module(conn).map_err(db_err)?;
    Ok(())
}

fn rollback(conn: &Connection) {
    if let Err(e) = conn.execute_batch("ROLLBACK") {
        tracing::warn!(error = %e, "SQLite rollback failed");
    }
}

/// Applies the embedded migrations not yet recorded in `schema_version`.
fn migrate(conn: &Connection) -> StoreResult<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (
            version INTEGER PRIMARY KEY NOT NULL,
            applied_at INTEGER NOT NULL
        )",
    )
    .map_err(db_err)?;
    for &(version, sql, step) in MIGRATIONS {
        conn.execute_batch("BEGIN IMMEDIATE").map_err(db_err)?;
        let result = (|| {
            let done: bool = conn
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM schema_version WHERE version = ?1)",
                    [version],
                    |row| row.get(0),
                )
                .map_err(db_err)?;
            if !done {
                tracing::info!(version, "applying SQLite migration");
                conn.execute_batch(sql).map_err(db_err)?;
                if let Some(step) = step {
                    step(conn)?;
                }
                conn.execute(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?1, ?2)",
                    [version, codec::micros(time::OffsetDateTime::now_utc())?],
                )
                .map_err(db_err)?;
            }
            conn.execute_batch("COMMIT").map_err(db_err)
        })();
        if let Err(e) = result {
            rollback(conn);
            return Err(e);
        }
    }
    Ok(())
}

/// Migration 4's step: gives every page written before it its normalised title
/// (`onestock_core::catalog::normalize_title`), which SQL cannot compute, in batches of
/// `TITLE_KEYS_PER_BATCH` pages in page order.
fn fill_title_keys(conn: &Connection) -> StoreResult<()> {
    let mut select = conn
        .prepare(
            "SELECT page_id, title FROM catalog_page WHERE page_id > ?1
             ORDER BY page_id LIMIT ?2",
        )
        .map_err(db_err)?;
    let mut update = conn
        .prepare("UPDATE catalog_page SET title_key = ?2 WHERE page_id = ?1")
        .map_err(db_err)?;
    let mut after: i64 = 0;
    let mut filled: u64 = 0;
    loop {
        let batch: Vec<(i64, String)> = select
            .query_map([after, TITLE_KEYS_PER_BATCH], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .and_then(|rows| rows.collect())
            .map_err(db_err)?;
        let Some(&(last, _)) = batch.last() else {
            break;
        };
        for (page_id, title) in &batch {
            update
                .execute(rusqlite::params![
                    page_id,
                    onestock_core::catalog::normalize_title(title)
                ])
                .map_err(db_err)?;
        }
        filled += batch.len() as u64;
        tracing::info!(pages = filled, "filled catalog title keys");
        after = last;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use onestock_core::model::{OrderRecord, Seller, SkuState};
    use onestock_core::storage::Tx;
    use onestock_core::types::SellerId;
    use std::sync::mpsc;
    use std::time::Instant;

    /// Holds fsyncs back while closed. Open, every fsync passes: one token per fsync
    /// made the test wait for whichever fsync took the token (a checkpoint's, under
    /// load), not for the commit's.
    #[derive(Clone, Default)]
    struct Gate(Arc<(Mutex<bool>, std::sync::Condvar)>);

    impl Gate {
        fn set(&self, open: bool) {
            *self.0.0.lock().unwrap() = open;
            self.0.1.notify_all();
        }
        /// Waits while closed, for 10 s at most (a test that fails never hangs).
        fn pass(&self) {
            let guard = self.0.0.lock().unwrap();
            let _ = self
                .0
                .1
                .wait_timeout_while(guard, Duration::from_secs(10), |open| !*open);
        }
    }

    /// A database whose fsyncs wait while the returned gate is closed (it starts closed).
    fn held_back(dir: &std::path::Path) -> (SqliteDb, Gate) {
        let gate = Gate::default();
        let path = dir.join("held.db");
        let g = gate.clone();
        let db = SqliteDb::open_with_sync(
            path.to_str().unwrap(),
            Box::new(move || {
                g.pass();
                Ok(())
            }),
            Box::new(|e| panic!("fsync failed: {e}")),
            WalLimits::default(),
        )
        .unwrap();
        (db, gate)
    }

    fn seller(n: u32) -> Seller {
        Seller {
            seller_id: SellerId(format!("S{n:019}")),
            name: format!("seller {n}"),
            token_sha256: format!("{n:064}"),
            created_at: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn nothing_that_depends_on_a_commit_returns_before_its_fsync() {
        let dir = TempDir::new("held");
        let (db, gate) = held_back(&dir.0);
        let db = Arc::new(db);

        // A pipelined commit returns at once; what waits for it does not run yet.
        let n = db
            .commit_once(&mut |tx| tx.insert_seller(&seller(1)))
            .unwrap();
        let (ran, after) = mpsc::channel();
        db.after_durable(n, Box::new(move || ran.send(Instant::now()).unwrap()));

        // A read that may have seen the commit waits for its fsync too.
        let reader = {
            let db = db.clone();
            std::thread::spawn(move || {
                let mut found = None;
                db.read_once(&mut |tx| {
                    found = Some(tx.sellers(None, 10)?.len());
                    Ok(())
                })
                .unwrap();
                (found, Instant::now())
            })
        };
        std::thread::sleep(Duration::from_millis(200));
        assert!(after.try_recv().is_err(), "answered before the fsync");
        assert!(!reader.is_finished(), "a read returned before the fsync");

        let released = Instant::now();
        gate.set(true);
        let answered = after.recv_timeout(Duration::from_secs(5)).unwrap();
        let (found, read_done) = reader.join().unwrap();
        assert!(answered >= released && read_done >= released);
        assert_eq!(found, Some(1));

        // A blocking write returns only after its own fsync.
        gate.set(false);
        let writer = {
            let db = db.clone();
            std::thread::spawn(move || {
                db.write_once(&mut |tx| tx.insert_seller(&seller(2)))
                    .unwrap();
                Instant::now()
            })
        };
        std::thread::sleep(Duration::from_millis(200));
        assert!(!writer.is_finished(), "a write returned before its fsync");
        let released = Instant::now();
        gate.set(true);
        assert!(writer.join().unwrap() >= released);

        // Nothing written meanwhile: a read needs no fsync.
        db.read_once(&mut |_| Ok(())).unwrap();
    }

    /// A SKU listed in three stores: two on its shared pool (`base + 1`), one on a pool
    /// of its own (`base + 2`).
    fn listed_sku(seller: &SellerId, sku: &str, base: i64) -> SkuState {
        use onestock_core::model::{Pool, StoreListing};
        use onestock_core::types::{Asin, Condition, Fulfillment, Sku, StoreCode};
        let listing = |store: &str, pool_id, price: &str| StoreListing {
            store: StoreCode::parse(store).unwrap(),
            asin: Asin::parse("B000000001").unwrap(),
            pool_id,
            price: price.parse().unwrap(),
            fulfillment: Fulfillment::Merchant,
            start_selling_at: None,
            closed: false,
        };
        let pool = |pool_id, shared, quantity| Pool {
            pool_id,
            shared,
            quantity,
            condition: Condition::New,
            version: 3,
        };
        SkuState {
            seller_id: seller.clone(),
            sku: Sku::parse(sku).unwrap(),
            listings: vec![
                listing("CA", base + 1, "13.25"),
                listing("MX", base + 2, "210"),
                listing("US", base + 1, "9.99"),
            ],
            pools: vec![pool(base + 1, true, 25), pool(base + 2, false, 4)],
        }
    }

    /// A database file as a version that knew only the first `migrations` migrations
    /// left it.
    fn database_at_version(path: &std::path::Path, migrations: usize) -> Connection {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY NOT NULL,
             applied_at INTEGER NOT NULL)",
        )
        .unwrap();
        for &(version, sql, _) in &MIGRATIONS[..migrations] {
            conn.execute_batch(sql).unwrap();
            conn.execute(
                "INSERT INTO schema_version (version, applied_at) VALUES (?1, 0)",
                [version],
            )
            .unwrap();
        }
        conn
    }

    /// Pages written before migration 4 (no title key) get their keys when the database
    /// is opened, across more than one batch, and are then found by brand and title.
    #[test]
    fn pages_written_before_migration_4_are_found_by_title_after_it() {
        let dir = TempDir::new("migration-4");
        let path = dir.0.join("old.db");
        let pages = TITLE_KEYS_PER_BATCH + 5;
        {
            let conn = database_at_version(&path, 3);
            conn.execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
                 INSERT INTO catalog_page (asin, store, title, brand, brand_lower,
                     description, language, product_type)
                 SELECT printf('B%09d', i), 'US', 'Mug ' || i || ' Café 350 ml', 'Acme',
                        'acme', '', 'en', 'MUG' FROM n",
                [pages],
            )
            .unwrap();
        }
        let db = SqliteDb::open(path.to_str().unwrap()).unwrap();
        let us = onestock_core::types::StoreCode::parse("US").unwrap();
        let ca = onestock_core::types::StoreCode::parse("CA").unwrap();
        db.read_once(&mut |tx| {
            let found = tx.pages_by_brand_and_title(&us, "ACME", "mug10003cafe350ml")?;
            assert_eq!(found.len(), 1);
            assert_eq!(found[0].asin.as_str(), "B000010003");
            assert_eq!(found[0].title, "Mug 10003 Café 350 ml");
            let last = format!("mug{pages}cafe350ml");
            assert_eq!(tx.pages_by_brand_and_title(&us, "acme", &last)?.len(), 1);
            assert!(tx.pages_by_brand_and_title(&ca, "acme", &last)?.is_empty());
            Ok(())
        })
        .unwrap();
        let conn = Connection::open(&path).unwrap();
        let missing: i64 = conn
            .query_row(
                "SELECT count(*) FROM catalog_page WHERE title_key IS NULL",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(missing, 0);
        // A page written as an older server writes it, without a key, is refused.
        let old_insert = conn.execute(
            "INSERT INTO catalog_page (asin, store, title, brand, brand_lower, description,
                 language, product_type)
             VALUES ('B0OLDSERVER', 'US', 'Mug', 'Acme', 'acme', '', 'en', 'MUG')",
            [],
        );
        let e = old_insert.expect_err("a page without a title key was written");
        assert!(e.to_string().contains("older than"), "{e}");
    }

    #[test]
    fn listings_and_pools_written_before_migration_3_read_the_same_after_it() {
        let dir = TempDir::new("migration-3");
        let path = dir.0.join("old.db");
        let seller = SellerId("S0000000000000000001".into());
        let skus = [("A-1", 10), ("B-2", 20), ("C-3", 30)];
        {
            // The database as the previous version left it: migrations 1 and 2 only.
            let conn = database_at_version(&path, 2);
            conn.execute_batch("BEGIN").unwrap();
            let mut tx = tx::SqliteTx::new(&conn, true);
            for (sku, base) in skus {
                tx.save_sku(&listed_sku(&seller, sku, base)).unwrap();
            }
            tx.flush().unwrap();
            conn.execute_batch("COMMIT").unwrap();
        }
        let db = SqliteDb::open(path.to_str().unwrap()).unwrap();
        db.read_once(&mut |tx| {
            for (sku, base) in skus {
                let want = listed_sku(&seller, sku, base);
                assert_eq!(tx.load_sku(&want.seller_id, &want.sku)?, want);
            }
            Ok(())
        })
        .unwrap();
        // Written after the migration: a change and a new SKU, read one by one and as
        // an upload chunk reads them.
        db.write_once(&mut |tx| {
            let mut changed = listed_sku(&seller, "B-2", 20);
            changed.pools[0].quantity = 11;
            changed.listings.remove(1);
            changed.pools.remove(1);
            tx.save_sku(&changed)?;
            tx.save_sku(&listed_sku(&seller, "D-4", 40))
        })
        .unwrap();
        let other = SellerId("S0000000000000000002".into());
        db.write_once(&mut |tx| tx.save_sku(&listed_sku(&other, "A-1", 50)))
            .unwrap();
        db.write_once(&mut |tx| {
            let keys: Vec<_> = ["A-1", "B-2", "D-4", "E-5"]
                .iter()
                .map(|s| (seller.clone(), onestock_core::types::Sku::parse(s).unwrap()))
                .collect();
            // A state saved in this transaction, before the prefetch, stays as saved.
            let mut saved = listed_sku(&seller, "C-3", 30);
            saved.pools[0].quantity = 99;
            tx.save_sku(&saved)?;
            let mut wanted = keys.clone();
            wanted.push((seller.clone(), saved.sku.clone()));
            wanted.push((other.clone(), keys[0].1.clone()));
            tx.prefetch_skus(&wanted)?;
            assert_eq!(tx.load_sku(&seller, &saved.sku)?.pools[0].quantity, 99);
            assert_eq!(
                tx.load_sku(&other, &keys[0].1)?,
                listed_sku(&other, "A-1", 50)
            );
            let b = tx.load_sku(&seller, &keys[1].1)?;
            assert_eq!(b.pools.len(), 1);
            assert_eq!(b.pools[0].quantity, 11);
            assert_eq!(b.listings.len(), 2);
            assert_eq!(
                tx.load_sku(&seller, &keys[0].1)?,
                listed_sku(&seller, "A-1", 10)
            );
            assert_eq!(
                tx.load_sku(&seller, &keys[2].1)?,
                listed_sku(&seller, "D-4", 40)
            );
            let e = tx.load_sku(&seller, &keys[3].1)?;
            assert!(e.listings.is_empty() && e.pools.is_empty());
            Ok(())
        })
        .unwrap();
    }

    /// An accepted one-line order of `sku`, placed `minute` minutes into the day.
    fn order_record(store: &str, order_id: &str, sku: &str, minute: i64) -> OrderRecord {
        use onestock_core::model::{OrderLine, OrderLineResult};
        use onestock_core::types::{Sku, StoreCode};
        let seller = SellerId("S0000000000000000001".into());
        let sku = Sku::parse(sku).unwrap();
        OrderRecord {
            store: StoreCode::parse(store).unwrap(),
            order_id: order_id.to_owned(),
            lines: vec![OrderLine {
                seller_id: seller.clone(),
                sku: sku.clone(),
                quantity: 2,
            }],
            results: vec![OrderLineResult {
                seller_id: seller,
                sku,
                quantity: 2,
                pool_id: 7,
                quantity_after: 40 - minute,
                stores: vec![
                    StoreCode::parse("US").unwrap(),
                    StoreCode::parse("CA").unwrap(),
                ],
            }],
            cancelled: false,
            at: time::OffsetDateTime::UNIX_EPOCH + time::Duration::minutes(minute),
        }
    }

    /// Orders kept before migration 6 (keyed by store and id) are found, replayed and
    /// cancelled after it, in the table it appends to, and an id is still kept once.
    #[test]
    fn orders_placed_before_migration_6_are_found_and_cancelled_after_it() {
        let dir = TempDir::new("migration-6");
        let path = dir.0.join("old.db");
        // Placed out of key order: the migration keeps them in the order they came.
        let old = [
            order_record("US", "114-0000002", "MUG-1", 1),
            order_record("MX", "114-0000001", "MUG-2", 2),
            order_record("US", "114-0000001", "MUG-1", 3),
        ];
        {
            let conn = database_at_version(&path, 5);
            conn.execute_batch("BEGIN").unwrap();
            let mut tx = tx::SqliteTx::new(&conn, true);
            for order in &old {
                tx.save_order(order).unwrap();
            }
            tx.flush().unwrap();
            conn.execute_batch("COMMIT").unwrap();
        }
        let db = SqliteDb::open(path.to_str().unwrap()).unwrap();
        db.write_once(&mut |tx| {
            for order in &old {
                assert_eq!(
                    tx.order(&order.store, &order.order_id)?.as_ref(),
                    Some(order)
                );
            }
            let us = onestock_core::types::StoreCode::parse("US").unwrap();
            assert_eq!(tx.order(&us, "114-0000003")?, None);
            let mut cancelled = old[0].clone();
            cancelled.cancelled = true;
            tx.save_order(&cancelled)?;
            tx.save_order(&order_record("US", "114-0000003", "MUG-3", 4))
        })
        .unwrap();
        db.read_once(&mut |tx| {
            let first = tx.order(&old[0].store, &old[0].order_id)?.unwrap();
            assert!(first.cancelled);
            assert!(
                !tx.order(&old[2].store, &old[2].order_id)?
                    .unwrap()
                    .cancelled
            );
            Ok(())
        })
        .unwrap();
        let conn = Connection::open(&path).unwrap();
        let rows: Vec<String> = conn
            .prepare(
                "SELECT n || ' ' || store || ' ' || order_id || ' ' || cancelled
                 FROM customer_order ORDER BY n",
            )
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            [
                "1 US 114-0000002 1",
                "2 MX 114-0000001 0",
                "3 US 114-0000001 0",
                "4 US 114-0000003 0",
            ]
        );
        // The same id twice in a store is refused even by a statement that bypasses
        // the upsert.
        let twice = conn.execute(
            "INSERT INTO customer_order (store, order_id, lines, results, cancelled, at)
             VALUES ('US', '114-0000003', '', '', 0, 0)",
            [],
        );
        let e = twice.expect_err("an order id was kept twice");
        assert!(
            e.to_string().contains(
                "UNIQUE constraint failed: customer_order.store, customer_order.order_id"
            ),
            "{e}"
        );
    }

    /// A folder of its own, removed when dropped, pass or fail: a failed WAL test can
    /// leave a gigabyte behind.
    struct TempDir(std::path::PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            let dir = std::env::temp_dir()
                .join(format!("onestock-{name}-{}-{nanos}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A database with a small WAL limit whose checkpoint thread never wakes: the test
    /// runs the passes itself (`checkpoint_pass`), so what it checks does not depend on
    /// how busy the machine's cores and disk are.
    fn with_test_passes(dir: &TempDir) -> (SqliteDb, Connection, std::fs::File, WalLimits) {
        let limits = WalLimits {
            checkpoint_every: Duration::from_secs(24 * 3600),
            restart_frames: 256,
        };
        let path = dir.0.join("busy.db");
        let path = path.to_str().unwrap();
        let db = SqliteDb::open_with_sync(
            path,
            Box::new(|| Ok(())),
            Box::new(|e| panic!("fsync failed: {e}")),
            limits,
        )
        .unwrap();
        let conn = Connection::open(path).unwrap();
        configure(&conn).unwrap();
        (db, conn, std::fs::File::open(path).unwrap(), limits)
    }

    /// The WAL header's checkpoint sequence, which counts the WAL's starts again, and
    /// the file's length.
    fn wal_starts_and_bytes(dir: &TempDir) -> (u32, u64) {
        let wal = std::fs::read(dir.0.join("busy.db-wal")).unwrap();
        (
            u32::from_be_bytes(wal[12..16].try_into().unwrap()),
            wal.len() as u64,
        )
    }

    /// Commits `commits` new sellers of 3,000 bytes back to back (each at least one new
    /// 4 KiB page in the WAL), with a checkpoint pass every 100.
    fn commit_with_passes(
        db: &SqliteDb,
        conn: &Connection,
        db_file: &std::fs::File,
        limits: WalLimits,
        commits: u32,
    ) {
        let mut asked = None;
        for n in 0..commits {
            let mut s = seller(n);
            s.name = format!("{n:03000}");
            db.commit_once(&mut |tx| tx.insert_seller(&s)).unwrap();
            if n % 100 == 99 {
                checkpoint_pass(conn, db_file, &db.wal, limits, &mut asked);
            }
        }
    }

    /// At most the limit and two passes' commits of a few frames each: a WAL that
    /// never started again would hold 20,000 frames at least.
    const WAL_BYTES_MOST: u64 = 4_000 * (4096 + 24);

    #[test]
    fn the_wal_starts_again_while_commits_never_pause() {
        let dir = TempDir::new("wal-writes");
        let (db, conn, db_file, limits) = with_test_passes(&dir);
        let commits = 20_000;
        commit_with_passes(&db, &conn, &db_file, limits, commits);
        let (starts, bytes) = wal_starts_and_bytes(&dir);
        assert!(starts >= 50, "the WAL started again {starts} times");
        assert!(
            bytes <= WAL_BYTES_MOST,
            "the WAL grew to {bytes} bytes after {commits} commits (at most {WAL_BYTES_MOST})"
        );
        let mut sellers = 0;
        db.read_once(&mut |tx| {
            sellers = tx.sellers(None, 1_000_000)?.len();
            Ok(())
        })
        .unwrap();
        assert_eq!(sellers, commits as usize, "every commit is still there");
    }

    #[test]
    fn the_wal_starts_again_while_reads_never_pause() {
        let dir = TempDir::new("wal-reads");
        let (db, conn, db_file, limits) = with_test_passes(&dir);
        let db = Arc::new(db);
        // Two readers, one read or the other almost always in flight: each holds the
        // copy back while it lasts, so a passive attempt alone seldom starts the WAL
        // again (911 MB without the writer's wait, in the review that found it).
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (db, stop) = (db.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut reads = 0u32;
                    while !stop.load(Ordering::Relaxed) {
                        db.read_once(&mut |tx| tx.sellers(None, 200).map(drop))
                            .unwrap();
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        commit_with_passes(&db, &conn, &db_file, limits, 20_000);
        stop.store(true, Ordering::Relaxed);
        let reads: u32 = readers.into_iter().map(|r| r.join().unwrap()).sum();
        let (starts, bytes) = wal_starts_and_bytes(&dir);
        assert!(reads > 100, "the readers read only {reads} times");
        assert!(starts >= 20, "the WAL started again {starts} times");
        assert!(
            bytes <= 2 * WAL_BYTES_MOST,
            "the WAL grew to {bytes} bytes with reads in flight"
        );
    }
}
