//! Coalesced WAL writes: a thin SQLite VFS over the platform's own ("unix") that
//! gathers the writes SQLite makes to a WAL file during a commit into one `pwrite`.
//!
//! SQLite writes every WAL frame with two calls, its 24-byte header and then its page,
//! so a batch of 32 orders (26 pages) cost 52 `pwrite`s: a third of the writer
//! thread's time went to the kernel (docs/decisions.md, "WAL writes gathered into
//! one"). Here whole frames that follow each other in the file are kept in a buffer
//! and written together when the transaction's commit frame is complete, before SQLite
//! publishes the commit in the WAL index. Other connections, in this process or
//! another, only read frames the index points at, so they never see a frame that is
//! still in the buffer.
//!
//! What makes this safe:
//! - Only whole frames are kept: a 24-byte header, then the write that follows it at
//!   once (its page). Anything else (the WAL's own header, a page written again in
//!   place, a header rewritten in place, the padding and split writes SQLite adds
//!   after a commit under `synchronous=FULL` with `psow=0`) writes the buffer out and
//!   goes straight to the file.
//! - A commit frame is the only frame whose header carries a database size (bytes 4 to
//!   8, the WAL file format's "commit record"). When its page has been added, the
//!   buffer is written out before `xWrite` returns, so `COMMIT` can only publish frames
//!   that are in the file. A commit header that does not follow kept frames (SQLite
//!   rewriting checksums in place) goes out at once.
//! - Every other call on the WAL file (read, sync, size, truncate, file control, close)
//!   writes the buffer out first, so SQLite never sees the file differ from what it
//!   wrote. The buffer holds at most `WAL_BUFFER_BYTES`.
//! - A transaction that ends without committing (a rollback after SQLite spilled
//!   pages to the WAL) leaves frames in the buffer that must never reach the file:
//!   another connection may write its own frames at those offsets. The database file
//!   is wrapped too, and when SQLite releases the WAL write lock (`xShmLock`), or
//!   lowers the database file's lock (`xUnlock`, which exclusive locking mode uses
//!   instead), the connection's WAL buffer is dropped. A commit has emptied it by
//!   then. A WAL file that found no database file to pair with keeps nothing.
//! - A buffered write that fails is reported as `SQLITE_IOERR_WRITE`, which makes
//!   SQLite roll the whole transaction back (with `SQLITE_FULL` it might roll back only
//!   the statement and go on, believing the frames written). Until SQLite writes again
//!   at or before the first lost byte, the file refuses reads past it, syncs and other
//!   writes.
//! - Locks, the shared-memory index and everything else go to the platform VFS as they
//!   are.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void};
use std::sync::{Mutex, OnceLock};

use rusqlite::ffi;

/// The VFS's name; it is registered as the process's default, so every connection the
/// backend opens uses it.
pub(crate) const VFS_NAME: &str = "onestock-walbuf";
const VFS_NAME_C: &[u8] = b"onestock-walbuf\0";

/// Most bytes a WAL file's buffer holds before it is written out: 1 MiB is 250 frames of
/// 4 kB pages, so even an upload chunk's commit takes a handful of calls, and a
/// connection's buffer never costs more than this.
const WAL_BUFFER_BYTES: usize = 1024 * 1024;

/// Most bytes handed to the platform VFS in one write. SQLite's unix VFS writes at most
/// 0x1ffff bytes a call (`seekAndWriteFd` masks the length), since SQLite itself never
/// writes more than a 64 kB page at once; a longer write comes back as "disk full".
/// 31 pages of 4 kB fit.
const PLATFORM_WRITE_BYTES: usize = 31 * 4096;

/// Size of a WAL frame header (WAL file format).
const FRAME_HEADER_BYTES: usize = 24;

/// The WAL write lock's slot in SQLite's shared-memory locks (`WAL_WRITE_LOCK`).
const WAL_WRITE_LOCK: c_int = 0;

/// Registers the VFS as the default, once per process. Returns SQLite's error code if
/// it could not (then connections keep SQLite's own default, which is correct, only
/// slower).
pub(crate) fn register() -> Result<(), c_int> {
    static REGISTERED: OnceLock<Result<(), c_int>> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        // SAFETY: sqlite3_vfs_find(NULL) returns the default VFS, which SQLite keeps for
        // the process's lifetime. The new VFS is leaked, so it outlives every
        // connection, as sqlite3_vfs_register requires.
        unsafe {
            let rc = ffi::sqlite3_initialize();
            if rc != ffi::SQLITE_OK {
                return Err(rc);
            }
            let root = ffi::sqlite3_vfs_find(std::ptr::null());
            if root.is_null() {
                return Err(ffi::SQLITE_ERROR);
            }
            let mut vfs: ffi::sqlite3_vfs = *root;
            vfs.zName = VFS_NAME_C.as_ptr().cast::<c_char>();
            vfs.pNext = std::ptr::null_mut();
            vfs.pAppData = root.cast::<c_void>();
            vfs.szOsFile = (inner_offset() + (*root).szOsFile as usize) as c_int;
            vfs.xOpen = Some(open);
            let vfs: &'static mut ffi::sqlite3_vfs = Box::leak(Box::new(vfs));
            let rc = ffi::sqlite3_vfs_register(vfs, 1);
            if rc != ffi::SQLITE_OK {
                return Err(rc);
            }
        }
        Ok(())
    })
}

