-- Tax and discounts on orders (issue 15). Null on orders placed before: no discount, no tax.
-- `tax` holds {"prices_include_tax": bool, "lines": [{name, rate_bp, taxable, amount}]}.
ALTER TABLE orders
    ADD COLUMN discount_minor bigint,
    ADD COLUMN tax            jsonb;
