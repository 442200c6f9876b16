//! Coalesced WAL writes: a thin SQLite VFS over the platform's own ("unix") that
//! gathers the writes SQLite makes to a WAL file during a commit into one `pwrite`.
//!
//! SQLite writes every WAL frame with two calls, its 24-byte header and then its page,
//! so a batch of 32 orders (26 pages) cost 52 `pwrite`s: a third of the writer
//! thread's time went to the kernel (docs/decisions.md, "WAL writes gathered into
//! one"). Here the writes that follow each other in the file are kept in a buffer and
//! written together when the transaction's commit frame is complete, before SQLite
//! publishes the commit in the WAL index. Other connections, in this process or
//! another, only read frames the index points at, so they never see a frame that is
//! still in the buffer.
//!
//! What makes this safe:
//! - A commit frame is the only frame whose header carries a database size (bytes 4 to
//!   8 of the header, the WAL file format's "commit record"). When its page has been
//!   added, the buffer is written out before `xWrite` returns, so `COMMIT` can only
//!   publish frames that are in the file. A commit header written anywhere but at the
//!   end of the buffer (SQLite rewriting checksums in place) goes out at once.
//! - Every other call on the file (read, sync, size, truncate, file control, close)
//!   writes the buffer out first, so SQLite never sees the file differ from what it
//!   wrote. A write somewhere else in the file does too.
//! - The buffer holds at most `WAL_BUFFER_BYTES`; past that it is written out.
//! - A failed write is reported by the call that made it, as SQLite's own would be: a
//!   commit whose frames could not be written fails.
//! - Only WAL files are wrapped (`SQLITE_OPEN_WAL`); the database file and everything
//!   else go to the platform VFS untouched, as do locks and the shared-memory index.

use std::ffi::{c_char, c_int, c_void};
use std::sync::OnceLock;

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

/// A WAL file as this VFS opens it: SQLite's file header (our methods), then the
/// platform's file, which lives in the same allocation, `inner_offset()` bytes in.
#[repr(C)]
struct WalFile {
    base: ffi::sqlite3_file,
    inner: *mut ffi::sqlite3_file,
    buffer: Buffer,
}

/// Writes that follow each other in the file, not yet written.
#[derive(Default)]
struct Buffer {
    /// File offset of `bytes[0]`.
    start: i64,
    bytes: Vec<u8>,
    /// The last write was a commit frame's header at the buffer's end: the next write,
    /// its page, completes the commit.
    commit_pending: bool,
}

