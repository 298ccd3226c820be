-- Manual-payment orders hold their stock until the merchant marks them paid or cancels them,
-- unless the runtime sets a hold (issue 15): such orders have no reservation expiry.
ALTER TABLE orders ALTER COLUMN reserved_until DROP NOT NULL;
