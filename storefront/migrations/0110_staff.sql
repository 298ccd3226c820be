-- Staff accounts, their web sessions, scoped API tokens and the audit log (issue 16). A realm
-- apart from customers: another table, another cookie, so a shopper session never authorises
-- the merchant side. Secrets (passwords, invitation and session tokens, API tokens) are stored
-- only as hashes.
CREATE TABLE staff_members (
    tenant_id             text        NOT NULL,
    id                    uuid        NOT NULL,
    email                 text        NOT NULL,
    name                  text        NOT NULL DEFAULT '',
    role                  text        NOT NULL CHECK (role IN ('owner', 'staff')),
    permissions           text[]      NOT NULL DEFAULT '{}',
    -- NULL until the invitation is accepted.
    password_hash         text,
    -- SHA-256 of the single-use invitation token; cleared when it is used.
    invitation_hash       text,
    invitation_expires_at timestamptz,
    invited_by            text        NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    accepted_at           timestamptz,
    updated_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT staff_members_email_unique UNIQUE (tenant_id, email)
);
CREATE UNIQUE INDEX staff_members_invitation ON staff_members (tenant_id, invitation_hash)
    WHERE invitation_hash IS NOT NULL;

CREATE TABLE staff_sessions (
    tenant_id  text        NOT NULL,
    token_hash text        NOT NULL,
    staff_id   uuid        NOT NULL,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, token_hash),
    FOREIGN KEY (tenant_id, staff_id) REFERENCES staff_members (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX staff_sessions_by_staff ON staff_sessions (tenant_id, staff_id);

CREATE TABLE api_tokens (
    tenant_id    text        NOT NULL,
    id           uuid        NOT NULL,
    name         text        NOT NULL,
    token_hash   text        NOT NULL,
    permissions  text[]      NOT NULL,
    created_by   text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    rotated_at   timestamptz,
    last_used_at timestamptz,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT api_tokens_hash_unique UNIQUE (tenant_id, token_hash)
);

-- The tenant config's admin key, once the owner retires it (by its SHA-256, so a new key the
-- platform puts in the Secret works again).
CREATE TABLE retired_admin_keys (
    tenant_id  text        NOT NULL,
    key_hash   text        NOT NULL,
    retired_by text        NOT NULL,
    retired_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key_hash)
);

-- Who did what, when, to what. Appended by the runtime, never updated (the trigger below);
-- rows go only when the tenant is offboarded.
CREATE TABLE audit_log (
    tenant_id   text        NOT NULL,
    id          uuid        NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    actor_kind  text        NOT NULL,
    actor_id    uuid,
    actor_label text        NOT NULL,
    action      text        NOT NULL,
    target      text        NOT NULL DEFAULT '',
    outcome     smallint    NOT NULL,
    client_ip   text        NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, id)
);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END $$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

ALTER TABLE staff_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE staff_members FORCE ROW LEVEL SECURITY;
CREATE POLICY staff_members_tenant_isolation ON staff_members
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE staff_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE staff_sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY staff_sessions_tenant_isolation ON staff_sessions
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE api_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY api_tokens_tenant_isolation ON api_tokens
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE retired_admin_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE retired_admin_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY retired_admin_keys_tenant_isolation ON retired_admin_keys
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log FORCE ROW LEVEL SECURITY;
CREATE POLICY audit_log_tenant_isolation ON audit_log
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