/// What both wrapped files start with: SQLite's file header (our methods), then the
/// platform's file, which lives in the same allocation, `inner_offset()` bytes in.
#[repr(C)]
struct Head {
    base: ffi::sqlite3_file,
    inner: *mut ffi::sqlite3_file,
}

/// A WAL file as this VFS opens it.
#[repr(C)]
struct WalFile {
    head: Head,
    buffer: Buffer,
    /// The same connection's database file, while both are open.
    db: *mut DbFile,
}

/// A main database file as this VFS opens it: watched for the end of write
/// transactions.
#[repr(C)]
struct DbFile {
    head: Head,
    /// The same connection's WAL file, while both are open.
    wal: *mut WalFile,
    /// The name SQLite opened it with: the key of `PAIRS`.
    name: usize,
}

/// Database files by the name pointer SQLite opened them with. SQLite keeps a
/// connection's database, journal and WAL names in one allocation, and
/// `sqlite3_filename_database` on the WAL's name gives back that same pointer: this is
/// how a WAL file finds its database file. Only opens and closes take the lock.
fn pairs() -> &'static Mutex<HashMap<usize, usize>> {
    static PAIRS: OnceLock<Mutex<HashMap<usize, usize>>> = OnceLock::new();
    PAIRS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Writes that follow each other in the file, not yet written.
#[derive(Default)]
struct Buffer {
    /// File offset of `bytes[0]`.
    start: i64,
    bytes: Vec<u8>,
    /// The buffer ends with a frame header whose page has not come yet; `Some(true)`
    /// when it is a commit frame's.
    open_frame: Option<bool>,
    /// A buffered write failed from this offset on: SQLite believes bytes are there
    /// that are not.
    lost_from: Option<i64>,
}

/// Where the platform's file starts in a wrapped file's allocation.
const fn inner_offset() -> usize {
    let wal = std::mem::size_of::<WalFile>();
    let db = std::mem::size_of::<DbFile>();
    let size = if wal > db { wal } else { db };
    let align = 16;
    size.div_ceil(align) * align
}

fn root(vfs: *mut ffi::sqlite3_vfs) -> *mut ffi::sqlite3_vfs {
    // SAFETY (callers): `vfs` is this module's VFS, whose pAppData is the root VFS.
    unsafe { (*vfs).pAppData.cast::<ffi::sqlite3_vfs>() }
}

unsafe extern "C" fn open(
    vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let root = root(vfs);
    // SAFETY: SQLite gives `file` szOsFile bytes (ours: room for a wrapper and the
    // platform's file after it); the root VFS's xOpen is called as SQLite would.
    unsafe {
        let Some(root_open) = (*root).xOpen else {
            return ffi::SQLITE_ERROR;
        };
        let wal = flags & ffi::SQLITE_OPEN_WAL != 0;
        let main_db = flags & ffi::SQLITE_OPEN_MAIN_DB != 0 && !name.is_null();
        if !wal && !main_db {
            // Journals, temporary files: the platform's file fills the allocation's
            // start, and SQLite calls its methods directly.
            return root_open(root, name, file, flags, out_flags);
        }
        let inner = file
            .cast::<u8>()
            .add(inner_offset())
            .cast::<ffi::sqlite3_file>();
        (*inner).pMethods = std::ptr::null();
        let rc = root_open(root, name, inner, flags, out_flags);
        if rc != ffi::SQLITE_OK {
            // SQLite calls xClose only when pMethods is set; close what the platform
            // opened ourselves.
            if let Some(close) = (*inner).pMethods.as_ref().and_then(|m| m.xClose) {
                close(inner);
            }
            (*file).pMethods = std::ptr::null();
            return rc;
        }
        let mut pairs = pairs().lock().unwrap_or_else(|e| e.into_inner());
        if wal {
            let db_name = ffi::sqlite3_filename_database(name) as usize;
            let db = pairs
                .get(&db_name)
                .map_or(std::ptr::null_mut(), |&p| p as *mut DbFile);
            let this = file.cast::<WalFile>();
            this.write(WalFile {
                head: Head {
                    base: ffi::sqlite3_file {
                        pMethods: &WAL_METHODS,
                    },
                    inner,
                },
                buffer: Buffer::default(),
                db,
            });
            if !db.is_null() {
                (*db).wal = this;
            }
        } else {
            let this = file.cast::<DbFile>();
            this.write(DbFile {
                head: Head {
                    base: ffi::sqlite3_file {
                        pMethods: &DB_METHODS,
                    },
                    inner,
                },
                wal: std::ptr::null_mut(),
                name: name as usize,
            });
            pairs.insert(name as usize, this as usize);
        }
        ffi::SQLITE_OK
    }
}

