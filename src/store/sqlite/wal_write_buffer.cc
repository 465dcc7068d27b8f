// Write coalescing for the writer's WAL file.
//
// Why: SQLite writes each WAL frame as two writes (walWriteOneFrame: the
// 24-byte frame header, then the page), and a batch of posts dirties one
// leaf of the (user_id, seq) index per row, so a commit of ~60 posts was
// ~150 pwrite64 calls on the same file, back to back and contiguous. This
// VFS keeps those bytes in one buffer per WAL file and hands them to the
// real file in one write when something needs them on the file.
//
// What it does: every file is opened by the wrapped VFS (normally "unix")
// and used through that VFS's own methods, except files SQLite opens with
// SQLITE_OPEN_WAL. For those, a write that continues the buffered range
// (offset == buffer start + buffer length) is copied into the buffer; any
// other write first writes out the buffer. The buffer is written out,
// before the call is passed on, by: xSync, xRead, xTruncate, xFileSize,
// xClose, xFileControl, xLock/xUnlock/xCheckReservedLock, xShmMap/xShmLock/
// xShmUnmap, xFetch, a write that is not contiguous with it, and a write
// that would take it past its bound. Only xSectorSize,
// xDeviceCharacteristics, xShmBarrier (a memory barrier) and xUnfetch (the
// release of a mapping) pass without it: they read no file contents. The
// file's bytes therefore end up exactly as without the buffer, written in
// the same order; only the moment each byte reaches the kernel moves later,
// never past the next call that could observe it through this file handle.
// A failed write-out (SQLITE_IOERR_WRITE, SQLITE_FULL from the real xWrite)
// is the result of the call that caused it -- for a commit that is xSync --
// and the buffered bytes are dropped: they are frames past the last commit,
// which SQLite rewrites after it rolls the failed transaction back.
//
// Why durability is unchanged with synchronous=FULL (read in SQLite 3.40.1,
// the version Debian 12 ships, src/wal.c and src/pager.c):
//
//  1. pager.c, sqlite3PagerSetFlags: walSyncFlags = syncFlags << 2, plus
//     syncFlags in the low bits when fullSync (level >= FULL). wal.h:
//     WAL_SYNC_FLAGS(X) = X & 3 (the commit's sync), CKPT_SYNC_FLAGS(X) =
//     (X >> 2) & 3 (the WAL header's and the checkpoint's sync). So with
//     FULL every commit syncs the WAL; with NORMAL no commit does.
//  2. wal.c, sqlite3WalFrames (pagerWalFrames passes pPager->walSyncFlags):
//     all frames of the transaction are written (walWriteOneFrame ->
//     walWriteToLog -> sqlite3OsWrite), then, if isCommit &&
//     WAL_SYNC_FLAGS(sync_flags), sqlite3OsSync on the WAL (also between
//     frames at iSyncPoint when padding to a sector, which the unix VFS's
//     POWERSAFE_OVERWRITE turns off); a failed sync returns before
//     anything else. Only after that does it append the frames to the
//     wal-index (walIndexAppend) and write the wal-index header
//     (walIndexWriteHdr), which is what makes the commit visible to other
//     connections, and returns SQLITE_OK for the commit.
//  3. Because xSync writes the buffer out first, and returns the write's
//     error instead of syncing when it fails, a commit's frames are on the
//     file and fsynced before the wal-index shows them, exactly as before;
//     a failed deferred write fails that commit, as a failed direct write
//     did. The WAL header (frame 0, written when the log starts or
//     restarts) is followed by its own sqlite3OsSync (syncHeader, with the
//     CKPT flags, set for FULL and NORMAL alike) before any frame.
//  4. The other writers of the wal-index header: walIndexRecover (reads
//     the WAL through xFileSize/xRead, which write the buffer out) and
//     walRestartHdr (resets the log, exposes no frame). Other connections
//     and processes read the WAL through their own file handles, and only
//     frames up to the mxFrame of a header written per 2 -- bytes already
//     written and synced. Bytes still in the buffer between commits can
//     only be frames of a transaction that did not commit (a cache spill
//     rolled back), past mxFrame: never read by anyone, rewritten by the
//     next transaction (whose first write, at the old mxFrame, is not
//     contiguous with them, so they are written out first and then
//     overwritten, in order).
//  5. The checkpointer (this connection's autocheckpoint, or a last
//     connection's close) syncs the WAL first (walCheckpoint,
//     sqlite3OsSync with the CKPT flags) and reads frames via xRead.
//
// With synchronous=NORMAL none of this holds: a commit ends without an
// xSync, so its frames could sit in the buffer while the wal-index already
// shows them to readers on other file handles (which would read stale
// bytes). sqlite_store therefore opens the writer through this VFS only
// with FULL, and with NORMAL through the default VFS (plain writes).
#include "store/sqlite/wal_write_buffer.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

