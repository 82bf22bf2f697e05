-- 007_privacy: what the retention job needs to stay cheap as history grows.
--
-- raw_purged_at marks finished shipments whose carrier words were already
-- purged, so each pass visits only shipments it has not handled yet.
ALTER TABLE shipments ADD COLUMN raw_purged_at timestamptz;
CREATE INDEX shipments_finished_unpurged ON shipments ((coalesce(status_at, updated_at)))
    WHERE next_poll_at IS NULL AND raw_purged_at IS NULL;
CREATE INDEX recipients_not_erased ON recipients (id) WHERE erased_at IS NULL;
CREATE INDEX outbox_sent ON outbox (sent_at) WHERE sent_at IS NOT NULL;
