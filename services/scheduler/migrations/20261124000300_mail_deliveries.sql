-- The mail outbox: one row per idempotency key, tracking the delivery of one
-- `MailRequested` event. The mail itself (addresses, subject, text) is NOT copied here:
-- the mailer loads it from the event at send time, so that erasing a person's data
-- (crypto-shredding) has one place to act on.
CREATE TABLE mail_deliveries (
    key             text        NOT NULL,
    -- Where the `MailRequested` event lives.
    stream_name     text        NOT NULL,
    stream_version  bigint      NOT NULL,
    position        bigint      NOT NULL,
    -- Not personal: the kind of mail, for statistics.
    template        text        NOT NULL,
    status          text        NOT NULL DEFAULT 'pending',
    -- Attempts started, counted when a worker claims the row (so a crash counts too).
    attempts        integer     NOT NULL DEFAULT 0,
    requested_at    timestamptz NOT NULL,
    -- NULL: as soon as possible. While a worker holds the row, the end of its lease;
    -- after a failure, the time of the retry.
    next_attempt_at timestamptz,
    last_attempt_at timestamptz,
    -- Email addresses are redacted from it before it is stored.
    last_error      text,
    message_id      text,
    sent_at         timestamptz,
    failed_at       timestamptz,
    CONSTRAINT mail_deliveries_pkey PRIMARY KEY (key),
    CONSTRAINT mail_deliveries_status CHECK (status IN ('pending', 'sent', 'failed')),
    CONSTRAINT mail_deliveries_sent_has_time CHECK (status <> 'sent' OR sent_at IS NOT NULL)
);

-- Workers look for due pending rows; they are few, so a partial index stays small.
CREATE INDEX mail_deliveries_pending
    ON mail_deliveries (next_attempt_at NULLS FIRST, position)
    WHERE status = 'pending';

CREATE INDEX mail_deliveries_failed
    ON mail_deliveries (failed_at)
    WHERE status = 'failed';
