-- Where each global reader (each projection) stands, beside its checkpoint in
-- `reader_checkpoints`, so that every process (`kujira projections status`, the
-- `/readyz` of every instance) sees the same state. Written by the projector only:
-- on a change of state, and on every failed attempt. The lag is not stored: it is
-- measured from the checkpoint, so that a stalled process cannot report itself live.
CREATE TABLE reader_status (
    reader          text        NOT NULL,
    state           text        NOT NULL DEFAULT 'running',
    -- The last failure, kept until the reader gets past it. E-mail addresses and
    -- quoted values are redacted from it: it is shown to operators, and an event's
    -- data must not leak through it.
    error           text,
    -- The event it failed on, when the failure is tied to one.
    failed_event_id       uuid,
    failed_event_type     text,
    failed_stream         text,
    failed_event_position bigint,
    failed_since    timestamptz,
    -- Consecutive failed attempts since it last succeeded.
    attempts        integer     NOT NULL DEFAULT 0,
    next_retry_at   timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT reader_status_pkey PRIMARY KEY (reader),
    CONSTRAINT reader_status_state CHECK (state IN ('running', 'caught_up', 'failed')),
    CONSTRAINT reader_status_failed_has_error CHECK (state <> 'failed' OR error IS NOT NULL)
);
