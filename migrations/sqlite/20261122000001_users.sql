-- Accounts. The name is kept as the user typed it for display; uniqueness
-- ignores case through the expression index (names are ASCII, so lower() is exact).
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT    NOT NULL,
    -- argon2id PHC string: algorithm, parameters, salt and hash in one.
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL -- unix seconds
);

CREATE UNIQUE INDEX users_username_key ON users (lower(username));
