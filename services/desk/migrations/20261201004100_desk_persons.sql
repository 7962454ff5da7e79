-- The desk's persons (projection `desk.persons`, services/desk/src/persons): each
-- person's CURRENT contact details for lists and search, from the latest submission
-- (inquiry, tour request, tour sign-up) or correction, whichever came later, and the
-- person's flags. Rebuilt from the log by `kujira projections rebuild desk.persons`;
-- this file is also that projection's DDL, so it must create exactly these tables.
--
-- Every personal column is NULL once the person is erased (PersonErased), and a
-- rebuild gives the same, because an erased person's events open to null.
CREATE TABLE desk_persons (
    person_id     uuid        NOT NULL,
    name          text,
    name_kana     text,
    email         text,
    phone         text,
    -- Seven digits.
    postal_code   text,
    -- 住所（市区町村以下）.
    address       text,
    -- Search keys: the name without spaces; the kana NFKC-normalised, hiragana as
    -- katakana, without spaces; the e-mail in lower case; the phone's digits only.
    name_key      text,
    kana_key      text,
    email_key     text,
    phone_key     text,
    -- Substrings of the keys for the search's GIN index: each key's one- and
    -- two-character pieces, prefixed n: k: e: p: (see persons::search_grams).
    -- pg_trgm cannot serve here: in a C-locale database it takes no trigram from
    -- Japanese text.
    search_grams  text[]      NOT NULL DEFAULT '{}',
    -- When the details shown were given (submission or correction).
    details_at    timestamptz,
    first_seen_at timestamptz NOT NULL,
    suspended     boolean     NOT NULL DEFAULT false,
    opted_out     boolean     NOT NULL DEFAULT false,
    bouncing      boolean     NOT NULL DEFAULT false,
    erased        boolean     NOT NULL DEFAULT false,
    erased_at     timestamptz,
    CONSTRAINT desk_persons_pkey PRIMARY KEY (person_id),
    CONSTRAINT desk_persons_erased_is_scrubbed CHECK (
        NOT erased OR (name IS NULL AND name_kana IS NULL AND email IS NULL AND phone IS NULL
                       AND postal_code IS NULL AND address IS NULL AND name_key IS NULL
                       AND kana_key IS NULL AND email_key IS NULL AND phone_key IS NULL
                       AND search_grams = '{}')
    )
);

CREATE INDEX desk_persons_search ON desk_persons USING gin (search_grams);

-- Persons joined by a desk merge (CaseMerged.into_person): one row per merged case,
-- deleted when the merge is undone, so that a person's cases show together.
CREATE TABLE desk_person_links (
    case_id     uuid        NOT NULL,
    person_id   uuid        NOT NULL,
    into_person uuid        NOT NULL,
    linked_at   timestamptz NOT NULL,
    CONSTRAINT desk_person_links_pkey PRIMARY KEY (case_id)
);

CREATE INDEX desk_person_links_person ON desk_person_links (person_id);
CREATE INDEX desk_person_links_into ON desk_person_links (into_person);