namespace feed::sqlite_wal {

namespace {

struct vfs_data {
  sqlite3_vfs* base;
  std::size_t bound;
};

// Our file object: SQLite allocates szOsFile bytes for it. For a WAL file the
// wrapped VFS's own file object lives after this header; for any other file
// the wrapped VFS opens into the start of the allocation directly (it then
// never sees our methods).
struct wal_file {
  sqlite3_file base;  // pMethods = &wal_methods
  sqlite3_file* real;
  std::size_t bound;
  unsigned char* buf;
  std::size_t cap;
  std::size_t len;
  sqlite3_int64 off;  // file offset of buf[0]
};

constexpr std::size_t kHeader = (sizeof(wal_file) + 15) & ~std::size_t{15};
constexpr std::size_t kMinCapacity = std::size_t{64} << 10;

wal_file* self(sqlite3_file* f) { return reinterpret_cast<wal_file*>(f); }
vfs_data* data(sqlite3_vfs* v) { return static_cast<vfs_data*>(v->pAppData); }
sqlite3_vfs* base_of(sqlite3_vfs* v) { return data(v)->base; }

// The most bytes handed to the real xWrite at once. The unix VFS takes at
// most 0x1ffff bytes per call (seekAndWriteFd masks the length with it:
// SQLite itself never writes more than a 64 KiB page at a time), so a larger
// buffer is written in pieces of 31 pages.
constexpr std::size_t kMaxWrite = 0x1f000;

// Writes the buffered bytes to the real file; empties the buffer whatever
// the outcome (see the top of the file).
int flush(wal_file* w) {
  int rc = SQLITE_OK;
  for (std::size_t done = 0; done < w->len && rc == SQLITE_OK;) {
    const std::size_t n = std::min(w->len - done, kMaxWrite);
    rc = w->real->pMethods->xWrite(w->real, w->buf + done, static_cast<int>(n),
                                   w->off + static_cast<sqlite3_int64>(done));
    done += n;
  }
  w->len = 0;
  return rc;
}

bool reserve(wal_file* w, std::size_t need) {
  if (need <= w->cap) return true;
  std::size_t cap = std::max(w->cap * 2, kMinCapacity);
  while (cap < need) cap *= 2;
  cap = std::min(cap, w->bound);
  auto* p = static_cast<unsigned char*>(std::realloc(w->buf, cap));
  if (!p) return false;
  w->buf = p;
  w->cap = cap;
  return true;
}

int wal_close(sqlite3_file* f) {
  auto* w = self(f);
  const int flushed = flush(w);
  const int closed = w->real->pMethods->xClose(w->real);
  std::free(w->buf);
  w->buf = nullptr;
  w->cap = 0;
  return flushed != SQLITE_OK ? flushed : closed;
}

int wal_read(sqlite3_file* f, void* out, int amt, sqlite3_int64 off) {
  auto* w = self(f);
  if (const int rc = flush(w); rc != SQLITE_OK) return rc;
  return w->real->pMethods->xRead(w->real, out, amt, off);
}

int wal_write(sqlite3_file* f, const void* in, int amt, sqlite3_int64 off) {
  auto* w = self(f);
  const auto n = static_cast<std::size_t>(amt);
  if (w->len > 0 && (off != w->off + static_cast<sqlite3_int64>(w->len) || w->len + n > w->bound)) {
    if (const int rc = flush(w); rc != SQLITE_OK) return rc;
  }
  if (n > w->bound || !reserve(w, w->len + n)) {
    // Too large to hold (or no memory for it): written through, after what
    // is buffered, so the order of the bytes is kept.
    if (const int rc = flush(w); rc != SQLITE_OK) return rc;
    return w->real->pMethods->xWrite(w->real, in, amt, off);
  }
  if (w->len == 0) w->off = off;
  std::memcpy(w->buf + w->len, in, n);
  w->len += n;
  return SQLITE_OK;
}

int wal_truncate(sqlite3_file* f, sqlite3_int64 size) {
  auto* w = self(f);
  if (const int rc = flush(w); rc != SQLITE_OK) return rc;
  return w->real->pMethods->xTruncate(w->real, size);
}

int wal_sync(sqlite3_file* f, int flags) {
  auto* w = self(f);
  if (const int rc = flush(w); rc != SQLITE_OK) return rc;
  return w->real->pMethods->xSync(w->real, flags);
}

int wal_file_size(sqlite3_file* f, sqlite3_int64* size) {
  auto* w = self(f);
  if (const int rc = flush(w); rc != SQLITE_OK) return rc;
  return w->real->pMethods->xFileSize(w->real, size);
}

int wal_lock(sqlite3_file* f, int level) {
  auto* w = self(f);
  if (const int rc = flush(w); rc != SQLITE_OK) return rc;
  return w->real->pMethods->xLock(w->real, level);
}

int wal_unlock(sqlite3_file* f, int level) {
  auto* w = self(f);
  if (const int rc = flush(w); rc != SQLITE_OK) return rc;
  return w->real->pMethods->xUnlock(w->real, level);
}

int wal_check_reserved_lock(sqlite3_file* f, int* out) {
  auto* w = self(f);
  if (const int rc = flush(w); rc != SQLITE_OK) return rc;
  return w->real->pMethods->xCheckReservedLock(w->real, out);
}

int wal_file_control(sqlite3_file* f, int op, void* arg) {
  auto* w = self(f);
  if (const int rc = flush(w); rc != SQLITE_OK) return rc;
  return w->real->pMethods->xFileControl(w->real, op, arg);
}

int wal_sector_size(sqlite3_file* f) { return self(f)->real->pMethods->xSectorSize(self(f)->real); }

int wal_device_characteristics(sqlite3_file* f) {
  return self(f)->real->pMethods->xDeviceCharacteristics(self(f)->real);
}

// The shared-memory and mmap methods are never called on a WAL file by
// SQLite (they are the database file's); passed on in case, after the
// write-out where they could observe the file.
int wal_shm_map(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
  auto* w = self(f);
  if (w->real->pMethods->iVersion < 2 || !w->real->pMethods->xShmMap) return SQLITE_IOERR_SHMMAP;
  if (const int rc = flush(w); rc != SQLITE_OK) return rc;
  return w->real->pMethods->xShmMap(w->real, region, size, extend, out);
}

int wal_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
  auto* w = self(f);
  if (w->real->pMethods->iVersion < 2 || !w->real->pMethods->xShmLock) return SQLITE_IOERR_SHMLOCK;
  if (const int rc = flush(w); rc != SQLITE_OK) return rc;
  return w->real->pMethods->xShmLock(w->real, offset, n, flags);
}

void wal_shm_barrier(sqlite3_file* f) {
  auto* w = self(f);
  if (w->real->pMethods->iVersion >= 2 && w->real->pMethods->xShmBarrier) w->real->pMethods->xShmBarrier(w->real);
}

int wal_shm_unmap(sqlite3_file* f, int remove) {
  auto* w = self(f);
  if (w->real->pMethods->iVersion < 2 || !w->real->pMethods->xShmUnmap) return SQLITE_OK;
  if (const int rc = flush(w); rc != SQLITE_OK) return rc;
  return w->real->pMethods->xShmUnmap(w->real, remove);
}

int wal_fetch(sqlite3_file* f, sqlite3_int64 off, int amt, void** out) {
  auto* w = self(f);
  *out = nullptr;
  if (w->real->pMethods->iVersion < 3 || !w->real->pMethods->xFetch) return SQLITE_OK;
  if (const int rc = flush(w); rc != SQLITE_OK) return rc;
  return w->real->pMethods->xFetch(w->real, off, amt, out);
}

int wal_unfetch(sqlite3_file* f, sqlite3_int64 off, void* p) {
  auto* w = self(f);
  if (w->real->pMethods->iVersion < 3 || !w->real->pMethods->xUnfetch) return SQLITE_OK;
  return w->real->pMethods->xUnfetch(w->real, off, p);
}

const sqlite3_io_methods wal_methods = {
    3,
    wal_close,
    wal_read,
    wal_write,
    wal_truncate,
    wal_sync,
    wal_file_size,
    wal_lock,
    wal_unlock,
    wal_check_reserved_lock,
    wal_file_control,
    wal_sector_size,
    wal_device_characteristics,
    wal_shm_map,
    wal_shm_lock,
    wal_shm_barrier,
    wal_shm_unmap,
    wal_fetch,
    wal_unfetch,
};

int vfs_open(sqlite3_vfs* vfs, const char* name, sqlite3_file* f, int flags, int* out_flags) {
  sqlite3_vfs* base = base_of(vfs);
  if ((flags & SQLITE_OPEN_WAL) == 0) return base->xOpen(base, name, f, flags, out_flags);
  auto* w = self(f);
  w->base.pMethods = nullptr;
  w->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(f) + kHeader);
  w->bound = data(vfs)->bound;
  w->buf = nullptr;
  w->cap = 0;
  w->len = 0;
  w->off = 0;
  std::memset(w->real, 0, static_cast<std::size_t>(base->szOsFile));
  const int rc = base->xOpen(base, name, w->real, flags, out_flags);
  if (rc != SQLITE_OK) {
    // SQLite calls xClose after a failed xOpen only when pMethods is set:
    // ours stays null, so the real file is closed here if it needs it.
    if (w->real->pMethods) w->real->pMethods->xClose(w->real);
    return rc;
  }
  w->base.pMethods = &wal_methods;
  return SQLITE_OK;
}

