-- Account mails (issue 17): password reset and email verification. A customer's email is
-- verified once they used a link sent to it; a new address waits in `pending_email` until its
-- link is used, and only then replaces `email` (sign-in keeps using the old one meanwhile).
ALTER TABLE customers ADD COLUMN email_verified_at timestamptz;
ALTER TABLE customers ADD COLUMN pending_email text;

-- Single-use, expiring links. Only the SHA-256 of the token is stored, so a leaked table
-- holds no working link; a used link's row is deleted in the transaction that uses it, and
-- issuing a new link of a purpose deletes the customer's earlier ones.
CREATE TABLE customer_tokens (
    tenant_id   text        NOT NULL,
    token_hash  text        NOT NULL,
    customer_id uuid        NOT NULL,
    purpose     text        NOT NULL CHECK (purpose IN ('password_reset', 'verify_email')),
    -- The address the link was mailed to: a reset mailed to an address the customer has since
    -- changed no longer works; a verification link verifies exactly this address.
    email       text        NOT NULL,
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, token_hash),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX customer_tokens_by_customer ON customer_tokens (tenant_id, customer_id, purpose);

ALTER TABLE customer_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE customer_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY customer_tokens_tenant_isolation ON customer_tokens
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
