//! Signing, CSRF protection and one-time form tokens.
//!
//! Everything is stateless: tokens carry their own data and an HMAC-SHA256 made with
//! a key derived from `KUJIRA_SECRET` and a purpose, so a token made for one purpose
//! (a CSRF token) is never accepted for another (a form token, a cancel link).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

type HmacSha256 = Hmac<Sha256>;

/// Signs and verifies short strings for one purpose.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    /// Derives this purpose's key from the service secret.
    pub fn new(secret: &[u8], purpose: &str) -> Self {
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
        mac.update(b"kujira/");
        mac.update(purpose.as_bytes());
        Self {
            key: mac.finalize().into_bytes().to_vec(),
        }
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length")
    }

    /// The MAC of `payload`, base64url without padding.
    pub fn tag(&self, payload: &[u8]) -> String {
        let mut mac = self.mac();
        mac.update(payload);
        B64.encode(mac.finalize().into_bytes())
    }

    /// Checks `tag` against `payload` in constant time.
    pub fn check(&self, payload: &[u8], tag: &str) -> bool {
        let Ok(raw) = B64.decode(tag) else {
            return false;
        };
        let mut mac = self.mac();
        mac.update(payload);
        mac.verify_slice(&raw).is_ok()
    }

    /// `base64url(payload).tag`: an opaque token that carries `payload`.
    pub fn sign(&self, payload: &str) -> String {
        let body = B64.encode(payload.as_bytes());
        let tag = self.tag(body.as_bytes());
        format!("{body}.{tag}")
    }

    /// The payload of a token made by [`Signer::sign`], if it is genuine.
    pub fn verify(&self, token: &str) -> Option<String> {
        let (body, tag) = token.trim().split_once('.')?;
        if !self.check(body.as_bytes(), tag) {
            return None;
        }
        String::from_utf8(B64.decode(body).ok()?).ok()
    }

    /// A compact token for a short binary payload (ids in a mailed link):
    /// `base64url(payload ‖ MAC[..16])`. 128 bits of MAC are far beyond guessing and
    /// keep the link short.
    pub fn seal(&self, payload: &[u8]) -> String {
        let mut mac = self.mac();
        mac.update(payload);
        let tag = mac.finalize().into_bytes();
        let mut bytes = Vec::with_capacity(payload.len() + SEAL_TAG_LEN);
        bytes.extend_from_slice(payload);
        bytes.extend_from_slice(&tag[..SEAL_TAG_LEN]);
        B64.encode(bytes)
    }

    /// The payload of a token made by [`Signer::seal`], if it is genuine and carries
    /// exactly `payload_len` bytes. The MAC is compared in constant time.
    pub fn open(&self, token: &str, payload_len: usize) -> Option<Vec<u8>> {
        // Refuse anything longer before decoding it: a link is never longer.
        if token.len() > (payload_len + SEAL_TAG_LEN).div_ceil(3) * 4 {
            return None;
        }
        let mut bytes = B64.decode(token).ok()?;
        if bytes.len() != payload_len + SEAL_TAG_LEN {
            return None;
        }
        let tag = bytes.split_off(payload_len);
        let mut mac = self.mac();
        mac.update(&bytes);
        mac.verify_truncated_left(&tag).ok()?;
        Some(bytes)
    }
}

/// The MAC bytes a [`Signer::seal`] token carries.
pub const SEAL_TAG_LEN: usize = 16;

/// The cookie that holds the browser's CSRF secret.
pub const CSRF_COOKIE: &str = "kujira_csrf";
/// The hidden form field that must carry the matching token.
pub const CSRF_FIELD: &str = "csrf_token";

/// Signed double-submit CSRF protection: the browser holds a random value in an
/// HttpOnly cookie, and every form carries the value's MAC. A cross-site page can
/// neither read the cookie nor compute the MAC without the secret.
#[derive(Clone, Debug)]
pub struct Csrf {
    signer: Signer,
    secure: bool,
}

impl Csrf {
    /// `secure`: mark the cookie `Secure` (when the public URL is https).
    pub fn new(secret: &[u8], secure: bool) -> Self {
        Self {
            signer: Signer::new(secret, "csrf"),
            secure,
        }
    }

    /// Makes sure the browser holds a CSRF cookie. Returns the jar to send back
    /// (put it in the response) and the token for the hidden [`CSRF_FIELD`].
    pub fn issue(&self, jar: CookieJar) -> (CookieJar, String) {
        if let Some(c) = jar.get(CSRF_COOKIE)
            && c.value().len() >= 32
        {
            let token = self.signer.tag(c.value().as_bytes());
            return (jar, token);
        }
        let mut raw = [0u8; 32];
        rand::fill(&mut raw);
        let value = B64.encode(raw);
        let token = self.signer.tag(value.as_bytes());
        let cookie = Cookie::build((CSRF_COOKIE, value))
            .path("/")
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Lax)
            .build();
        (jar.add(cookie), token)
    }

    /// True when the submitted token matches the cookie.
    pub fn verify(&self, jar: &CookieJar, token: &str) -> bool {
        match jar.get(CSRF_COOKIE) {
            Some(c) if c.value().len() >= 32 && !token.is_empty() => {
                self.signer.check(c.value().as_bytes(), token)
            }
            _ => false,
        }
    }
}

