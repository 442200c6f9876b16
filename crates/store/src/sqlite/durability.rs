//! Durable answers with the fsync off the writer's path.
//!
//! The writer commits with `synchronous=NORMAL`: SQLite writes the transaction's WAL
//! frames (and stays consistent after a crash or power loss) but does not fsync them.
//! This module's thread fsyncs the WAL file instead, and nothing that depends on a
//! commit is let out before an fsync that began after that commit's frames were
//! written:
//!
//! - a caller of `Database::write` waits for it ([`Durability::wait`]);
//! - the batch writer hands its answers to [`Durability::then`] and goes on with the
//!   next batch while the fsync runs, so the commit's CPU and the disk's wait overlap
//!   instead of taking turns (the point of the module: at 64 clients the fsync was half
//!   the writer's cycle);
//! - a read waits, after it ran, for every commit that had begun by then
//!   ([`Durability::fence`]), so no answer can show a state a power loss could still
//!   take back.
//!
//! So every answer stays as durable as with `synchronous=FULL`, one fsync per batch;
//! what changes is only that the next batch need not wait for it. See docs/decisions.md,
//! "Durable answers, fsync beside the writer".
//!
//! Commit numbers: [`Durability::begin`] numbers a commit before its `COMMIT` runs (a
//! reader can see the commit as soon as `COMMIT` has written it, so the number must
//! exist by then), [`Durability::written`] records it once `COMMIT` returned (the frames
//! are in the file, so an fsync from now on covers them).

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Work to run once a commit is on disk.
pub type AfterDurable = Box<dyn FnOnce() + Send>;

/// How the syncer makes the written commits durable: the WAL's fsync in production, a
/// recording stand-in in tests.
pub(crate) type SyncFn = Box<dyn FnMut() -> io::Result<()> + Send>;

/// What a failed fsync does. Production: [`stop_the_process`]. After a failed `fsync`
/// Linux may drop the dirty pages and report the next `fsync` as a success, so no
/// retry can tell whether the frames reached the disk: nothing may be answered. Tests
/// record the failure instead.
pub(crate) type OnFailure = Box<dyn Fn(&io::Error) + Send + Sync>;

/// The production answer to a failed fsync, as PostgreSQL's (a PANIC): stop at once,
/// with nothing answered that may not be on disk. At the next start SQLite recovers the
/// database from its WAL, consistent, with every commit that reached the disk.
pub(crate) fn stop_the_process(e: &io::Error) {
    tracing::error!(error = %e, "fsync of the SQLite WAL failed: stopping, so that nothing is answered that may not be on disk; restart onestock once the disk is fixed");
    eprintln!("onestock: fsync of the SQLite WAL failed ({e}); stopping");
    std::process::abort();
}

/// After a failed fsync whose `OnFailure` returned (tests only), how long before the
/// next try. Waiters keep waiting.
const SYNC_RETRY_AFTER: Duration = Duration::from_millis(100);

#[derive(Default)]
struct State {
    /// Highest commit whose `COMMIT` has returned.
    written: u64,
    /// Highest commit known to be on disk.
    durable: u64,
    /// Work waiting for a commit, in commit order.
    pending: VecDeque<(u64, AfterDurable)>,
    stop: bool,
}

struct Shared {
    /// Highest commit numbered; read by the read fence without the lock.
    begun: AtomicU64,
    /// The way to make commits durable; one fsync at a time, on whichever thread asks.
    sync: Mutex<SyncFn>,
    on_failure: OnFailure,
    state: Mutex<State>,
    /// The syncer thread waits here for written commits, and for pending work that
    /// another thread's fsync made durable.
    work: Condvar,
    /// Waiters for `written` (a commit whose COMMIT is still running) and for `durable`.
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is counters and boxed closures; a panic elsewhere leaves it usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The commit counters of one database and its syncer thread. Dropping it stops the
/// thread once everything written is durable and every pending work has run.
pub(crate) struct Durability {
    shared: Arc<Shared>,
}

impl Durability {
    /// Starts the syncer thread with `sync` as its way to make commits durable.
    pub(crate) fn start(sync: SyncFn, on_failure: OnFailure) -> io::Result<Durability> {
        let shared = Arc::new(Shared {
            begun: AtomicU64::new(0),
            sync: Mutex::new(sync),
            on_failure,
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            changed: Condvar::new(),
        });
        let worker = shared.clone();
        std::thread::Builder::new()
            .name("sqlite-fsync".into())
            .spawn(move || sync_loop(&worker))?;
        Ok(Durability { shared })
    }

