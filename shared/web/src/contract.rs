//! The JSON API's contract: a request body's schema is written once, published in
//! the OpenAPI document, and enforced by the handler with a JSON Schema validator
//! ([`BodySchema`]). So the API accepts exactly what its document says.
//!
//! The schemas are at least as strict as the domain's parsers (`kujira_domain`), so
//! that whatever the document accepts, the domain accepts too. The JSON API takes
//! values in their normal form (full-width katakana, ASCII e-mail addresses and
//! phone numbers); the HTML forms, typed by people, stay lenient (half-width kana,
//! full-width digits). The few rules a schema cannot state (a date inside the lead
//! time, the same date twice) are stated in words in the document and answered 422
//! by the domain's validation, which runs after the schema's.
//!
//! Patterns are ECMA-262 as JSON Schema requires, written with `\uXXXX` escapes and
//! no look-around, so that the validator here, Python's `re` and the Rust `regex`
//! crate all read them alike. Whitespace is listed explicitly (Unicode White_Space,
//! what Rust's `str::trim` removes), never as `\s`, whose meaning differs between
//! engines.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use kujira_domain::values::{FieldErrors, ValueError};
use serde_json::Value;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ObjectBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::{RefOr, schema::SchemaFormat};

use crate::error::ApiError;
use crate::extract::JsonObject;

/// Control characters and invisible ones that can disguise text (what
/// `kujira_domain::values` refuses), as the inside of a character class.
const CONTROLS: &str = r"\u0000-\u001F\u007F-\u009F\u2028\u2029\u202A-\u202E\u2066-\u2069";
/// [`CONTROLS`] and white space.
const CONTROLS_AND_SPACE: &str =
    r"\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200A\u2028-\u202F\u205F\u2066-\u2069\u3000";
/// Controls a multi-line text may not hold: all but tab, line feed and carriage return.
const CONTROLS_BUT_LINE_BREAKS: &str =
    r"\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\u2028\u2029\u202A-\u202E\u2066-\u2069";

/// One line with at least one visible character; surrounding white space is trimmed.
pub fn line_required_pattern() -> String {
    format!("^[^{CONTROLS}]*[^{CONTROLS_AND_SPACE}][^{CONTROLS}]*$")
}

/// One line, possibly blank (blank means "not given").
pub fn line_optional_pattern() -> String {
    format!("^[^{CONTROLS}]*$")
}

/// Several lines, possibly blank.
pub fn multiline_pattern() -> String {
    format!("^[^{CONTROLS_BUT_LINE_BREAKS}]*$")
}

/// Full-width katakana words (and ・ー ヽ ヾ), separated by ASCII or ideographic spaces.
pub const KANA_PATTERN: &str =
    r"^[ \u3000]*[\u30A1-\u30FE]+(?:[ \u3000]+[\u30A1-\u30FE]+)*[ \u3000]*$";

/// An e-mail address as `kujira_domain::values::Email` reads it, in ASCII.
pub const EMAIL_PATTERN: &str = r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$";

/// 10 to 15 digits with hyphens, spaces and brackets, and an optional leading `+`.
pub const PHONE_PATTERN: &str = r"^\+?[ ()-]*(?:[0-9][ ()-]*){10,15}$";
/// Longest phone number, separators included.
pub const PHONE_MAX: usize = 24;

/// Seven digits, with or without the hyphen after the third.
pub const POSTAL_CODE_PATTERN: &str = r"^[0-9]{3}-?[0-9]{4}$";

/// A calendar date `YYYY-MM-DD` that exists (leap years included).
const DATE: &str = concat!(
    "(?:[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])",
    "|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)",
    "|02-(?:0[1-9]|1[0-9]|2[0-8]))",
    "|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29)"
);

/// A date and time: `YYYY-MM-DDTHH:MM` or `YYYY-MM-DDTHH:MM:SS` in the city's time
/// zone, or with seconds and an offset (`Z`, `+09:00`): RFC 3339.
pub fn datetime_pattern() -> String {
    format!(
        "^{DATE}T(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])?)?$"
    )
}

/// The message for a value that does not match its pattern, by pattern.
fn pattern_message(pattern: &str) -> String {
    let error = if pattern == KANA_PATTERN {
        ValueError::NotKatakana
    } else if pattern == EMAIL_PATTERN {
        ValueError::InvalidEmail
    } else if pattern == PHONE_PATTERN {
        ValueError::InvalidPhone
    } else if pattern == POSTAL_CODE_PATTERN {
        ValueError::InvalidPostalCode
    } else if pattern == datetime_pattern() {
        ValueError::InvalidDateTime
    } else if pattern == line_required_pattern() {
        // Blank or holding a control character; the domain says which when it can.
        ValueError::Required
    } else {
        ValueError::ControlCharacter
    };
    error.message_ja()
}