/// Where the platform's file starts in a `WalFile` allocation.
const fn inner_offset() -> usize {
    let size = std::mem::size_of::<WalFile>();
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
    // SAFETY: SQLite gives `file` szOsFile bytes (ours: room for a WalFile and the
    // platform's file after it); the root VFS's xOpen is called as SQLite would.
    unsafe {
        let Some(root_open) = (*root).xOpen else {
            return ffi::SQLITE_ERROR;
        };
        if flags & ffi::SQLITE_OPEN_WAL == 0 {
            // Not a WAL file: the platform's file fills the allocation's start, and
            // SQLite calls its methods directly.
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
        file.cast::<WalFile>().write(WalFile {
            base: ffi::sqlite3_file {
                pMethods: &WAL_METHODS,
            },
            inner,
            buffer: Buffer::default(),
        });
        ffi::SQLITE_OK
    }
}

/// The WAL file behind `file`.
///
/// SAFETY (callers): `file` was opened by `open` with WAL_METHODS and not yet closed.
unsafe fn wal<'a>(file: *mut ffi::sqlite3_file) -> &'a mut WalFile {
    unsafe { &mut *file.cast::<WalFile>() }
}

impl WalFile {
    fn methods(&self) -> &ffi::sqlite3_io_methods {
        // SAFETY: the platform's xOpen succeeded, so its pMethods is set and static.
        unsafe { &*(*self.inner).pMethods }
    }

    /// Writes `bytes` at `offset` through the platform's file, in calls of at most
    /// `PLATFORM_WRITE_BYTES`.
    fn write_through(&mut self, bytes: &[u8], offset: i64) -> c_int {
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

    /// Writes the buffer out. The buffer is empty afterwards, even when the write
    /// failed: SQLite treats a failed write as lost and rolls back.
    fn flush(&mut self) -> c_int {
        self.buffer.commit_pending = false;
        if self.buffer.bytes.is_empty() {
            return ffi::SQLITE_OK;
        }
        let bytes = std::mem::take(&mut self.buffer.bytes);
        let rc = self.write_through(&bytes, self.buffer.start);
        // Keep the allocation for the next commit.
        self.buffer.bytes = bytes;
        self.buffer.bytes.clear();
        rc
    }

    fn write(&mut self, data: &[u8], offset: i64) -> c_int {
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
                let rc = self.write_through(data, offset);
                // A commit header sent on its own: the page that follows completes the
                // frame and goes straight through too.
                self.buffer.commit_pending = rc == ffi::SQLITE_OK && is_commit_header(data);
                rc
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
        let follows = !self.bytes.is_empty() && offset == self.end();
        let fits = self.bytes.len() + data.len() <= WAL_BUFFER_BYTES;
        if self.commit_pending {
            return if follows && fits {
                Step::KeepAndSend
            } else {
                Step::SendAndPass
            };
        }
        if is_commit_header(data) && !follows {
            // Not at the end of the frames being appended (SQLite rewriting a header in
            // place after a transaction wrote a page twice): nothing of a commit may
            // wait here, since no page write need follow it.
            return Step::SendAndPass;
        }
        if follows && fits {
            Step::Keep
        } else if data.len() <= WAL_BUFFER_BYTES {
            Step::SendAndKeep
        } else {
            Step::SendAndPass
        }
    }

    fn keep(&mut self, data: &[u8], offset: i64) {
        if self.bytes.is_empty() {
            self.start = offset;
        }
        self.bytes.extend_from_slice(data);
        self.commit_pending = is_commit_header(data);
    }
}

/// Flushes, then forwards to the platform's method `$m` with `$args`.
macro_rules! flushed {
    ($file:expr, $m:ident, $missing:expr $(, $arg:expr)*) => {{
        let w = wal($file);
        let rc = w.flush();
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        match w.methods().$m {
            Some(f) => f(w.inner $(, $arg)*),
            None => $missing,
        }
    }};
}

/// Forwards to the platform's method `$m` with `$args`, buffer untouched.
macro_rules! forward {
    ($file:expr, $m:ident, $missing:expr $(, $arg:expr)*) => {{
        let w = wal($file);
        match w.methods().$m {
            Some(f) => f(w.inner $(, $arg)*),
            None => $missing,
        }
    }};
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite closes each file once; the WalFile is dropped in place after.
    unsafe {
        let w = wal(file);
        let flushed = w.flush();
        let closed = match w.methods().xClose {
            Some(f) => f(w.inner),
            None => ffi::SQLITE_OK,
        };
        std::ptr::drop_in_place(file.cast::<WalFile>());
        (*file).pMethods = std::ptr::null();
        if flushed != ffi::SQLITE_OK {
            flushed
        } else {
            closed
        }
    }
}

unsafe extern "C" fn read(
    file: *mut ffi::sqlite3_file,
    out: *mut c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: as SQLite's own call, after the buffer went out.
    unsafe { flushed!(file, xRead, ffi::SQLITE_IOERR_READ, out, amount, offset) }
}

unsafe extern "C" fn write(
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

unsafe extern "C" fn truncate(file: *mut ffi::sqlite3_file, size: ffi::sqlite3_int64) -> c_int {
    // SAFETY: as SQLite's own call, after the buffer went out.
    unsafe { flushed!(file, xTruncate, ffi::SQLITE_IOERR_TRUNCATE, size) }
}

unsafe extern "C" fn sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    // SAFETY: as SQLite's own call, after the buffer went out.
    unsafe { flushed!(file, xSync, ffi::SQLITE_IOERR_FSYNC, flags) }
}

unsafe extern "C" fn file_size(
    file: *mut ffi::sqlite3_file,
    size: *mut ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: as SQLite's own call, after the buffer went out.
    unsafe { flushed!(file, xFileSize, ffi::SQLITE_IOERR_FSTAT, size) }
}

unsafe extern "C" fn lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: as SQLite's own call.
    unsafe { forward!(file, xLock, ffi::SQLITE_OK, level) }
}

unsafe extern "C" fn unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: as SQLite's own call.
    unsafe { forward!(file, xUnlock, ffi::SQLITE_OK, level) }
}