    /// Numbers the next commit; call before its `COMMIT`, under the writer's lock, and
    /// hold the returned guard until `COMMIT` has returned (its drop records the commit
    /// as written, whatever happened: an fsync after that covers what it wrote).
    pub(crate) fn begin(&self) -> Written<'_> {
        Written {
            durability: self,
            n: self.shared.begun.fetch_add(1, Ordering::SeqCst) + 1,
        }
    }

    fn written(&self, n: u64) {
        let mut state = self.shared.lock();
        state.written = state.written.max(n);
        drop(state);
        self.shared.work.notify_one();
        self.shared.changed.notify_all();
    }

    /// Blocks until commit `n` is on disk, making it so on this thread (one fsync, or
    /// none when another thread's covers it) rather than waking the syncer: a thread
    /// that has to wait anyway saves the switch to another.
    pub(crate) fn wait(&self, n: u64) {
        loop {
            {
                let state = self.shared.lock();
                // A commit still in its COMMIT: wait for it to be written (no fsync can
                // cover it before).
                let state = self
                    .shared
                    .changed
                    .wait_while(state, |s| s.written < n && s.durable < n)
                    .unwrap_or_else(|p| p.into_inner());
                if state.durable >= n {
                    return;
                }
            }
            if !sync_once(&self.shared) {
                std::thread::sleep(SYNC_RETRY_AFTER);
            }
        }
    }

    /// Blocks until every commit begun so far is on disk, or `max` has passed.
    pub(crate) fn settle(&self, max: Duration) {
        let n = self.shared.begun.load(Ordering::SeqCst);
        let state = self.shared.lock();
        let _ = self
            .shared
            .changed
            .wait_timeout_while(state, max, |s| s.durable < n)
            .unwrap_or_else(|p| p.into_inner());
    }

    /// Runs `f` on the syncer thread once commit `n` is on disk. Only that thread runs
    /// such work, one at a time, in commit order.
    pub(crate) fn then(&self, n: u64, f: AfterDurable) {
        let mut state = self.shared.lock();
        state.pending.push_back((n, f));
        drop(state);
        self.shared.work.notify_one();
    }

    /// Blocks until every commit begun so far is on disk: what a read calls after it ran,
    /// since it may have seen any of them. Free when nothing is being written.
    pub(crate) fn fence(&self) {
        let n = self.shared.begun.load(Ordering::SeqCst);
        if self.shared.lock().durable >= n {
            return;
        }
        self.wait(n);
    }
}

/// A commit between `begin` and the end of its `COMMIT`.
pub(crate) struct Written<'d> {
    durability: &'d Durability,
    /// The commit's number.
    pub(crate) n: u64,
}

impl Drop for Written<'_> {
    fn drop(&mut self) {
        self.durability.written(self.n);
    }
}

impl Drop for Durability {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.stop = true;
        drop(state);
        self.shared.work.notify_one();
    }
}

/// Work that panics loses only itself: the rest of the answers still go out, and the
/// syncer thread lives on.
fn run_guarded(f: AfterDurable) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err() {
        tracing::error!("work waiting for a commit panicked");
    }
}

/// The syncer thread: fsyncs what is written and not yet durable, and runs the pending
/// work that is durable, in commit order, one at a time (only this thread runs it).
fn sync_loop(shared: &Shared) {
    loop {
        let ready: Vec<AfterDurable> = {
            let mut state = shared.lock();
            loop {
                let deliverable = state
                    .pending
                    .front()
                    .is_some_and(|(n, _)| *n <= state.durable);
                if deliverable || state.written > state.durable {
                    break;
                }
                if state.stop {
                    return;
                }
                state = shared.work.wait(state).unwrap_or_else(|p| p.into_inner());
            }
            let mut ready = Vec::new();
            while state
                .pending
                .front()
                .is_some_and(|(n, _)| *n <= state.durable)
            {
                if let Some((_, f)) = state.pending.pop_front() {
                    ready.push(f);
                }
            }
            ready
        };
        if !ready.is_empty() {
            ready.into_iter().for_each(run_guarded);
            continue;
        }
        if !sync_once(shared) {
            std::thread::sleep(SYNC_RETRY_AFTER);
        }
    }
}