/// The wrapped file behind `file`, as its common head.
///
/// SAFETY (callers): `file` was opened by `open` with WAL_METHODS or DB_METHODS and is
/// not yet closed.
unsafe fn head<'a>(file: *mut ffi::sqlite3_file) -> &'a mut Head {
    unsafe { &mut *file.cast::<Head>() }
}

/// The WAL file behind `file`.
///
/// SAFETY (callers): `file` was opened by `open` with WAL_METHODS and not yet closed.
unsafe fn wal<'a>(file: *mut ffi::sqlite3_file) -> &'a mut WalFile {
    unsafe { &mut *file.cast::<WalFile>() }
}

impl Head {
    fn methods(&self) -> &ffi::sqlite3_io_methods {
        // SAFETY: the platform's xOpen succeeded, so its pMethods is set and static.
        unsafe { &*(*self.inner).pMethods }
    }

    /// Writes `bytes` at `offset` through the platform's file, in calls of at most
    /// `PLATFORM_WRITE_BYTES`.
    fn write_through(&self, bytes: &[u8], offset: i64) -> c_int {
        let Some(write) = self.methods().xWrite else {
            return ffi::SQLITE_IOERR_WRITE;
        };
        let mut at = offset;
        for chunk in bytes.chunks(PLATFORM_WRITE_BYTES) {
            // SAFETY: `inner` is open; `chunk` is valid for its length, which fits.
            let rc = unsafe {
                write(
                    self.inner,
                    chunk.as_ptr().cast::<c_void>(),
                    chunk.len() as c_int,
                    at,
                )
            };
            if rc != ffi::SQLITE_OK {
                return rc;
            }
            at += chunk.len() as i64;
        }
        ffi::SQLITE_OK
    }
}

impl WalFile {
    /// Writes the buffer out. The buffer is empty afterwards. A failure is
    /// `SQLITE_IOERR_WRITE` whatever the platform said, and marks the bytes lost.
    fn flush(&mut self) -> c_int {
        self.buffer.open_frame = None;
        if self.buffer.bytes.is_empty() {
            return ffi::SQLITE_OK;
        }
        let rc = self
            .head
            .write_through(&self.buffer.bytes, self.buffer.start);
        // Cleared, not freed: the allocation serves the next commit.
        self.buffer.bytes.clear();
        if rc == ffi::SQLITE_OK {
            return rc;
        }
        let start = self.buffer.start;
        self.buffer.lost_from = Some(self.buffer.lost_from.map_or(start, |l| l.min(start)));
        ffi::SQLITE_IOERR_WRITE
    }

    fn write(&mut self, data: &[u8], offset: i64) -> c_int {
        if self.db.is_null() {
            // No database file seen to pair with: nothing would drop a rolled-back
            // transaction's frames, so nothing waits.
            return self.head.write_through(data, offset);
        }
        if !self.buffer.accepts_after_loss(data, offset) {
            return ffi::SQLITE_IOERR_WRITE;
        }
        match self.buffer.step(data, offset) {
            Step::Keep => {
                self.buffer.keep(data, offset);
                ffi::SQLITE_OK
            }
            Step::KeepAndSend => {
                self.buffer.keep(data, offset);
                self.flush()
            }
            Step::SendAndKeep => {
                let rc = self.flush();
                if rc == ffi::SQLITE_OK {
                    self.buffer.keep(data, offset);
                }
                rc
            }
            Step::SendAndPass => {
                let rc = self.flush();
                if rc != ffi::SQLITE_OK {
                    return rc;
                }
                self.head.write_through(data, offset)
            }
        }
    }
}

/// What to do with one write.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// Add it to the buffer.
    Keep,
    /// Add it, then write the buffer out: the commit frame is complete.
    KeepAndSend,
    /// Write the buffer out, then start the buffer again with it.
    SendAndKeep,
    /// Write the buffer out, then it, straight to the file.
    SendAndPass,
}

/// A WAL frame header that marks a commit: its database size (bytes 4 to 8) is set.
fn is_commit_header(data: &[u8]) -> bool {
    data.len() == FRAME_HEADER_BYTES && data[4..8].iter().any(|&b| b != 0)
}

impl Buffer {
    fn end(&self) -> i64 {
        self.start + self.bytes.len() as i64
    }

