-- Large events (a case with its rendered mails is several KB) are TOASTed. lz4
-- compresses many times faster than the default pglz, and appends are CPU-bound on
-- small machines. Servers built without lz4 keep pglz.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_settings
               WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
        ALTER TABLE events ALTER COLUMN data SET COMPRESSION lz4;
        ALTER TABLE events ALTER COLUMN metadata SET COMPRESSION lz4;
    END IF;
END
$$;
