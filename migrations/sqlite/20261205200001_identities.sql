-- Sign-in through GitHub or OpenID Connect: identities at those providers,
-- each belonging to one account; accounts made through a provider have no
-- password (until their owner sets one); and the logins on their way
-- through a provider.
--
-- SQLite cannot drop a column's NOT NULL in place, so `users` is rebuilt.
-- sqlx runs each migration in a transaction, where foreign keys cannot be
-- switched off; they are deferred instead: checked at COMMIT, not at each
-- statement. The rows are set aside, the table dropped (the other tables'
-- references to `users` stay as written) and made again under its own
-- name, the rows put back with their ids, and the indexes rebuilt. Every
-- reference the drop left dangling finds its row again; one that did not
-- would fail the COMMIT and undo all of this. (No reference to `users` is
-- ON DELETE CASCADE or SET NULL, which the drop would carry out: a later
-- one must not be, or this must become a copy under another name.)
PRAGMA defer_foreign_keys = ON;

CREATE TEMP TABLE users_before_identities AS SELECT * FROM users;
DROP TABLE users;
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT    NOT NULL,
    -- argon2id PHC string; NULL: no password (an account made through a
    -- provider, whose owner has not set one).
    password_hash TEXT,
    created_at    INTEGER NOT NULL, -- unix seconds
    skeleton      TEXT,
    session_key   TEXT    NOT NULL DEFAULT '',
    role          TEXT    NOT NULL DEFAULT 'member',
    banned_at     INTEGER
);
INSERT INTO users (id, username, password_hash, created_at, skeleton, session_key, role, banned_at)
    SELECT id, username, password_hash, created_at, skeleton, session_key, role, banned_at
    FROM users_before_identities;
DROP TABLE users_before_identities;
CREATE UNIQUE INDEX users_username_key ON users (lower(username));
CREATE UNIQUE INDEX users_skeleton_key ON users (skeleton);

-- An identity at a provider: (provider, issuer, subject) names it, and it
-- belongs to one account. The rest is what the provider said at the last
-- login (the course's "Social Authentication" profile), and the logins.
CREATE TABLE identities (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users (id),
    provider      TEXT    NOT NULL, -- 'github' or 'oidc'
    issuer        TEXT    NOT NULL, -- GITHUB_URL, or the OpenID Connect issuer
    subject       TEXT    NOT NULL, -- GitHub's numeric user id, the OIDC sub
    display_name  TEXT,
    photo_url     TEXT,
    email         TEXT,
    created_at    INTEGER NOT NULL, -- unix seconds
    last_login_at INTEGER,          -- unix seconds; NULL: linked, not logged in with yet
    login_count   INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX identities_key ON identities (provider, issuer, subject);
-- One identity per provider in an account.
CREATE UNIQUE INDEX identities_user_provider ON identities (user_id, provider, issuer);

-- Logins on their way through a provider, found by a hash of their `state`
-- and taken once (DELETE … RETURNING), whichever node the callback reaches;
-- bound to the browser session (a hash of its id) they began in.
CREATE TABLE sso_pending (
    state_hash   TEXT    PRIMARY KEY,
    session_hash TEXT    NOT NULL,
    provider     TEXT    NOT NULL,
    -- The login's secrets (PKCE verifier, nonce, redirect URI), as sso keeps them.
    login        TEXT    NOT NULL,
    -- Where the login goes: a local path to end on, an invite's hash, or the account to link to.
    next         TEXT,
    invite_hash  TEXT,
    link_user    INTEGER,
    expires_at   INTEGER NOT NULL -- unix seconds
);
CREATE INDEX sso_pending_expiry ON sso_pending (expires_at);
