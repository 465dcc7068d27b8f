#include "store/sqlite/wal_write_buffer.h"

#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "model/message_id.h"
#include "store/sqlite/sqlite_store.h"

namespace feed {

namespace {

// ---------------------------------------------------------------------------
// A VFS under the buffer that counts what reaches the WAL file and can fail
// its writes: it stands for the disk.

struct probe_state {
  std::atomic<int> wal_writes{0};
  std::atomic<long> wal_bytes{0};
  std::atomic<int> wal_syncs{0};
  std::atomic<bool> fail_wal_writes{false};
  void reset() { wal_writes = 0, wal_bytes = 0, wal_syncs = 0, fail_wal_writes = false; }
};
probe_state probe;

struct probe_file {
  sqlite3_file base;
  sqlite3_file* real;
};
constexpr int kProbeHeader = 64;
static_assert(sizeof(probe_file) <= kProbeHeader);

sqlite3_vfs* probe_base() { return static_cast<sqlite3_vfs*>(sqlite3_vfs_find("unix")); }
sqlite3_file* real(sqlite3_file* f) { return reinterpret_cast<probe_file*>(f)->real; }

int p_close(sqlite3_file* f) { return real(f)->pMethods->xClose(real(f)); }
int p_read(sqlite3_file* f, void* b, int n, sqlite3_int64 o) { return real(f)->pMethods->xRead(real(f), b, n, o); }
int p_write(sqlite3_file* f, const void* b, int n, sqlite3_int64 o) {
  if (probe.fail_wal_writes) return SQLITE_IOERR_WRITE;
  ++probe.wal_writes;
  probe.wal_bytes += n;
  return real(f)->pMethods->xWrite(real(f), b, n, o);
}
int p_truncate(sqlite3_file* f, sqlite3_int64 n) { return real(f)->pMethods->xTruncate(real(f), n); }
int p_sync(sqlite3_file* f, int flags) {
  ++probe.wal_syncs;
  return real(f)->pMethods->xSync(real(f), flags);
}
int p_size(sqlite3_file* f, sqlite3_int64* n) { return real(f)->pMethods->xFileSize(real(f), n); }
int p_lock(sqlite3_file* f, int l) { return real(f)->pMethods->xLock(real(f), l); }
int p_unlock(sqlite3_file* f, int l) { return real(f)->pMethods->xUnlock(real(f), l); }
int p_check(sqlite3_file* f, int* o) { return real(f)->pMethods->xCheckReservedLock(real(f), o); }
int p_fcntl(sqlite3_file* f, int op, void* a) { return real(f)->pMethods->xFileControl(real(f), op, a); }
int p_sector(sqlite3_file* f) { return real(f)->pMethods->xSectorSize(real(f)); }
int p_dev(sqlite3_file* f) { return real(f)->pMethods->xDeviceCharacteristics(real(f)); }

const sqlite3_io_methods probe_methods = {
    1, p_close, p_read, p_write, p_truncate, p_sync, p_size, p_lock, p_unlock, p_check, p_fcntl, p_sector, p_dev,
    nullptr, nullptr, nullptr, nullptr, nullptr, nullptr};

// Every file passes through to "unix"; WAL files are wrapped and counted.
int p_open(sqlite3_vfs*, const char* name, sqlite3_file* f, int flags, int* out) {
  sqlite3_vfs* base = probe_base();
  if ((flags & SQLITE_OPEN_WAL) == 0) return base->xOpen(base, name, f, flags, out);
  auto* p = reinterpret_cast<probe_file*>(f);
  p->base.pMethods = nullptr;
  p->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(f) + kProbeHeader);
  std::memset(p->real, 0, static_cast<std::size_t>(base->szOsFile));
  const int rc = base->xOpen(base, name, p->real, flags, out);
  if (rc != SQLITE_OK) {
    if (p->real->pMethods) p->real->pMethods->xClose(p->real);
    return rc;
  }
  p->base.pMethods = &probe_methods;
  return SQLITE_OK;
}

// The probe VFS ("wal-probe") and the buffer over it ("wal-probe-buffered",
// bound kBound), registered once for the whole test binary.
constexpr std::size_t kBound = 64 << 10;
sqlite3_vfs* buffered_vfs() {
  static sqlite3_vfs* v = [] {
    sqlite3_initialize();
    static sqlite3_vfs probe_vfs = *probe_base();
    probe_vfs.zName = "wal-probe";
    probe_vfs.szOsFile = kProbeHeader + probe_base()->szOsFile;
    probe_vfs.xOpen = p_open;
    probe_vfs.pNext = nullptr;
    // The remaining methods are unix's own, called with our VFS pointer:
    // they only use it for pAppData (the same) and the system calls.
    EXPECT_EQ(sqlite3_vfs_register(&probe_vfs, 0), SQLITE_OK);
    return sqlite_wal::register_write_buffer_vfs("wal-probe-buffered", &probe_vfs, kBound);
  }();
  return v;
}

class WalWriteBuffer : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(buffered_vfs(), nullptr);
    probe.reset();
    dir_ = std::filesystem::temp_directory_path() / fmt::format("feed-walbuf-test-{}-{}", ::getpid(), counter_++);
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    close();
    probe.reset();
    std::filesystem::remove_all(dir_);
  }

  // Opens dir_/name as a WAL file through the buffer.
  void open_wal(const char* name = "x.db-wal") {
    path_ = (dir_ / name).string();
    // The unix VFS gives a WAL file its database file's mode: it must exist.
    std::ofstream(dir_ / "x.db").flush();
    sqlite3_vfs* v = buffered_vfs();
    mem_.assign(static_cast<std::size_t>(v->szOsFile) / 8 + 1, 0);
    f_ = reinterpret_cast<sqlite3_file*>(mem_.data());
    int out = 0;
    ASSERT_EQ(v->xOpen(v, path_.c_str(), f_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_WAL, &out),
              SQLITE_OK);
    ASSERT_NE(f_->pMethods, nullptr);
  }
  void close() {
    if (f_ && f_->pMethods) {
      EXPECT_EQ(f_->pMethods->xClose(f_), SQLITE_OK);
    }
    f_ = nullptr;
  }
  int write(const std::string& bytes, sqlite3_int64 off) {
    return f_->pMethods->xWrite(f_, bytes.data(), static_cast<int>(bytes.size()), off);
  }
  int sync() { return f_->pMethods->xSync(f_, SQLITE_SYNC_NORMAL); }
  std::string on_disk() const {
    std::ifstream in(path_, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  std::filesystem::path dir_;
  std::string path_;
  std::vector<std::uint64_t> mem_;  // the sqlite3_file, 8-byte aligned
  sqlite3_file* f_ = nullptr;
  static inline int counter_ = 0;
};

// A frame as SQLite writes it: the 24-byte header, then the page.
std::string bytes(std::size_t n, char fill) { return std::string(n, fill); }

TEST_F(WalWriteBuffer, ContiguousAppendsReachTheFileAsOneWriteAtSync) {
  open_wal();
  std::string want;
  sqlite3_int64 off = 0;
  for (int i = 0; i < 8; ++i) {
    for (const auto& part : {bytes(24, static_cast<char>('a' + i)), bytes(4096, static_cast<char>('A' + i))}) {
      ASSERT_EQ(write(part, off), SQLITE_OK);
      off += static_cast<sqlite3_int64>(part.size());
      want += part;
    }
  }
  EXPECT_EQ(probe.wal_writes, 0);
  EXPECT_EQ(on_disk(), "");
  ASSERT_EQ(sync(), SQLITE_OK);
  EXPECT_EQ(probe.wal_writes, 1);
  EXPECT_EQ(probe.wal_bytes, static_cast<long>(want.size()));
  EXPECT_EQ(probe.wal_syncs, 1);
  EXPECT_EQ(on_disk(), want);
}

TEST_F(WalWriteBuffer, ABufferLargerThanOneWriteCallReachesTheFileWhole) {
  // The unix VFS takes at most 0x1ffff bytes per write call: a larger buffer
  // goes out in pieces (through "unix" itself here, not the probe).
  static sqlite3_vfs* big = sqlite_wal::register_write_buffer_vfs("wal-unix-buffered", probe_base(), 1 << 20);
  ASSERT_NE(big, nullptr);
  path_ = (dir_ / "x.db-wal").string();
  std::ofstream(dir_ / "x.db").flush();
  mem_.assign(static_cast<std::size_t>(big->szOsFile) / 8 + 1, 0);
  f_ = reinterpret_cast<sqlite3_file*>(mem_.data());
  int out = 0;
  ASSERT_EQ(big->xOpen(big, path_.c_str(), f_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_WAL, &out),
            SQLITE_OK);
  std::string want;
  for (int i = 0; i < 200; ++i) {  // 200 frames: 824,000 bytes
    for (const auto& part : {bytes(24, static_cast<char>('a' + i % 26)), bytes(4096, static_cast<char>('A' + i % 26))}) {
      ASSERT_EQ(write(part, static_cast<sqlite3_int64>(want.size())), SQLITE_OK);
      want += part;
    }
  }
  ASSERT_EQ(sync(), SQLITE_OK);
  EXPECT_EQ(on_disk(), want);
}

TEST_F(WalWriteBuffer, ReadAfterWriteSeesTheBufferedBytes) {
  open_wal();
  ASSERT_EQ(write(bytes(100, 'x'), 0), SQLITE_OK);
  ASSERT_EQ(write(bytes(50, 'y'), 100), SQLITE_OK);
  std::string got(60, '\0');
  ASSERT_EQ(f_->pMethods->xRead(f_, got.data(), 60, 90), SQLITE_OK);
  EXPECT_EQ(got, bytes(10, 'x') + bytes(50, 'y'));
  EXPECT_EQ(probe.wal_writes, 1);
  sqlite3_int64 size = 0;
  ASSERT_EQ(write(bytes(10, 'z'), 150), SQLITE_OK);
  ASSERT_EQ(f_->pMethods->xFileSize(f_, &size), SQLITE_OK);  // written out first, too
  EXPECT_EQ(size, 160);
  EXPECT_EQ(probe.wal_writes, 2);
}

TEST_F(WalWriteBuffer, ANonContiguousWriteWritesTheBufferOutFirst) {
  open_wal();
  ASSERT_EQ(write(bytes(100, 'a'), 0), SQLITE_OK);
  ASSERT_EQ(write(bytes(100, 'b'), 50), SQLITE_OK);  // overlaps: must land after 'a'
  EXPECT_EQ(probe.wal_writes, 1);
  ASSERT_EQ(write(bytes(10, 'c'), 300), SQLITE_OK);  // leaves a gap
  EXPECT_EQ(probe.wal_writes, 2);
  ASSERT_EQ(sync(), SQLITE_OK);
  EXPECT_EQ(probe.wal_writes, 3);
  EXPECT_EQ(on_disk(), bytes(50, 'a') + bytes(100, 'b') + std::string(150, '\0') + bytes(10, 'c'));
}

TEST_F(WalWriteBuffer, TheBoundIsKeptAndLargerWritesGoStraightThrough) {
  open_wal();
  std::string want;
  for (int i = 0; i < 20; ++i) {  // 20 x 4 KiB through a 64 KiB buffer
    ASSERT_EQ(write(bytes(4096, static_cast<char>('a' + i)), static_cast<sqlite3_int64>(want.size())), SQLITE_OK);
    want += bytes(4096, static_cast<char>('a' + i));
  }
  EXPECT_EQ(probe.wal_writes, 1);  // the first 16 pages, when the 17th came
  const auto big = bytes(kBound + 1, 'Z');
  ASSERT_EQ(write(big, static_cast<sqlite3_int64>(want.size())), SQLITE_OK);
  want += big;
  EXPECT_EQ(probe.wal_writes, 3);  // the 4 buffered pages, then the large write itself
  ASSERT_EQ(f_->pMethods->xTruncate(f_, 4096), SQLITE_OK);
  ASSERT_EQ(sync(), SQLITE_OK);
  EXPECT_EQ(on_disk(), want.substr(0, 4096));
}

TEST_F(WalWriteBuffer, AFailedWriteOutIsTheErrorOfTheSync) {
  open_wal();
  ASSERT_EQ(write(bytes(4096, 'a'), 0), SQLITE_OK);
  probe.fail_wal_writes = true;
  ASSERT_EQ(write(bytes(4096, 'b'), 4096), SQLITE_OK);  // still only buffered
  EXPECT_EQ(sync(), SQLITE_IOERR_WRITE);
  EXPECT_EQ(probe.wal_syncs, 0) << "the file must not be synced as if the write had succeeded";
  probe.fail_wal_writes = false;
  // The failed bytes are gone (SQLite rewrites frames past its last commit);
  // the file keeps working.
  ASSERT_EQ(write(bytes(10, 'c'), 0), SQLITE_OK);
  ASSERT_EQ(sync(), SQLITE_OK);
  EXPECT_EQ(on_disk(), bytes(10, 'c'));
}

TEST_F(WalWriteBuffer, OtherFilesAreNotBuffered) {
  sqlite3_vfs* v = buffered_vfs();
  std::vector<std::uint64_t> mem(static_cast<std::size_t>(v->szOsFile) / 8 + 1, 0);
  auto* f = reinterpret_cast<sqlite3_file*>(mem.data());
  const auto path = (dir_ / "plain.db").string();
  int out = 0;
  ASSERT_EQ(v->xOpen(v, path.c_str(), f, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_MAIN_DB, &out),
            SQLITE_OK);
  ASSERT_NE(f->pMethods, nullptr);
  ASSERT_EQ(f->pMethods->xWrite(f, "hello", 5, 0), SQLITE_OK);
  std::ifstream in(path, std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "hello");  // on the file at once
  EXPECT_EQ(f->pMethods->xClose(f), SQLITE_OK);
}

// ---------------------------------------------------------------------------
// Through SQLite itself.

struct db_handle {
  sqlite3* db = nullptr;
  db_handle(const std::string& path, const char* vfs) {
    EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs), SQLITE_OK);
  }
  ~db_handle() { sqlite3_close_v2(db); }
  int exec(const char* sql) const { return sqlite3_exec(db, sql, nullptr, nullptr, nullptr); }
  long long count() const {
    sqlite3_stmt* s = nullptr;
    sqlite3_prepare_v2(db, "SELECT count(*) FROM t", -1, &s, nullptr);
    long long n = -1;
    if (sqlite3_step(s) == SQLITE_ROW) {
      n = sqlite3_column_int64(s, 0);
    }
    sqlite3_finalize(s);
    return n;
  }
};

