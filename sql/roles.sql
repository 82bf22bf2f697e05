-- roles.sql: least-privilege database roles, one per worker role.
--
-- Not a migration: apply it as the database owner after `shiptrack migrate`
-- (again after each upgrade, since new tables need their grants), e.g.
--   psql "$OWNER_URL" -v ON_ERROR_STOP=1 -f sql/roles.sql
-- It creates NOLOGIN group roles and grants them exactly what each worker role
-- reads and writes; give each deployment's login its group:
--   CREATE ROLE poller_eu1 LOGIN PASSWORD '...' IN ROLE shiptrack_poller;
-- Idempotent: running it twice changes nothing.
--
--   shiptrack_migrate   owns nothing here: run `shiptrack migrate` as the owner
--   shiptrack_poller    carrier events in, shipment state, customs, estimates, outbox rows
--   shiptrack_relay     the outbox only
--   shiptrack_intake    registrations and recipients, cancel announcements
--   shiptrack_notifier  recipients (read), preferences, notifications
--   shiptrack_scanner   lane statistics, alerts; the retention job's erasure and purges
--                       (also what `shiptrack forget` and `shiptrack retention` need)
--   shiptrack_api       reads for the pages and the API, registration, resend, unsubscribe
-- Pollers never see recipients: personal data stays with intake, notifier, scanner and api.

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['shiptrack_poller', 'shiptrack_relay', 'shiptrack_intake',
                             'shiptrack_notifier', 'shiptrack_scanner', 'shiptrack_api'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
        EXECUTE format('GRANT USAGE ON SCHEMA public TO %I', r);
        -- every role checks the schema version and reads the vocabularies
        EXECUTE format('GRANT SELECT ON schema_migrations, statuses, substatuses TO %I', r);
    END LOOP;
END $$;

-- Monthly event partitions are created by the pollers; creating a partition
-- needs the parent's owner, so the function runs with its owner's rights.
ALTER FUNCTION st_ensure_event_partitions(date, date)
    SECURITY DEFINER SET search_path = public, pg_temp;
REVOKE EXECUTE ON FUNCTION st_ensure_event_partitions(date, date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION st_ensure_event_partitions(date, date) TO shiptrack_poller;

-- poller
GRANT SELECT, UPDATE ON shipments TO shiptrack_poller;
GRANT SELECT, INSERT ON tracking_events TO shiptrack_poller;
GRANT SELECT, INSERT, UPDATE ON customs_holds, customs_hold_durations, lane_transit,
    carrier_quota, poller_stats TO shiptrack_poller;
GRANT SELECT, INSERT ON customs_transitions, edd_history TO shiptrack_poller;
GRANT INSERT ON outbox TO shiptrack_poller;

-- relay
GRANT SELECT, UPDATE ON outbox TO shiptrack_relay;

-- intake
GRANT SELECT, INSERT, UPDATE ON shipments, recipients TO shiptrack_intake;
GRANT SELECT, INSERT ON preferences TO shiptrack_intake;
GRANT INSERT ON outbox TO shiptrack_intake;

-- notifier
GRANT SELECT ON shipments, recipients, customs_holds, customs_transitions, edd_history,
    tracking_events, outbox TO shiptrack_notifier;
GRANT SELECT, INSERT, UPDATE ON preferences, notifications TO shiptrack_notifier;

-- scanner (and the retention job, `forget`, `retention`)
GRANT SELECT, UPDATE ON shipments, tracking_events, recipients, notifications
    TO shiptrack_scanner;
GRANT SELECT ON customs_holds, customs_hold_durations TO shiptrack_scanner;
GRANT SELECT, INSERT, UPDATE ON lane_dwell, lane_dwell_p90, job_watermarks, alerts
    TO shiptrack_scanner;
GRANT SELECT, INSERT, DELETE ON outbox TO shiptrack_scanner;
GRANT SELECT, DELETE ON preferences TO shiptrack_scanner;

-- api
GRANT SELECT ON tracking_events, customs_holds, customs_transitions, edd_history, alerts,
    carrier_quota, poller_stats, outbox TO shiptrack_api;
GRANT SELECT, INSERT ON shipments, recipients TO shiptrack_api;
GRANT SELECT, INSERT, UPDATE ON preferences TO shiptrack_api;
GRANT SELECT, UPDATE ON notifications TO shiptrack_api;