    fn step(&self, data: &[u8], offset: i64) -> Step {
        let at_end = !self.bytes.is_empty() && offset == self.end();
        let fits = self.bytes.len() + data.len() <= WAL_BUFFER_BYTES;
        if let Some(commit) = self.open_frame {
            // The page of the header just kept, whole, or else nothing is kept.
            return match (at_end && fits && data.len() != FRAME_HEADER_BYTES, commit) {
                (true, true) => Step::KeepAndSend,
                (true, false) => Step::Keep,
                (false, _) => Step::SendAndPass,
            };
        }
        if data.len() != FRAME_HEADER_BYTES {
            // Not a frame's start: the WAL header, a page written again in place, a
            // write split at a sector boundary.
            return Step::SendAndPass;
        }
        if at_end && fits {
            Step::Keep
        } else if !is_commit_header(data) {
            Step::SendAndKeep
        } else {
            // A commit header that does not follow kept frames (SQLite rewriting a
            // header in place after a transaction wrote a page twice): nothing of a
            // commit may wait here, since no page write need follow it.
            Step::SendAndPass
        }
    }

    fn keep(&mut self, data: &[u8], offset: i64) {
        if self.bytes.is_empty() {
            self.start = offset;
        }
        self.bytes.extend_from_slice(data);
        self.open_frame = (data.len() == FRAME_HEADER_BYTES).then(|| is_commit_header(data));
    }

    /// After a lost write, only a write at or before the first lost byte that starts
    /// a frame (or the WAL again) is taken: SQLite writing that part of the file anew.
    fn accepts_after_loss(&mut self, data: &[u8], offset: i64) -> bool {
        match self.lost_from {
            None => true,
            Some(lost) if offset <= lost && (offset == 0 || data.len() == FRAME_HEADER_BYTES) => {
                self.lost_from = None;
                true
            }
            Some(_) => false,
        }
    }

    /// Drops what is kept: the transaction that wrote it ended without a commit.
    fn discard(&mut self) {
        self.bytes.clear();
        self.open_frame = None;
        self.lost_from = None;
    }
}

/// Forwards to the platform's method `$m` with `$args`.
macro_rules! forward {
    ($file:expr, $m:ident, $missing:expr $(, $arg:expr)*) => {{
        let h = head($file);
        match h.methods().$m {
            Some(f) => f(h.inner $(, $arg)*),
            None => $missing,
        }
    }};
}

/// Writes the WAL's buffer out, then forwards to the platform's method `$m`.
macro_rules! flushed {
    ($file:expr, $m:ident, $missing:expr $(, $arg:expr)*) => {{
        let rc = wal($file).flush();
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        forward!($file, $m, $missing $(, $arg)*)
    }};
}

/// Defines `$name`, an io method that forwards to the platform file's `$m` as it is
/// (`pass`), or after writing the WAL's buffer out (`flush`, WAL files only).
macro_rules! method {
    (pass $name:ident, $m:ident, $missing:expr, ($($arg:ident: $ty:ty),*) -> $ret:ty) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file $(, $arg: $ty)*) -> $ret {
            // SAFETY: as SQLite's own call, on a file `open` wrapped.
            unsafe { forward!(file, $m, $missing $(, $arg)*) }
        }
    };
    (flush $name:ident, $m:ident, $missing:expr, ($($arg:ident: $ty:ty),*) -> $ret:ty) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file $(, $arg: $ty)*) -> $ret {
            // SAFETY: as SQLite's own call, on a WAL file `open` wrapped, after its
            // buffer went out.
            unsafe { flushed!(file, $m, $missing $(, $arg)*) }
        }
    };
}

// --- The WAL file's methods -----------------------------------------------------------

unsafe extern "C" fn wal_close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite closes each file once; the WalFile is dropped in place after.
    unsafe {
        let w = wal(file);
        let flushed = w.flush();
        let closed = match w.head.methods().xClose {
            Some(f) => f(w.head.inner),
            None => ffi::SQLITE_OK,
        };
        {
            let _pairs = pairs().lock().unwrap_or_else(|e| e.into_inner());
            if !w.db.is_null() {
                (*w.db).wal = std::ptr::null_mut();
            }
        }
        std::ptr::drop_in_place(file.cast::<WalFile>());
        (*file).pMethods = std::ptr::null();
        if flushed != ffi::SQLITE_OK {
            flushed
        } else {
            closed
        }
    }
}

unsafe extern "C" fn wal_read(
    file: *mut ffi::sqlite3_file,
    out: *mut c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: as SQLite's own call, after the buffer went out.
    unsafe {
        if let Some(lost) = wal(file).buffer.lost_from
            && offset + i64::from(amount) > lost
        {
            return ffi::SQLITE_IOERR_READ;
        }
        flushed!(file, xRead, ffi::SQLITE_IOERR_READ, out, amount, offset)
    }
}