fn string(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
}

fn nullable_string(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .description(Some(description))
}

/// Builders for the properties of a request body. "Optional" properties may be
/// left out or `null`; optional texts may also be blank.
pub mod field {
    use super::*;

    /// A required one-line text (a name): 1 to `max` characters once trimmed.
    pub fn line(description: &str, max: usize, example: &str) -> Schema {
        string(description)
            .min_length(Some(1))
            .max_length(Some(max))
            .pattern(Some(line_required_pattern()))
            .examples([example])
            .build()
            .into()
    }

    /// An optional one-line text.
    pub fn optional_line(description: &str, max: usize) -> Schema {
        nullable_string(description)
            .max_length(Some(max))
            .pattern(Some(line_optional_pattern()))
            .build()
            .into()
    }

    /// An optional text of several lines.
    pub fn optional_text(description: &str, max: usize) -> Schema {
        nullable_string(description)
            .max_length(Some(max))
            .pattern(Some(multiline_pattern()))
            .build()
            .into()
    }

    /// A required reading in katakana, at most `max` characters.
    pub fn kana(description: &str, max: usize, example: &str) -> Schema {
        string(description)
            .min_length(Some(1))
            .max_length(Some(max))
            .pattern(Some(KANA_PATTERN))
            .examples([example])
            .build()
            .into()
    }

    /// A required e-mail address.
    pub fn email(description: &str, example: &str) -> Schema {
        string(description)
            .min_length(Some(3))
            .max_length(Some(kujira_domain::values::Email::MAX))
            .pattern(Some(EMAIL_PATTERN))
            .examples([example])
            .build()
            .into()
    }

    /// A phone number.
    pub fn phone(description: &str, required: bool, example: &str) -> Schema {
        let b = if required {
            string(description)
        } else {
            nullable_string(description)
        };
        b.min_length(Some(10))
            .max_length(Some(PHONE_MAX))
            .pattern(Some(PHONE_PATTERN))
            .examples([example])
            .build()
            .into()
    }

    /// An optional postal code.
    pub fn postal_code(description: &str) -> Schema {
        nullable_string(description)
            .pattern(Some(POSTAL_CODE_PATTERN))
            .examples(["945-8511"])
            .build()
            .into()
    }

    /// One of `choices`; when not `required`, also `null`.
    pub fn choice<'a>(
        description: &str,
        choices: impl IntoIterator<Item = &'a str>,
        required: bool,
    ) -> Schema {
        let mut values: Vec<Value> = choices.into_iter().map(Value::from).collect();
        let b = if required {
            string(description)
        } else {
            values.push(Value::Null);
            nullable_string(description)
        };
        b.enum_values(Some(values)).build().into()
    }

    /// One or more distinct `choices`.
    pub fn choices<'a>(description: &str, choices: impl IntoIterator<Item = &'a str>) -> Schema {
        ArrayBuilder::new()
            .items(RefOr::T(
                string(description)
                    .enum_values(Some(choices.into_iter().map(Value::from)))
                    .build()
                    .into(),
            ))
            .min_items(Some(1))
            .unique_items(true)
            .description(Some(description))
            .build()
            .into()
    }

    /// An optional date and time (see [`datetime_pattern`]).
    pub fn optional_datetime(description: &str, example: &str) -> Schema {
        nullable_string(description)
            .pattern(Some(datetime_pattern()))
            .examples([example])
            .build()
            .into()
    }

    /// A whole number in `min..=max`; when not `required`, also `null`.
    pub fn count(description: &str, min: u8, max: u8, required: bool, example: u8) -> Schema {
        let t = if required {
            SchemaType::Type(Type::Integer)
        } else {
            SchemaType::from_iter([Type::Integer, Type::Null])
        };
        ObjectBuilder::new()
            .schema_type(t)
            .description(Some(description))
            .minimum(Some(min))
            .maximum(Some(max))
            .examples([example])
            .build()
            .into()
    }

    /// Consent to the purpose of use: must be `true`.
    pub fn consent() -> Schema {
        ObjectBuilder::new()
            .schema_type(Type::Boolean)
            .enum_values(Some([true]))
            .description(Some(
                "個人情報の取り扱い（利用目的）への同意。true のみ受け付けます。",
            ))
            .build()
            .into()
    }

    /// An optional yes/no.
    pub fn flag(description: &str) -> Schema {
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::Boolean, Type::Null]))
            .description(Some(description))
            .build()
            .into()
    }

    /// A request body: these properties and no others.
    pub fn object(description: &str, properties: Vec<(&str, Schema)>, required: &[&str]) -> Schema {
        let mut object = ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(description))
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        for (name, schema) in properties {
            object = object.property(name, schema);
        }
        for name in required {
            object = object.required(*name);
        }
        object.build().into()
    }

    /// A UUID, as a string.
    pub fn uuid(description: &str) -> Schema {
        string(description)
            .format(Some(SchemaFormat::KnownFormat(
                utoipa::openapi::schema::KnownFormat::Uuid,
            )))
            .build()
            .into()
    }
}

