-- Who a message names (`@name`): the existing users, as registered,
-- comma-separated in order of first mention, resolved when it was sent.
ALTER TABLE messages ADD COLUMN mentions TEXT NOT NULL DEFAULT '';

-- Each user's read marker: the newest message they have seen. It only ever
-- moves forward.
CREATE TABLE read_markers (
    user_id   BIGINT PRIMARY KEY REFERENCES users (id),
    last_read BIGINT NOT NULL
);