unsafe extern "C" fn check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    // SAFETY: as SQLite's own call.
    unsafe { forward!(file, xCheckReservedLock, ffi::SQLITE_OK, out) }
}

unsafe extern "C" fn file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    // SAFETY: as SQLite's own call, after the buffer went out.
    unsafe { flushed!(file, xFileControl, ffi::SQLITE_NOTFOUND, op, arg) }
}

unsafe extern "C" fn sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: as SQLite's own call.
    unsafe { forward!(file, xSectorSize, 4096) }
}

unsafe extern "C" fn device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: as SQLite's own call.
    unsafe { forward!(file, xDeviceCharacteristics, 0) }
}

unsafe extern "C" fn shm_map(
    file: *mut ffi::sqlite3_file,
    page: c_int,
    page_size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    // SAFETY: as SQLite's own call.
    unsafe {
        forward!(
            file,
            xShmMap,
            ffi::SQLITE_IOERR_SHMMAP,
            page,
            page_size,
            extend,
            out
        )
    }
}

unsafe extern "C" fn shm_lock(
    file: *mut ffi::sqlite3_file,
    offset: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    // SAFETY: as SQLite's own call.
    unsafe { forward!(file, xShmLock, ffi::SQLITE_IOERR_SHMLOCK, offset, n, flags) }
}

unsafe extern "C" fn shm_barrier(file: *mut ffi::sqlite3_file) {
    // SAFETY: as SQLite's own call.
    unsafe { forward!(file, xShmBarrier, ()) }
}

unsafe extern "C" fn shm_unmap(file: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    // SAFETY: as SQLite's own call.
    unsafe { forward!(file, xShmUnmap, ffi::SQLITE_OK, delete) }
}

unsafe extern "C" fn fetch(
    file: *mut ffi::sqlite3_file,
    offset: ffi::sqlite3_int64,
    amount: c_int,
    out: *mut *mut c_void,
) -> c_int {
    // SAFETY: as SQLite's own call, after the buffer went out. Without a platform
    // method, "no mapping" (a null pointer) makes SQLite read instead.
    unsafe {
        let w = wal(file);
        let rc = w.flush();
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        match w.methods().xFetch {
            Some(f) => f(w.inner, offset, amount, out),
            None => {
                *out = std::ptr::null_mut();
                ffi::SQLITE_OK
            }
        }
    }
}

unsafe extern "C" fn unfetch(
    file: *mut ffi::sqlite3_file,
    offset: ffi::sqlite3_int64,
    p: *mut c_void,
) -> c_int {
    // SAFETY: as SQLite's own call.
    unsafe { forward!(file, xUnfetch, ffi::SQLITE_OK, offset, p) }
}

