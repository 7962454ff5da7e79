-- 消去記録: one row per erased person, without personal data: what was erased, when,
-- by whom, under which rule, and what each store did. Written by the erasure
-- projection in the transaction that destroys the key.
CREATE TABLE erasure_records (
    person_id          uuid        NOT NULL,
    -- The PersonErased event: projections have scrubbed once their checkpoint is past it.
    position           bigint      NOT NULL,
    erased_at          timestamptz NOT NULL,
    actor              text        NOT NULL,
    rule               text,
    -- The 連番 of the person's cases (not personal).
    cases              text[]      NOT NULL DEFAULT '{}',
    tour_sign_ups      integer     NOT NULL DEFAULT 0,
    key_destroyed      boolean     NOT NULL,
    lookups_removed    integer     NOT NULL,
    mails_cancelled    integer     NOT NULL,
    mail_files_deleted integer     NOT NULL,
    CONSTRAINT erasure_records_pkey PRIMARY KEY (person_id)
);
CREATE INDEX erasure_records_at ON erasure_records (erased_at);
