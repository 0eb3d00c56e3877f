-- The chat log. Ids are positions handed out by log_head (not a sequence:
-- sequence values are taken at insert, so two nodes could commit out of id
-- order and a reader following `seq > last` would skip the late one).
CREATE TABLE log_head (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    position BIGINT  NOT NULL
);
INSERT INTO log_head (id, position) VALUES (1, 0);

CREATE TABLE messages (
    id      BIGINT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id),
    body    TEXT   NOT NULL,
    sent_at BIGINT NOT NULL, -- unix milliseconds
    -- The position of the message's latest change (today: its creation).
    seq     BIGINT NOT NULL
);
CREATE UNIQUE INDEX messages_seq_key ON messages (seq);

-- Each user's chat allowance (a token bucket: tokens left, and when they were
-- counted). Batches hold log_head's lock, so reading and writing these rows
-- inside a batch needs no other lock, and the limit holds for all of a
-- user's tabs on every node.
CREATE TABLE chat_allowance (
    user_id    BIGINT           PRIMARY KEY REFERENCES users (id),
    tokens     DOUBLE PRECISION NOT NULL,
    updated_at BIGINT           NOT NULL -- unix milliseconds
);

-- Each committed batch, by its id, with what became of each of its messages.
-- A batch retried after its commit's answer was lost (the connection broke,
-- the server crashed at the wrong moment) finds its first attempt here
-- instead of being stored twice. Rows are pruned after a while.
CREATE TABLE log_batches (
    id       TEXT   PRIMARY KEY,
    outcomes TEXT   NOT NULL, -- per message: its position, or "r" (refused: rate limited)
    at       BIGINT NOT NULL  -- unix milliseconds
);
