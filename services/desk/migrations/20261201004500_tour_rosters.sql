-- The tour rosters (名簿): kept by the `desk.rosters` projection from the tour
-- streams and the person streams. One row per tour with its counts, one row per
-- party (sign-up). The personal columns (name .. children_ages) are copied from the
-- sealed part of each sign-up, and set to NULL (erased = true) when the person is
-- erased; a rebuild gives the same, because an erased person's sign-ups open to
-- null. Waitlist positions are not stored: they follow from arrival order.
CREATE TABLE roster_tours (
    tour_id            uuid        NOT NULL,
    title              text        NOT NULL,
    kind               text        NOT NULL,
    starts_at          timestamptz NOT NULL,
    ends_at            timestamptz NOT NULL,
    -- The moment sign-ups close: the deadline staff set, else the start.
    closes_at          timestamptz NOT NULL,
    deadline_set       boolean     NOT NULL,
    meeting_place      text        NOT NULL DEFAULT '',
    fee_yen            integer     NOT NULL DEFAULT 0,
    capacity_parties   integer     NOT NULL,
    max_people         integer,
    description        text        NOT NULL DEFAULT '',
    audience           text        NOT NULL DEFAULT '',
    status             text        NOT NULL DEFAULT 'draft',
    -- Written by staff and shown to the parties: never personal.
    cancel_reason      text,
    revision           integer     NOT NULL DEFAULT 0,
    scheduled_at       timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    confirmed_parties  integer     NOT NULL DEFAULT 0,
    confirmed_people   integer     NOT NULL DEFAULT 0,
    waitlisted_parties integer     NOT NULL DEFAULT 0,
    waitlisted_people  integer     NOT NULL DEFAULT 0,
    cancelled_parties  integer     NOT NULL DEFAULT 0,
    CONSTRAINT roster_tours_pkey PRIMARY KEY (tour_id),
    CONSTRAINT roster_tours_status_check CHECK (status IN ('draft', 'published', 'cancelled')),
    CONSTRAINT roster_tours_counts_check CHECK (
        confirmed_parties >= 0 AND confirmed_people >= 0 AND waitlisted_parties >= 0
        AND waitlisted_people >= 0 AND cancelled_parties >= 0
    )
);

CREATE INDEX roster_tours_starts_at ON roster_tours (starts_at);

CREATE TABLE roster_parties (
    sign_up_id      uuid        NOT NULL,
    tour_id         uuid        NOT NULL,
    person_id       uuid        NOT NULL,
    -- Arrival order within the tour (1, 2, ...): the waiting list's order.
    arrival         integer     NOT NULL,
    received_at     timestamptz NOT NULL,
    adults          smallint    NOT NULL,
    children        smallint    NOT NULL,
    prefecture      text        NOT NULL,
    transport       text,
    source          text,
    status          text        NOT NULL,
    promoted_at     timestamptz,
    cancelled_at    timestamptz,
    -- What it was when cancelled (confirmed, waitlisted) and by whom (party, staff).
    cancelled_was   text,
    cancelled_by    text,
    -- Check-in: true came, false no-show, NULL not recorded.
    attended        boolean,
    attendance_at   timestamptz,
    -- 1 (不満) .. 5 (満足); the comments stay in the event.
    satisfaction    smallint,
    -- Personal: NULL once erased.
    name            text,
    name_kana       text,
    email           text,
    phone           text,
    needs           text,
    children_ages   text,
    erased          boolean     NOT NULL DEFAULT false,
    CONSTRAINT roster_parties_pkey PRIMARY KEY (sign_up_id),
    CONSTRAINT roster_parties_status_check CHECK (status IN ('received', 'confirmed', 'waitlisted', 'cancelled')),
    CONSTRAINT roster_parties_erased_check CHECK (
        NOT erased OR (name IS NULL AND name_kana IS NULL AND email IS NULL AND phone IS NULL
                       AND needs IS NULL AND children_ages IS NULL)
    )
);

CREATE INDEX roster_parties_tour ON roster_parties (tour_id, arrival);
CREATE INDEX roster_parties_person ON roster_parties (person_id);
