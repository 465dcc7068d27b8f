-- The per-user index becomes a table that the writer fills in bulk, behind
-- the feed, instead of an index every insert updates. Posts come from many
-- users, so each commit of the index wrote about one index leaf page per
-- post; filled a few thousand posts at a time, the same leaves take many
-- entries per write. messages_by_user_through holds the highest seq the
-- table covers: a read for one user looks up the table up to it and scans
-- the messages above it (store/sqlite/sqlite_store.cc).
CREATE TABLE messages_by_user (
    user_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (user_id, seq)
) WITHOUT ROWID;
INSERT INTO messages_by_user (user_id, seq) SELECT user_id, seq FROM messages;
CREATE TABLE messages_by_user_through (seq INTEGER NOT NULL);
INSERT INTO messages_by_user_through (seq) SELECT COALESCE(MAX(seq), 0) FROM messages;
DROP INDEX messages_user;
