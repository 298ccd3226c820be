-- Discount codes (issue 15). `uses` counts orders holding the code: a guarded increment in the
-- order's transaction (`uses < max_uses`) means no over-redemption however many race, the way
-- the guarded decrement protects stock; an order that expires, is cancelled or fails gives its
-- use back. Redemptions name the customer (account id, or email for guests) for the
-- per-customer limit.
CREATE TABLE promotions (
    tenant_id             text        NOT NULL,
    code                  text        NOT NULL,
    doc                   jsonb       NOT NULL,
    max_uses              integer,
    max_uses_per_customer integer,
    uses                  integer     NOT NULL DEFAULT 0 CHECK (uses >= 0),
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, code)
);

CREATE TABLE promotion_redemptions (
    tenant_id    text        NOT NULL,
    order_id     uuid        NOT NULL,
    code         text        NOT NULL,
    customer_key text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, order_id)
);
CREATE INDEX promotion_redemptions_by_customer ON promotion_redemptions (tenant_id, code, customer_key);

ALTER TABLE orders ADD COLUMN discount_code text;

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['promotions', 'promotion_redemptions']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY %I ON %I USING (tenant_id = current_setting(''app.tenant_id'', true))
                        WITH CHECK (tenant_id = current_setting(''app.tenant_id'', true))',
                       t || '_tenant_isolation', t);
    END LOOP;
END $$;
