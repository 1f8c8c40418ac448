-- A token may be limited to a number of successful verifications, optionally refilled every hour, day or month
-- (UTC periods). uses_left is decremented in the same statement that decides, so the limit is exact across instances.
ALTER TABLE tokens ADD COLUMN max_uses      integer CHECK (max_uses > 0);
ALTER TABLE tokens ADD COLUMN uses_left     integer CHECK (uses_left >= 0);
ALTER TABLE tokens ADD COLUMN refill_amount integer CHECK (refill_amount > 0);
ALTER TABLE tokens ADD COLUMN refill_every  text    CHECK (refill_every IN ('hour', 'day', 'month'));
ALTER TABLE tokens ADD COLUMN refilled_at   timestamptz;
