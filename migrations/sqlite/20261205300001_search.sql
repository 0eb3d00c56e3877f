-- Search (issue 21): two FTS5 indexes of the messages, kept in step with
-- them by triggers, so a message is findable in the transaction that commits
-- it, an edit by its new text, and a deleted message never. The query
-- language is parsed in src/domain/search.rs; PostgreSQL's migration of the
-- same number builds the same two indexes its own way, with the same results.
--
-- 1. Words: `search_words`, an external-content FTS5 table over the view
--    `search_words_source`: the text, case and accents folded by
--    `unicode61 remove_diacritics 2`, words reduced to their stems by
--    `porter`. The view first folds the letters Unicode does not decompose
--    (ß, æ, ø, ł, …) as PostgreSQL's unaccent does, so both engines match
--    `strasse` to `Straße`. The room is a column of the index too: a search
--    names the rooms it may look in inside the MATCH, so the index walks
--    only what the user may see.
--
-- 2. Two-character grams of text written without spaces (Chinese, Japanese):
--    `search_grams` over `search_grams_source`, one token per pair of
--    adjacent characters of those scripts, in order, with `x` where a run of
--    them ends. A string of N >= 2 such characters is the phrase of its N-1
--    overlapping pairs, so the index finds every substring of two or more,
--    exactly (the trigram tokenizer finds none shorter than three). Only
--    messages with such text are in it.
--
-- Deleted text leaves no trace: secure-delete removes a message's entries
-- from the index (not just marks them), as secure_delete zeroes its pages.

-- Positions 1..4096 (a message holds at most 1000 characters): what the
-- gram view walks a message's characters with.
CREATE TABLE search_positions (n INTEGER PRIMARY KEY);
WITH RECURSIVE p (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM p WHERE n < 4096)
INSERT INTO search_positions (n) SELECT n FROM p;

-- The text as the word index reads it. Pure ASCII (character count = byte
-- count) goes as it is; otherwise the letters unaccent folds and FTS5 does not.
CREATE VIEW search_words_source (id, words, room_id) AS
SELECT id,
       CASE WHEN length(body) = length(CAST(body AS BLOB)) THEN body ELSE
       replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(
       replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(
       replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(
       replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(
       replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(
       replace(replace(replace(replace(replace(replace(replace(body,
         'ß', 'ss'), 'ẞ', 'ss'), 'æ', 'ae'), 'Æ', 'ae'), 'œ', 'oe'), 'Œ', 'oe'), 'ø', 'o'), 'Ø', 'o'),
         'ł', 'l'), 'Ł', 'l'), 'đ', 'd'), 'Đ', 'd'), 'ð', 'd'), 'Ð', 'd'), 'þ', 'th'), 'Þ', 'th'),
         'ı', 'i'), 'ħ', 'h'), 'Ħ', 'h'), 'ŀ', 'l'), 'Ŀ', 'l'), 'ŧ', 't'), 'Ŧ', 't'), 'ŋ', 'n'),
         'Ŋ', 'n'), 'ſ', 's'), 'ĳ', 'ij'), 'Ĳ', 'ij'), 'ﬀ', 'ff'), 'ﬁ', 'fi'), 'ﬂ', 'fl'), 'ﬃ', 'ffi'),
         'ﬄ', 'ffl'), 'ﬅ', 'st'), 'ﬆ', 'st'), 'ё', 'е'), 'Ё', 'е'), 'ά', 'α'), 'έ', 'ε'), 'ή', 'η'),
         'ί', 'ι'), 'ό', 'ο'), 'ύ', 'υ'), 'ώ', 'ω'), 'ϊ', 'ι'), 'ϋ', 'υ'), 'ΐ', 'ι'), 'ΰ', 'υ'),
         'Ά', 'α'), 'Έ', 'ε'), 'Ή', 'η'), 'Ί', 'ι'), 'Ό', 'ο'), 'Ύ', 'υ'), 'Ώ', 'ω'), 'Ϊ', 'ι'),
         'Ϋ', 'υ')
       END,
       room_id
FROM messages WHERE NOT deleted;

