-- Who did what to which token, and when. Rows are never updated, and outlive the tokens they name.
CREATE TABLE audit_events (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    actor       text        NOT NULL,
    action      text        NOT NULL,
    token_id    uuid,
    user_id     text,
    details     jsonb       NOT NULL DEFAULT '{}'
);

CREATE INDEX audit_events_token_idx ON audit_events (token_id, id);
CREATE INDEX audit_events_user_idx ON audit_events (user_id, id);
