-- Inventory, orders, idempotency keys, payment webhook events, the transactional outbox and
-- the per-tenant stock event log. Like every table: tenant_id on each row, row-level security
-- enabled and forced on `app.tenant_id`, so a transaction without the setting sees nothing.

-- Units available to sell now; units held by pending reservations are already subtracted.
-- The CHECK is the last line of defence against oversell: the guarded decrement never lets
-- it fire, but if code ever forgot the guard the transaction would fail rather than oversell.
CREATE TABLE inventory (
    tenant_id  text        NOT NULL,
    sku        text        NOT NULL,
    available  integer     NOT NULL CHECK (available >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, sku)
);

-- One counter row per tenant: stock events get dense ids in commit order (the row lock is held
-- to commit), which is what makes `Last-Event-ID` resume exact.
CREATE TABLE inventory_sequences (
    tenant_id text   PRIMARY KEY,
    last_seq  bigint NOT NULL
);

CREATE TABLE inventory_events (
    tenant_id text        NOT NULL,
    seq       bigint      NOT NULL,
    sku       text        NOT NULL,
    available integer     NOT NULL,
    at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, seq)
);

CREATE TABLE orders (
    tenant_id        text        NOT NULL,
    id               uuid        NOT NULL,
    customer_id      uuid,
    cart_id          uuid        NOT NULL,
    email            text,
    status           text        NOT NULL,
    currency         text        NOT NULL,
    total_minor      bigint      NOT NULL,
    payment_provider text        NOT NULL,
    payment_ref      text,
    reserved_until   timestamptz NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX orders_by_customer ON orders (tenant_id, customer_id, id DESC);
CREATE INDEX orders_by_status ON orders (tenant_id, status, id DESC);
CREATE INDEX orders_expiring ON orders (reserved_until) WHERE status = 'pending_payment';

CREATE TABLE order_lines (
    tenant_id  text    NOT NULL,
    order_id   uuid    NOT NULL,
    sku        text    NOT NULL,
    product_id uuid    NOT NULL,
    title      text    NOT NULL,
    quantity   integer NOT NULL CHECK (quantity > 0),
    unit_minor bigint  NOT NULL,
    PRIMARY KEY (tenant_id, order_id, sku),
    FOREIGN KEY (tenant_id, order_id) REFERENCES orders (tenant_id, id)
);

-- Checkout responses by Idempotency-Key, written in the order's transaction.
CREATE TABLE idempotency_keys (
    tenant_id    text        NOT NULL,
    key          text        NOT NULL,
    fingerprint  text        NOT NULL,
    status       integer     NOT NULL DEFAULT 0,
    response     jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);

-- Payment provider webhook events already handled (duplicates are acknowledged, not re-run).
CREATE TABLE payment_events (
    tenant_id   text        NOT NULL,
    event_id    text        NOT NULL,
    kind        text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, event_id)
);

-- Order events, written in the transaction that changed the order; relayed to SQS.
CREATE TABLE outbox (
    tenant_id  text        NOT NULL,
    id         uuid        NOT NULL,
    kind       text        NOT NULL,
    payload    jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX outbox_unsent ON outbox (tenant_id, id) WHERE sent_at IS NULL;

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['inventory', 'inventory_sequences', 'inventory_events', 'orders',
                             'order_lines', 'idempotency_keys', 'payment_events', 'outbox']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY %I ON %I USING (tenant_id = current_setting(''app.tenant_id'', true))
                        WITH CHECK (tenant_id = current_setting(''app.tenant_id'', true))',
                       t || '_tenant_isolation', t);
    END LOOP;
END $$;
