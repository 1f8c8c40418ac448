-- Limiter arrival times are kept in nanoseconds of the database's clock since 0010, so that the fastest rate a
-- policy may have (10,000,000 a second) is counted exactly. Rows written in microseconds read as long past: their
-- keys start again with a whole budget, which is what an expired row means anyway.
COMMENT ON COLUMN rate_limits.tat IS 'theoretical arrival time: nanoseconds since 1970 on the database clock';
