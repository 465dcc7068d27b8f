CREATE TABLE messages_by_rowid (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    content TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    seq INTEGER
);
INSERT INTO messages_by_rowid (id, user_id, content, created_at, seq)
    SELECT id, user_id, content, created_at, seq FROM messages ORDER BY seq;
DROP TABLE messages;
ALTER TABLE messages_by_rowid RENAME TO messages;
CREATE UNIQUE INDEX messages_seq ON messages (seq);
CREATE INDEX messages_user_seq ON messages (user_id, seq);