static WAL_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: Some(shm_map),
    xShmLock: Some(shm_lock),
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

    fn open(path: &std::path::Path, vfs: &str) -> Connection {
        let conn = Connection::open_with_flags_and_vfs(path, OpenFlags::default(), vfs).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
        conn
    }

    fn count(conn: &Connection) -> (i64, i64) {
        conn.query_row(
            "SELECT count(*), coalesce(sum(length(v)), 0) FROM t",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    }

    /// Transactions of one row to thousands (past the buffer and past one platform
    /// write), each checked at once from a connection on SQLite's own VFS: it finds
    /// the commit's frames through the shared WAL index, so a frame still in the buffer
    /// would show as a short or corrupt read.
    #[test]
    fn every_commit_is_in_the_file_before_another_connection_can_see_it() {
        register().unwrap();
        let dir = temp_dir("visible");
        let path = dir.0.join("t.db");
        let writer = open(&path, VFS_NAME);
        writer
            .execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
            .unwrap();
        let reader = open(&path, "unix");
        let sizes = [1, 2, 40, 400, 4_000, 1, 12_000, 3, 900];
        for (i, rows) in sizes.iter().enumerate() {
            writer.execute_batch("BEGIN").unwrap();
            for j in 0..*rows {
                writer
                    .execute(
                        "INSERT INTO t (v) VALUES (?1)",
                        [format!("{i}-{j}-{}", "x".repeat(200))],
                    )
                    .unwrap();
            }
            writer.execute_batch("COMMIT").unwrap();
            assert_eq!(
                count(&reader),
                count(&writer),
                "after commit {i} ({rows} rows)"
            );
        }
    }

    /// With a page cache of a few pages, SQLite writes a transaction's frames before
    /// its commit, writes some pages again in place and then rewrites the frames'
    /// checksums. A copy of the files taken right after each COMMIT, the writer still
    /// open (what a killed process leaves), must recover that commit, checked by
    /// SQLite's own VFS: recovery reads the WAL's frames and drops a commit whose
    /// checksums do not hold.
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
            for j in 0..3_000 {
                writer
                    .execute(
                        "INSERT INTO t (v) VALUES (?1)",
                        [format!("{round}-{j}-{}", "y".repeat(120))],
                    )
                    .unwrap();
            }
            // Pages written (spilled) earlier in this transaction, written again.
            writer
                .execute("UPDATE t SET v = v || 'z' WHERE k % 50 = 0", [])
                .unwrap();
            writer.execute_batch("COMMIT").unwrap();
            // Nothing else on the writer before the copy: no read that would send a
            // buffer out.
            let copy = dir.0.join(format!("copy{round}.db"));
            std::fs::copy(&path, &copy).unwrap();
            std::fs::copy(
                dir.0.join("t.db-wal"),
                dir.0.join(format!("copy{round}.db-wal")),
            )
            .unwrap();
            let recovered = open(&copy, "unix");
            let rows: i64 = recovered
                .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                .unwrap();
            assert_eq!(rows, 3_000 * (round + 1), "round {round}");
            let check: String = recovered
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .unwrap();
            assert_eq!(check, "ok");
        }
    }

    /// The buffer's own rules, without SQLite: frames that follow on are kept, a
    /// commit frame's page sends everything, a commit header anywhere else goes at once.
    #[test]
    fn a_commit_frame_leaves_nothing_in_the_buffer() {
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
        assert!(b.commit_pending);
        assert_eq!(b.step(&page, at), Step::KeepAndSend);
        // A write elsewhere while a commit frame is open: everything out, then it.
        assert_eq!(b.step(&page, 32), Step::SendAndPass);

        let mut b = Buffer::default();
        // A commit header on an empty buffer, or rewritten in place: at once.
        assert_eq!(b.step(&commit, 32), Step::SendAndPass);
        b.keep(&header, 32);
        assert_eq!(b.step(&commit, 32 + 24 + 4096), Step::SendAndPass);
        // Past the buffer's size: out first.
        let big = vec![0u8; WAL_BUFFER_BYTES];
        assert_eq!(b.step(&big, 32 + 24), Step::SendAndKeep);
        let bigger = vec![0u8; WAL_BUFFER_BYTES + 1];
        assert_eq!(b.step(&bigger, 32 + 24), Step::SendAndPass);
    }
}
