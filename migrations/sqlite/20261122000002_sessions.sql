-- The table tower-sessions-sqlx-store's SqliteStore reads and writes
-- (its default name and exact shape), created here so the migrations folder
-- is the one source of the schema. expiry_date holds what the store binds.
CREATE TABLE tower_sessions (
    id          TEXT    PRIMARY KEY NOT NULL,
    data        BLOB    NOT NULL,
    expiry_date INTEGER NOT NULL
);
