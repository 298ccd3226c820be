-- Addresses and shipping (issue 15): the merchant's settings documents (shipping zones now; tax
-- and promotions rules later), and what an order was charged for shipping and where it goes.
CREATE TABLE store_settings (
    tenant_id  text        NOT NULL,
    name       text        NOT NULL,
    doc        jsonb       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, name)
);
ALTER TABLE store_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE store_settings FORCE ROW LEVEL SECURITY;
CREATE POLICY store_settings_tenant_isolation ON store_settings
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

-- Null on orders placed before: their subtotal is their total, and they had no shipping.
ALTER TABLE orders
    ADD COLUMN subtotal_minor   bigint,
    ADD COLUMN shipping         jsonb,
    ADD COLUMN shipping_address jsonb,
    ADD COLUMN billing_address  jsonb;

-- A signed-in customer's saved addresses, one document per customer.
CREATE TABLE address_books (
    tenant_id   text        NOT NULL,
    customer_id uuid        NOT NULL,
    doc         jsonb       NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, customer_id)
);
ALTER TABLE address_books ENABLE ROW LEVEL SECURITY;
ALTER TABLE address_books FORCE ROW LEVEL SECURITY;
CREATE POLICY address_books_tenant_isolation ON address_books
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
