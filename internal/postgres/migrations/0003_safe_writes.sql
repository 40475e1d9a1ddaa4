-- Who made each change, from where, with which request id, and when
-- (Unix milliseconds). Changes logged before these columns have them empty.
-- A column with a constant default is added without rewriting the table.
ALTER TABLE changes
    ADD COLUMN principal  TEXT NOT NULL DEFAULT '',
    ADD COLUMN peer       TEXT NOT NULL DEFAULT '',
    ADD COLUMN request_id TEXT NOT NULL DEFAULT '',
    ADD COLUMN at         BIGINT NOT NULL DEFAULT 0;

-- The request ids of recent writes, each with a digest of its request and
-- the outcome it answered (JSON), recorded in the write's own transaction
-- (under the write lock, so replicas racing on one id settle on one
-- outcome); a row is deleted once it expires (Unix milliseconds).
CREATE TABLE requests (
    id      TEXT PRIMARY KEY,
    digest  TEXT NOT NULL,
    expires BIGINT NOT NULL,
    outcome TEXT NOT NULL
);

CREATE INDEX requests_by_expiry ON requests (expires);
