-- The cluster: the nodes serving this database, and who is connected where.
-- Only PostgreSQL has these; a SQLite server is one node and keeps presence
-- in memory.

-- One row per running node, refreshed by its heartbeat (at least once a
-- second). A row whose heartbeat is older than NODE_TTL, by the database's
-- clock, is counted out by whichever node sees it first.
CREATE TABLE nodes (
    id           BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         TEXT        NOT NULL, -- host and process, for operators
    started_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    heartbeat_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- This node's open authenticated WebSockets (its share of `user count`).
    connections  INTEGER     NOT NULL DEFAULT 0
);

-- Which users each node holds sockets for, and how many.
CREATE TABLE presence (
    node_id BIGINT  NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    user_id BIGINT  NOT NULL REFERENCES users (id),
    tabs    INTEGER NOT NULL CHECK (tabs > 0),
    PRIMARY KEY (node_id, user_id)
);
CREATE INDEX presence_user ON presence (user_id);

-- The users announced as online (a join was announced and its leave not
-- yet). Changed only under the user's advisory lock, by the transaction that
-- also writes the announcement, so each join and leave is announced once.
CREATE TABLE online_users (
    user_id BIGINT PRIMARY KEY REFERENCES users (id)
);

-- The announcements, in one order for every node (positions from
-- presence_head, as the chat log's from log_head). Kept for a while so a
-- node whose listener was away catches up; old ones are pruned.
CREATE TABLE presence_head (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    position BIGINT  NOT NULL
);
INSERT INTO presence_head (id, position) VALUES (1, 0);

CREATE TABLE presence_events (
    seq           BIGINT      PRIMARY KEY,
    user_id       BIGINT      NOT NULL REFERENCES users (id),
    connected     BOOLEAN     NOT NULL,
    current_users INTEGER     NOT NULL,
    online_users  INTEGER     NOT NULL,
    at            TIMESTAMPTZ NOT NULL DEFAULT now()
);
