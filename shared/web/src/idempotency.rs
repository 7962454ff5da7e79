//! The one `Idempotency-Key` rule of every JSON API.
//!
//! * No header: every request is a new one.
//! * A key is 1 to [`MAX_LEN`] visible ASCII characters (`!` to `~`); an empty key,
//!   a longer one or any other character is 400.
//! * The same key with the same body replays the first answer (nothing is recorded
//!   twice). The same key with another body is 422, and changes nothing.
//! * "The same body" is decided by a keyed hash ([`Fingerprints`]) of the whole JSON
//!   body with object keys sorted, so the order of the fields does not matter. The
//!   service records that hash with the first request's events (metadata
//!   [`METADATA`]), in the same append: nothing is remembered apart from the facts.
//! * A key belongs to one endpoint (and one tour for sign-ups): the same key on
//!   another endpoint is another request.

use std::io::Write;

use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{Required, Schema};

use crate::error::ApiError;
use crate::extract::JsonObject;
use crate::security::Signer;

/// The header.
pub const HEADER: &str = "Idempotency-Key";
/// The longest key accepted.
pub const MAX_LEN: usize = 200;
/// The key's pattern in the OpenAPI document: visible ASCII only.
pub const PATTERN: &str = "^[!-~]+$";
/// The event metadata field that holds the request's fingerprint.
pub const METADATA: &str = "request_fingerprint";

/// How the OpenAPI document states the rule.
pub const DESCRIPTION: &str = "再送を安全にするためのキー（1〜200文字の半角英数字・記号）。\
    同じキーと同じ本文の再送には、最初と同じ答え（201）を返し、何も重ねて記録しません。\
    同じキーで本文が違えば 422、キーが空・200文字超・使えない文字を含めば 400。\
    本文の同一性は、項目の順序を問わず本文全体で判定します。キーはエンドポイントごと（ツアーごと）です。";

/// A valid key from the request's headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The request's key: `None` without the header, 400 when it breaks the rule.
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<Self>, ApiError> {
        let mut values = headers.get_all(HEADER).iter();
        let Some(raw) = values.next() else {
            return Ok(None);
        };
        let bad = || {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                HEADER,
                format!(
                    "Idempotency-Key は 1〜{MAX_LEN} 文字の半角英数字・記号（空白を除く）で、1つだけ指定してください。"
                ),
            )
        };
        if values.next().is_some() {
            return Err(bad());
        }
        let key = raw.to_str().map_err(|_| bad())?;
        if key.is_empty() || key.len() > MAX_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad());
        }
        Ok(Some(Self(key.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The 422 answer to a key reused with another body.
pub fn reused_key() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        HEADER,
        "この Idempotency-Key は別の内容の送信に使われています。新しいキーで送信してください。",
    )
}

/// Replays when `recorded` (the fingerprint stored with the first request) is the
/// fingerprint of this request; 422 otherwise.
pub fn check_replay(recorded: Option<&str>, fingerprint: &str) -> Result<(), ApiError> {
    if recorded == Some(fingerprint) {
        Ok(())
    } else {
        Err(reused_key())
    }
}

/// Keyed hashes of request bodies. Keyed, so that the hash stored beside the facts
/// reveals nothing of a body to whoever reads the log without the secret.
#[derive(Clone, Debug)]
pub struct Fingerprints(Signer);

impl Fingerprints {
    /// `scope` names the service (`intake`, `tours`): its own key.
    pub fn new(secret: &[u8], scope: &str) -> Self {
        Self(Signer::new(secret, &format!("{scope}-idempotency")))
    }

    /// The fingerprint of a whole body, whatever the order of its fields.
    pub fn of(&self, body: &JsonObject) -> String {
        let mut canonical = Vec::new();
        write_object(&body.0, &mut canonical);
        self.0.tag(&canonical)
    }
}

/// Compact JSON with every object's keys in sorted order.
fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => write_object(map, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => {
            // Writing a scalar JSON value into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, scalar);
        }
    }
}

fn write_object(map: &serde_json::Map<String, Value>, out: &mut Vec<u8>) {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    out.push(b'{');
    for (i, (key, value)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let _ = serde_json::to_writer(&mut *out, key);
        let _ = out.write_all(b":");
        write_canonical(value, out);
    }
    out.push(b'}');
}

/// The header as an OpenAPI parameter: list it in a path's `params(...)`.
#[derive(Debug)]
pub struct IdempotencyKeyHeader;

impl utoipa::IntoParams for IdempotencyKeyHeader {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let schema: Schema = ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(MAX_LEN))
            .pattern(Some(PATTERN))
            .build()
            .into();
        vec![
            ParameterBuilder::new()
                .name(HEADER)
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(DESCRIPTION))
                .schema(Some(schema))
                .build(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(HEADER, HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    #[test]
    fn keys_are_one_to_two_hundred_visible_ascii_characters() {
        assert_eq!(IdempotencyKey::from_headers(&HeaderMap::new()), Ok(None));
        let ok = "k".repeat(MAX_LEN);
        assert_eq!(
            IdempotencyKey::from_headers(&headers(&[ok.as_bytes()]))
                .unwrap()
                .unwrap()
                .as_str(),
            ok
        );
        let too_long = "k".repeat(MAX_LEN + 1);
        for bad in [
            &b""[..],
            too_long.as_bytes(),
            b"with space",
            b"tab\there",
            "日本語".as_bytes(),
        ] {
            let e = IdempotencyKey::from_headers(&headers(&[bad])).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad:?}");
            assert!(e.errors.contains_key(HEADER));
        }
        assert!(IdempotencyKey::from_headers(&headers(&[b"a", b"b"])).is_err());
    }

    #[test]
    fn a_fingerprint_covers_the_whole_body_in_any_order() {
        let f = Fingerprints::new(b"secret-secret-secret-secret-secret", "tours");
        let obj = |s: &str| JsonObject(serde_json::from_str(s).unwrap());
        let a = f.of(&obj(
            r#"{"a": 1, "b": {"y": [1, {"q": 2, "p": 1}], "x": "z"}}"#,
        ));
        let same = f.of(&obj(
            r#"{"b": {"x": "z", "y": [1, {"p": 1, "q": 2}]}, "a": 1}"#,
        ));
        assert_eq!(a, same);
        for other in [
            r#"{"a": 1, "b": {"y": [1, {"q": 2, "p": 2}], "x": "z"}}"#,
            r#"{"a": 1, "b": {"y": [{"q": 2, "p": 1}, 1], "x": "z"}}"#,
            r#"{"a": 1}"#,
            r#"{"a": "1", "b": {"y": [1, {"q": 2, "p": 1}], "x": "z"}}"#,
        ] {
            assert_ne!(a, f.of(&obj(other)), "{other}");
        }
        // Keyed: another service's key gives another fingerprint.
        let g = Fingerprints::new(b"secret-secret-secret-secret-secret", "intake");
        assert_ne!(
            a,
            g.of(&obj(
                r#"{"a": 1, "b": {"y": [1, {"q": 2, "p": 1}], "x": "z"}}"#
            ))
        );
        assert!(check_replay(Some(&a), &same).is_ok());
        assert_eq!(
            check_replay(Some(&a), "other").unwrap_err().status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert!(check_replay(None, &a).is_err());
    }
}
