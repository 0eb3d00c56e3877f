-- Usernames are also unique by look: the skeleton is the lowercase name with
-- look-alikes folded (rn -> m, vv -> w, 0 -> o, 1 and i -> l); the code
-- computes it the same way (accounts::username). Accounts that already
-- share a skeleton keep their names (the later ones get a distinct one).
ALTER TABLE users ADD COLUMN skeleton TEXT;
UPDATE users SET skeleton =
    replace(replace(replace(replace(replace(lower(username), 'rn', 'm'), 'vv', 'w'), '0', 'o'), '1', 'l'), 'i', 'l');
UPDATE users SET skeleton = skeleton || '#' || id
    WHERE id NOT IN (SELECT min(id) FROM users GROUP BY skeleton);
ALTER TABLE users ALTER COLUMN skeleton SET NOT NULL;
CREATE UNIQUE INDEX users_skeleton_key ON users (skeleton);

-- What sessions carry to prove they belong to the current password: a random
-- key, replaced when the password changes.
ALTER TABLE users ADD COLUMN session_key TEXT NOT NULL DEFAULT md5(random()::text || clock_timestamp()::text);
ALTER TABLE users ALTER COLUMN session_key DROP DEFAULT;
