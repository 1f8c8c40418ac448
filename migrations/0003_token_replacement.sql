-- A rotated token points at the token that replaced it, so it cannot be rotated a second time.
ALTER TABLE tokens ADD COLUMN replaced_by uuid;
