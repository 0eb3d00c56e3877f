-- Search indexing leaves the append's transaction (issue 21): FTS5
-- tokenizes and stems each message, and SQLite has one writer, so indexing
-- inside every append made a burst of messages a quarter slower or more.
-- Now an indexer (src/search_indexer.rs) indexes the messages after they
-- commit, many to a transaction (src/store/search_index.rs), and a search
-- has it index what is left before it looks.
--
-- `search_cursor.indexed_to` is the newest message id the indexes hold:
-- every message up to it is in them (as the views show it), none after it.
-- Ids only grow (they are the log's positions, handed out under its lock),
-- so the server's messages are indexed once, when the cursor passes them,
-- by their text at that moment: an edit or a delete before then needs
-- nothing from the index, and one after it goes through the triggers
-- below, as before.
-- The indexer moves the cursor in the transaction that indexes, under
-- SQLite's write lock, so an edit sees the cursor and the index in step.

CREATE TABLE search_cursor (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    indexed_to INTEGER NOT NULL
);
-- The triggers of the previous migration have indexed every message so far.
INSERT INTO search_cursor (id, indexed_to) SELECT 1, coalesce(max(id), 0) FROM messages;

DROP TRIGGER search_message_sent;
DROP TRIGGER search_message_changing;
DROP TRIGGER search_message_changed;
DROP TRIGGER search_message_removed;

-- A message written with an id the cursor has passed (by hand: a restore,
-- an import that did not move `log_head`; the server never does) would
-- never be indexed, and a later edit of it would ask FTS5 to delete
-- entries that are not there: it is indexed as it is written.
CREATE TRIGGER search_message_sent_behind AFTER INSERT ON messages
WHEN new.id <= (SELECT indexed_to FROM search_cursor) BEGIN
    INSERT INTO search_words (rowid, words, room_id)
        SELECT id, words, room_id FROM search_words_source WHERE id = new.id;
    INSERT INTO search_grams (rowid, grams, room_id)
        SELECT id, grams, room_id FROM search_grams_source WHERE id = new.id;
END;

-- Changes to a message the indexes hold (FTS5's 'delete' must name entries
-- that are there, with the values they were made from).
CREATE TRIGGER search_message_changing BEFORE UPDATE OF body, deleted ON messages
WHEN old.id <= (SELECT indexed_to FROM search_cursor) BEGIN
    INSERT INTO search_words (search_words, rowid, words, room_id)
        SELECT 'delete', id, words, room_id FROM search_words_source WHERE id = old.id;
    INSERT INTO search_grams (search_grams, rowid, grams, room_id)
        SELECT 'delete', id, grams, room_id FROM search_grams_source WHERE id = old.id;
END;

CREATE TRIGGER search_message_changed AFTER UPDATE OF body, deleted ON messages
WHEN new.id <= (SELECT indexed_to FROM search_cursor) BEGIN
    INSERT INTO search_words (rowid, words, room_id)
        SELECT id, words, room_id FROM search_words_source WHERE id = new.id;
    INSERT INTO search_grams (rowid, grams, room_id)
        SELECT id, grams, room_id FROM search_grams_source WHERE id = new.id;
END;

CREATE TRIGGER search_message_removed BEFORE DELETE ON messages
WHEN old.id <= (SELECT indexed_to FROM search_cursor) BEGIN
    INSERT INTO search_words (search_words, rowid, words, room_id)
        SELECT 'delete', id, words, room_id FROM search_words_source WHERE id = old.id;
    INSERT INTO search_grams (search_grams, rowid, grams, room_id)
        SELECT 'delete', id, grams, room_id FROM search_grams_source WHERE id = old.id;
END;
