-- 002_carrier_quota: daily request quotas shared by every poller, and the
-- per-carrier claim index.
--
-- Pollers reserve requests in small chunks (UPDATE ... used = used + n under
-- the row lock), so any number of them on any number of hosts stay within a
-- carrier account's daily quota together. Days are UTC days, as carriers
-- count them.
CREATE TABLE carrier_quota (
    carrier  text NOT NULL,
    day      date NOT NULL,
    used     integer NOT NULL DEFAULT 0 CHECK (used >= 0),
    PRIMARY KEY (carrier, day)
);

-- Pollers claim per carrier (each has its own limits), due shipments first.
CREATE INDEX shipments_carrier_due ON shipments (carrier, next_poll_at)
    WHERE next_poll_at IS NOT NULL;
DROP INDEX shipments_due;
