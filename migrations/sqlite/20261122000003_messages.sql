-- Chat messages. AUTOINCREMENT so ids only ever grow, even if the newest row
-- were deleted: clients resume with ?since=ID and must never see an id reused.
CREATE TABLE messages (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users (id),
    body    TEXT    NOT NULL,
    sent_at INTEGER NOT NULL -- unix milliseconds
);
