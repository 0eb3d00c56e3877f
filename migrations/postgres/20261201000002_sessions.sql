-- The table tower-sessions-sqlx-store's PostgresStore reads and writes (its
-- default schema, name and exact shape), created here so the migrations
-- folder is the one source of the schema.
CREATE SCHEMA IF NOT EXISTS tower_sessions;
CREATE TABLE tower_sessions.session (
    id          TEXT        PRIMARY KEY NOT NULL,
    data        BYTEA       NOT NULL,
    expiry_date TIMESTAMPTZ NOT NULL
);
