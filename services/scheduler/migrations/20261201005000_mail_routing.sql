-- Routing, fencing and cancellation of mail deliveries.
--
-- * Routing: copied by the outbox projection from `MailQueued` so that the mailer can
--   decide without rendering whether a mail may still go (who it is to, whether it is
--   a follow-up, whose data it is). None of it is personal.
-- * Fencing: each claim takes a fresh token; an outcome is recorded only by the
--   worker whose token is still on the row, so a worker overtaken after its lease
--   ran out cannot overwrite the state the new lease holder records.
-- * `cancelled`: final and not a failure (the person was erased, suspended use,
--   opted out, or their address bounces).
-- * `subject`: recorded when the mail is sent, for the person's data export
--   ("mail sent: subject and time"). Subjects hold no personal data by design.
ALTER TABLE mail_deliveries
    ADD COLUMN person_id     uuid,
    -- NULL for legacy rendered mail (`MailRequested`), whose audience is unknown.
    ADD COLUMN audience      text,
    ADD COLUMN kind          text NOT NULL DEFAULT 'transactional',
    ADD COLUMN claim         uuid,
    ADD COLUMN subject       text,
    ADD COLUMN cancel_reason text,
    ADD COLUMN cancelled_at  timestamptz,
    ADD CONSTRAINT mail_deliveries_audience CHECK (audience IN ('applicant', 'staff')),
    ADD CONSTRAINT mail_deliveries_kind CHECK (kind IN ('transactional', 'follow_up')),
    ADD CONSTRAINT mail_deliveries_cancel_reason
        CHECK (cancel_reason IN ('erased', 'suspended', 'opted_out', 'bouncing')),
    ADD CONSTRAINT mail_deliveries_cancelled_has_reason
        CHECK ((status = 'cancelled') = (cancel_reason IS NOT NULL AND cancelled_at IS NOT NULL));

ALTER TABLE mail_deliveries DROP CONSTRAINT mail_deliveries_status;
ALTER TABLE mail_deliveries ADD CONSTRAINT mail_deliveries_status
    CHECK (status IN ('pending', 'sent', 'failed', 'cancelled'));

-- Deliveries recorded before this migration get their routing from their event.
UPDATE mail_deliveries d SET
    person_id = CASE WHEN e.data->>'person_id' ~ '^[0-9a-fA-F-]{36}$'
                     THEN (e.data->>'person_id')::uuid END,
    audience  = CASE WHEN e.event_type = 'MailQueued'
                     THEN coalesce(e.data->>'audience', 'applicant') END,
    kind      = CASE WHEN e.event_type = 'MailQueued'
                     THEN coalesce(e.data->>'kind', 'transactional') ELSE 'transactional' END
FROM events e
WHERE e.position = d.position;

-- The privacy export lists a person's mail; the desk shows it on the case page.
CREATE INDEX mail_deliveries_person ON mail_deliveries (person_id) WHERE person_id IS NOT NULL;
