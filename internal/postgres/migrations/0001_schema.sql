-- The directory. Names use the "C" collation so that they sort by code
-- point, the same order every RouteGuide store lists in, whatever the
-- database's default collation.
CREATE TABLE people (
    name    TEXT COLLATE "C" PRIMARY KEY,
    age     INTEGER NOT NULL,
    gender  INTEGER NOT NULL,
    hobbies TEXT[] NOT NULL,
    street  TEXT NOT NULL,
    city    TEXT NOT NULL
);

CREATE INDEX people_by_city ON people (city, name);

-- One row per hobby of each person, for listing by hobby in name order.
CREATE TABLE hobbies (
    hobby TEXT NOT NULL,
    name  TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (hobby, name)
);

CREATE INDEX hobbies_by_name ON hobbies (name);

-- The change log WatchPeople reads. Writers hold an advisory lock while
-- they write, so revisions are given and committed in order, without gaps.
-- The newest change is never deleted.
CREATE TABLE changes (
    revision BIGINT PRIMARY KEY,
    type     SMALLINT NOT NULL,  -- 1 added, 2 updated, 3 deleted
    name     TEXT NOT NULL,
    age      INTEGER NOT NULL,
    gender   INTEGER NOT NULL,
    hobbies  TEXT[] NOT NULL,
    street   TEXT NOT NULL,
    city     TEXT NOT NULL
);