/// The hidden form field that carries the one-time form token.
pub const FORM_TOKEN_FIELD: &str = "form_token";

/// What a genuine one-time form token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormToken {
    /// Names the journey (`funnel-<id>`) and, hashed, the case or sign-up it creates,
    /// so that every re-submission of the same form lands on the same ids.
    pub id: Uuid,
    /// Which form it was issued for (`inquiry`, `tour_request`, `tour_signup:<tour id>`).
    pub form: String,
    pub issued_at: DateTime<Utc>,
    /// The token as sent in the form, to put back into the next page.
    pub token: String,
}

/// Issues and checks one-time form tokens. The token is "one-time" in effect: the
/// case id derives from it, so a second submission replays the first.
/// Tokens do not expire: a person may take as long as they need on a form.
#[derive(Clone, Debug)]
pub struct FormTokens {
    signer: Signer,
}

impl FormTokens {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            signer: Signer::new(secret, "form-token"),
        }
    }

    pub fn issue(&self, form: &str, now: DateTime<Utc>) -> FormToken {
        let id = Uuid::new_v4();
        let payload = format!("{}|{}|{}", id.simple(), now.timestamp(), form);
        FormToken {
            id,
            form: form.to_owned(),
            issued_at: now,
            token: self.signer.sign(&payload),
        }
    }

    /// The token's claims, if it is genuine and was issued for `form`.
    pub fn verify(&self, form: &str, token: &str) -> Option<FormToken> {
        let payload = self.signer.verify(token)?;
        let mut parts = payload.splitn(3, '|');
        let id = Uuid::parse_str(parts.next()?).ok()?;
        let issued_at = DateTime::from_timestamp(parts.next()?.parse().ok()?, 0)?;
        (parts.next()? == form).then(|| FormToken {
            id,
            form: form.to_owned(),
            issued_at,
            token: token.trim().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_tokens_refuse_tampering_and_other_purposes() {
        let a = Signer::new(b"secret-secret-secret-secret-secret", "a");
        let b = Signer::new(b"secret-secret-secret-secret-secret", "b");
        let t = a.sign("hello|1");
        assert_eq!(a.verify(&t).as_deref(), Some("hello|1"));
        assert_eq!(b.verify(&t), None);
        let mut forged = t.clone();
        forged.replace_range(0..1, if t.starts_with('A') { "B" } else { "A" });
        assert_eq!(a.verify(&forged), None);
        assert_eq!(a.verify("garbage"), None);
    }

    #[test]
    fn sealed_tokens_refuse_tampering_other_purposes_and_other_secrets() {
        let secret = b"secret-secret-secret-secret-secret";
        let links = Signer::new(secret, "links");
        let payload = [7u8; 32];
        let token = links.seal(&payload);
        assert_eq!(token.len(), 64, "32 bytes and a 16-byte MAC, base64url");
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(links.open(&token, 32).as_deref(), Some(&payload[..]));
        for i in 0..token.len() {
            let mut chars: Vec<char> = token.chars().collect();
            chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
            let tampered: String = chars.into_iter().collect();
            assert_eq!(links.open(&tampered, 32), None, "position {i}");
        }
        assert_eq!(Signer::new(secret, "csrf").open(&token, 32), None);
        assert_eq!(
            Signer::new(b"another-secret-another-secret-!!", "links").open(&token, 32),
            None
        );
        assert_eq!(links.open(&token, 31), None);
        assert_eq!(links.open(&token[..token.len() - 2], 32), None);
        assert_eq!(links.open(&format!("{token}AAAA"), 32), None);
        assert_eq!(links.open("", 32), None);
        assert_eq!(links.open("not base64!", 32), None);
    }

    #[test]
    fn csrf_tokens_match_their_cookie_only() {
        let csrf = Csrf::new(b"secret-secret-secret-secret-secret", true);
        let (jar, token) = csrf.issue(CookieJar::new());
        assert!(csrf.verify(&jar, &token));
        assert!(!csrf.verify(&jar, ""));
        assert!(!csrf.verify(&CookieJar::new(), &token));
        let (other_jar, other_token) = csrf.issue(CookieJar::new());
        assert!(!csrf.verify(&jar, &other_token));
        assert!(!csrf.verify(&other_jar, &token));
        // A browser that already holds a cookie keeps it.
        let (same_jar, again) = csrf.issue(jar.clone());
        assert_eq!(again, token);
        assert_eq!(
            same_jar.get(CSRF_COOKIE).unwrap().value(),
            jar.get(CSRF_COOKIE).unwrap().value()
        );
    }

    #[test]
    fn form_tokens_are_bound_to_their_form() {
        let tokens = FormTokens::new(b"secret-secret-secret-secret-secret");
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let t = tokens.issue("inquiry", now);
        let back = tokens.verify("inquiry", &t.token).unwrap();
        assert_eq!((back.id, back.issued_at), (t.id, now));
        assert_eq!(tokens.verify("tour_request", &t.token), None);
        assert_ne!(tokens.issue("inquiry", now).id, t.id);
    }
}
