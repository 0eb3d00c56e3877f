-- What /healthz writes (at most once a second) to prove the database takes
-- writes: a standby, a read-only or a full database all fail it.
CREATE TABLE health_probe (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    probed_at BIGINT  NOT NULL -- unix milliseconds
);
INSERT INTO health_probe (id, probed_at) VALUES (1, 0);
