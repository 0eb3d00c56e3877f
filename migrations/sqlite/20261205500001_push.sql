-- Web Push (RFC 8030): notifications when no tab is open.

-- The server's VAPID key pair (RFC 8292), made at first start and kept, so
-- subscriptions stay valid across restarts.
CREATE TABLE push_keys (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    private_key TEXT    NOT NULL, -- base64url of the P-256 secret scalar (32 bytes)
    public_key  TEXT    NOT NULL, -- base64url of the uncompressed point (65 bytes)
    created_at  INTEGER NOT NULL  -- unix seconds
);

-- Browsers' subscriptions. Each belongs to the logged-in session that made
-- it, and goes when that session ends (logout, expiry, ending it from the
-- account page, a password change, a ban): the cascade from the session's
-- row through account_sessions. An endpoint is one browser's: subscribed
-- again, it is deleted and made anew for the session that sent it.
CREATE TABLE push_subscriptions (
    id         INTEGER PRIMARY KEY,
    endpoint   TEXT   NOT NULL UNIQUE,
    p256dh     TEXT   NOT NULL, -- base64url, as the browser gave it
    auth       TEXT   NOT NULL,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    session_id TEXT   NOT NULL REFERENCES account_sessions (session_id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL  -- unix seconds
);
CREATE INDEX push_subscriptions_user ON push_subscriptions (user_id);
CREATE INDEX push_subscriptions_session ON push_subscriptions (session_id);

-- The newest message looked at for pushes. Messages from before push
-- existed are never pushed.
CREATE TABLE push_cursor (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    position INTEGER NOT NULL
);
INSERT INTO push_cursor (id, position) SELECT 1, position FROM log_head;

-- Per user and room: messages waiting to be pushed (coalesced: at most one
-- push per user and room per PUSH_WINDOW), the newest of them, and when the
-- next push may go.
CREATE TABLE push_rooms (
    user_id    INTEGER NOT NULL REFERENCES users (id),
    room_id    INTEGER NOT NULL REFERENCES rooms (id),
    pending    INTEGER NOT NULL,
    message_id INTEGER NOT NULL,
    due_at     INTEGER NOT NULL, -- unix milliseconds
    PRIMARY KEY (user_id, room_id)
);
CREATE INDEX push_rooms_due ON push_rooms (due_at) WHERE pending > 0;

-- The queue: one push to one subscription, until it is sent or given up.
-- The server claims rows by leasing them while it sends (on PostgreSQL the
-- nodes claim with FOR UPDATE SKIP LOCKED; SQLite's one server under its
-- write lock).
CREATE TABLE push_deliveries (
    id              INTEGER PRIMARY KEY,
    subscription_id INTEGER NOT NULL REFERENCES push_subscriptions (id) ON DELETE CASCADE,
    room_id         INTEGER NOT NULL,
    payload         TEXT    NOT NULL, -- JSON; encrypted for the subscription as it is sent
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_at         INTEGER NOT NULL, -- unix milliseconds: the next attempt
    expires_at      INTEGER NOT NULL, -- given up after this
    lease_until     INTEGER NOT NULL DEFAULT 0 -- a node is sending it until then
);
CREATE INDEX push_deliveries_next ON push_deliveries (next_at);
CREATE INDEX push_deliveries_subscription ON push_deliveries (subscription_id);