unsafe extern "C" fn wal_write(
    file: *mut ffi::sqlite3_file,
    data: *const c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    let Ok(len) = usize::try_from(amount) else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    // SAFETY: SQLite passes `amount` readable bytes at `data`.
    unsafe {
        let data = std::slice::from_raw_parts(data.cast::<u8>(), len);
        wal(file).write(data, offset)
    }
}

unsafe extern "C" fn wal_truncate(file: *mut ffi::sqlite3_file, size: ffi::sqlite3_int64) -> c_int {
    // SAFETY: as SQLite's own call, after the buffer went out.
    unsafe {
        let w = wal(file);
        if w.buffer.lost_from.is_some_and(|lost| size <= lost) {
            w.buffer.lost_from = None;
        }
        flushed!(file, xTruncate, ffi::SQLITE_IOERR_TRUNCATE, size)
    }
}

unsafe extern "C" fn wal_sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    // SAFETY: as SQLite's own call, after the buffer went out.
    unsafe {
        if wal(file).buffer.lost_from.is_some() {
            return ffi::SQLITE_IOERR_FSYNC;
        }
        flushed!(file, xSync, ffi::SQLITE_IOERR_FSYNC, flags)
    }
}

unsafe extern "C" fn wal_fetch(
    file: *mut ffi::sqlite3_file,
    offset: ffi::sqlite3_int64,
    amount: c_int,
    out: *mut *mut c_void,
) -> c_int {
    // SAFETY: as SQLite's own call, after the buffer went out.
    unsafe {
        let rc = wal(file).flush();
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        fetch(file, offset, amount, out)
    }
}

method!(flush wal_file_size, xFileSize, ffi::SQLITE_IOERR_FSTAT, (size: *mut ffi::sqlite3_int64) -> c_int);
method!(flush wal_file_control, xFileControl, ffi::SQLITE_NOTFOUND, (op: c_int, arg: *mut c_void) -> c_int);

// --- The database file's methods ------------------------------------------------------

unsafe extern "C" fn db_close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite closes each file once; the DbFile is dropped in place after.
    unsafe {
        let d = &mut *file.cast::<DbFile>();
        {
            let mut pairs = pairs().lock().unwrap_or_else(|e| e.into_inner());
            if pairs.get(&d.name) == Some(&(file as usize)) {
                pairs.remove(&d.name);
            }
            if !d.wal.is_null() {
                (*d.wal).db = std::ptr::null_mut();
            }
        }
        let closed = match d.head.methods().xClose {
            Some(f) => f(d.head.inner),
            None => ffi::SQLITE_OK,
        };
        std::ptr::drop_in_place(file.cast::<DbFile>());
        (*file).pMethods = std::ptr::null();
        closed
    }
}

unsafe extern "C" fn db_unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: as SQLite's own call; the paired WAL file is open while `wal` is set.
    // SQLite lowers the database file's lock only outside write transactions (at the
    // end of one in exclusive locking mode, where `xShmLock` is never called): what
    // the WAL buffer holds then belongs to a transaction that did not commit.
    unsafe {
        let rc = forward!(file, xUnlock, ffi::SQLITE_OK, level);
        let d = &mut *file.cast::<DbFile>();
        if !d.wal.is_null() {
            (*d.wal).buffer.discard();
        }
        rc
    }
}

unsafe extern "C" fn db_shm_lock(
    file: *mut ffi::sqlite3_file,
    offset: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    // SAFETY: as SQLite's own call; the paired WAL file is open while `wal` is set, and
    // only this connection's thread uses either.
    unsafe {
        let rc = forward!(file, xShmLock, ffi::SQLITE_IOERR_SHMLOCK, offset, n, flags);
        let releases_write_lock = flags == (ffi::SQLITE_SHM_UNLOCK | ffi::SQLITE_SHM_EXCLUSIVE)
            && offset <= WAL_WRITE_LOCK
            && WAL_WRITE_LOCK < offset + n;
        let d = &mut *file.cast::<DbFile>();
        if releases_write_lock && !d.wal.is_null() {
            (*d.wal).buffer.discard();
        }
        rc
    }
}

// --- Methods forwarded as they are ----------------------------------------------------

