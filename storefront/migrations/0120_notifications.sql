-- Notifications (issue 17): what the SQS consumer turned each order event into, one row per
-- (event, channel, target), sent by the dispatcher with retries; every attempt logged; the
-- merchant's webhook subscriptions. The unique key makes a redelivered SQS message (the
-- consumer died before deleting it) insert nothing new, so no target gets an event twice.
CREATE TABLE webhook_subscriptions (
    tenant_id            text        NOT NULL,
    id                   uuid        NOT NULL,
    url                  text        NOT NULL,
    -- Event types (`order.created`, ...) or `*` for every type.
    event_types          text[]      NOT NULL,
    -- The HMAC-SHA256 key receivers verify signatures with (shown to the merchant once).
    secret               text        NOT NULL,
    enabled              boolean     NOT NULL DEFAULT true,
    -- Deliveries that gave up in a row; reset by a success. At the limit the subscription is
    -- disabled (`disabled_reason` says why) until the merchant enables it again.
    consecutive_failures int         NOT NULL DEFAULT 0,
    disabled_reason      text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE notification_deliveries (
    tenant_id       text        NOT NULL,
    id              uuid        NOT NULL,
    event_id        uuid        NOT NULL,
    event_type      text        NOT NULL,
    -- `email` (target: the address) or `webhook` (target: the subscription id).
    channel         text        NOT NULL CHECK (channel IN ('email', 'webhook')),
    target          text        NOT NULL,
    -- The mail template (`order_confirmation`, ...) or the event type for webhooks.
    template        text        NOT NULL,
    payload         jsonb       NOT NULL,
    status          text        NOT NULL DEFAULT 'pending'
                                CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        int         NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT notification_deliveries_once UNIQUE (tenant_id, event_id, channel, target)
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (tenant_id, next_attempt_at)
    WHERE status = 'pending';

CREATE TABLE notification_attempts (
    tenant_id    text        NOT NULL,
    delivery_id  uuid        NOT NULL,
    attempt      int         NOT NULL,
    at           timestamptz NOT NULL DEFAULT now(),
    ok           boolean     NOT NULL,
    -- HTTP status of a webhook receiver (absent for mail and for connection failures).
    http_status  int,
    duration_ms  int         NOT NULL,
    error        text,
    PRIMARY KEY (tenant_id, delivery_id, attempt),
    FOREIGN KEY (tenant_id, delivery_id) REFERENCES notification_deliveries (tenant_id, id)
        ON DELETE CASCADE
);

ALTER TABLE webhook_subscriptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_subscriptions FORCE ROW LEVEL SECURITY;
CREATE POLICY webhook_subscriptions_tenant_isolation ON webhook_subscriptions
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE notification_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE notification_deliveries FORCE ROW LEVEL SECURITY;
CREATE POLICY notification_deliveries_tenant_isolation ON notification_deliveries
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE notification_attempts ENABLE ROW LEVEL SECURITY;
ALTER TABLE notification_attempts FORCE ROW LEVEL SECURITY;
CREATE POLICY notification_attempts_tenant_isolation ON notification_attempts
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
