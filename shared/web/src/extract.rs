//! Extractors whose rejections are clear 4xx answers: a Japanese page for HTML
//! forms ([`FormData`]), `{"errors": {...}}` for the API ([`JsonObject`]).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use kujira_domain::values::{FieldErrors, ValueError};
use serde_json::Value;

use crate::error::{ApiError, PageError};
use crate::{BODY_LIMIT, Kit};

/// The client's IP from `ConnectInfo<SocketAddr>` (the binary serves with
/// `into_make_service_with_connect_info::<SocketAddr>()`). Without it (in-process
/// tests), every client shares the unspecified address `::`.
///
/// `X-Forwarded-For` is read only when the peer is a trusted proxy (a
/// [`TrustedProxies`] request extension, from `KUJIRA_TRUSTED_PROXIES`): the client
/// is then the right-most address in the header that is not itself a trusted proxy.
/// Anything further left was written by the client and proves nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// The reverse proxies whose `X-Forwarded-For` is believed. Installed by the binary
/// as a request extension.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(pub Vec<ipnet::IpNet>);

impl TrustedProxies {
    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client behind `peer`, given the request's `X-Forwarded-For` values.
    pub fn client(&self, peer: IpAddr, forwarded_for: &[&str]) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let hops = forwarded_for
            .iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        for hop in hops.iter().rev() {
            match hop.parse::<IpAddr>() {
                Ok(ip) if self.trusts(ip) => continue,
                Ok(ip) => return ip,
                // A garbled hop: stop believing the header here.
                Err(_) => return peer,
            }
        }
        peer
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED), |c| c.0.ip());
        let Some(trusted) = parts.extensions.get::<TrustedProxies>() else {
            return Ok(Self(peer));
        };
        let forwarded: Vec<&str> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        Ok(Self(trusted.client(peer, &forwarded)))
    }
}

fn content_type(req: &Request) -> String {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

/// A posted `application/x-www-form-urlencoded` body, decoded strictly: invalid
/// percent-encoded UTF-8 is refused, never replaced. Repeated names (checkboxes)
/// keep every value, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormData {
    pairs: Vec<(String, String)>,
}

impl FormData {
    /// Decodes a urlencoded body; `None` when it is not valid UTF-8.
    pub fn parse(body: &[u8]) -> Option<Self> {
        let mut pairs = Vec::new();
        for part in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            let (k, v) = match part.iter().position(|b| *b == b'=') {
                Some(i) => (&part[..i], &part[i + 1..]),
                None => (part, &[][..]),
            };
            pairs.push((decode(k)?, decode(v)?));
        }
        Some(Self { pairs })
    }

    /// Builds form data from pairs (to re-render a form).
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Self { pairs }
    }

    /// The first value of `name`, or `""`.
    pub fn get(&self, name: &str) -> &str {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// A ticked checkbox: present with `on`, `true`, `1` or `yes`.
    pub fn checked(&self, name: &str) -> bool {
        self.pairs
            .iter()
            .any(|(k, v)| k == name && matches!(v.as_str(), "on" | "true" | "1" | "yes"))
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }
}

fn decode(raw: &[u8]) -> Option<String> {
    let plus: Vec<u8> = raw
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    percent_encoding::percent_decode(&plus)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

impl<S> FromRequest<S> for FormData
where
    S: Send + Sync,
    Kit: FromRef<S>,
{
    type Rejection = PageError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let kit = Kit::from_ref(state);
        if content_type(&req) != "application/x-www-form-urlencoded" {
            return Err(kit.error_page(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "送信できませんでした",
                "フォームの送信形式が正しくありません。ページを開き直して、もう一度お試しください。",
            ));
        }
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|r| body_page_error(&kit, r.status()))?;
        Self::parse(&body).ok_or_else(|| {
            kit.error_page(
                StatusCode::BAD_REQUEST,
                "送信できませんでした",
                "送信された文字を読み取れませんでした（文字コードが UTF-8 ではありません）。入力内容をご確認ください。",
            )
        })
    }
}

fn body_page_error(kit: &Kit, status: StatusCode) -> PageError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        kit.error_page(
            status,
            "送信内容が大きすぎます",
            format!(
                "一度に送信できるのは {} KB までです。入力内容を短くして、もう一度お試しください。",
                BODY_LIMIT / 1024
            ),
        )
    } else {
        kit.error_page(
            StatusCode::BAD_REQUEST,
            "送信できませんでした",
            "送信内容を受け取れませんでした。もう一度お試しください。",
        )
    }
}

/// A JSON object body. Rejections: 415 (not `application/json`), 413 (over
/// [`BODY_LIMIT`]), 400 (invalid UTF-8 or JSON syntax), 422 (not an object).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JsonObject(pub serde_json::Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let ct = content_type(&req);
        if !(ct == "application/json" || (ct.starts_with("application/") && ct.ends_with("+json")))
        {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "body",
                "Content-Type は application/json にしてください。",
            ));
        }
        let body = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body",
                    format!("本文が大きすぎます（{} KB まで）。", BODY_LIMIT / 1024),
                )
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "body",
                    "本文を受け取れませんでした。",
                )
            }
        })?;
        if std::str::from_utf8(&body).is_err() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "body",
                "本文が UTF-8 ではありません。",
            ));
        }
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            Ok(_) => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "body",
                "本文は JSON オブジェクト（{ ... }）にしてください。",
            )),
            Err(e) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "body",
                format!(
                    "JSON として読み取れません（{} 行 {} 文字目）。",
                    e.line(),
                    e.column()
                ),
            )),
        }
    }
}

