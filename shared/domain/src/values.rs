//! Value types that parse: once a value exists, it is valid.
//!
//! Every `parse` takes the raw text a person typed (form or JSON) and returns the
//! value or a [`ValueError`], whose [`ValueError::message_ja`] is the sentence the
//! web layer shows beside the field (prefixed with the field's label when useful).
//!
//! Input is trimmed. Types where full-width and half-width input mean the same thing
//! (kana, e-mail, phone, postal code) are NFKC-normalised first, so `ﾔﾏﾀﾞ ﾀﾛｳ` and
//! `０３－１２３４－５６７８` are accepted. Names are *not* NFKC-normalised: that would
//! rewrite some kanji (compatibility ideographs) that people use in their own names.
//!
//! Empty input is [`ValueError::Required`]; use [`optional`] for fields that may be left blank.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use unicode_normalization::UnicodeNormalization;

/// Why a value was refused. The web layer turns it into a Japanese message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("required")]
    Required,
    #[error("longer than {max} characters")]
    TooLong { max: usize },
    #[error("contains a control character")]
    ControlCharacter,
    #[error("not an email address")]
    InvalidEmail,
    #[error("not katakana")]
    NotKatakana,
    #[error("not a phone number")]
    InvalidPhone,
    #[error("not a postal code")]
    InvalidPostalCode,
    #[error("not one of the 47 prefectures")]
    UnknownPrefecture,
    /// The value is not one of an enum's choices.
    #[error("not one of the choices")]
    UnknownChoice,
    #[error("not a number in {min}..={max}")]
    OutOfRange { min: i64, max: i64 },
    #[error("not a date and time")]
    InvalidDateTime,
    #[error("not a date")]
    InvalidDate,
    /// A date or time that has already passed.
    #[error("in the past")]
    InPast,
    /// A date or time sooner than the lead time allows.
    #[error("sooner than {lead_days} days ahead")]
    TooSoon { lead_days: u32 },
    /// A confirmation field (e-mail entered twice) that does not match.
    #[error("does not match")]
    Mismatch,
    /// A consent box left unticked.
    #[error("consent is required")]
    MustAgree,
    /// A multiple choice with nothing chosen.
    #[error("choose at least one")]
    ChooseAtLeastOne,
    #[error("too many values (at most {max})")]
    TooMany { max: usize },
    /// The same value twice in a list (the same preferred date twice).
    #[error("duplicate value")]
    Duplicate,
    /// A field the form or API does not know.
    #[error("unknown field")]
    UnknownField,
    /// A JSON value of the wrong type (a number where text is expected, ...).
    #[error("wrong type, expected {expected}")]
    WrongType { expected: &'static str },
}

impl ValueError {
    /// The sentence shown to the person, in Japanese, without the field's label.
    pub fn message_ja(&self) -> String {
        match self {
            Self::Required => "入力してください。".into(),
            Self::TooLong { max } => format!("{max}文字以内で入力してください。"),
            Self::ControlCharacter => "使用できない文字（制御文字）が含まれています。".into(),
            Self::InvalidEmail => {
                "メールアドレスの形式で入力してください（例：taro@example.jp）。".into()
            }
            Self::NotKatakana => "全角カタカナで入力してください（例：カシワザキ タロウ）。".into(),
            Self::InvalidPhone => {
                "電話番号は数字とハイフンで入力してください（例：0257-21-2334）。".into()
            }
            Self::InvalidPostalCode => {
                "郵便番号は7桁の数字で入力してください（例：945-8511）。".into()
            }
            Self::UnknownPrefecture => "都道府県を選択してください。".into(),
            Self::UnknownChoice => "選択肢の中から選んでください。".into(),
            Self::OutOfRange { min, max } => {
                format!("{min}から{max}までの数字で入力してください。")
            }
            Self::InvalidDateTime => {
                "日時の形式が正しくありません（例：2026-12-01T10:00）。".into()
            }
            Self::InvalidDate => "日付の形式が正しくありません（例：2026-12-01）。".into(),
            Self::InPast => "過去の日時は指定できません。".into(),
            Self::TooSoon { lead_days } => {
                format!("本日から{lead_days}日以降の日時を指定してください。")
            }
            Self::Mismatch => "確認用の入力が一致しません。もう一度入力してください。".into(),
            Self::MustAgree => "個人情報の取り扱いへの同意が必要です。".into(),
            Self::ChooseAtLeastOne => "1つ以上選んでください。".into(),
            Self::TooMany { max } => format!("{max}個まで指定できます。"),
            Self::Duplicate => "同じ内容が重複しています。".into(),
            Self::UnknownField => "この項目は受け付けていません。".into(),
            Self::WrongType { expected } => format!("{expected}で指定してください。"),
        }
    }
}

