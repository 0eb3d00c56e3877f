-- The chat log's positions. Every change to the log takes the next position
-- from this single row inside the transaction that commits it, so positions
-- are handed out in commit order and readers that follow `seq > last` never
-- skip a row that committed late. A rolled-back batch rolls the row back too,
-- so positions have no gaps.
CREATE TABLE log_head (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    position INTEGER NOT NULL
);
INSERT INTO log_head (id, position) SELECT 1, coalesce(max(id), 0) FROM messages;

-- The position of a message's latest change (today: its creation, so seq = id).
ALTER TABLE messages ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
UPDATE messages SET seq = id;
CREATE UNIQUE INDEX messages_seq_key ON messages (seq);

-- Each user's chat allowance (a token bucket: tokens left, and when they were
-- counted), kept beside the log: batches hold the log's lock, so reading and
-- writing these rows inside a batch needs no other lock, and the limit holds
-- for all of a user's tabs on every server.
CREATE TABLE chat_allowance (
    user_id    INTEGER PRIMARY KEY REFERENCES users (id),
    tokens     REAL    NOT NULL,
    updated_at INTEGER NOT NULL -- unix milliseconds
);

-- Each committed batch, by its id, with what became of each of its messages.
-- A batch retried after its commit's answer was lost (the connection broke
-- at the wrong moment) finds its first attempt here instead of being stored
-- twice. Rows are pruned after a while.
CREATE TABLE log_batches (
    id       TEXT    PRIMARY KEY,
    outcomes TEXT    NOT NULL, -- per message: its position, or "r" (refused: rate limited)
    at       INTEGER NOT NULL  -- unix milliseconds
);
