-- The feed order becomes the table's own key (an INTEGER PRIMARY KEY is the
-- rowid): rows are stored in seq order and found by seq without the
-- separate messages_seq index, one b-tree fewer for every insert to update
-- and for every commit to write. The per-user index needs only user_id, as
-- each of its entries ends with the rowid, which is now the seq.
CREATE TABLE messages_by_seq (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    content TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
INSERT INTO messages_by_seq (seq, id, user_id, content, created_at)
    SELECT seq, id, user_id, content, created_at FROM messages ORDER BY seq;
DROP TABLE messages;
ALTER TABLE messages_by_seq RENAME TO messages;
CREATE INDEX messages_user ON messages (user_id);
