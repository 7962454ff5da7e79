-- 連番 are counted afresh each calendar year, each year from a sequence of its own
-- (`consultation_reference_<year>`), created by intake on the year's first submission
-- after the highest number of that year already in the log. The one sequence for
-- every year is no longer used.
DROP SEQUENCE IF EXISTS consultation_reference_seq;
