CREATE TABLE pairs (k TEXT PRIMARY KEY, v TEXT NOT NULL);
INSERT INTO pairs (k, v) VALUES ('bench-key', '0');
