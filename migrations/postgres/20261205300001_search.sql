-- Search (issue 21): the same two indexes as SQLite's migration of the same
-- number, with the same results (the query language is parsed in
-- src/domain/search.rs). Both are generated columns of `messages`, so they
-- change in the statement that changes the text: a message is findable in
-- the transaction that commits it, an edit by its new text, and a deleted
-- message (its text emptied) never.
--
-- 1. Words: `words`, a tsvector of the text under our configuration
--    `lobby_search`: the english parser, then unaccent, then the snowball
--    `porter` stemmer with no stop words. SQLite's FTS5 stems with Porter's
--    algorithm (not Porter2, snowball's `english`) and drops no word, so
--    this is the stemmer that gives both engines the same words.
--    `lobby_words` first cuts the text into words where FTS5's unicode61
--    does (at every punctuation mark, symbol and emoji: the default parser
--    would keep `user@example.com`, `a-b` or `3.14` whole), and keeps the
--    two-letter words that end in s or y out of the stemmer's reach
--    (FTS5 stems no word shorter than three bytes: `us` stays `us`).
--
-- 2. Two-character grams of text written without spaces (Chinese,
--    Japanese): `grams`, each pair of adjacent characters of those scripts
--    at the position of its first character, so a string of N >= 2 such
--    characters is the phrase of its N-1 overlapping pairs. Written as a
--    tsvector literal, it never meets a parser or a locale. NULL for a
--    message without such text (most of them), and out of its index.
--
-- `unaccent` comes with Debian's postgresql package (no -contrib needed
-- since PostgreSQL 10) and is a trusted extension: the database's owner may
-- create it (PostgreSQL 13 and later).
CREATE EXTENSION IF NOT EXISTS unaccent;

CREATE TEXT SEARCH DICTIONARY lobby_porter (TEMPLATE = snowball, LANGUAGE = porter);
CREATE TEXT SEARCH CONFIGURATION lobby_search (COPY = english);
ALTER TEXT SEARCH CONFIGURATION lobby_search
    ALTER MAPPING FOR asciiword, word, numword, asciihword, hword, hword_part, hword_asciipart,
                      hword_numpart, numhword
    WITH unaccent, lobby_porter;

-- The text as the word index reads it: every character FTS5's unicode61
-- takes for a separator (punctuation, symbols, spaces, controls, emoji) a
-- space, and a 0 after a two-letter word ending in s or y (the query side
-- does the same: src/domain/search.rs, `pg_operand`).
CREATE FUNCTION lobby_words(body text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT regexp_replace(
        ' ' || regexp_replace(body,
            '[\x01-\x2f\x3a-\x40\x5b-\x60\x7b-\xa9\xab-\xb1\xb4\xb6-\xb8\xbb\xbf\xd7\xf7'
            '\u02c2-\u02c5\u02d2-\u02df\u02e5-\u02eb\u02ed\u02ef-\u02ff'
            '\u2000-\u206f\u20a0-\u20ff'
            '\u2100\u2101\u2103-\u2106\u2108\u2109\u2114\u2116-\u2118\u211e-\u2123\u2125\u2127\u2129'
            '\u212e\u213a\u213b\u2140-\u2144\u214a-\u214d\u214f'
            '\u2190-\u245f\u2500-\u2775\u2794-\u2bff\u2e00-\u2fff'
            '\u3000-\u3004\u3008-\u3020\u302a-\u3030\u3036\u3037\u303d-\u303f\u3099-\u309c\u30a0\u30fb'
            '\ufe00-\ufe6f\ufeff\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65\uffe0-\uffff'
            '\U0001f000-\U0001faff\U000e0000-\U000e01ef]+',
            ' ', 'g') || ' ',
        ' ([^ ][sSyY])(?= )', ' \10', 'g')
$$;

-- Characters of scripts written without spaces: the same ranges as
-- `is_unspaced` in src/domain/search.rs and SQLite's `search_grams_source`.
CREATE FUNCTION lobby_unspaced(c integer) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT c BETWEEN 19968 AND 40959 OR c BETWEEN 13312 AND 19903
        OR c BETWEEN 12353 AND 12438 OR c BETWEEN 12445 AND 12447
        OR c BETWEEN 12449 AND 12538 OR c BETWEEN 12540 AND 12543
        OR c BETWEEN 12784 AND 12799 OR c BETWEEN 12293 AND 12295
        OR c BETWEEN 63744 AND 64255 OR c BETWEEN 65382 AND 65439
        OR c BETWEEN 131072 AND 262143
$$;

-- Each pair of such characters at the position of its first; NULL if none.
-- The regular expression is the cheap first look.
CREATE FUNCTION lobby_grams(body text) RETURNS tsvector
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN body ~ '[\u3005-\u3007\u3041-\u3096\u309d-\u309f\u30a1-\u30fa\u30fc-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003ffff]'
    THEN (SELECT string_agg(substr(body, n, 2) || ':' || n, ' ')::tsvector
          FROM generate_series(1, length(body) - 1) AS n
          WHERE lobby_unspaced(ascii(substr(body, n, 1))) AND lobby_unspaced(ascii(substr(body, n + 1, 1))))
    END
$$;

-- Adding the columns computes them for the messages already sent.
ALTER TABLE messages
    ADD COLUMN words tsvector GENERATED ALWAYS AS (to_tsvector('lobby_search', lobby_words(body))) STORED,
    ADD COLUMN grams tsvector GENERATED ALWAYS AS (lobby_grams(body)) STORED;
CREATE INDEX messages_words ON messages USING gin (words);
CREATE INDEX messages_grams ON messages USING gin (grams) WHERE grams IS NOT NULL;