impl JsonObject {
    /// A text field: a string, or absent/`null` (read as `""`). Any other type is
    /// recorded as an error under `field`.
    pub fn text(&self, field: &'static str, errors: &mut FieldErrors) -> String {
        match self.0.get(field) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => {
                errors.add(
                    field,
                    ValueError::WrongType {
                        expected: "文字列"
                    },
                );
                String::new()
            }
        }
    }

    /// A whole number given as a JSON number or a numeric string, as text for the
    /// domain's parser; absent/`null` is `""`.
    pub fn number(&self, field: &'static str, errors: &mut FieldErrors) -> String {
        match self.0.get(field) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
            // JSON Schema counts 2.0 as an integer; so does the API.
            Some(Value::Number(n))
                if n.as_f64()
                    .is_some_and(|f| f.fract() == 0.0 && f.abs() < 1e15) =>
            {
                format!("{}", n.as_f64().unwrap_or_default() as i64)
            }
            Some(_) => {
                errors.add(field, ValueError::WrongType { expected: "整数" });
                String::new()
            }
        }
    }

    /// A list of strings (an array, as the schemas say; a lone string is refused).
    pub fn list(&self, field: &'static str, errors: &mut FieldErrors) -> Vec<String> {
        match self.0.get(field) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => {
                let strings: Option<Vec<String>> = items
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect();
                strings.unwrap_or_else(|| {
                    errors.add(
                        field,
                        ValueError::WrongType {
                            expected: "文字列の配列",
                        },
                    );
                    Vec::new()
                })
            }
            Some(_) => {
                errors.add(
                    field,
                    ValueError::WrongType {
                        expected: "文字列の配列",
                    },
                );
                Vec::new()
            }
        }
    }

    /// A boolean; absent/`null` is `false`.
    pub fn flag(&self, field: &'static str, errors: &mut FieldErrors) -> bool {
        match self.0.get(field) {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                errors.add(
                    field,
                    ValueError::WrongType {
                        expected: "true または false",
                    },
                );
                false
            }
        }
    }

    /// Names present in the body that are not in `known`.
    pub fn unknown_fields<'a>(&'a self, known: &[&str]) -> Vec<&'a str> {
        self.0
            .keys()
            .map(String::as_str)
            .filter(|k| !known.contains(k))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
        let t = TrustedProxies(vec![
            "127.0.0.0/8".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ]);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // Behind the local proxy: the right-most untrusted hop is the client.
        assert_eq!(
            t.client(ip("127.0.0.1"), &["203.0.113.5"]),
            ip("203.0.113.5")
        );
        // A client that forges a left-hand hop gains nothing.
        assert_eq!(
            t.client(ip("127.0.0.1"), &["1.2.3.4, 203.0.113.5, 10.0.0.7"]),
            ip("203.0.113.5")
        );
        // Several headers are one list.
        assert_eq!(
            t.client(ip("127.0.0.1"), &["198.51.100.1", "10.0.0.7"]),
            ip("198.51.100.1")
        );
        // A peer that is not a proxy is the client, whatever it claims.
        assert_eq!(
            t.client(ip("198.51.100.9"), &["203.0.113.5"]),
            ip("198.51.100.9")
        );
        // No header, or a garbled one: the peer.
        assert_eq!(t.client(ip("127.0.0.1"), &[]), ip("127.0.0.1"));
        assert_eq!(t.client(ip("127.0.0.1"), &["junk"]), ip("127.0.0.1"));
    }

    #[test]
    fn form_data_decodes_strictly_and_keeps_repeats() {
        let f = FormData::parse(b"name=%E6%9F%8F%E5%B4%8E+%E5%A4%AA%E9%83%8E&topics=work&topics=housing&consent=on&empty").unwrap();
        assert_eq!(f.get("name"), "柏崎 太郎");
        assert_eq!(
            f.all("topics"),
            vec!["work".to_owned(), "housing".to_owned()]
        );
        assert!(f.checked("consent"));
        assert!(!f.checked("newsletter"));
        assert_eq!(f.get("empty"), "");
        assert_eq!(f.get("missing"), "");
        assert_eq!(FormData::parse(b"name=%FF%FE"), None);
        assert_eq!(FormData::parse(b"name=\xff"), None);
    }

    #[test]
    fn json_fields_report_wrong_types() {
        let obj = JsonObject(
            serde_json::from_str::<Value>(
                r#"{"name": 3, "topics": ["a", 1], "consent": "yes", "adults": 2, "children": 3.0, "x": null, "one": "a"}"#,
            )
            .unwrap()
            .as_object()
            .unwrap()
            .clone(),
        );
        let mut e = FieldErrors::new();
        assert_eq!(obj.text("name", &mut e), "");
        assert!(obj.list("topics", &mut e).is_empty());
        assert!(!obj.flag("consent", &mut e));
        assert_eq!(obj.number("adults", &mut e), "2");
        assert_eq!(obj.number("children", &mut e), "3");
        assert_eq!(obj.text("x", &mut e), "");
        assert_eq!(e.len(), 3);
        assert!(obj.list("one", &mut e).is_empty(), "a string is not a list");
        assert_eq!(e.len(), 4);
        assert_eq!(
            e.get("consent"),
            Some(&ValueError::WrongType {
                expected: "true または false"
            })
        );
        assert_eq!(
            obj.unknown_fields(&["name", "topics", "consent", "adults", "children", "one"]),
            vec!["x"]
        );
    }
}
