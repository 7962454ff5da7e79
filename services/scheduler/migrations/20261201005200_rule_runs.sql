-- When each scheduler rule last ran: `kujira scheduler status` shows it, and a start
-- after downtime catches up a run that the schedule had due meanwhile.
-- Not a projection: a run is not an event.
CREATE TABLE rule_runs (
    rule            text        NOT NULL,
    -- The moment the last successful run evaluated the rule as of (its "now").
    last_run_at     timestamptz,
    -- Mails that run queued.
    last_queued     integer     NOT NULL DEFAULT 0,
    -- The last attempt, successful or not, by the clock of the process that ran it.
    last_attempt_at timestamptz NOT NULL,
    -- Why the last attempt failed; NULL when it succeeded.
    last_error      text,
    CONSTRAINT rule_runs_pkey PRIMARY KEY (rule)
);
