-- What an issuer may say about one token: which API keys may verify it, from which client networks, whether it is
-- paused, and data it carries. NULL restricts nothing.
ALTER TABLE tokens ADD COLUMN audiences     text[];
ALTER TABLE tokens ADD COLUMN allowed_cidrs text[];
ALTER TABLE tokens ADD COLUMN meta          text CHECK (octet_length(meta) <= 4096);
ALTER TABLE tokens ADD COLUMN enabled       boolean NOT NULL DEFAULT true;
