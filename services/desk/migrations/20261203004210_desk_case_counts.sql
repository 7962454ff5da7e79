-- The board's figures, kept by the desk.cases projection beside desk_cases in the
-- same transaction. Counting 100,000 rows per page view took tens of milliseconds;
-- these counters are summed over a few hundred rows.
--
-- counter: a phase ('gathering', 'considering', 'decided', 'moved') or 'closed',
--          each undated (day = 1970-01-01);
--          'next_action': open cases by their next-action date;
--          'first_contact': open cases with no contact yet, by the day the first
--          contact is due.
-- A merged case counts nowhere.
CREATE TABLE desk_case_counts (
    counter text NOT NULL,
    day date NOT NULL,
    n bigint NOT NULL,
    -- No CHECK (n >= 0): an upsert checks the row it proposes (the change, which
    -- may be negative) before it finds the row to add it to.
    CONSTRAINT desk_case_counts_pkey PRIMARY KEY (counter, day)
);

INSERT INTO desk_case_counts (counter, day, n)
SELECT counter, day, count(*) FROM (
    SELECT CASE WHEN closed_at IS NOT NULL THEN 'closed' ELSE phase END AS counter,
           DATE '1970-01-01' AS day
    FROM desk_cases WHERE merged_into IS NULL
    UNION ALL
    SELECT 'next_action', next_action FROM desk_cases
    WHERE closed_at IS NULL AND merged_into IS NULL AND next_action IS NOT NULL
    UNION ALL
    SELECT 'first_contact', first_contact_due FROM desk_cases
    WHERE closed_at IS NULL AND merged_into IS NULL AND contacts = 0
      AND first_contact_due IS NOT NULL
) c GROUP BY counter, day;

-- The case page lists the cases merged into it.
CREATE INDEX desk_cases_merged_into ON desk_cases (merged_into) WHERE merged_into IS NOT NULL;
