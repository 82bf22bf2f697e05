-- 001_init: the system of record.
--
-- Personal data lives only in recipients/preferences, so erasure is one place.
-- Duplicates are made impossible by constraints, not by application checks:
-- one shipment per (carrier, tracking number), one event per dedupe key, one
-- notification per (shipment, milestone, channel), one open customs hold per
-- shipment, one outbox row per event id.

-- Vocabulary tables: the C lists in carriers/status.c must match these rows
-- (tests/test_db.c compares them).
CREATE TABLE statuses (
    name text PRIMARY KEY,
    terminal boolean NOT NULL DEFAULT false
);
INSERT INTO statuses (name, terminal) VALUES
    ('pending', false), ('info_received', false), ('in_transit', false), ('held', false),
    ('out_for_delivery', false), ('attempt_failed', false), ('available_for_pickup', false),
    ('delivered', true), ('exception', false), ('returning', false), ('returned', true),
    ('cancelled', true), ('expired', true), ('not_found', false);

CREATE TABLE substatuses (
    name text PRIMARY KEY
);
INSERT INTO substatuses (name) VALUES
    ('none'), ('label_created'), ('picked_up'), ('departed_facility'), ('arrived_facility'),
    ('in_transit'), ('departed_origin_country'), ('arrived_destination_country'),
    ('customs_processing'), ('customs_documents_required'), ('customs_duties_due'),
    ('customs_inspection'), ('customs_prohibited'), ('customs_delay'), ('customs_released'),
    ('out_for_delivery'), ('address_issue'), ('recipient_unavailable'), ('refused'), ('damaged'),
    ('lost'), ('weather_delay'), ('carrier_delay'), ('at_pickup_point'), ('delivered'),
    ('delivered_to_neighbour'), ('delivered_to_mailbox'), ('signed'), ('return_to_sender'),
    ('returned_to_sender'), ('not_found'), ('unmapped');

CREATE TABLE recipients (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email       text CHECK (email IS NULL OR (length(email) <= 254 AND email LIKE '%_@_%')),
    phone       text CHECK (phone IS NULL OR phone ~ '^\+[1-9][0-9]{6,14}$'),
    locale      text NOT NULL DEFAULT 'en' CHECK (locale ~ '^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$'),
    time_zone   text NOT NULL DEFAULT 'UTC' CHECK (length(time_zone) BETWEEN 1 AND 64),
    created_at  timestamptz NOT NULL DEFAULT now(),
    erased_at   timestamptz
);

CREATE TABLE preferences (
    recipient_id  bigint NOT NULL REFERENCES recipients (id) ON DELETE CASCADE,
    channel       text NOT NULL CHECK (channel IN ('email', 'sms')),
    consent       boolean NOT NULL DEFAULT true,
    quiet_start   time,
    quiet_end     time,
    opted_out_at  timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (recipient_id, channel),
    CHECK ((quiet_start IS NULL) = (quiet_end IS NULL))
);

CREATE TABLE shipments (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    carrier              text NOT NULL CHECK (carrier ~ '^[a-z0-9_]{2,32}$'),
    tracking_number      text NOT NULL CHECK (tracking_number ~ '^[A-Z0-9-]{4,40}$'),
    order_ref            text CHECK (order_ref IS NULL OR length(order_ref) BETWEEN 1 AND 128),
    recipient_id         bigint REFERENCES recipients (id) ON DELETE SET NULL,
    origin_country       char(2) CHECK (origin_country ~ '^[A-Z]{2}$'),
    destination_country  char(2) CHECK (destination_country ~ '^[A-Z]{2}$'),
    status               text NOT NULL DEFAULT 'pending' REFERENCES statuses (name),
    substatus            text NOT NULL DEFAULT 'none' REFERENCES substatuses (name),
    status_at            timestamptz,          -- time of the event that set status
    customs_state        text NOT NULL DEFAULT 'none'
                         CHECK (customs_state IN ('none', 'processing', 'held', 'released',
                                                  'rejected', 'returned')),
    edd_original         date,
    edd_current          date,
    last_event_at        timestamptz,          -- newest event time seen
    next_poll_at         timestamptz DEFAULT now(), -- NULL: no more polls (terminal)
    lease_owner          text,
    lease_until          timestamptz,
    poll_count           integer NOT NULL DEFAULT 0,
    poll_error_streak    integer NOT NULL DEFAULT 0,
    last_poll_at         timestamptz,
    last_poll_error      text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (carrier, tracking_number)
);
-- The poller's claim: due shipments in next_poll_at order.
CREATE INDEX shipments_due ON shipments (next_poll_at) WHERE next_poll_at IS NOT NULL;
CREATE INDEX shipments_order_ref ON shipments (order_ref) WHERE order_ref IS NOT NULL;
CREATE INDEX shipments_tracking_number ON shipments (tracking_number);
CREATE INDEX shipments_recipient ON shipments (recipient_id);

