-- Every staff view of a person's data (a case page, a list or search result with
-- personal columns, an export with personal columns) and every export: who, when,
-- which person (APPI; issue 7 "Audit"). Written by services/desk/src/audit in the
-- request that shows the data, so that nothing is shown unrecorded. Not a
-- projection: the log holds no record of page views, so this table cannot be
-- rebuilt and is never dropped.
--
-- One row per person viewed, plus one row without a person for each export; the
-- rows of one request share `request_id`. `detail` never holds personal data
-- (no names, no search text): the page, the filters, counts.
CREATE TABLE audit_log (
    id         bigint      GENERATED ALWAYS AS IDENTITY,
    at         timestamptz NOT NULL,
    staff_id   uuid        NOT NULL,
    action     text        NOT NULL,
    person_id  uuid,
    request_id uuid        NOT NULL,
    detail     text        NOT NULL DEFAULT '',
    CONSTRAINT audit_log_pkey PRIMARY KEY (id),
    CONSTRAINT audit_log_action_check CHECK (action ~ '^[a-z][a-z_]*$'),
    CONSTRAINT audit_log_detail_length CHECK (length(detail) <= 2000)
);

CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_person ON audit_log (person_id, at) WHERE person_id IS NOT NULL;
CREATE INDEX audit_log_staff ON audit_log (staff_id, at);
