-- Running a community: roles and bans, the registration mode, invites, the
-- list of each user's sessions, and messages that can be edited or deleted.

-- 'member' or 'admin'. The first account ever registered is the admin.
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'member';
UPDATE users SET role = 'admin' WHERE id = (SELECT min(id) FROM users);
-- When the user was banned (unix seconds); NULL: not banned.
ALTER TABLE users ADD COLUMN banned_at INTEGER;

-- Settings an admin changes at run time (today: the registration mode).
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Invite links: only a hash of the token is stored.
CREATE TABLE invites (
    id         INTEGER PRIMARY KEY,
    token_hash TEXT    NOT NULL UNIQUE,
    created_by INTEGER NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL, -- unix seconds
    expires_at INTEGER NOT NULL,
    used_by    INTEGER REFERENCES users (id),
    used_at    INTEGER,
    revoked_at INTEGER
);

-- Who each logged-in session belongs to, for the account page: it goes
-- with its session row. `handle` is what the page shows instead of the id
-- (the id is the cookie's value).
CREATE TABLE account_sessions (
    session_id TEXT    PRIMARY KEY REFERENCES tower_sessions (id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    handle     TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL, -- unix seconds
    last_seen  INTEGER NOT NULL,
    agent      TEXT    NOT NULL  -- a summary of the User-Agent ("Firefox on Linux")
);
CREATE INDEX account_sessions_user ON account_sessions (user_id);

-- Edits and deletes are changes in the log: `seq` moves to the position of
-- the latest one. A deleted message keeps its row (its id and place) but
-- loses its text.
ALTER TABLE messages ADD COLUMN edited_at INTEGER; -- unix milliseconds
ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