// One transaction of `rows` rows of 3000 bytes each: about one page per row.
int insert_rows(const db_handle& d, int rows) {
  if (int rc = d.exec("BEGIN IMMEDIATE"); rc != SQLITE_OK) return rc;
  const std::string sql = fmt::format(
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {}) "
      "INSERT INTO t (v) SELECT randomblob(3000) FROM n",
      rows);
  if (int rc = d.exec(sql.c_str()); rc != SQLITE_OK) {
    d.exec("ROLLBACK");
    return rc;
  }
  const int rc = d.exec("COMMIT");
  if (rc != SQLITE_OK) d.exec("ROLLBACK");
  return rc;
}

TEST_F(WalWriteBuffer, AFullCommitIsOneWriteOneSyncAndVisibleToOtherConnections) {
  const auto path = (dir_ / "t.db").string();
  db_handle w(path, "wal-probe-buffered");
  ASSERT_EQ(w.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE t (v BLOB)"), SQLITE_OK);
  db_handle r(path, nullptr);  // a reader on the default VFS, its own file handles
  ASSERT_EQ(r.count(), 0);
  for (int round = 1; round <= 5; ++round) {
    probe.reset();
    ASSERT_EQ(insert_rows(w, 10), SQLITE_OK);
    // ~11 frames of 4 KiB + 24 bytes: under the 64 KiB bound, so one write.
    EXPECT_EQ(probe.wal_writes, 1) << "round " << round;
    EXPECT_EQ(probe.wal_syncs, 1) << "round " << round;
    EXPECT_EQ(r.count(), 10 * round) << "a committed transaction must be readable at once elsewhere";
  }
}

TEST_F(WalWriteBuffer, AFailedWriteOutFailsTheCommit) {
  const auto path = (dir_ / "t.db").string();
  {
    db_handle w(path, "wal-probe-buffered");
    ASSERT_EQ(w.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE t (v BLOB)"), SQLITE_OK);
    ASSERT_EQ(insert_rows(w, 3), SQLITE_OK);
    probe.fail_wal_writes = true;
    const int rc = insert_rows(w, 3);
    EXPECT_EQ(rc & 0xff, SQLITE_IOERR) << sqlite3_errstr(rc);
    probe.fail_wal_writes = false;
    db_handle r(path, nullptr);
    EXPECT_EQ(r.count(), 3) << "the failed transaction must not be visible";
    EXPECT_EQ(insert_rows(w, 2), SQLITE_OK) << sqlite3_errmsg(w.db);
    EXPECT_EQ(r.count(), 5);
  }
  db_handle again(path, nullptr);  // after the last close: checkpointed, and recovered from the WAL if not
  EXPECT_EQ(again.count(), 5);
}

TEST_F(WalWriteBuffer, AFullStoreShowsReadersOnlyWhatIsOnTheFile) {
  // sqlite_store's writer (FULL: through the buffer) committing batches
  // while its readers (the default VFS, their own file handles) read them
  // back: every row a reader sees must be whole, and the seqs gapless.
  auto s = sqlite_store::open({dir_ / "store.db", "FULL"});
  ASSERT_TRUE(s) << s.err().message;
  constexpr int kBatches = 150, kRows = 64;
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int b = 0; b < kBatches; ++b) {
      std::vector<message> batch;
      for (int i = 0; i < kRows; ++i)
        batch.push_back({random_message_id(), fmt::format("user-{}", (b * 7 + i) % 97),
                         fmt::format("{:0>300}", b * kRows + i), now_utc(), seq_t{0}});
      auto r = (*s)->insert_batch(batch);
      EXPECT_TRUE(r) << r.err().message;
    }
    done = true;
  });
  std::int64_t seen = 0;
  for (bool whole = true; whole;) {
    // Whether the writer was done, taken before the read: once it was, a
    // read that finds nothing new means every row was seen.
    const bool finished = done;
    read_query q;
    q.after = seq_t{seen};
    q.limit = 1000;
    auto rows = (*s)->read(q);
    if (!rows) {
      ADD_FAILURE() << rows.err().message;
      break;
    }
    for (const auto& m : *rows) {
      if (m.seq.value() != seen + 1 || m.content != fmt::format("{:0>300}", seen)) {
        ADD_FAILURE() << "after seq " << seen << " a reader saw seq " << m.seq.value() << " content " << m.content;
        whole = false;
        break;
      }
      ++seen;
    }
    if (finished && rows->empty()) break;
  }
  writer.join();
  EXPECT_EQ(seen, kBatches * kRows);
}

}  // namespace
}  // namespace feed
