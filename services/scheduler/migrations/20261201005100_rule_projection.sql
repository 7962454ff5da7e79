-- The read model of the scheduler's rules (projection `scheduler.rules`): what the
-- rules need to pick their candidates quickly, from cases, tours and persons.
-- Nothing personal: ids, the 受付番号 staff quote, phases, times and head counts.
-- The rules re-check every candidate on its own stream before they queue a mail.

CREATE TABLE rule_cases (
    case_id              uuid        NOT NULL,
    person_id            uuid        NOT NULL,
    -- The reference (受付番号) the desk and the digests quote.
    reference            text        NOT NULL,
    opened_at            timestamptz NOT NULL,
    phase                text        NOT NULL,
    concierge            uuid,
    -- When the latest logged contact happened (not when it was logged).
    last_contact_at      timestamptz,
    -- When the phase last changed, or the case opened.
    last_phase_change_at timestamptz NOT NULL,
    -- Anything done on the case.
    last_activity_at     timestamptz NOT NULL,
    next_action          date,
    -- When the case reached 移住済み (NULL unless it is there now).
    moved_at             timestamptz,
    move_in              date,
    applies_for_support  boolean     NOT NULL DEFAULT false,
    closed_at            timestamptz,
    merged_into          uuid,
    -- The nurture clock: a logged contact or a phase change resets it.
    nurture_from         timestamptz GENERATED ALWAYS AS
                             (greatest(last_contact_at, last_phase_change_at)) STORED,
    CONSTRAINT rule_cases_pkey PRIMARY KEY (case_id),
    CONSTRAINT rule_cases_phase
        CHECK (phase IN ('gathering', 'considering', 'decided', 'moved'))
);

-- One index per question a rule asks, each only over the cases it can concern.
CREATE INDEX rule_cases_nurture ON rule_cases (nurture_from)
    WHERE phase IN ('gathering', 'considering') AND closed_at IS NULL AND merged_into IS NULL;
CREATE INDEX rule_cases_moved ON rule_cases (moved_at)
    WHERE moved_at IS NOT NULL AND closed_at IS NULL AND merged_into IS NULL;
CREATE INDEX rule_cases_support ON rule_cases (move_in)
    WHERE applies_for_support AND moved_at IS NOT NULL AND closed_at IS NULL
      AND merged_into IS NULL;
CREATE INDEX rule_cases_opened ON rule_cases (opened_at)
    WHERE closed_at IS NULL AND merged_into IS NULL;
CREATE INDEX rule_cases_no_contact ON rule_cases (opened_at)
    WHERE last_contact_at IS NULL AND phase <> 'moved' AND closed_at IS NULL
      AND merged_into IS NULL;
CREATE INDEX rule_cases_next_action ON rule_cases (next_action)
    WHERE next_action IS NOT NULL AND closed_at IS NULL AND merged_into IS NULL;
CREATE INDEX rule_cases_idle ON rule_cases (last_activity_at)
    WHERE phase <> 'moved' AND closed_at IS NULL AND merged_into IS NULL;
CREATE INDEX rule_cases_person ON rule_cases (person_id);

CREATE TABLE rule_tours (
    tour_id             uuid        NOT NULL,
    -- Not personal: staff give tours their titles.
    title               text        NOT NULL,
    starts_at           timestamptz NOT NULL,
    ends_at             timestamptz NOT NULL,
    status              text        NOT NULL,
    capacity_parties    integer     NOT NULL,
    max_people          integer,
    confirmed_parties   integer     NOT NULL DEFAULT 0,
    confirmed_people    integer     NOT NULL DEFAULT 0,
    waitlist_length     integer     NOT NULL DEFAULT 0,
    -- Whether anyone was checked in (受付): the thank-you then goes only to those
    -- who came.
    attendance_recorded boolean     NOT NULL DEFAULT false,
    CONSTRAINT rule_tours_pkey PRIMARY KEY (tour_id),
    CONSTRAINT rule_tours_status CHECK (status IN ('draft', 'published', 'cancelled'))
);

CREATE INDEX rule_tours_starts ON rule_tours (starts_at) WHERE status = 'published';
CREATE INDEX rule_tours_ends ON rule_tours (ends_at) WHERE status = 'published';

CREATE TABLE rule_tour_parties (
    tour_id     uuid        NOT NULL,
    sign_up_id  uuid        NOT NULL,
    person_id   uuid        NOT NULL,
    -- When the party signed up.
    received_at timestamptz NOT NULL,
    status      text        NOT NULL,
    -- When it moved from the waiting list to a place.
    promoted_at timestamptz,
    -- Check-in: true came, false did not, NULL not recorded.
    attended    boolean,
    CONSTRAINT rule_tour_parties_pkey PRIMARY KEY (tour_id, sign_up_id),
    CONSTRAINT rule_tour_parties_status
        CHECK (status IN ('received', 'confirmed', 'waitlisted', 'cancelled'))
);

-- Persons whose state the digests show: an address that bounces, an erasure.
CREATE TABLE rule_persons (
    person_id      uuid        NOT NULL,
    bouncing_since timestamptz,
    erased_at      timestamptz,
    CONSTRAINT rule_persons_pkey PRIMARY KEY (person_id)
);

CREATE INDEX rule_persons_bouncing ON rule_persons (person_id) WHERE bouncing_since IS NOT NULL;
