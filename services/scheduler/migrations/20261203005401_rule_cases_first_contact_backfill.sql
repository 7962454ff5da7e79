-- The cases entered by the desk before `awaits_first_contact` existed, from their
-- opening in the log (a rebuild of `scheduler.rules` gives the same).
UPDATE rule_cases c SET awaits_first_contact = false
WHERE EXISTS (
    SELECT 1 FROM events e
    WHERE e.stream_name = 'consultation-' || c.case_id
      AND e.stream_version = 1
      AND e.data->>'channel' = 'desk'
);
