-- Staff accounts of the desk (services/desk). This table is the working store of
-- the accounts: it alone holds the password hashes and the failed-login bookkeeping,
-- which never go into an event. Every change an admin makes to an account is also
-- recorded as an event on the stream `staff-<user_id>`, appended in the same
-- transaction as the row change; `version` is that stream's version.
CREATE TABLE staff_users (
    user_id              uuid        NOT NULL,
    -- As entered (trimmed, NFKC); unique regardless of case (staff_users_email_key).
    email                text        NOT NULL,
    display_name         text        NOT NULL,
    role                 text        NOT NULL,
    disabled             boolean     NOT NULL DEFAULT false,
    -- argon2id in PHC string format ($argon2id$v=19$m=...,t=...,p=...$salt$hash).
    password_hash        text        NOT NULL,
    -- Consecutive failed logins since the last success or lockout.
    failed_logins        integer     NOT NULL DEFAULT 0,
    locked_until         timestamptz,
    last_failed_login_at timestamptz,
    last_login_at        timestamptz,
    -- Sessions that began before this moment are refused (set with a new password).
    sessions_valid_after timestamptz,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    version              bigint      NOT NULL,
    CONSTRAINT staff_users_pkey PRIMARY KEY (user_id),
    CONSTRAINT staff_users_role_check CHECK (role IN ('admin', 'concierge', 'viewer')),
    CONSTRAINT staff_users_email_shape CHECK (email LIKE '_%@_%' AND length(email) <= 254),
    CONSTRAINT staff_users_display_name_check CHECK (length(display_name) BETWEEN 1 AND 50),
    CONSTRAINT staff_users_password_hash_shape CHECK (password_hash LIKE '$argon2%'),
    CONSTRAINT staff_users_failed_logins_check CHECK (failed_logins >= 0),
    CONSTRAINT staff_users_version_check CHECK (version >= 1)
);

-- One account per address, whatever its case: Taro@Example.jp is taro@example.jp.
CREATE UNIQUE INDEX staff_users_email_key ON staff_users (lower(email));
