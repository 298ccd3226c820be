-- Bulk product imports (issue 16 item 3): one row per job, holding the uploaded file itself so
-- any replica can run (or resume) it. A worker claims a job by taking its lease (`lease_owner`,
-- `lease_until`) and renews it with every committed batch; `checkpoint` counts the products of
-- the file (in file order) that are done, so a job whose runner died (lease expired) is
-- continued from there by whichever replica claims it next.
CREATE TABLE import_jobs (
    tenant_id          text        NOT NULL,
    id                 uuid        NOT NULL,
    format             text        NOT NULL CHECK (format IN ('csv', 'jsonl')),
    status             text        NOT NULL DEFAULT 'queued'
                                   CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    body               bytea       NOT NULL,
    -- Prices without a currency column are in this one (the catalog's when the job was made).
    default_currency   text,
    created_by         text        NOT NULL,
    -- Data rows of the file (CSV: lines after the header; JSON lines: non-blank lines).
    rows_total         int         NOT NULL,
    rows_done          int         NOT NULL DEFAULT 0,
    rows_failed        int         NOT NULL DEFAULT 0,
    -- Products of the file (in file order) committed: where a resumed job continues.
    checkpoint         int         NOT NULL DEFAULT 0,
    products_total     int         NOT NULL,
    products_written   int         NOT NULL DEFAULT 0,
    products_unchanged int         NOT NULL DEFAULT 0,
    -- The first 1,000 row errors: [{"row": 7, "field": "Variant Price", "message": "..."}].
    errors             jsonb       NOT NULL DEFAULT '[]',
    ignored_columns    text[]      NOT NULL DEFAULT '{}',
    -- Why the job as a whole failed (never a secret: store errors are summarised).
    failure            text,
    attempts           int         NOT NULL DEFAULT 0,
    lease_owner        uuid,
    lease_until        timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    started_at         timestamptz,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    finished_at        timestamptz,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX import_jobs_open ON import_jobs (tenant_id, created_at)
    WHERE status IN ('queued', 'running');

ALTER TABLE import_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE import_jobs FORCE ROW LEVEL SECURITY;
CREATE POLICY import_jobs_tenant_isolation ON import_jobs
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
