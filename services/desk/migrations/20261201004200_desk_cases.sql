-- The desk's cases (projection `desk.cases`, services/desk/src/cases/projection.rs):
-- one row per consultation case, for the pipeline board, the case list, its
-- filters and the CSV export. Rebuilt from the log by `kujira projections rebuild
-- desk.cases`; this file is also that projection's DDL.
--
-- Only `summary` is personal (the first words of the free-text message, for the
-- list's 相談概要): it is NULL once the case's person is erased. Names and contact
-- details come from desk_persons.
CREATE TABLE desk_cases (
    case_id             uuid        NOT NULL,
    reference           text        NOT NULL,
    person_id           uuid        NOT NULL,
    kind                text        NOT NULL,
    channel             text        NOT NULL,
    -- For cases entered on the desk: how the inquiry came in (counter, phone, fair…).
    desk_source         text,
    opened_at           timestamptz NOT NULL,
    phase               text        NOT NULL,
    concierge           uuid,
    next_action         date,
    last_contact_at     timestamptz,
    contacts            integer     NOT NULL DEFAULT 0,
    -- The last day (city time) by which the first contact is due: 3 business days
    -- after the opening. NULL for cases entered on the desk, which were a contact.
    first_contact_due   date,
    moved_in            date,
    moved_adults        smallint,
    moved_children      smallint,
    applies_for_support boolean,
    closed_reason       text,
    closed_at           timestamptz,
    merged_into         uuid,
    segment             text,
    prefecture          text,
    age_group           text,
    gender              text,
    topics              text[]      NOT NULL DEFAULT '{}',
    source              text,
    summary             text,
    last_activity_at    timestamptz NOT NULL,
    CONSTRAINT desk_cases_pkey PRIMARY KEY (case_id),
    CONSTRAINT desk_cases_kind_check CHECK (kind IN ('inquiry', 'tour_request')),
    CONSTRAINT desk_cases_channel_check CHECK (channel IN ('form', 'api', 'desk')),
    CONSTRAINT desk_cases_phase_check
        CHECK (phase IN ('gathering', 'considering', 'decided', 'moved')),
    CONSTRAINT desk_cases_contacts_check CHECK (contacts >= 0)
);

-- 連番: unique, and searched by prefix.
CREATE UNIQUE INDEX desk_cases_reference ON desk_cases (reference text_pattern_ops);
-- The list's order (newest first) and keyset paging.
CREATE INDEX desk_cases_list ON desk_cases (opened_at DESC, case_id DESC);
CREATE INDEX desk_cases_person ON desk_cases (person_id);
-- Open cases (not closed, not merged) by phase: the board's counts and the phase filter.
CREATE INDEX desk_cases_open_phase ON desk_cases (phase, opened_at DESC, case_id DESC)
    WHERE closed_at IS NULL AND merged_into IS NULL;
CREATE INDEX desk_cases_concierge ON desk_cases (concierge, opened_at DESC, case_id DESC);
-- Open cases past their next-action date, and those still awaiting a first contact.
CREATE INDEX desk_cases_next_action ON desk_cases (next_action)
    WHERE closed_at IS NULL AND merged_into IS NULL AND next_action IS NOT NULL;
CREATE INDEX desk_cases_first_contact ON desk_cases (first_contact_due)
    WHERE closed_at IS NULL AND merged_into IS NULL AND contacts = 0
      AND first_contact_due IS NOT NULL;
