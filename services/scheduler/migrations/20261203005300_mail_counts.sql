-- Mails sent and failed per hour (UTC), for the desk's KPI (`stats::mail_counts`).
-- Counting the outbox's rows for two fiscal years took about 100 ms on a desk with
-- half a million mails; these counters are summed over a few thousand rows. Hours,
-- not months, so that any time zone's months can be summed from them.
--
-- A trigger keeps them, so that every path that changes a delivery's status (the
-- worker's fenced outcome, a retry of a failed mail, a cancellation) moves them in
-- the same transaction.
CREATE TABLE mail_counts (
    hour timestamptz NOT NULL,
    sent bigint NOT NULL DEFAULT 0,
    failed bigint NOT NULL DEFAULT 0,
    -- No CHECK (>= 0): an upsert checks the row it proposes (a change, which may be
    -- negative) before it finds the row to add it to.
    CONSTRAINT mail_counts_pkey PRIMARY KEY (hour)
);

INSERT INTO mail_counts (hour, sent, failed)
SELECT hour, sum(sent), sum(failed) FROM (
    SELECT date_trunc('hour', sent_at, 'UTC') AS hour, count(*) AS sent, 0 AS failed
    FROM mail_deliveries WHERE status = 'sent' GROUP BY 1
    UNION ALL
    SELECT date_trunc('hour', failed_at, 'UTC'), 0, count(*)
    FROM mail_deliveries WHERE status = 'failed' AND failed_at IS NOT NULL GROUP BY 1
) c GROUP BY hour;

CREATE FUNCTION mail_counts_bump(at timestamptz, sent bigint, failed bigint)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO mail_counts AS c (hour, sent, failed)
    VALUES (date_trunc('hour', at, 'UTC'), sent, failed)
    ON CONFLICT (hour) DO UPDATE SET sent = c.sent + EXCLUDED.sent,
                                     failed = c.failed + EXCLUDED.failed;
$$;

CREATE FUNCTION mail_counts_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        IF OLD.status = 'sent' THEN
            PERFORM mail_counts_bump(OLD.sent_at, -1, 0);
        ELSIF OLD.status = 'failed' AND OLD.failed_at IS NOT NULL THEN
            PERFORM mail_counts_bump(OLD.failed_at, 0, -1);
        END IF;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        IF NEW.status = 'sent' THEN
            PERFORM mail_counts_bump(NEW.sent_at, 1, 0);
        ELSIF NEW.status = 'failed' AND NEW.failed_at IS NOT NULL THEN
            PERFORM mail_counts_bump(NEW.failed_at, 0, 1);
        END IF;
    END IF;
    RETURN NULL;
END
$$;

-- Only when what is counted changes: claims, attempts and leases leave the
-- counters alone.
CREATE TRIGGER mail_counts_follow_insert_delete
    AFTER INSERT OR DELETE ON mail_deliveries
    FOR EACH ROW EXECUTE FUNCTION mail_counts_follow();
CREATE TRIGGER mail_counts_follow_update
    AFTER UPDATE OF status, sent_at, failed_at ON mail_deliveries
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          OR OLD.sent_at IS DISTINCT FROM NEW.sent_at
          OR OLD.failed_at IS DISTINCT FROM NEW.failed_at)
    EXECUTE FUNCTION mail_counts_follow();
