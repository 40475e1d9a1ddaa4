-- A new directory holds the seed contract's Alice and Bob. Migrations run
-- once, so a deleted seed person stays deleted.
INSERT INTO people (name, age, gender, hobbies, street, city) VALUES
    ('Alice', 30, 2, '{reading,swimming}', '123 Main St', 'New York'),
    ('Bob',   25, 1, '{gaming,cycling}',   '456 Elm St',  'Los Angeles');

INSERT INTO hobbies (hobby, name) VALUES
    ('reading', 'Alice'), ('swimming', 'Alice'),
    ('gaming', 'Bob'), ('cycling', 'Bob');

INSERT INTO changes (revision, type, name, age, gender, hobbies, street, city) VALUES
    (1, 1, 'Alice', 30, 2, '{reading,swimming}', '123 Main St', 'New York'),
    (2, 1, 'Bob',   25, 1, '{gaming,cycling}',   '456 Elm St',  'Los Angeles');
