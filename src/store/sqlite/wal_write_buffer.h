// A SQLite VFS that gathers the appends to a -wal file in memory and writes
// them with a few large write calls: see the comment at the top of wal_write_buffer.cc
// for why that leaves durability unchanged, and when it may be used (only
// by a connection with synchronous=FULL).
#pragma once

#include <cstddef>

struct sqlite3_vfs;

namespace feed::sqlite_wal {

// The most bytes one WAL file holds back before writing them.
inline constexpr std::size_t kDefaultBufferBytes = std::size_t{1} << 20;

// Registers (not as the default VFS) a VFS named `name` that passes every
// file through to `base` (nullptr: SQLite's default VFS) except the files
// SQLite opens as WAL files, whose contiguous writes it buffers, up to
// `buffer_bytes` per file. Returns the registered VFS, or nullptr when
// SQLite refused it. Meant to be called once per name: the VFS and its
// data live until the process exits (SQLite keeps pointers to them).
sqlite3_vfs* register_write_buffer_vfs(const char* name, sqlite3_vfs* base, std::size_t buffer_bytes);

// The process's buffering VFS over SQLite's default VFS, registered on the
// first call (thread-safe): its name, for sqlite3_open_v2's zVfs, or nullptr
// when it could not be registered (the caller then opens without it).
const char* write_buffer_vfs_name();

}  // namespace feed::sqlite_wal