-- Append-only carrier events, partitioned by month of occurrence.
CREATE TABLE tracking_events (
    id               bigint GENERATED ALWAYS AS IDENTITY,
    shipment_id      bigint NOT NULL REFERENCES shipments (id) ON DELETE CASCADE,
    occurred_at      timestamptz NOT NULL, -- UTC; local wall time read as UTC when offset_kind = 'unknown'
    occurred_local   timestamp NOT NULL,   -- wall time at the event's location, as the carrier gave it
    offset_kind      text NOT NULL CHECK (offset_kind IN ('carrier', 'derived', 'unknown')),
    utc_offset_min   smallint CHECK (utc_offset_min BETWEEN -1080 AND 1080),
    status           text NOT NULL REFERENCES statuses (name),
    substatus        text NOT NULL REFERENCES substatuses (name),
    affects_status   boolean NOT NULL,     -- false for unmapped codes
    customs          boolean NOT NULL DEFAULT false,
    raw_code         text NOT NULL DEFAULT '',
    raw_description  text NOT NULL DEFAULT '',
    city             text NOT NULL DEFAULT '',
    postal_code      text NOT NULL DEFAULT '',
    country          text NOT NULL DEFAULT '' CHECK (country = '' OR country ~ '^[A-Z]{2}$'),
    dedupe_key       uuid NOT NULL,        -- md5 of (carrier, number, time, code, location, text)
    recorded_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, occurred_at),
    UNIQUE (dedupe_key, occurred_at)
) PARTITION BY RANGE (occurred_at);

CREATE TABLE tracking_events_default PARTITION OF tracking_events DEFAULT;
CREATE INDEX tracking_events_shipment ON tracking_events (shipment_id, occurred_at);

-- Create the monthly partitions covering [p_from, p_to]. Months whose rows
-- already sit in the default partition are skipped (they stay there).
CREATE FUNCTION st_ensure_event_partitions(p_from date, p_to date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    m date := date_trunc('month', p_from)::date;
    created integer := 0;
    part text;
BEGIN
    WHILE m <= p_to LOOP
        part := format('tracking_events_%s', to_char(m, 'YYYYMM'));
        IF to_regclass(part) IS NULL
           AND NOT EXISTS (SELECT 1 FROM tracking_events_default
                           WHERE occurred_at >= m AND occurred_at < (m + interval '1 month')) THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF tracking_events FOR VALUES FROM (%L) TO (%L)',
                           part, m::timestamptz, (m + interval '1 month')::timestamptz);
            created := created + 1;
        END IF;
        m := (m + interval '1 month')::date;
    END LOOP;
    RETURN created;
END $$;

SELECT st_ensure_event_partitions((now() - interval '12 months')::date,
                                  (now() + interval '3 months')::date);

CREATE TABLE customs_holds (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    shipment_id      bigint NOT NULL REFERENCES shipments (id) ON DELETE CASCADE,
    state            text NOT NULL CHECK (state IN ('processing', 'held', 'released', 'rejected',
                                                    'returned')),
    reason           text NOT NULL DEFAULT 'unknown'
                     CHECK (reason IN ('processing', 'documents_required', 'duties_due',
                                       'inspection', 'prohibited', 'unknown')),
    actor            text NOT NULL DEFAULT 'nobody'
                     CHECK (actor IN ('recipient', 'shipper', 'broker', 'nobody')),
    opened_at        timestamptz NOT NULL,
    closed_at        timestamptz,
    opened_evidence  text NOT NULL DEFAULT '',  -- carrier words that opened the hold
    closed_evidence  text,
    instructions     text,
    CHECK (closed_at IS NULL OR closed_at >= opened_at)
);
-- At most one open hold per shipment.
CREATE UNIQUE INDEX customs_holds_open ON customs_holds (shipment_id) WHERE closed_at IS NULL;

-- Transactional outbox: written with the state change it announces.
CREATE TABLE outbox (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id    uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    topic       text NOT NULL,
    msg_key     text NOT NULL,
    payload     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz,
    attempts    integer NOT NULL DEFAULT 0,
    last_error  text
);
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;

CREATE TABLE notifications (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    shipment_id     bigint NOT NULL REFERENCES shipments (id) ON DELETE CASCADE,
    milestone       text NOT NULL CHECK (milestone IN ('shipped', 'customs_processing',
                        'customs_held', 'customs_released', 'delayed', 'out_for_delivery',
                        'attempt_failed', 'available_for_pickup', 'delivered', 'exception',
                        'returning')),
    channel         text NOT NULL CHECK (channel IN ('email', 'sms')),
    status          text NOT NULL CHECK (status IN ('queued', 'deferred', 'sent',
                        'failed_temporary', 'failed_permanent', 'suppressed')),
    reason          text,
    event_id        uuid,
    locale          text,
    deferred_until  timestamptz,
    attempts        integer NOT NULL DEFAULT 0,
    provider_ref    text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    UNIQUE (shipment_id, milestone, channel),
    CHECK (status <> 'deferred' OR deferred_until IS NOT NULL)
);
CREATE INDEX notifications_deferred ON notifications (deferred_until) WHERE status = 'deferred';
