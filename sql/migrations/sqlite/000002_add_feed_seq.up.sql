-- The gapless feed order. Rows stored before this migration are numbered in
-- created_at order.
ALTER TABLE messages ADD COLUMN seq INTEGER;
UPDATE messages SET seq = (
    SELECT COUNT(*) FROM messages AS earlier
    WHERE earlier.created_at < messages.created_at
       OR (earlier.created_at = messages.created_at AND earlier.id <= messages.id)
);
CREATE UNIQUE INDEX IF NOT EXISTS messages_seq ON messages (seq);
CREATE INDEX IF NOT EXISTS messages_user_seq ON messages (user_id, seq);
