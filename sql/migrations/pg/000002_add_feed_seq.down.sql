DROP TABLE IF EXISTS feed_sequence;
DROP INDEX IF EXISTS messages_user_seq;
-- CockroachDB drops a unique index only with CASCADE.
DROP INDEX IF EXISTS messages_seq CASCADE;
ALTER TABLE messages DROP COLUMN IF EXISTS seq;