/// A request body's schema, compiled once, and the Japanese messages for whatever
/// breaks it.
pub struct BodySchema {
    validator: jsonschema::Validator,
    schema: Value,
}

impl std::fmt::Debug for BodySchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodySchema").finish_non_exhaustive()
    }
}

impl BodySchema {
    /// Compiles `schema`. Panics when it is not valid JSON Schema: that is a bug in
    /// the code that wrote it, found by the first test that uses it.
    pub fn new(schema: &Schema) -> Self {
        let schema = serde_json::to_value(schema).expect("a schema serialises");
        let validator = jsonschema::draft202012::new(&schema)
            .unwrap_or_else(|e| panic!("the request schema does not compile: {e}"));
        Self { validator, schema }
    }

    fn property(&self, name: &str) -> &Value {
        &self.schema["properties"][name]
    }

    /// What is wrong with `body`, field by field. `body` is borrowed mutably only to
    /// be wrapped as the validator's `Value` without a deep copy of every field
    /// (a dozen allocations per request); it comes back unchanged.
    pub fn violations(&self, body: &mut JsonObject) -> Violations {
        let instance = Value::Object(std::mem::take(&mut body.0));
        let out = self.check(&instance);
        if let Value::Object(map) = instance {
            body.0 = map;
        }
        out
    }

    fn check(&self, instance: &Value) -> Violations {
        let mut out = Violations::default();
        // Most bodies are valid: `is_valid` answers without building the errors'
        // paths and messages (a third of the validation's cost in the intake bench).
        if self.validator.is_valid(instance) {
            return out;
        }
        for error in self.validator.iter_errors(instance) {
            use jsonschema::error::ValidationErrorKind as Kind;
            let field = error
                .instance_path()
                .iter()
                .next()
                .map(|segment| match segment {
                    jsonschema::paths::LocationSegment::Property(p) => p.into_owned(),
                    jsonschema::paths::LocationSegment::Index(i) => i.to_string(),
                });
            match (field, error.kind()) {
                (None, Kind::Required { property }) => {
                    let name = property.as_str().unwrap_or_default().to_owned();
                    out.add(name, ValueError::Required.message_ja(), true);
                }
                (None, Kind::AdditionalProperties { unexpected }) => {
                    for name in unexpected {
                        out.add(name.clone(), ValueError::UnknownField.message_ja(), true);
                    }
                }
                (Some(field), kind) => {
                    let (message, strong) = self.message(&field, kind, error.instance());
                    out.add(field, message, strong);
                }
                (None, _) => out.add(
                    "body".into(),
                    "本文は JSON オブジェクト（{ ... }）にしてください。".into(),
                    true,
                ),
            }
        }
        out
    }

    /// The message for `field`, and whether it stands even where the domain has a
    /// message of its own (`true` for the shape of the JSON: types, unknown fields).
    fn message(
        &self,
        field: &str,
        kind: &jsonschema::error::ValidationErrorKind,
        instance: &Value,
    ) -> (String, bool) {
        use jsonschema::error::ValidationErrorKind as Kind;
        let property = self.property(field);
        match kind {
            Kind::Type { .. } if instance.is_null() => (ValueError::Required.message_ja(), true),
            Kind::Type { .. } => {
                let types = match &property["type"] {
                    Value::String(t) => vec![t.as_str()],
                    Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                    _ => vec![],
                };
                let expected = if types.contains(&"array") && instance.is_array() {
                    "文字列"
                } else if types.contains(&"array") {
                    "文字列の配列"
                } else if types.contains(&"integer") {
                    "整数"
                } else if types.contains(&"boolean") {
                    "true または false"
                } else {
                    "文字列"
                };
                (ValueError::WrongType { expected }.message_ja(), true)
            }
            Kind::MinLength { .. } => (ValueError::Required.message_ja(), false),
            Kind::MaxLength { limit } => (
                ValueError::TooLong {
                    max: usize::try_from(*limit).unwrap_or(usize::MAX),
                }
                .message_ja(),
                false,
            ),
            Kind::Pattern { pattern } => (pattern_message(pattern), false),
            Kind::Enum { .. } | Kind::Constant { .. } => {
                (ValueError::UnknownChoice.message_ja(), false)
            }
            Kind::MinItems { .. } => (ValueError::ChooseAtLeastOne.message_ja(), false),
            Kind::UniqueItems => (ValueError::Duplicate.message_ja(), false),
            Kind::Minimum { .. } | Kind::Maximum { .. } => {
                let min = property["minimum"].as_i64().unwrap_or(0);
                let max = property["maximum"].as_i64().unwrap_or(i64::MAX);
                (ValueError::OutOfRange { min, max }.message_ja(), false)
            }
            _ => ("入力内容が正しくありません。".into(), false),
        }
    }
}