int vfs_delete(sqlite3_vfs* v, const char* name, int sync_dir) {
  return base_of(v)->xDelete(base_of(v), name, sync_dir);
}
int vfs_access(sqlite3_vfs* v, const char* name, int flags, int* out) {
  return base_of(v)->xAccess(base_of(v), name, flags, out);
}
int vfs_full_pathname(sqlite3_vfs* v, const char* name, int n, char* out) {
  return base_of(v)->xFullPathname(base_of(v), name, n, out);
}
void* vfs_dl_open(sqlite3_vfs* v, const char* name) { return base_of(v)->xDlOpen(base_of(v), name); }
void vfs_dl_error(sqlite3_vfs* v, int n, char* out) { base_of(v)->xDlError(base_of(v), n, out); }
void (*vfs_dl_sym(sqlite3_vfs* v, void* h, const char* sym))(void) { return base_of(v)->xDlSym(base_of(v), h, sym); }
void vfs_dl_close(sqlite3_vfs* v, void* h) { base_of(v)->xDlClose(base_of(v), h); }
int vfs_randomness(sqlite3_vfs* v, int n, char* out) { return base_of(v)->xRandomness(base_of(v), n, out); }
int vfs_sleep(sqlite3_vfs* v, int us) { return base_of(v)->xSleep(base_of(v), us); }
int vfs_current_time(sqlite3_vfs* v, double* out) { return base_of(v)->xCurrentTime(base_of(v), out); }
int vfs_get_last_error(sqlite3_vfs* v, int n, char* out) {
  return base_of(v)->xGetLastError ? base_of(v)->xGetLastError(base_of(v), n, out) : 0;
}
int vfs_current_time_int64(sqlite3_vfs* v, sqlite3_int64* out) {
  return base_of(v)->xCurrentTimeInt64(base_of(v), out);
}
int vfs_set_system_call(sqlite3_vfs* v, const char* name, sqlite3_syscall_ptr p) {
  return base_of(v)->xSetSystemCall(base_of(v), name, p);
}
sqlite3_syscall_ptr vfs_get_system_call(sqlite3_vfs* v, const char* name) {
  return base_of(v)->xGetSystemCall(base_of(v), name);
}
const char* vfs_next_system_call(sqlite3_vfs* v, const char* name) {
  return base_of(v)->xNextSystemCall(base_of(v), name);
}

}  // namespace

