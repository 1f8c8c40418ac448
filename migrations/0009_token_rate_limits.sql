-- A token may carry a rate limit of its own: rate_limit_quota verifications per rate_limit_window seconds, counted
-- on the same GCRA as the service's limits (in memory, or in rate_limits under the policy 'token' when shared).
ALTER TABLE tokens ADD COLUMN rate_limit_quota  integer CHECK (rate_limit_quota BETWEEN 1 AND 10000000);
ALTER TABLE tokens ADD COLUMN rate_limit_window integer CHECK (rate_limit_window BETWEEN 1 AND 86400);
ALTER TABLE tokens ADD CONSTRAINT tokens_rate_limit_whole CHECK ((rate_limit_quota IS NULL) = (rate_limit_window IS NULL));
