-- The event log's transaction-id clock. Stored `transaction_id`s and the readers'
-- watermark are PostgreSQL xids plus `xid_offset`. The offset is 0 until a database
-- is restored into another cluster, whose xids may be behind the stored ones; then
-- `rebase_if_restored` raises it (and the column default of `events.transaction_id`)
-- so that new events sort after every restored one. The proof is in the crate docs
-- (shared/eventlog/src/lib.rs, "Restored databases").
CREATE TABLE eventlog_clock (
    singleton   boolean     NOT NULL DEFAULT true,
    xid_offset  bigint      NOT NULL DEFAULT 0,
    -- When the offset last changed, and the stored maximum it was raised above.
    rebased_at  timestamptz,
    rebased_above bigint,
    CONSTRAINT eventlog_clock_pkey PRIMARY KEY (singleton),
    CONSTRAINT eventlog_clock_singleton CHECK (singleton),
    CONSTRAINT eventlog_clock_offset_nonnegative CHECK (xid_offset >= 0)
);
INSERT INTO eventlog_clock DEFAULT VALUES;

-- Every stored transaction id below this value belongs to a finished transaction:
-- the oldest xid still running when the calling statement took its snapshot, on the
-- shifted clock. STABLE, so it is evaluated once per statement, on that statement's
-- snapshot. A missing clock row yields NULL, which the readers refuse loudly.
CREATE FUNCTION eventlog_watermark() RETURNS bigint
    LANGUAGE sql STABLE
    AS $$
        SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint + xid_offset
        FROM eventlog_clock
    $$;
