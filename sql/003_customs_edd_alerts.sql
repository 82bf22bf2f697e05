-- 003_customs_edd_alerts: the customs state machine's evidence trail, the
-- estimated delivery date's history, the lane statistics it is learned from,
-- and the stuck-parcel alerts the scanner raises.
--
-- Statistics are histograms updated incrementally (one row per lane and
-- bucket, a counter bumped per sample), so reading a percentile costs the
-- same whether ten or ten million parcels were delivered on a lane.

ALTER TABLE shipments
    ADD COLUMN service text NOT NULL DEFAULT '' CHECK (length(service) <= 64),
    -- first event past the label (picked up / in transit): start of transit time
    ADD COLUMN shipped_at timestamptz,
    -- where edd_current came from
    ADD COLUMN edd_source text CHECK (edd_source IN ('carrier', 'lane', 'default', 'customs')),
    -- the estimate last told to the customer; `delayed` fires when edd_current
    -- moves a day or more past it (then this becomes edd_current)
    ADD COLUMN edd_communicated date;

-- Every move of a customs hold, with the carrier words that caused it.
CREATE TABLE customs_transitions (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hold_id        bigint NOT NULL REFERENCES customs_holds (id) ON DELETE CASCADE,
    shipment_id    bigint NOT NULL REFERENCES shipments (id) ON DELETE CASCADE,
    from_state     text CHECK (from_state IN ('processing', 'held', 'released', 'rejected',
                                              'returned')),  -- NULL: the hold opened
    to_state       text NOT NULL CHECK (to_state IN ('processing', 'held', 'released',
                                                     'rejected', 'returned')),
    reason         text NOT NULL CHECK (reason IN ('processing', 'documents_required',
                       'duties_due', 'inspection', 'prohibited', 'unknown')),
    actor          text NOT NULL CHECK (actor IN ('recipient', 'shipper', 'broker', 'nobody')),
    at             timestamptz NOT NULL,  -- the carrier event's time
    evidence_code  text NOT NULL DEFAULT '',
    evidence       text NOT NULL DEFAULT '',
    recorded_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX customs_transitions_hold ON customs_transitions (hold_id, id);
CREATE INDEX customs_transitions_shipment ON customs_transitions (shipment_id, id);
-- Open holds by age, for the scanner and the ops board.
CREATE INDEX customs_holds_open_age ON customs_holds (opened_at) WHERE closed_at IS NULL;

-- Every estimate a shipment had, oldest first.
CREATE TABLE edd_history (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    shipment_id  bigint NOT NULL REFERENCES shipments (id) ON DELETE CASCADE,
    edd          date NOT NULL,
    previous     date,
    source       text NOT NULL CHECK (source IN ('carrier', 'lane', 'default', 'customs')),
    reason       text NOT NULL DEFAULT '' CHECK (length(reason) <= 200),
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX edd_history_shipment ON edd_history (shipment_id, id);

-- Transit time of delivered shipments (shipped_at -> delivered), whole days,
-- per lane. days = 60 holds everything from 60 days up.
CREATE TABLE lane_transit (
    carrier      text NOT NULL,
    origin       text NOT NULL DEFAULT '',   -- country, '' when unknown
    destination  text NOT NULL DEFAULT '',
    service      text NOT NULL DEFAULT '',
    days         smallint NOT NULL CHECK (days BETWEEN 0 AND 60),
    n            bigint NOT NULL DEFAULT 0 CHECK (n >= 0),
    PRIMARY KEY (carrier, origin, destination, service, days)
);

-- Time a shipment stayed in a status before its next event, whole hours,
-- per carrier, destination and status. hours = 720 holds 30 days and more.
CREATE TABLE lane_dwell (
    carrier      text NOT NULL,
    destination  text NOT NULL DEFAULT '',
    status       text NOT NULL REFERENCES statuses (name),
    hours        smallint NOT NULL CHECK (hours BETWEEN 0 AND 720),
    n            bigint NOT NULL DEFAULT 0 CHECK (n >= 0),
    PRIMARY KEY (carrier, destination, status, hours)
);

-- Duration of closed customs holds, whole hours, per destination.
CREATE TABLE customs_hold_durations (
    destination  text NOT NULL DEFAULT '',
    hours        smallint NOT NULL CHECK (hours BETWEEN 0 AND 720),
    n            bigint NOT NULL DEFAULT 0 CHECK (n >= 0),
    PRIMARY KEY (destination, hours)
);

-- Progress markers of incremental jobs (e.g. the last tracking_events id
-- the dwell statistics have seen).
CREATE TABLE job_watermarks (
    name        text PRIMARY KEY,
    value       bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Stuck parcels and other things ops must look at. One row per episode: at
-- most one open alert per (shipment, kind); cleared when movement resumes.
CREATE TABLE alerts (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    shipment_id    bigint NOT NULL REFERENCES shipments (id) ON DELETE CASCADE,
    kind           text NOT NULL CHECK (kind IN ('stuck', 'customs_hold_long', 'not_picked_up',
                                                 'tracking_failing')),
    status         text NOT NULL REFERENCES statuses (name), -- shipment status when raised
    threshold_s    bigint NOT NULL CHECK (threshold_s >= 0),  -- what "too long" was
    threshold_src  text NOT NULL CHECK (threshold_src IN ('lane', 'default')),
    since          timestamptz NOT NULL,   -- the last movement (or hold start, first failure)
    detail         jsonb NOT NULL DEFAULT '{}',
    opened_at      timestamptz NOT NULL,
    cleared_at     timestamptz,
    clear_reason   text,
    CHECK (cleared_at IS NULL OR cleared_at >= opened_at)
);
CREATE UNIQUE INDEX alerts_open ON alerts (shipment_id, kind) WHERE cleared_at IS NULL;
CREATE INDEX alerts_open_since ON alerts (since) WHERE cleared_at IS NULL;
CREATE INDEX alerts_shipment ON alerts (shipment_id, id);

-- The scanner visits active shipments oldest movement first and stops at the
-- first one that is not old enough for any rule.
CREATE INDEX shipments_active_moved ON shipments ((coalesce(last_event_at, created_at)))
    WHERE next_poll_at IS NOT NULL;
CREATE INDEX shipments_failing ON shipments (poll_error_streak)
    WHERE next_poll_at IS NOT NULL AND poll_error_streak > 0;

-- A milestone may come more than once when each occurrence is news: a second
-- delay to a later date. episode is '' for once-only milestones, the new
-- date for `delayed`.
ALTER TABLE notifications ADD COLUMN episode text NOT NULL DEFAULT ''
    CHECK (length(episode) <= 32);
ALTER TABLE notifications DROP CONSTRAINT notifications_shipment_id_milestone_channel_key;
ALTER TABLE notifications ADD CONSTRAINT notifications_once
    UNIQUE (shipment_id, milestone, channel, episode);
