//! The search keys of a person's details: normalised name, kana, address and phone,
//! and the pieces (characters and pairs) that `desk_persons.search_grams` holds and
//! a search query must all find.

use std::collections::BTreeSet;

use unicode_normalization::UnicodeNormalization;

/// The normalised search keys of a person's details.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keys {
    pub name: Option<String>,
    pub kana: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// The name without spaces (NFKC, so that full-width latin letters match).
pub fn name_key(s: &str) -> String {
    s.nfkc().filter(|c| !c.is_whitespace()).collect()
}

/// The kana as katakana: NFKC (half-width kana become full-width), hiragana
/// shifted to katakana, no spaces; so ｶｼﾜｻﾞｷ, かしわざき and カシワザキ are one key.
pub fn kana_key(s: &str) -> String {
    s.nfkc()
        .filter(|c| !c.is_whitespace())
        .map(kujira_domain::values::hiragana_to_katakana)
        .collect()
}

/// The address in lower case (NFKC).
pub fn email_key(s: &str) -> String {
    s.nfkc()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_lowercase()
}

/// The phone number's digits (NFKC, so full-width digits count).
pub fn phone_key(s: &str) -> String {
    s.nfkc().filter(char::is_ascii_digit).collect()
}

/// Whether a kana key is katakana only (a query that could be a reading).
pub fn is_katakana(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| matches!(c, '\u{30A1}'..='\u{30FA}' | '\u{30FB}'..='\u{30FE}'))
}

/// The pieces a key is found by: its characters (for the name and the kana, so a
/// one-character name like 林 is found) and every pair of neighbouring characters,
/// each prefixed by the field (`n:`, `k:`, `e:`, `p:`).
pub fn grams(prefix: char, key: &str, singles: bool) -> BTreeSet<String> {
    let chars: Vec<char> = key.chars().collect();
    let mut out = BTreeSet::new();
    if singles {
        for c in &chars {
            out.insert(format!("{prefix}:{c}"));
        }
    }
    for pair in chars.windows(2) {
        out.insert(format!("{prefix}:{}{}", pair[0], pair[1]));
    }
    out
}

/// The pieces a query must all find for `key` to contain it: its pairs, or the one
/// character of a one-character query.
pub fn query_grams(prefix: char, key: &str) -> Vec<String> {
    let n = key.chars().count();
    grams(prefix, key, n == 1).into_iter().collect()
}

/// Every piece of a person's keys, for `desk_persons.search_grams`.
pub fn search_grams(keys: &Keys) -> Vec<String> {
    let mut all = BTreeSet::new();
    for (prefix, key, singles) in [
        ('n', &keys.name, true),
        ('k', &keys.kana, true),
        ('e', &keys.email, false),
        ('p', &keys.phone, false),
    ] {
        if let Some(k) = key {
            all.extend(grams(prefix, k, singles));
        }
    }
    all.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kana_keys_read_every_form_of_kana_alike() {
        assert_eq!(kana_key("ｶｼﾜｻﾞｷ ﾀﾛｳ"), "カシワザキタロウ");
        assert_eq!(kana_key("かしわざき　たろう"), "カシワザキタロウ");
        assert_eq!(kana_key("カシワザキ タロウ"), "カシワザキタロウ");
        assert!(is_katakana(&kana_key("たろう")) && !is_katakana("太郎"));
    }

    #[test]
    fn keys_are_normalised() {
        assert_eq!(name_key(" 柏崎　太郎 "), "柏崎太郎");
        assert_eq!(email_key("Taro@Example.JP"), "taro@example.jp");
        assert_eq!(phone_key("０２５７－２１－２３３４"), "0257212334");
    }

    #[test]
    fn a_query_finds_a_key_through_its_pieces() {
        let keys = Keys {
            name: Some("柏崎太郎".into()),
            kana: Some("カシワザキタロウ".into()),
            email: Some("taro@example.jp".into()),
            phone: Some("0257212334".into()),
        };
        let all = search_grams(&keys);
        for (prefix, q) in [
            ('n', "太郎"),
            ('n', "林"),
            ('k', "ワザキ"),
            ('e', "example"),
            ('p', "2334"),
        ] {
            let need = query_grams(prefix, q);
            let found = need.iter().all(|g| all.contains(g));
            assert_eq!(found, q != "林", "{q}");
        }
        assert!(query_grams('n', "柏").iter().all(|g| all.contains(g)));
    }
}
