-- The public tour catalogue: one row per tour, kept by the `tours.catalogue`
-- projection from the tour streams. It holds no personal data, only counts.
CREATE TABLE tour_catalogue (
    tour_id            uuid        NOT NULL,
    title              text        NOT NULL,
    kind               text        NOT NULL,
    starts_at          timestamptz NOT NULL,
    ends_at            timestamptz NOT NULL,
    -- The moment sign-ups close: the deadline staff set, else the start.
    deadline           timestamptz NOT NULL,
    meeting_place      text        NOT NULL DEFAULT '',
    fee_yen            integer     NOT NULL DEFAULT 0,
    description        text        NOT NULL DEFAULT '',
    audience           text        NOT NULL DEFAULT '',
    capacity_parties   integer     NOT NULL,
    max_people         integer,
    confirmed_parties  integer     NOT NULL DEFAULT 0,
    confirmed_people   integer     NOT NULL DEFAULT 0,
    waitlist_length    integer     NOT NULL DEFAULT 0,
    status             text        NOT NULL DEFAULT 'draft',
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tour_catalogue_pkey PRIMARY KEY (tour_id),
    CONSTRAINT tour_catalogue_kind_check CHECK (kind IN ('day_trip', 'overnight')),
    CONSTRAINT tour_catalogue_status_check CHECK (status IN ('draft', 'published', 'cancelled')),
    CONSTRAINT tour_catalogue_counts_check CHECK (
        capacity_parties >= 1 AND confirmed_parties >= 0 AND confirmed_people >= 0
        AND waitlist_length >= 0
    ),
    -- The tour stream never over-books; if this ever fails, the projection stops
    -- loudly instead of showing a wrong count.
    CONSTRAINT tour_catalogue_not_overbooked CHECK (confirmed_parties <= capacity_parties)
);

CREATE INDEX tour_catalogue_starts_at ON tour_catalogue (starts_at);
