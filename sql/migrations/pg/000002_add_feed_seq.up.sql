-- The gapless feed order (seq) and the counter that hands it out.
--
-- Runs statement by statement outside a transaction (CockroachDB cannot
-- write a column added earlier in the same transaction), so every statement
-- is written to be safe to run again after a failure half-way.
ALTER TABLE messages ADD COLUMN IF NOT EXISTS seq BIGINT;

-- Rows stored before this migration are numbered in created_at order, then
-- id; rows without created_at go last on both databases (their default NULL
-- orders differ).
UPDATE messages SET seq = r.rn
FROM (
    SELECT id, row_number() OVER (ORDER BY (created_at IS NULL), created_at, id) AS rn
    FROM messages
) AS r
WHERE messages.id = r.id;

CREATE UNIQUE INDEX IF NOT EXISTS messages_seq ON messages (seq);
CREATE INDEX IF NOT EXISTS messages_user_seq ON messages (user_id, seq);

-- One row (id = 1) holding the last seq handed out. Writers lock it for the
-- length of their transaction, which serialises them: seq order is commit
-- order and no seq is skipped, however many instances write at once.
CREATE TABLE IF NOT EXISTS feed_sequence (id INT PRIMARY KEY, last_seq BIGINT NOT NULL);

INSERT INTO feed_sequence (id, last_seq)
SELECT 1, COALESCE(MAX(seq), 0) FROM messages
ON CONFLICT (id) DO UPDATE SET last_seq = excluded.last_seq;
