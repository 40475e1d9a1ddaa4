-- The directory. Names are compared byte for byte (BINARY), which orders
-- them by code point, the same order every RouteGuide store lists in.
CREATE TABLE people (
    name    TEXT PRIMARY KEY,
    age     INTEGER NOT NULL,
    gender  INTEGER NOT NULL,
    hobbies TEXT NOT NULL,   -- JSON array, in the person's order
    street  TEXT NOT NULL,
    city    TEXT NOT NULL
) WITHOUT ROWID;

CREATE INDEX people_by_city ON people (city, name);

-- One row per hobby of each person, for listing by hobby in name order.
CREATE TABLE hobbies (
    hobby TEXT NOT NULL,
    name  TEXT NOT NULL,
    PRIMARY KEY (hobby, name)
) WITHOUT ROWID;

-- The change log WatchPeople reads. The newest change is never deleted, so
-- revisions are never reused.
CREATE TABLE changes (
    revision INTEGER PRIMARY KEY,
    type     INTEGER NOT NULL,  -- 1 added, 2 updated, 3 deleted
    name     TEXT NOT NULL,
    age      INTEGER NOT NULL,
    gender   INTEGER NOT NULL,
    hobbies  TEXT NOT NULL,
    street   TEXT NOT NULL,
    city     TEXT NOT NULL
);
