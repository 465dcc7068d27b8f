DROP INDEX IF EXISTS messages_user_seq;
DROP INDEX IF EXISTS messages_seq;
ALTER TABLE messages DROP COLUMN seq;
