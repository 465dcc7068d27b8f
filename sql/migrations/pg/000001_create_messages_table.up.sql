CREATE TABLE IF NOT EXISTS messages (id UUID PRIMARY KEY, user_id TEXT, content TEXT, created_at TIMESTAMPTZ DEFAULT now());
