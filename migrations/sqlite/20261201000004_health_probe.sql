-- What /healthz writes (at most once a second) to prove the database takes
-- writes: a real change, since SQLite skips an UPDATE that changes nothing
-- and would then "succeed" on a full disk.
CREATE TABLE health_probe (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    probed_at INTEGER NOT NULL -- unix milliseconds
);
INSERT INTO health_probe (id, probed_at) VALUES (1, 0);
