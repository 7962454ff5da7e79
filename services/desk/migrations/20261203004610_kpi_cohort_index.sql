-- The KPI page's cohort figures read a fiscal year of cases (about 20,000 on a busy
-- desk) twice per view. They joined each case with its person's tour parties at
-- every view; now desk.kpi keeps the party size of the tour each person took
-- (`tour_people`: the largest confirmed party on a tour not cancelled and not
-- recorded as a no-show; NULL when none) on their cases, so that the figures come
-- from this index alone.
ALTER TABLE kpi_cases ADD COLUMN tour_people smallint;
CREATE INDEX kpi_cases_person ON kpi_cases (person_id);

UPDATE kpi_cases c SET tour_people = took.people
FROM (
    SELECT p.person_id, max(p.adults + p.children) AS people
    FROM kpi_tour_parties p JOIN kpi_tours t ON t.tour_id = p.tour_id
    WHERE p.status = 'confirmed' AND p.attended IS DISTINCT FROM false AND NOT t.cancelled
    GROUP BY p.person_id
) took
WHERE c.person_id = took.person_id;

CREATE INDEX kpi_cases_cohort ON kpi_cases (opened_at)
    INCLUDE (reached_decided, move_in, move_people, request_people, tour_people)
    WHERE NOT merged;