/// The errors of one submitted form, in the order of its fields, keyed by field name.
/// The web layer renders them as the error summary and beside each field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(Vec<(&'static str, ValueError)>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an error; the first error of a field wins.
    pub fn add(&mut self, field: &'static str, error: ValueError) {
        if self.get(field).is_none() {
            self.0.push((field, error));
        }
    }

    /// Runs `result`, recording its error under `field`; `None` when it failed.
    pub fn check<T>(&mut self, field: &'static str, result: Result<T, ValueError>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.add(field, e);
                None
            }
        }
    }

    /// The address typed twice on a public form (`email`, then `email_confirm` when
    /// the form asks for it): the address, with an error under whichever is at
    /// fault. The two agree whatever the case of their letters (`Hanako@…` and
    /// `hanako@…`), as the person lookup does: nobody has two mailboxes that differ
    /// only by it, and a mismatch error for it sends people back for nothing.
    pub fn check_email_pair(&mut self, email: &str, confirm: Option<&str>) -> Option<Email> {
        let parsed = self.check("email", Email::parse(email));
        if let Some(confirm) = confirm {
            match Email::parse(confirm) {
                Err(ValueError::Required) => self.add("email_confirm", ValueError::Required),
                Ok(c)
                    if parsed
                        .as_ref()
                        .is_some_and(|e| !e.as_str().eq_ignore_ascii_case(c.as_str())) =>
                {
                    self.add("email_confirm", ValueError::Mismatch)
                }
                Err(_) if parsed.is_some() => self.add("email_confirm", ValueError::Mismatch),
                _ => {}
            }
        }
        parsed
    }

    pub fn get(&self, field: &str) -> Option<&ValueError> {
        self.0.iter().find(|(f, _)| *f == field).map(|(_, e)| e)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &ValueError)> {
        self.0.iter().map(|(f, e)| (*f, e))
    }
}

/// `None` for blank input, else `parse(input)`.
pub fn optional<T>(
    input: &str,
    parse: impl FnOnce(&str) -> Result<T, ValueError>,
) -> Result<Option<T>, ValueError> {
    if input.trim().is_empty() {
        Ok(None)
    } else {
        parse(input).map(Some)
    }
}

fn nfkc(s: &str) -> String {
    s.nfkc().collect()
}

/// Rejects control characters; `multiline` lets newline and tab through.
fn check_controls(s: &str, multiline: bool) -> Result<(), ValueError> {
    let bad = s.chars().any(|c| {
        let allowed = multiline && matches!(c, '\n' | '\t');
        // U+2028/2029 and bidi overrides are invisible and can disguise text.
        let sneaky = matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
        (c.is_control() && !allowed) || sneaky
    });
    if bad {
        Err(ValueError::ControlCharacter)
    } else {
        Ok(())
    }
}

fn check_len(s: &str, max: usize) -> Result<(), ValueError> {
    if s.chars().count() > max {
        Err(ValueError::TooLong { max })
    } else {
        Ok(())
    }
}

macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        // Stored events are trusted facts: they are read back as stored, without
        // re-validation, so a rule tightened later never makes an old event unreadable.
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d).map(Self)
            }
        }
    };
}

