-- 006_poller_stats: what each poller process has done, for /metrics.
--
-- Pollers run as separate processes on many hosts; each flushes its
-- cumulative counters here every few seconds (one row per worker and
-- carrier, overwritten), and the api role sums the rows at scrape time.
-- Counters only grow within a row; a restarted poller has a new worker id
-- (hostname:pid by default) and so a new row, which keeps the sums monotonic
-- (with a fixed SHIPTRACK_WORKER_ID a restart starts its row again from zero,
-- which Prometheus reads as a counter reset).
CREATE TABLE poller_stats (
    worker_id        text NOT NULL CHECK (length(worker_id) BETWEEN 1 AND 200),
    carrier          text NOT NULL CHECK (carrier ~ '^[a-z0-9_]{2,32}$'),
    polls_ok         bigint NOT NULL DEFAULT 0 CHECK (polls_ok >= 0),
    polls_error      bigint NOT NULL DEFAULT 0 CHECK (polls_error >= 0),
    polls_throttled  bigint NOT NULL DEFAULT 0 CHECK (polls_throttled >= 0),
    polls_unauthorized bigint NOT NULL DEFAULT 0 CHECK (polls_unauthorized >= 0),
    events_new       bigint NOT NULL DEFAULT 0 CHECK (events_new >= 0),
    -- request latency: count per bucket (not cumulative), bounds in
    -- worker/metrics.c, the last element counts the requests above them all
    latency_buckets  bigint[] NOT NULL DEFAULT '{}',
    latency_sum_ms   bigint NOT NULL DEFAULT 0 CHECK (latency_sum_ms >= 0),
    breaker          text NOT NULL DEFAULT 'closed'
                     CHECK (breaker IN ('closed', 'half-open', 'open')),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (worker_id, carrier)
);

-- /metrics counts unmapped carrier codes at every scrape: keep that off the
-- full event table.
CREATE INDEX tracking_events_unmapped ON tracking_events (shipment_id)
    WHERE substatus = 'unmapped';
