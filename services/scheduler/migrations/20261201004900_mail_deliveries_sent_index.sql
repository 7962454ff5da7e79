-- The desk's KPI counts mails sent per month of a fiscal year (`kujira_scheduler::
-- stats::mail_counts`). Without this index, that count reads the whole outbox on
-- every KPI page. Failed mails already have `mail_deliveries_failed`.
-- (Version from the tours/KPI range: the KPI is what needs it.)
CREATE INDEX mail_deliveries_sent ON mail_deliveries (sent_at) WHERE status = 'sent';