/// A person's name as they write it (kanji, kana or latin), one line, at most 50 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PersonName(String);
string_newtype!(PersonName);

impl PersonName {
    pub const MAX: usize = 50;

    pub fn parse(input: &str) -> Result<Self, ValueError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(ValueError::Required);
        }
        check_controls(s, false)?;
        check_len(s, Self::MAX)?;
        Ok(Self(s.to_owned()))
    }
}

/// A reading in full-width katakana (フリガナ). Half-width input is converted (NFKC),
/// hiragana becomes katakana (people often type the reading in hiragana out of habit;
/// refusing it sends them back to the form for nothing), and full-width and
/// half-width spaces become one ASCII space. Kanji and Latin letters are refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Kana(String);
string_newtype!(Kana);

impl Kana {
    pub const MAX: usize = 50;

    pub fn parse(input: &str) -> Result<Self, ValueError> {
        let normalised: String = nfkc(input).chars().map(hiragana_to_katakana).collect();
        check_controls(&normalised, false)?;
        let s = normalised.split_whitespace().collect::<Vec<_>>().join(" ");
        if s.is_empty() {
            return Err(ValueError::Required);
        }
        check_len(&s, Self::MAX)?;
        // ァ..ヺ, the middle dot ・ and the long mark ー (U+30FC); ヽヾ repeat marks too.
        let ok = s.chars().all(|c| {
            matches!(
                c,
                '\u{30A1}'..='\u{30FA}' | '\u{30FB}' | '\u{30FC}' | '\u{30FD}' | '\u{30FE}' | ' '
            )
        });
        if ok {
            Ok(Self(s))
        } else {
            Err(ValueError::NotKatakana)
        }
    }
}

/// ぁ..ゖ and the repeat marks ゝゞ to their katakana (the blocks are 0x60 apart);
/// anything else unchanged. The one conversion: readings are parsed with it here, and
/// the desk's search keys use it too.
pub fn hiragana_to_katakana(c: char) -> char {
    match c {
        '\u{3041}'..='\u{3096}' | '\u{309D}' | '\u{309E}' => {
            char::from_u32(c as u32 + 0x60).unwrap_or(c)
        }
        c => c,
    }
}

/// An e-mail address, trimmed and NFKC-normalised (`ｔａｒｏ＠example.jp` works).
/// The check is deliberately plain: one `@`, a non-empty local part, a domain with a dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);
string_newtype!(Email);

impl Email {
    pub const MAX: usize = 254;

    pub fn parse(input: &str) -> Result<Self, ValueError> {
        let s = nfkc(input.trim());
        let s = s.trim();
        if s.is_empty() {
            return Err(ValueError::Required);
        }
        check_controls(s, false)?;
        check_len(s, Self::MAX)?;
        let Some((local, domain)) = s.split_once('@') else {
            return Err(ValueError::InvalidEmail);
        };
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain
                .split('.')
                .all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'))
            && domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if local_ok && domain_ok {
            // Domains are case-insensitive; local parts, strictly, are not.
            Ok(Self(format!("{local}@{}", domain.to_ascii_lowercase())))
        } else {
            Err(ValueError::InvalidEmail)
        }
    }
}

/// A phone number: digits with optional hyphens, spaces, brackets, or a leading `+`;
/// 10 to 15 digits. Stored as typed after NFKC, with every dash-like character as `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);
string_newtype!(Phone);

impl Phone {
    pub fn parse(input: &str) -> Result<Self, ValueError> {
        let s: String = nfkc(input.trim())
            .chars()
            .map(|c| match c {
                '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{30FC}' | '\u{FF70}' => '-',
                c => c,
            })
            .collect();
        let s = s.trim();
        if s.is_empty() {
            return Err(ValueError::Required);
        }
        check_controls(s, false)?;
        let digits = s.chars().filter(char::is_ascii_digit).count();
        let shape_ok = s.chars().enumerate().all(|(i, c)| {
            c.is_ascii_digit() || matches!(c, '-' | ' ' | '(' | ')') || (c == '+' && i == 0)
        });
        if shape_ok && (10..=15).contains(&digits) && s.chars().count() <= 24 {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValueError::InvalidPhone)
        }
    }
}

