-- A token issued by rotation points back at the token it replaced, so a revocation can reach the whole lineage
-- and metadata can show both links.
ALTER TABLE tokens ADD COLUMN replaces uuid;
UPDATE tokens AS replacement SET replaces = replaced.id FROM tokens AS replaced WHERE replaced.replaced_by = replacement.id;
