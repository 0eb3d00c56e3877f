-- Throttles (token buckets) kept in the database, so every node counts the
-- same attempts: failed logins per name and client address, and login and
-- registration attempts per client address. Keys name what is counted (e.g.
-- "failed-login:alice@203.0.113.7"). Rows whose bucket has refilled are pruned.
CREATE TABLE throttles (
    key        TEXT             PRIMARY KEY,
    tokens     DOUBLE PRECISION NOT NULL,
    updated_at BIGINT           NOT NULL -- unix milliseconds
);