/// A Japanese postal code, stored as 7 digits; shown as `945-8511`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PostalCode(String);

impl PostalCode {
    pub fn parse(input: &str) -> Result<Self, ValueError> {
        let s = nfkc(input.trim());
        let s = s.trim().trim_start_matches('〒').trim();
        if s.is_empty() {
            return Err(ValueError::Required);
        }
        let bytes = s.as_bytes();
        let digits: String = match bytes.len() {
            7 if bytes.iter().all(u8::is_ascii_digit) => s.to_owned(),
            8 if bytes[3] == b'-'
                && bytes[..3].iter().all(u8::is_ascii_digit)
                && bytes[4..].iter().all(u8::is_ascii_digit) =>
            {
                s.replace('-', "")
            }
            _ => return Err(ValueError::InvalidPostalCode),
        };
        Ok(Self(digits))
    }

    /// The seven digits.
    pub fn digits(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PostalCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", &self.0[..3], &self.0[3..])
    }
}

impl Serialize for PostalCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PostalCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| Self(s.replace('-', "")))
    }
}

/// Free text with a length bound. One-line text refuses every control character;
/// multi-line text lets newline and tab through (CRLF and CR become LF).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FreeText(String);
string_newtype!(FreeText);

impl FreeText {
    /// One line: a city, a hometown, a meeting place.
    pub fn parse_line(input: &str, max_chars: usize) -> Result<Self, ValueError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(ValueError::Required);
        }
        check_controls(s, false)?;
        check_len(s, max_chars)?;
        Ok(Self(s.to_owned()))
    }

    /// Several lines: a message, needs, comments.
    pub fn parse_multiline(input: &str, max_chars: usize) -> Result<Self, ValueError> {
        let s = input.replace("\r\n", "\n").replace('\r', "\n");
        let s = s.trim();
        if s.is_empty() {
            return Err(ValueError::Required);
        }
        check_controls(s, true)?;
        check_len(s, max_chars)?;
        Ok(Self(s.to_owned()))
    }
}

/// One of Japan's 47 prefectures, written in full (`東京都`, `新潟県`).
/// Serialised as its name; [`Prefecture::code`] is the JIS X 0401 code (1–47).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefecture(u8);

impl Prefecture {
    /// In JIS X 0401 order (北海道 = 1 … 沖縄県 = 47).
    pub const NAMES: [&'static str; 47] = [
        "北海道",
        "青森県",
        "岩手県",
        "宮城県",
        "秋田県",
        "山形県",
        "福島県",
        "茨城県",
        "栃木県",
        "群馬県",
        "埼玉県",
        "千葉県",
        "東京都",
        "神奈川県",
        "新潟県",
        "富山県",
        "石川県",
        "福井県",
        "山梨県",
        "長野県",
        "岐阜県",
        "静岡県",
        "愛知県",
        "三重県",
        "滋賀県",
        "京都府",
        "大阪府",
        "兵庫県",
        "奈良県",
        "和歌山県",
        "鳥取県",
        "島根県",
        "岡山県",
        "広島県",
        "山口県",
        "徳島県",
        "香川県",
        "愛媛県",
        "高知県",
        "福岡県",
        "佐賀県",
        "長崎県",
        "熊本県",
        "大分県",
        "宮崎県",
        "鹿児島県",
        "沖縄県",
    ];