sqlite3_vfs* register_write_buffer_vfs(const char* name, sqlite3_vfs* base, std::size_t buffer_bytes) {
  if (sqlite3_initialize() != SQLITE_OK) return nullptr;
  if (!base) base = sqlite3_vfs_find(nullptr);
  if (!base || !name || buffer_bytes == 0) return nullptr;
  // Never freed: SQLite keeps the pointers for as long as the VFS is
  // registered, which is until the process exits.
  auto* d = new (std::nothrow) vfs_data{base, buffer_bytes};
  auto* v = new (std::nothrow) sqlite3_vfs{};
  if (!d || !v) return nullptr;
  v->iVersion = std::min(base->iVersion, 3);
  v->szOsFile = static_cast<int>(kHeader) + base->szOsFile;
  v->mxPathname = base->mxPathname;
  v->zName = name;
  v->pAppData = d;
  v->xOpen = vfs_open;
  v->xDelete = vfs_delete;
  v->xAccess = vfs_access;
  v->xFullPathname = vfs_full_pathname;
  v->xDlOpen = base->xDlOpen ? vfs_dl_open : nullptr;
  v->xDlError = base->xDlError ? vfs_dl_error : nullptr;
  v->xDlSym = base->xDlSym ? vfs_dl_sym : nullptr;
  v->xDlClose = base->xDlClose ? vfs_dl_close : nullptr;
  v->xRandomness = vfs_randomness;
  v->xSleep = vfs_sleep;
  v->xCurrentTime = vfs_current_time;
  v->xGetLastError = vfs_get_last_error;
  if (v->iVersion >= 2) v->xCurrentTimeInt64 = base->xCurrentTimeInt64 ? vfs_current_time_int64 : nullptr;
  if (v->iVersion >= 3) {
    v->xSetSystemCall = base->xSetSystemCall ? vfs_set_system_call : nullptr;
    v->xGetSystemCall = base->xGetSystemCall ? vfs_get_system_call : nullptr;
    v->xNextSystemCall = base->xNextSystemCall ? vfs_next_system_call : nullptr;
  }
  if (sqlite3_vfs_register(v, 0) != SQLITE_OK) return nullptr;
  return v;
}

const char* write_buffer_vfs_name() {
  static const char* const name = [] () -> const char* {
    constexpr const char* kName = "feed-wal-buffer";
    return register_write_buffer_vfs(kName, nullptr, kDefaultBufferBytes) ? kName : nullptr;
  }();
  return name;
}

}  // namespace feed::sqlite_wal
