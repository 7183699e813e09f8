-- Orders by the time they were placed, per tenant: the SLA report and the console's counts read
-- one period's orders (each tenant's range) instead of every order. Appended to at each tenant's
-- end as orders are placed.
CREATE INDEX orders_by_placed ON orders (tenant_id, placed_unix_ms);
