CREATE INDEX messages_user ON messages (user_id);
DROP TABLE messages_by_user_through;
DROP TABLE messages_by_user;