method!(pass read, xRead, ffi::SQLITE_IOERR_READ, (out: *mut c_void, amount: c_int, offset: ffi::sqlite3_int64) -> c_int);
method!(pass write, xWrite, ffi::SQLITE_IOERR_WRITE, (data: *const c_void, amount: c_int, offset: ffi::sqlite3_int64) -> c_int);
method!(pass truncate, xTruncate, ffi::SQLITE_IOERR_TRUNCATE, (size: ffi::sqlite3_int64) -> c_int);
method!(pass sync, xSync, ffi::SQLITE_IOERR_FSYNC, (flags: c_int) -> c_int);
method!(pass file_size, xFileSize, ffi::SQLITE_IOERR_FSTAT, (size: *mut ffi::sqlite3_int64) -> c_int);
method!(pass lock, xLock, ffi::SQLITE_OK, (level: c_int) -> c_int);
method!(pass unlock, xUnlock, ffi::SQLITE_OK, (level: c_int) -> c_int);
method!(pass check_reserved_lock, xCheckReservedLock, ffi::SQLITE_OK, (out: *mut c_int) -> c_int);
method!(pass file_control, xFileControl, ffi::SQLITE_NOTFOUND, (op: c_int, arg: *mut c_void) -> c_int);
method!(pass sector_size, xSectorSize, 4096, () -> c_int);
method!(pass device_characteristics, xDeviceCharacteristics, 0, () -> c_int);
method!(pass shm_map, xShmMap, ffi::SQLITE_IOERR_SHMMAP, (page: c_int, page_size: c_int, extend: c_int, out: *mut *mut c_void) -> c_int);
method!(pass shm_lock, xShmLock, ffi::SQLITE_IOERR_SHMLOCK, (offset: c_int, n: c_int, flags: c_int) -> c_int);
method!(pass shm_unmap, xShmUnmap, ffi::SQLITE_OK, (delete: c_int) -> c_int);
method!(pass unfetch, xUnfetch, ffi::SQLITE_OK, (offset: ffi::sqlite3_int64, p: *mut c_void) -> c_int);

unsafe extern "C" fn shm_barrier(file: *mut ffi::sqlite3_file) {
    // SAFETY: as SQLite's own call.
    unsafe { forward!(file, xShmBarrier, ()) }
}

unsafe extern "C" fn fetch(
    file: *mut ffi::sqlite3_file,
    offset: ffi::sqlite3_int64,
    amount: c_int,
    out: *mut *mut c_void,
) -> c_int {
    // SAFETY: as SQLite's own call. Without a platform method, "no mapping" (a null
    // pointer) makes SQLite read instead.
    unsafe {
        let h = head(file);
        match h.methods().xFetch {
            Some(f) => f(h.inner, offset, amount, out),
            None => {
                *out = std::ptr::null_mut();
                ffi::SQLITE_OK
            }
        }
    }
}

