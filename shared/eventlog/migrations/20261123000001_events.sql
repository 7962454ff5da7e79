-- The append-only event log. See the crate docs (shared/eventlog/src/lib.rs) for why
-- `transaction_id` exists and how readers use it to stay gap-safe without a global lock.
CREATE TABLE events (
    position        bigint GENERATED ALWAYS AS IDENTITY,
    event_id        uuid        NOT NULL,
    stream_name     text        NOT NULL,
    stream_version  bigint      NOT NULL,
    event_type      text        NOT NULL,
    data            jsonb       NOT NULL,
    metadata        jsonb       NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    -- xid8 of the writing transaction, stored as bigint (xid8 is a 64-bit epoch-extended id,
    -- so it never wraps within the life of a cluster).
    transaction_id  bigint      NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    CONSTRAINT events_pkey PRIMARY KEY (position),
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_stream_version_key UNIQUE (stream_name, stream_version),
    CONSTRAINT events_stream_version_positive CHECK (stream_version >= 1),
    CONSTRAINT events_stream_name_shape CHECK (stream_name ~ '^[a-z][a-z0-9_]*-.+$')
);

-- Global readers walk the log in (transaction_id, position) order.
CREATE INDEX events_global_order ON events (transaction_id, position);

-- Durable checkpoints of every global reader (projections, the mail outbox, ...).
CREATE TABLE reader_checkpoints (
    reader          text        NOT NULL,
    transaction_id  bigint      NOT NULL DEFAULT 0,
    position        bigint      NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT reader_checkpoints_pkey PRIMARY KEY (reader)
);
