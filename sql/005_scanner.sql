-- 005_scanner: what the stuck-parcel scanner keeps beside the lane_dwell
-- histogram of 003, so that one pass costs the same whatever the history.
--
-- lane_dwell_p90 holds, per lane (carrier, destination, status), the number
-- of dwell samples and the hour bucket holding their 90th percentile. The
-- scanner recomputes the rows of the lanes a batch of new samples touched, in
-- the transaction that adds the samples; destination '*' is the lane's
-- carrier-wide fallback (every destination together). A candidate shipment's
-- threshold is then one primary-key lookup.
CREATE TABLE lane_dwell_p90 (
    carrier      text NOT NULL,
    destination  text NOT NULL,  -- country, '' when unknown, '*' for all destinations
    status       text NOT NULL REFERENCES statuses (name),
    samples      bigint NOT NULL CHECK (samples >= 0),
    p90_hours    smallint NOT NULL CHECK (p90_hours BETWEEN 0 AND 720), -- bucket [h, h+1)
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (carrier, destination, status)
);

-- The carrier-wide recomputation reads every destination of (carrier, status).
CREATE INDEX lane_dwell_carrier_status ON lane_dwell (carrier, status, hours);

-- not_picked_up: active shipments whose label was created long ago, by the
-- time they entered info_received.
CREATE INDEX shipments_label_only ON shipments ((coalesce(status_at, created_at)))
    WHERE next_poll_at IS NOT NULL AND status = 'info_received';
