-- Whether a case waits for its first contact (the digest's 「3営業日以内に連絡して
-- いない案件」): not when the desk entered it, since staff took it from the person at
-- a fair booth, on the phone or at the counter; the desk's board already said so.
-- (Part of the projection's DDL: a rebuild makes the tables with it.)
ALTER TABLE rule_cases ADD COLUMN awaits_first_contact boolean NOT NULL DEFAULT true;
