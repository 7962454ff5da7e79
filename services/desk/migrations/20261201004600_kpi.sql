-- The KPI figures, kept by the `desk.kpi` projection. Nothing here is personal:
-- the projection decodes events without opening their sealed parts, so that the
-- figures are the same before and after anyone's erasure. Months are the first day
-- of a month in the city's time zone (KUJIRA_TIMEZONE); changing the zone needs a
-- rebuild (`kujira projections rebuild desk.kpi`).

-- Monthly counters. Flows (`inquiries_web`, `funnel_views:inquiry`, ...) count what
-- happened in the month; `stock:<phase>` rows are changes of the number of cases
-- in a phase, summed over every month up to a month for that month's end.
CREATE TABLE kpi_monthly (
    metric  text   NOT NULL,
    month   date   NOT NULL,
    n       bigint NOT NULL,
    CONSTRAINT kpi_monthly_pkey PRIMARY KEY (metric, month)
);

-- One row per case: what the cohort view and the phase counts need.
CREATE TABLE kpi_cases (
    case_id          uuid        NOT NULL,
    person_id        uuid        NOT NULL,
    opened_at        timestamptz NOT NULL,
    -- web (the form and the API), window (窓口), event (イベント).
    channel          text        NOT NULL,
    phase            text        NOT NULL,
    closed           boolean     NOT NULL DEFAULT false,
    merged           boolean     NOT NULL DEFAULT false,
    reached_decided  boolean     NOT NULL DEFAULT false,
    -- The party of an order-made tour request.
    request_people   smallint,
    -- The latest move recorded on the case.
    move_in          date,
    move_people      smallint,
    CONSTRAINT kpi_cases_pkey PRIMARY KEY (case_id),
    CONSTRAINT kpi_cases_channel_check CHECK (channel IN ('web', 'window', 'event'))
);
CREATE INDEX kpi_cases_opened_at ON kpi_cases (opened_at);

-- Journeys whose (first) confirm view was counted: reloads of the confirm page do
-- not count twice.
CREATE TABLE kpi_funnel_confirmed (
    journey  uuid NOT NULL,
    CONSTRAINT kpi_funnel_confirmed_pkey PRIMARY KEY (journey)
);

CREATE TABLE kpi_tours (
    tour_id    uuid        NOT NULL,
    starts_at  timestamptz NOT NULL,
    cancelled  boolean     NOT NULL DEFAULT false,
    CONSTRAINT kpi_tours_pkey PRIMARY KEY (tour_id)
);
CREATE INDEX kpi_tours_starts_at ON kpi_tours (starts_at);

CREATE TABLE kpi_tour_parties (
    sign_up_id    uuid     NOT NULL,
    tour_id       uuid     NOT NULL,
    person_id     uuid     NOT NULL,
    adults        smallint NOT NULL,
    children      smallint NOT NULL,
    status        text     NOT NULL,
    attended      boolean,
    satisfaction  smallint,
    CONSTRAINT kpi_tour_parties_pkey PRIMARY KEY (sign_up_id),
    CONSTRAINT kpi_tour_parties_status_check
        CHECK (status IN ('received', 'confirmed', 'waitlisted', 'cancelled'))
);
CREATE INDEX kpi_tour_parties_tour ON kpi_tour_parties (tour_id);
CREATE INDEX kpi_tour_parties_person ON kpi_tour_parties (person_id);
