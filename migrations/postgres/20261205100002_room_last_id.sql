-- Each room's newest message id (0: none yet), kept by every append in the
-- log's transaction, so a user's room list looks for unread messages and
-- mentions only in the rooms that have newer messages than their marker.
ALTER TABLE rooms ADD COLUMN last_id BIGINT NOT NULL DEFAULT 0;
UPDATE rooms SET last_id = coalesce((SELECT max(id) FROM messages WHERE room_id = rooms.id), 0);
