-- The reference's table, in SQLite types. Timestamps are microseconds since
-- the Unix epoch (UTC).
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    content TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