static WAL_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(wal_close),
    xRead: Some(wal_read),
    xWrite: Some(wal_write),
    xTruncate: Some(wal_truncate),
    xSync: Some(wal_sync),
    xFileSize: Some(wal_file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(wal_file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: Some(shm_map),
    xShmLock: Some(shm_lock),
    xShmBarrier: Some(shm_barrier),
    xShmUnmap: Some(shm_unmap),
    xFetch: Some(wal_fetch),
    xUnfetch: Some(unfetch),
};

static DB_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(db_close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(db_unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: Some(shm_map),
    xShmLock: Some(db_shm_lock),
    xShmBarrier: Some(shm_barrier),
    xShmUnmap: Some(shm_unmap),
    xFetch: Some(fetch),
    xUnfetch: Some(unfetch),
};

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::{Connection, OpenFlags};

    struct TempDir(std::path::PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn temp_dir(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("onestock-walbuf-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn open_with(path: &str, vfs: &str, synchronous: &str) -> Connection {
        let flags = OpenFlags::default() | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags_and_vfs(path, flags, vfs).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "synchronous", synchronous)
            .unwrap();
        conn
    }

    fn open(path: &std::path::Path, vfs: &str) -> Connection {
        open_with(path.to_str().unwrap(), vfs, "NORMAL")
    }

    fn count(conn: &Connection) -> (i64, i64) {
        conn.query_row(
            "SELECT count(*), coalesce(sum(length(v)), 0) FROM t",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    }

    fn insert(conn: &Connection, tag: &str, rows: usize, width: usize) {
        for j in 0..rows {
            conn.execute(
                "INSERT INTO t (v) VALUES (?1)",
                [format!("{tag}-{j}-{}", "x".repeat(width))],
            )
            .unwrap();
        }
    }

    /// A copy of the database and its WAL as they are on disk now (what a killed
    /// process leaves), opened on SQLite's own VFS: recovery reads the WAL's frames and
    /// drops every commit from the first whose checksums do not hold.
    fn recovered_copy(dir: &TempDir, name: &str, tag: &str) -> Connection {
        let copy = dir.0.join(format!("{tag}.db"));
        std::fs::copy(dir.0.join(name), &copy).unwrap();
        std::fs::copy(
            dir.0.join(format!("{name}-wal")),
            dir.0.join(format!("{tag}.db-wal")),
        )
        .unwrap();
        let conn = open(&copy, "unix");
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok", "{tag}");
        conn
    }

    /// Transactions of one row to thousands (past the buffer and past one platform
    /// write), with SQLite's default settings and with the settings that make SQLite
    /// pad each commit to a sector boundary (`synchronous=FULL`, `psow=0`), each checked
    /// at once from a connection on SQLite's own VFS: it finds the commit's frames
    /// through the shared WAL index, so a frame still in the buffer would show as a
    /// short or corrupt read.
    #[test]
    fn every_commit_reads_back_from_another_connection_once_commit_returns() {
        register().unwrap();
        for (tag, query, synchronous) in [("normal", "", "NORMAL"), ("padded", "?psow=0", "FULL")] {
            let dir = temp_dir(&format!("visible-{tag}"));
            let path = dir.0.join("t.db");
            let uri = format!("file:{}{query}", path.display());
            let writer = open_with(&uri, VFS_NAME, synchronous);
            writer
                .execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
                .unwrap();
            let reader = open(&path, "unix");
            let sizes = [1, 2, 40, 400, 4_000, 1, 12_000, 3, 900];
            for (i, rows) in sizes.iter().enumerate() {
                writer.execute_batch("BEGIN").unwrap();
                insert(&writer, &i.to_string(), *rows, 200);
                writer.execute_batch("COMMIT").unwrap();
                assert_eq!(
                    count(&reader),
                    count(&writer),
                    "{tag}: after commit {i} ({rows} rows)"
                );
            }
        }
    }

    /// With a page cache of a few pages, SQLite writes a transaction's frames before
    /// its commit, writes some pages again in place and then rewrites the frames'
    /// checksums. A copy taken right after each COMMIT, with nothing else done on the
    /// writer, must recover that commit.
    #[test]
    fn a_copy_taken_after_each_commit_recovers_it_after_spills_and_rewrites() {
        register().unwrap();
        let dir = temp_dir("recover");
        let path = dir.0.join("t.db");
        let writer = open(&path, VFS_NAME);
        writer.pragma_update(None, "cache_size", 8).unwrap();
        writer
            .execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
            .unwrap();
        for round in 0..6 {
            writer.execute_batch("BEGIN").unwrap();
            insert(&writer, &round.to_string(), 3_000, 120);
            // Pages written (spilled) earlier in this transaction, written again.
            writer
                .execute("UPDATE t SET v = v || 'z' WHERE k % 50 = 0", [])
                .unwrap();
            writer.execute_batch("COMMIT").unwrap();
            let recovered = recovered_copy(&dir, "t.db", &format!("copy{round}"));
            let rows: i64 = recovered
                .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                .unwrap();
            assert_eq!(rows, 3_000 * (round + 1), "round {round}");
        }
    }

    /// A connection on this VFS with a page cache of a few pages (so its transactions
    /// spill to the WAL), on a new table `t`.
    fn spilling_writer(dir: &TempDir) -> (std::path::PathBuf, Connection) {
        register().unwrap();
        let path = dir.0.join("t.db");
        let conn = open(&path, VFS_NAME);
        conn.pragma_update(None, "cache_size", 8).unwrap();
        conn.execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
            .unwrap();
        (path, conn)
    }

    /// One statement appending pages it does not read again, rolled back: the pages it
    /// spilled (about 480 kB, from the WAL's first frame on, after a truncating
    /// checkpoint) are still in the buffer at the ROLLBACK, where another connection
    /// writes its commit next. Checks they never reached the file.
    fn roll_back_a_spill(a: &Connection, dir: &TempDir, round: i32, before: &str, after: &str) {
        a.execute_batch(&format!(
            "{before}
             BEGIN;
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500)
             INSERT INTO t (v) SELECT printf('rolled-back-%d-%0300d', i, i) FROM n;
             ROLLBACK;
             {after}"
        ))
        .unwrap();
        let wal_bytes = std::fs::metadata(dir.0.join("t.db-wal")).unwrap().len();
        assert!(
            wal_bytes < 100_000,
            "round {round}: WAL of {wal_bytes} bytes"
        );
    }

    /// `b` commits where `a`'s rolled-back frames would have gone; then `a` reads
    /// through its WAL file and writes, and the commit must read back, live and after
    /// recovery.
    fn commit_from_b_then_check_a(a: &Connection, b: &Connection, dir: &TempDir, round: i32) {
        b.execute_batch("BEGIN").unwrap();
        insert(b, &format!("kept{round}"), 50, 100);
        b.execute_batch("COMMIT").unwrap();
        let expected = count(b);
        assert_eq!(count(a), expected, "round {round}");
        a.execute("INSERT INTO t (v) VALUES ('a')", []).unwrap();
        let expected = count(b);
        let recovered = recovered_copy(dir, "t.db", &format!("copy{round}"));
        assert_eq!(count(&recovered), expected, "round {round}");
    }

    /// A transaction that spilled frames and rolled back, then another connection's
    /// commit at the same place in the WAL: the first connection's next reads and
    /// writes must not put its rolled-back frames over the commit.
    #[test]
    fn frames_of_a_rolled_back_transaction_never_reach_the_file() {
        let dir = temp_dir("rollback");
        let (path, a) = spilling_writer(&dir);
        let b = open(&path, VFS_NAME);
        for round in 0..4 {
            // With everything copied into the database file, the rollback reads its
            // pages from there, not through the WAL file (which would send the buffer
            // out while it still could do no harm).
            b.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .unwrap();
            roll_back_a_spill(&a, &dir, round, "", "");
            commit_from_b_then_check_a(&a, &b, &dir, round);
        }
    }

    /// The same in exclusive locking mode, left afterwards: there SQLite takes and
    /// releases no WAL write lock, and the end of the transaction shows as the
    /// database file's lock lowered.
    #[test]
    fn frames_rolled_back_in_exclusive_mode_never_reach_the_file() {
        let dir = temp_dir("exclusive");
        let (path, a) = spilling_writer(&dir);
        for round in 0..3 {
            a.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .unwrap();
            // Exclusive mode needs no other connection open: `b` comes after.
            roll_back_a_spill(
                &a,
                &dir,
                round,
                "PRAGMA locking_mode = EXCLUSIVE;",
                "PRAGMA locking_mode = NORMAL;",
            );
            // A read ends exclusive mode: the database file's lock is lowered.
            count(&a);
            let b = open(&path, VFS_NAME);
            commit_from_b_then_check_a(&a, &b, &dir, round);
        }
    }

    /// The buffer's own rules, without SQLite: whole frames that follow on are kept, a
    /// commit frame's page sends everything, and everything else goes straight through.
    #[test]
    fn only_whole_frames_wait_and_a_commit_frame_sends_them() {
        let header = [0u8; FRAME_HEADER_BYTES];
        let mut commit = [0u8; FRAME_HEADER_BYTES];
        commit[7] = 9;
        let page = [7u8; 4096];
        let mut b = Buffer::default();
        let mut at = 32;
        for data in [&header[..], &page[..], &header[..], &page[..], &commit[..]] {
            let step = b.step(data, at);
            assert_eq!(
                step,
                if at == 32 {
                    Step::SendAndKeep
                } else {
                    Step::Keep
                }
            );
            b.keep(data, at);
            at += data.len() as i64;
        }
        assert_eq!(b.open_frame, Some(true));
        assert_eq!(b.step(&page, at), Step::KeepAndSend);
        // A write anywhere else, whole page or part: everything out, then it.
        assert_eq!(b.step(&page[..100], at - 24), Step::SendAndPass);
        assert_eq!(b.step(&page, 32), Step::SendAndPass);

        let mut b = Buffer::default();
        // The WAL's own header, a commit header on an empty buffer: straight through.
        assert_eq!(b.step(&[0u8; 32], 0), Step::SendAndPass);
        assert_eq!(b.step(&commit, 32), Step::SendAndPass);
        // A page with no header kept before it (written again in place): through.
        assert_eq!(b.step(&page, 56), Step::SendAndPass);
        b.keep(&header, 32);
        b.keep(&page, 56);
        // A commit header anywhere but at the buffer's end (as when SQLite rewrites
        // one in place, after reads that emptied the buffer): through.
        assert_eq!(b.step(&commit, 32 + 24 + 4096 + 4120), Step::SendAndPass);
        // Past the buffer's size: out first.
        let big = vec![0u8; WAL_BUFFER_BYTES];
        b.keep(&header, 32 + 4120);
        assert_eq!(b.step(&big, 32 + 4120 + 24), Step::SendAndPass);
    }

    /// After a buffered write failed, SQLite is refused until it writes that part of
    /// the WAL again from a frame's start (or the WAL from its start).
    #[test]
    fn after_a_lost_write_only_a_rewrite_from_before_it_is_taken() {
        let header = [0u8; FRAME_HEADER_BYTES];
        let page = [7u8; 4096];
        let mut b = Buffer {
            lost_from: Some(4152),
            ..Buffer::default()
        };
        assert!(!b.accepts_after_loss(&page, 4176));
        assert!(!b.accepts_after_loss(&header, 8272));
        assert!(!b.accepts_after_loss(&page, 56));
        assert_eq!(b.lost_from, Some(4152));
        assert!(b.accepts_after_loss(&header, 32));
        assert_eq!(b.lost_from, None);
        b.lost_from = Some(4152);
        assert!(b.accepts_after_loss(&[0u8; 32], 0));
        b.lost_from = Some(4152);
        b.discard();
        assert_eq!(b.lost_from, None);
    }
}
