-- Orders by the time they were placed, per tenant: the SLA report and the console's counts read
-- one period's orders (each tenant's range) instead of every order. Built in the migration's
-- transaction (writes to orders wait for it).
CREATE INDEX orders_by_placed ON orders (tenant_id, placed_unix_ms);
