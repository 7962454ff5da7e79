-- privacy.persons: who the service holds data on, since when, their last activity
-- (for retention), the streams that hold their facts (for export and erasure), and
-- the persons joined by a merge of two cases. Nothing here is personal: ids and times.
CREATE TABLE privacy_persons (
    person_id        uuid        NOT NULL,
    first_seen_at    timestamptz NOT NULL,
    last_activity_at timestamptz NOT NULL,
    erased_at        timestamptz,
    erased_rule      text,
    CONSTRAINT privacy_persons_pkey PRIMARY KEY (person_id)
);
CREATE INDEX privacy_persons_retention ON privacy_persons (last_activity_at)
    WHERE erased_at IS NULL;

CREATE TABLE privacy_person_streams (
    person_id   uuid NOT NULL,
    stream_name text NOT NULL,
    CONSTRAINT privacy_person_streams_pkey PRIMARY KEY (person_id, stream_name)
);
CREATE INDEX privacy_person_streams_stream ON privacy_person_streams (stream_name);

CREATE TABLE privacy_person_links (
    case_id     uuid NOT NULL,
    person_id   uuid NOT NULL,
    into_person uuid NOT NULL,
    CONSTRAINT privacy_person_links_pkey PRIMARY KEY (case_id)
);
CREATE INDEX privacy_person_links_person ON privacy_person_links (person_id);
CREATE INDEX privacy_person_links_into ON privacy_person_links (into_person);
