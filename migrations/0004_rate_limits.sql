-- Shared rate limiter state for RATE_LIMIT_STORE=postgres: one GCRA theoretical arrival time per policy and key.
-- UNLOGGED: it is rebuilt from nothing after a crash, which only resets budgets, and writes skip the WAL.
CREATE UNLOGGED TABLE rate_limits (
    policy text   NOT NULL,
    key    text   NOT NULL,
    tat    bigint NOT NULL,  -- microseconds since 1970
    PRIMARY KEY (policy, key)
);