/// One fsync covering every commit written when it began; then `durable` moves and the
/// syncer thread is woken for the pending work. False when the fsync failed (nothing
/// was marked durable).
fn sync_once(shared: &Shared) -> bool {
    let mut sync = shared.sync.lock().unwrap_or_else(|p| p.into_inner());
    let target = {
        let state = shared.lock();
        if state.written <= state.durable {
            // Another thread's fsync covered everything meanwhile.
            return true;
        }
        state.written
    };
    // Every commit up to `target` returned from COMMIT before this fsync began.
    if let Err(e) = (*sync)() {
        (shared.on_failure)(&e);
        return false;
    }
    drop(sync);
    {
        let mut state = shared.lock();
        state.durable = state.durable.max(target);
    }
    shared.changed.notify_all();
    shared.work.notify_one();
    true
}

/// The fsync of a database's WAL file (`PATH-wal`), reopened whenever the file at that
/// path is no longer the one held open (SQLite deletes the WAL when its last connection
/// closes, and a later one makes a new file).
pub(crate) struct WalSync {
    path: PathBuf,
    dir: PathBuf,
    file: Option<File>,
}

impl WalSync {
    pub(crate) fn new(database: &str) -> WalSync {
        let path = PathBuf::from(format!("{database}-wal"));
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        WalSync {
            path,
            dir,
            file: None,
        }
    }

