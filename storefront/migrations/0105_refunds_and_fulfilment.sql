-- Returns and partial refunds, fulfilment tracking (issue 15). A refund is recorded `pending`
-- before the provider is asked (so concurrent refunds cannot pass the order's total between
-- them) and `succeeded` after; a refused one is deleted. One per (order, Idempotency-Key).
ALTER TABLE orders ADD COLUMN fulfilment jsonb;

CREATE TABLE order_refunds (
    tenant_id       text        NOT NULL,
    id              uuid        NOT NULL,
    order_id        uuid        NOT NULL,
    idempotency_key text        NOT NULL,
    amount_minor    bigint      NOT NULL CHECK (amount_minor > 0),
    reason          text        NOT NULL,
    lines           jsonb       NOT NULL,
    restock         boolean     NOT NULL,
    status          text        NOT NULL,
    provider_ref    text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, order_id, idempotency_key)
);

ALTER TABLE order_refunds ENABLE ROW LEVEL SECURITY;
ALTER TABLE order_refunds FORCE ROW LEVEL SECURITY;
CREATE POLICY order_refunds_tenant_isolation ON order_refunds
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
