-- A cart becomes an order once (issue 15): one row per checked-out cart, written in the order's
-- transaction, so a second checkout of the cart under another Idempotency-Key is refused with
-- the first order's id, however many race. Carts checked out before this table existed are not
-- backfilled (row-level security hides other tenants' orders from a migration, and the cart
-- itself is deleted at checkout from now on).
CREATE TABLE cart_orders (
    tenant_id  text        NOT NULL,
    cart_id    uuid        NOT NULL,
    order_id   uuid        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, cart_id)
);

ALTER TABLE cart_orders ENABLE ROW LEVEL SECURITY;
ALTER TABLE cart_orders FORCE ROW LEVEL SECURITY;
CREATE POLICY cart_orders_tenant_isolation ON cart_orders
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