    /// Makes everything written to the WAL so far durable.
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        let on_disk = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            // No WAL: SQLite removes it only after checkpointing all of it into the
            // database file and syncing that file, so nothing written is only in it.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.file = None;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let same = match &self.file {
            Some(f) => {
                let held = f.metadata()?;
                held.ino() == on_disk.ino() && held.dev() == on_disk.dev()
            }
            None => false,
        };
        if !same {
            let file = File::open(&self.path)?;
            // A new WAL's directory entry must be durable too (SQLite syncs the directory
            // after creating a WAL for the same reason). Kept only once that succeeded,
            // so that a failure is tried again with the next fsync.
            sync_dir(&self.dir)?;
            self.file = Some(file);
        }
        match &self.file {
            Some(f) => f.sync_data(),
            None => Ok(()),
        }
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// A sync that records the highest commit written when each fsync began.
    fn recording(durability_probe: Arc<Mutex<Vec<u64>>>, seen: Arc<AtomicU64>) -> SyncFn {
        Box::new(move || {
            let at_start = seen.load(Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(2));
            durability_probe
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(at_start);
            Ok(())
        })
    }

    #[test]
    fn work_runs_only_after_an_fsync_that_began_after_its_commit_was_written() {
        let syncs = Arc::new(Mutex::new(Vec::new()));
        let written = Arc::new(AtomicU64::new(0));
        let d = Durability::start(recording(syncs.clone(), written.clone()), no_failure()).unwrap();
        let (tx, rx) = mpsc::channel();
        for _ in 0..200 {
            let w = d.begin();
            let n = w.n;
            written.store(n, Ordering::SeqCst);
            drop(w);
            let tx = tx.clone();
            let syncs = syncs.clone();
            d.then(
                n,
                Box::new(move || {
                    // Some finished fsync began when commit n was already written.
                    let ok = syncs
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .iter()
                        .any(|&w| w >= n);
                    let _ = tx.send((n, ok));
                }),
            );
        }
        drop(tx);
        let got: Vec<(u64, bool)> = rx.iter().take(200).collect();
        assert_eq!(got.len(), 200);
        assert!(got.iter().all(|(_, ok)| *ok), "work ran before its fsync");
        // In commit order, and with fewer fsyncs than commits (they were grouped).
        assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(syncs.lock().unwrap().len() < 200);
    }

    #[test]
    fn wait_and_fence_return_once_durable_and_at_once_when_idle() {
        let syncs = Arc::new(Mutex::new(Vec::new()));
        let written = Arc::new(AtomicU64::new(0));
        let d = Durability::start(recording(syncs.clone(), written.clone()), no_failure()).unwrap();
        d.fence(); // nothing begun: returns at once
        let w = d.begin();
        let n = w.n;
        written.store(n, Ordering::SeqCst);
        drop(w);
        d.fence();
        assert!(syncs.lock().unwrap().iter().any(|&w| w >= n));
        let w = d.begin();
        let m = w.n;
        written.store(m, Ordering::SeqCst);
        drop(w);
        d.wait(m);
        assert!(syncs.lock().unwrap().iter().any(|&w| w >= m));
    }

    fn no_failure() -> OnFailure {
        Box::new(|e| panic!("fsync failed: {e}"))
    }

    #[test]
    fn a_failed_fsync_is_reported_and_marks_nothing_durable() {
        let failures = Arc::new(AtomicU64::new(0));
        let reported = failures.clone();
        let d = Durability::start(
            Box::new(|| Err(io::Error::other("disk says no"))),
            Box::new(move |_| {
                reported.fetch_add(1, Ordering::SeqCst);
            }),
        )
        .unwrap();
        let n = d.begin().n;
        let (tx, rx) = mpsc::channel();
        d.then(
            n,
            Box::new(move || {
                let _ = tx.send(());
            }),
        );
        assert!(
            rx.recv_timeout(Duration::from_millis(300)).is_err(),
            "answered without an fsync"
        );
        assert!(failures.load(Ordering::SeqCst) >= 1);
        assert_eq!(d.shared.lock().durable, 0);
    }

    #[test]
    fn a_waiter_sleeps_while_the_commit_it_waits_for_is_still_in_its_commit() {
        let syncs = Arc::new(Mutex::new(Vec::new()));
        let written = Arc::new(AtomicU64::new(0));
        let d = Arc::new(
            Durability::start(recording(syncs.clone(), written.clone()), no_failure()).unwrap(),
        );
        let w = d.begin();
        let n = w.n;
        let waiter = {
            let d = d.clone();
            std::thread::spawn(move || d.fence())
        };
        std::thread::sleep(Duration::from_millis(100));
        // No fsync ran for a commit not yet written, and the waiter still waits.
        assert!(syncs.lock().unwrap().is_empty());
        assert!(!waiter.is_finished());
        written.store(n, Ordering::SeqCst);
        drop(w);
        waiter.join().unwrap();
        assert!(syncs.lock().unwrap().iter().any(|&s| s >= n));
    }

    #[test]
    fn work_that_panics_does_not_stop_the_rest() {
        let syncs = Arc::new(Mutex::new(Vec::new()));
        let written = Arc::new(AtomicU64::new(0));
        let d = Durability::start(recording(syncs, written.clone()), no_failure()).unwrap();
        let (tx, rx) = mpsc::channel();
        for i in 0..3 {
            let w = d.begin();
            written.store(w.n, Ordering::SeqCst);
            let n = w.n;
            drop(w);
            let tx = tx.clone();
            d.then(
                n,
                Box::new(move || {
                    if i == 1 {
                        panic!("a broken answer");
                    }
                    let _ = tx.send(i);
                }),
            );
        }
        let got: Vec<i32> = (0..2)
            .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        assert_eq!(got, vec![0, 2]);
    }

    #[test]
    fn the_wal_sync_follows_a_new_file_and_treats_no_file_as_nothing_to_sync() {
        let dir = std::env::temp_dir().join(format!("onestock-walsync-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("x.db");
        let db = db.to_str().unwrap();
        let mut s = WalSync::new(db);
        s.sync().unwrap(); // no WAL yet
        std::fs::write(format!("{db}-wal"), b"one").unwrap();
        s.sync().unwrap();
        let first = s.file.as_ref().unwrap().metadata().unwrap().ino();
        std::fs::remove_file(format!("{db}-wal")).unwrap();
        std::fs::write(format!("{db}-wal"), b"two").unwrap();
        s.sync().unwrap();
        let second = s.file.as_ref().unwrap().metadata().unwrap().ino();
        assert_ne!(first, second);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
