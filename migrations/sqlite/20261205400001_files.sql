-- Files shared in rooms. An upload is a chat message carrying one file: the
-- file's row is written in the same transaction as its message (the log's),
-- so a message that carries a file never goes out without it, and deleting
-- the message deletes the row in the same transaction as the delete.
CREATE TABLE files (
    id         INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL REFERENCES messages (id),
    room_id    INTEGER NOT NULL REFERENCES rooms (id),
    user_id    INTEGER NOT NULL REFERENCES users (id),
    -- As shown and served (cleaned at upload); searchable with its message.
    name       TEXT    NOT NULL,
    -- What its bytes say it is: image/png, image/jpeg, image/gif, image/webp
    -- or application/octet-stream (served as a download).
    type       TEXT    NOT NULL,
    size       INTEGER NOT NULL, -- bytes
    -- An image's size in pixels as shown, when its header could be read.
    width      INTEGER,
    height     INTEGER,
    -- Where the bytes are in the storage (STORAGE_URL), and the thumbnail's.
    object     TEXT    NOT NULL,
    thumbnail  TEXT,
    -- The entity tags the file and its thumbnail are served with (hashes of
    -- their bytes).
    etag       TEXT    NOT NULL,
    thumbnail_etag TEXT,
    created_at INTEGER NOT NULL -- unix milliseconds
);
CREATE UNIQUE INDEX files_message ON files (message_id);

-- Objects in the storage that no file owns: an upload in progress (due when
-- it could no longer be going on), or the objects of a deleted message (due
-- at once). A sweep deletes each object once due, and then its row; an
-- upload that commits deletes its rows in the same transaction. So an
-- upload that fails, even by a crash, leaves nothing behind.
CREATE TABLE unowned_objects (
    object TEXT    PRIMARY KEY,
    due_at INTEGER NOT NULL -- unix milliseconds
);
CREATE INDEX unowned_objects_due ON unowned_objects (due_at);

-- Each accepted upload, for UPLOADS_PER_HOUR (counted under the log's lock,
-- so the limit holds across nodes). Rows older than an hour are swept.
CREATE TABLE uploads (
    user_id INTEGER NOT NULL REFERENCES users (id),
    at      INTEGER NOT NULL -- unix milliseconds
);
CREATE INDEX uploads_user ON uploads (user_id, at);
