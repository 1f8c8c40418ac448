-- The invalidation log: every revoke, rotation and purge, which every instance polls to evict its verification
-- cache. Works through transaction poolers, where LISTEN/NOTIFY does not.
-- Writers take the single clock row's lock to number their change, so numbers commit in order: a reader that sees
-- change n has seen every change before it.
CREATE TABLE invalidation_clock (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    seq      bigint  NOT NULL
);
INSERT INTO invalidation_clock (seq) VALUES (0);

CREATE TABLE token_invalidations (
    seq         bigint      PRIMARY KEY,
    token_id    uuid,                              -- NULL: every token (a purge)
    occurred_at timestamptz NOT NULL DEFAULT now()
);
