-- Rooms and direct messages. Every message belongs to a room; the first
-- release's one chat is room 1, the lobby: open, and every account is a
-- member of it without a row of its own (a membership row for the lobby only
-- holds a user's level and read marker there).
CREATE TABLE rooms (
    id          BIGINT  PRIMARY KEY,
    kind        TEXT    NOT NULL CHECK (kind IN ('open', 'private', 'direct')),
    -- NULL for a direct room: each member sees it named after the others.
    name        TEXT,
    topic       TEXT    NOT NULL DEFAULT '',
    -- A direct room's members' ids, ascending, comma-separated: the same
    -- people always find the same room.
    direct_key  TEXT,
    created_by  BIGINT  REFERENCES users (id),
    created_at  BIGINT  NOT NULL, -- unix seconds
    archived_at BIGINT,
    -- How many members (the lobby: every account), kept with each change,
    -- so a greeting for a user in hundreds of rooms counts nobody.
    members     BIGINT  NOT NULL DEFAULT 0
);
-- Room ids are drawn under the log's lock (rooms are created in log
-- transactions), from this sequence.
CREATE SEQUENCE rooms_id_seq START 2 OWNED BY rooms.id;
ALTER TABLE rooms ALTER COLUMN id SET DEFAULT nextval('rooms_id_seq');
-- Names are unique without regard to case among the rooms not archived.
CREATE UNIQUE INDEX rooms_name_key ON rooms (lower(name)) WHERE archived_at IS NULL AND kind <> 'direct';
CREATE UNIQUE INDEX rooms_direct_key ON rooms (direct_key) WHERE kind = 'direct';
-- Open rooms are listed to everyone: found without reading the others.
CREATE INDEX rooms_open ON rooms (id) WHERE kind = 'open' AND archived_at IS NULL;
INSERT INTO rooms (id, kind, name, topic, created_at, members)
    VALUES (1, 'open', 'lobby', '', 0, (SELECT count(*) FROM users));

-- Who is in which room, with what is theirs there: the notification level
-- and the read marker (the newest message of the room they have seen).
CREATE TABLE memberships (
    room_id   BIGINT NOT NULL REFERENCES rooms (id),
    user_id   BIGINT NOT NULL REFERENCES users (id),
    level     TEXT   NOT NULL CHECK (level IN ('all', 'mentions', 'nothing')),
    last_read BIGINT NOT NULL DEFAULT 0,
    joined_at BIGINT NOT NULL, -- unix seconds
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id, room_id);

-- The lobby's read markers become the lobby's memberships.
INSERT INTO memberships (room_id, user_id, level, last_read, joined_at)
    SELECT 1, user_id, 'mentions', last_read, 0 FROM read_markers;
DROP TABLE read_markers;

-- Each message's room (the lobby for every message before rooms). Scrollback,
-- unread counts and `around` walk this index.
ALTER TABLE messages ADD COLUMN room_id BIGINT NOT NULL DEFAULT 1 REFERENCES rooms (id);
CREATE INDEX messages_room ON messages (room_id, id);

-- Membership rides the log: a room's creation (one row per first member),
-- joins, leaves and removals, renames and archives take positions of the
-- same log as messages (`seq`, from log_head), so every node applies them in
-- order with the messages and no message after a removal reaches the removed.
CREATE TABLE room_events (
    seq     BIGINT PRIMARY KEY,
    room_id BIGINT NOT NULL REFERENCES rooms (id),
    kind    TEXT   NOT NULL CHECK (kind IN ('created', 'joined', 'left', 'updated', 'archived')),
    -- Who joined or left (NULL for an update or an archive).
    user_id BIGINT REFERENCES users (id),
    at      BIGINT NOT NULL -- unix milliseconds
);
CREATE INDEX room_events_user ON room_events (user_id, seq);
