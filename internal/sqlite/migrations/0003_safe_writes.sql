-- Who made each change, from where, with which request id, and when
-- (Unix milliseconds). Changes logged before these columns have them empty.
ALTER TABLE changes ADD COLUMN principal  TEXT NOT NULL DEFAULT '';
ALTER TABLE changes ADD COLUMN peer       TEXT NOT NULL DEFAULT '';
ALTER TABLE changes ADD COLUMN request_id TEXT NOT NULL DEFAULT '';
ALTER TABLE changes ADD COLUMN at         INTEGER NOT NULL DEFAULT 0;

-- The request ids of recent writes, each with a digest of its request and
-- the outcome it answered (JSON), recorded in the write's own transaction;
-- a row is deleted once it expires (Unix milliseconds).
CREATE TABLE requests (
    id      TEXT PRIMARY KEY,
    digest  TEXT NOT NULL,
    expires INTEGER NOT NULL,
    outcome TEXT NOT NULL
) WITHOUT ROWID;

CREATE INDEX requests_by_expiry ON requests (expires);