/// The fields a body's schema refuses, with one message each.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Violations(BTreeMap<String, (String, bool)>);

impl Violations {
    fn add(&mut self, field: String, message: String, strong: bool) {
        match self.0.get(&field) {
            Some((_, true)) => {}
            Some((_, false)) if !strong => {}
            _ => {
                self.0.insert(field, (message, strong));
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds the domain's verdict: its message replaces the schema's where the schema
    /// only said "wrong format" (the domain says which), and covers the rules a
    /// schema cannot state.
    pub fn merge_domain(&mut self, errors: &FieldErrors) {
        for (field, error) in errors.iter() {
            match self.0.get(field) {
                Some((_, true)) => {}
                _ => {
                    self.0.insert(field.to_owned(), (error.message_ja(), false));
                }
            }
        }
    }

    /// The 422 answer, or `Ok` when nothing is wrong.
    pub fn into_result(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            return Ok(());
        }
        Err(ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            errors: self.0.into_iter().map(|(f, (m, _))| (f, m)).collect(),
            retry_after_secs: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, s: &str) -> bool {
        let schema = serde_json::json!({"type": "string", "pattern": pattern});
        jsonschema::draft202012::new(&schema)
            .unwrap()
            .is_valid(&Value::from(s))
    }

    #[test]
    fn every_value_a_pattern_admits_is_one_the_domain_accepts() {
        use kujira_domain::values::{Email, Kana, PersonName, Phone, PostalCode};
        let names = ["柏崎 太郎", " 太郎 ", "a", "\u{feff}x", "髙橋"];
        for n in names {
            assert!(matches(&line_required_pattern(), n), "{n:?}");
            assert!(PersonName::parse(n).is_ok(), "{n:?}");
        }
        for n in [
            "",
            "   ",
            "\u{3000}",
            "a\u{0}b",
            "a\u{202e}b",
            "a\nb",
            "\u{85}",
        ] {
            assert!(!matches(&line_required_pattern(), n), "{n:?}");
        }
        for k in [
            "カシワザキ タロウ",
            "カシワザキ\u{3000}ハナコ",
            " ヴァイオリン ",
            "ヽヾ・ー",
        ] {
            assert!(matches(KANA_PATTERN, k), "{k:?}");
            assert!(Kana::parse(k).is_ok(), "{k:?}");
        }
        for k in ["ｶｼﾜｻﾞｷ", "かしわざき", "カ\tタ", ""] {
            assert!(!matches(KANA_PATTERN, k), "{k:?}");
        }
        for e in ["taro@example.jp", "a.b+c@x-y.example.co.jp", "{|}@a.b"] {
            assert!(matches(EMAIL_PATTERN, e), "{e}");
            assert!(Email::parse(e).is_ok(), "{e}");
        }
        for e in [
            "taro@example",
            "taro@-x.jp",
            " taro@example.jp",
            "ｔａｒｏ@example.jp",
        ] {
            assert!(!matches(EMAIL_PATTERN, e), "{e}");
        }
        for p in ["0257-21-2334", "+81 (257) 21-2334", "09012345678"] {
            assert!(matches(PHONE_PATTERN, p), "{p}");
            assert!(Phone::parse(p).is_ok(), "{p}");
        }
        for p in ["123", "0257-21-233a", "１２３４５６７８９０"] {
            assert!(!matches(PHONE_PATTERN, p), "{p}");
        }
        for c in ["945-8511", "9458511"] {
            assert!(matches(POSTAL_CODE_PATTERN, c) && PostalCode::parse(c).is_ok());
        }
        let dt = datetime_pattern();
        for d in [
            "2026-12-01T10:00",
            "2026-12-01T10:00:30",
            "2026-12-01T10:00:00+09:00",
            "2028-02-29T00:00:00Z",
            "2000-02-29T23:59",
        ] {
            assert!(matches(&dt, d), "{d}");
        }
        for d in [
            "2026-02-29T10:00",
            "2100-02-29T10:00",
            "2026-04-31T10:00",
            "2026-12-01T24:00",
            "2026-12-01T10:00+09:00",
            "2026-12-01 10:00",
            "2026-12-01T10:00\n",
        ] {
            assert!(!matches(&dt, d), "{d}");
        }
    }
}