-- Characters of scripts written without spaces (the same ranges as
-- `is_unspaced` in src/domain/search.rs and `lobby_unspaced` on PostgreSQL):
-- 々〆〇, hiragana, katakana (not its middle dot), CJK ideographs and their
-- compatibility forms, halfwidth katakana, and the supplementary ideographs.
-- The GLOB is the cheap first look: only messages with such text get grams.
CREATE VIEW search_grams_source (id, grams, room_id) AS
SELECT m.id,
       (SELECT group_concat(
                 CASE WHEN (c2 BETWEEN 19968 AND 40959 OR c2 BETWEEN 13312 AND 19903
                            OR c2 BETWEEN 12353 AND 12438 OR c2 BETWEEN 12445 AND 12447
                            OR c2 BETWEEN 12449 AND 12538 OR c2 BETWEEN 12540 AND 12543
                            OR c2 BETWEEN 12784 AND 12799 OR c2 BETWEEN 12293 AND 12295
                            OR c2 BETWEEN 63744 AND 64255 OR c2 BETWEEN 65382 AND 65439
                            OR c2 BETWEEN 131072 AND 262143)
                      THEN substr(m.body, n, 2) ELSE 'x' END,
                 ' ' ORDER BY n)
        FROM (SELECT p.n AS n, unicode(substr(m.body, p.n, 1)) AS c1, unicode(substr(m.body, p.n + 1, 1)) AS c2
              FROM search_positions p WHERE p.n < length(m.body))
        WHERE c1 BETWEEN 19968 AND 40959 OR c1 BETWEEN 13312 AND 19903
           OR c1 BETWEEN 12353 AND 12438 OR c1 BETWEEN 12445 AND 12447
           OR c1 BETWEEN 12449 AND 12538 OR c1 BETWEEN 12540 AND 12543
           OR c1 BETWEEN 12784 AND 12799 OR c1 BETWEEN 12293 AND 12295
           OR c1 BETWEEN 63744 AND 64255 OR c1 BETWEEN 65382 AND 65439
           OR c1 BETWEEN 131072 AND 262143),
       m.room_id
FROM messages m
WHERE NOT m.deleted
  AND m.body GLOB '*[々-〇ぁ-ゖゝ-ゟァ-ヺー-ヿㇰ-ㇿ㐀-䶿一-鿿豈-﫿ｦ-ﾟ𠀀-𿿽]*';

-- columnsize=0: no per-row sizes (nothing ranks by them), one write fewer per message.
CREATE VIRTUAL TABLE search_words USING fts5 (
    words, room_id,
    content = 'search_words_source', content_rowid = 'id',
    tokenize = 'porter unicode61 remove_diacritics 2',
    columnsize = 0
);
CREATE VIRTUAL TABLE search_grams USING fts5 (
    grams, room_id,
    content = 'search_grams_source', content_rowid = 'id',
    tokenize = 'ascii',
    columnsize = 0
);

-- The messages already sent.
INSERT INTO search_words (search_words) VALUES ('rebuild');
INSERT INTO search_grams (search_grams) VALUES ('rebuild');

-- Deletes remove a message's entries (not just mark them). The index's
-- format version goes to 5 first, by hand: FTS5 moves to it itself on its
-- first UPDATE or DELETE, but SQLite 3.46 forgets to on the 'delete'
-- command that external-content tables use (fixed in later releases), and a
-- version-4 index that secure-deletes trips its own integrity check and
-- walks doclists backwards by a stale index. A connection that opened the
-- tables before this line keeps version 4 in memory, so the migrations run
-- on a connection of their own that is closed afterwards (store/mod.rs).
-- (After a 'rebuild': it writes version 4 again.)
UPDATE search_words_config SET v = 5 WHERE k = 'version';
UPDATE search_grams_config SET v = 5 WHERE k = 'version';
INSERT INTO search_words (search_words, rank) VALUES ('secure-delete', 1);
INSERT INTO search_grams (search_grams, rank) VALUES ('secure-delete', 1);

-- In step from here on, in the transaction of each change. An edit or a
-- delete rewrites `body`: before it, the row's entries go (as the views show
-- them then); after it, its new ones come (none for a deleted message).
CREATE TRIGGER search_message_sent AFTER INSERT ON messages BEGIN
    INSERT INTO search_words (rowid, words, room_id)
        SELECT id, words, room_id FROM search_words_source WHERE id = new.id;
    INSERT INTO search_grams (rowid, grams, room_id)
        SELECT id, grams, room_id FROM search_grams_source WHERE id = new.id;
END;

CREATE TRIGGER search_message_changing BEFORE UPDATE OF body, deleted ON messages BEGIN
    INSERT INTO search_words (search_words, rowid, words, room_id)
        SELECT 'delete', id, words, room_id FROM search_words_source WHERE id = old.id;
    INSERT INTO search_grams (search_grams, rowid, grams, room_id)
        SELECT 'delete', id, grams, room_id FROM search_grams_source WHERE id = old.id;
END;

CREATE TRIGGER search_message_changed AFTER UPDATE OF body, deleted ON messages BEGIN
    INSERT INTO search_words (rowid, words, room_id)
        SELECT id, words, room_id FROM search_words_source WHERE id = new.id;
    INSERT INTO search_grams (rowid, grams, room_id)
        SELECT id, grams, room_id FROM search_grams_source WHERE id = new.id;
END;

CREATE TRIGGER search_message_removed BEFORE DELETE ON messages BEGIN
    INSERT INTO search_words (search_words, rowid, words, room_id)
        SELECT 'delete', id, words, room_id FROM search_words_source WHERE id = old.id;
    INSERT INTO search_grams (search_grams, rowid, grams, room_id)
        SELECT 'delete', id, grams, room_id FROM search_grams_source WHERE id = old.id;
END;
