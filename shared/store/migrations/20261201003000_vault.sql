-- The vault: every person's data key, wrapped by the master key, and the keyed-hash
-- lookup of persons by email. Destroying a person's rows here is what erases them
-- (crypto-shredding): their events stay, unreadable.

CREATE TABLE person_keys (
    person_id   uuid        NOT NULL,
    -- nonce (12 bytes) || AES-256-GCM(master key, data key, AAD = person id)
    wrapped_key bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT person_keys_pkey PRIMARY KEY (person_id),
    CONSTRAINT person_keys_wrapped_length CHECK (octet_length(wrapped_key) = 60)
);

-- HMAC-SHA256(lookup key derived from the master key, NFKC-lowercased email): finds a
-- returning person without the address standing anywhere in plaintext.
CREATE TABLE person_lookup (
    email_hash  bytea       NOT NULL,
    person_id   uuid        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT person_lookup_pkey PRIMARY KEY (email_hash),
    CONSTRAINT person_lookup_hash_length CHECK (octet_length(email_hash) = 32)
);
CREATE INDEX person_lookup_person ON person_lookup (person_id);

-- One row: proof that the master key in use is the one that wrapped the keys, and the
-- state of the one-off sealing of events written before encryption.
CREATE TABLE vault_meta (
    id              smallint    NOT NULL DEFAULT 1,
    -- AES-256-GCM(master key, a known text): a wrong key fails to open it.
    key_check       bytea       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT vault_meta_pkey PRIMARY KEY (id),
    CONSTRAINT vault_meta_one_row CHECK (id = 1)
);

-- Events written before this migration may hold personal data in plaintext: they are
-- all at or below this position, until `kujira privacy seal-legacy` seals them.
CREATE TABLE vault_legacy (
    id              smallint    NOT NULL DEFAULT 1,
    upto_position   bigint      NOT NULL,
    sealed_at       timestamptz,
    CONSTRAINT vault_legacy_pkey PRIMARY KEY (id),
    CONSTRAINT vault_legacy_one_row CHECK (id = 1)
);
INSERT INTO vault_legacy (upto_position, sealed_at)
SELECT coalesce(max(position), 0),
       CASE WHEN max(position) IS NULL THEN now() END
FROM events;
