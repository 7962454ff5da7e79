-- The 連番 of consultation cases (受付番号). A sequence hands out numbers without a
-- counter-row lock, so concurrent submissions never wait on each other; a rolled-back
-- or replayed submission leaves a gap, which is fine for a reference number.
CREATE SEQUENCE consultation_reference_seq AS bigint START WITH 1 INCREMENT BY 1 NO CYCLE;
