-- Customers of every tenant. Row-level security is forced, so even the table owner sees only
-- the rows of the tenant named by `app.tenant_id`, which the runtime sets per transaction.
CREATE TABLE customers (
    tenant_id     text        NOT NULL,
    id            uuid        NOT NULL,
    email         text        NOT NULL,
    password_hash text        NOT NULL,
    name          text        NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT customers_email_unique UNIQUE (tenant_id, email)
);

ALTER TABLE customers ENABLE ROW LEVEL SECURITY;
ALTER TABLE customers FORCE ROW LEVEL SECURITY;

-- current_setting(..., true) is NULL when unset, and NULL = x is never true: no setting, no rows.
CREATE POLICY customers_tenant_isolation ON customers
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