    pub fn parse(input: &str) -> Result<Self, ValueError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(ValueError::Required);
        }
        Self::NAMES
            .iter()
            .position(|n| *n == s)
            .map(|i| Self(i as u8 + 1))
            .ok_or(ValueError::UnknownPrefecture)
    }

    pub fn all() -> impl Iterator<Item = Prefecture> {
        (1..=47).map(Self)
    }

    pub fn name(self) -> &'static str {
        Self::NAMES[usize::from(self.0 - 1)]
    }

    pub fn code(self) -> u8 {
        self.0
    }
}

impl fmt::Display for Prefecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Prefecture {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Prefecture {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Declares a closed set of choices with its wire name and its Japanese label.
/// Each gets `ALL`, `as_str`, `label_ja`, `parse`, and serde as the wire name.
macro_rules! choices {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $wire:literal : $label:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $wire)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire name used in forms, JSON and events.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }

            /// What a person reads.
            pub fn label_ja(self) -> &'static str {
                match self { $($name::$variant => $label),+ }
            }

            pub fn parse(input: &str) -> Result<Self, ValueError> {
                let s = input.trim();
                if s.is_empty() {
                    return Err(ValueError::Required);
                }
                Self::ALL
                    .iter()
                    .copied()
                    .find(|c| c.as_str() == s)
                    .ok_or(ValueError::UnknownChoice)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use choices;

choices!(
    /// 年代
    AgeGroup {
        Teens = "10s": "10代",
        Twenties = "20s": "20代",
        Thirties = "30s": "30代",
        Forties = "40s": "40代",
        Fifties = "50s": "50代",
        Sixties = "60s": "60代",
        SeventiesPlus = "70s_plus": "70代以上",
    }
);

choices!(
    /// 性別
    Gender {
        Female = "female": "女性",
        Male = "male": "男性",
        Other = "other": "その他",
        NoAnswer = "no_answer": "回答しない",
    }
);

choices!(
    /// U/I/J ターン
    Segment {
        UTurn = "u_turn": "Uターン（出身地に戻る）",
        ITurn = "i_turn": "Iターン（出身地以外へ移る）",
        JTurn = "j_turn": "Jターン（出身地の近くへ移る）",
        Undecided = "undecided": "まだ決めていない",
    }
);

choices!(
    /// 同居予定の家族
    Household {
        Single = "single": "単身",
        Couple = "couple": "夫婦・カップル",
        WithChildren = "with_children": "子どもと一緒",
        Other = "other": "その他",
    }
);

choices!(
    /// 移住希望時期
    MoveTiming {
        Within6Months = "within_6_months": "半年以内",
        Within1Year = "within_1_year": "1年以内",
        Within3Years = "within_3_years": "3年以内",
        Undecided = "undecided": "未定",
    }
);

choices!(
    /// 相談したい内容
    Topic {
        Work = "work": "仕事",
        Housing = "housing": "住まい",
        ChildcareEducation = "childcare_education": "子育て・教育",
        Farming = "farming": "就農",
        Business = "business": "起業",
        SupportPrograms = "support_programs": "支援制度",
        SnowClimate = "snow_climate": "雪・気候",
        DailyLife = "daily_life": "暮らし全般",
    }
);

choices!(
    /// 希望相談方法
    ConsultationMethod {
        Online = "online": "オンライン",
        Visit = "visit": "来庁",
        Phone = "phone": "電話",
        Email = "email": "メール",
        Fair = "fair": "出張相談会・移住フェア",
    }
);

choices!(
    /// 知ったきっかけ
    Source {
        Site = "site": "ウェブサイト",
        Instagram = "instagram": "Instagram",
        Fair = "fair": "移住フェア・相談会",
        Search = "search": "検索",
        Referral = "referral": "知人の紹介",
        Other = "other": "その他",
    }
);

choices!(
    /// オーダーメイドツアーで見たいもの
    TourInterest {
        Housing = "housing": "住宅",
        Schools = "schools": "保育園・学校",
        Companies = "companies": "企業",
        Migrants = "migrants": "先輩移住者との交流",
        Farming = "farming": "農業",
        Other = "other": "その他",
    }
);

#[cfg(test)]
mod tests;
