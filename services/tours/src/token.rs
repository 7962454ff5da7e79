//! The personal link of a sign-up: `/signups/<token>`.
//!
//! The token is a [`kujira_web::Signer::seal`] of `tour id ‖ sign-up id` under the
//! purpose [`PURPOSE`]: base64url of the ids and a 128-bit MAC, 64 characters. It
//! needs no table: the ids say where to look, and the MAC proves that we issued it.
//! Sign-up ids come from form tokens or v7 uuids, so without the MAC a link would be
//! guessable.
//!
//! Links mailed before this scheme carried a MAC of their own construction
//! (HMAC-SHA256 of a domain string and the ids, keyed by the raw secret). People
//! click mailed links weeks later, so [`verify`] still accepts them: [`legacy`] only
//! verifies, it never issues. It can go once no tour that was open to sign-ups
//! before the change still lies ahead or within its feedback window.

use kujira_web::Signer;
use uuid::Uuid;

/// The purpose the link's MAC is bound to.
pub const PURPOSE: &str = "tour-sign-up-link";
const IDS: usize = 32;

fn signer(secret: &[u8]) -> Signer {
    Signer::new(secret, PURPOSE)
}

fn ids(tour_id: Uuid, sign_up_id: Uuid) -> [u8; IDS] {
    let mut bytes = [0u8; IDS];
    bytes[..16].copy_from_slice(tour_id.as_bytes());
    bytes[16..].copy_from_slice(sign_up_id.as_bytes());
    bytes
}

fn split(bytes: &[u8]) -> Option<(Uuid, Uuid)> {
    Some((
        Uuid::from_slice(bytes.get(..16)?).ok()?,
        Uuid::from_slice(bytes.get(16..IDS)?).ok()?,
    ))
}

/// The token for one sign-up.
pub fn sign(secret: &[u8], tour_id: Uuid, sign_up_id: Uuid) -> String {
    signer(secret).seal(&ids(tour_id, sign_up_id))
}

/// The (tour id, sign-up id) of a token we issued; `None` for anything else.
pub fn verify(secret: &[u8], token: &str) -> Option<(Uuid, Uuid)> {
    match signer(secret).open(token, IDS) {
        Some(bytes) => split(&bytes),
        None => legacy::verify(secret, token),
    }
}

/// The links mailed before the sign-up link moved onto [`Signer`]: verified, never
/// issued.
mod legacy {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use hmac::{Hmac, Mac};
    use sha2::Sha256;
    use uuid::Uuid;

    const DOMAIN: &[u8] = b"kujira/tour-sign-up-link/v1";
    const MAC_LEN: usize = 16;

    fn mac(secret: &[u8], ids: &[u8]) -> Hmac<Sha256> {
        let mut m = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
        m.update(DOMAIN);
        m.update(ids);
        m
    }

    pub fn verify(secret: &[u8], token: &str) -> Option<(Uuid, Uuid)> {
        if token.len() > 64 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        if bytes.len() != super::IDS + MAC_LEN {
            return None;
        }
        let (ids, tag) = bytes.split_at(super::IDS);
        mac(secret, ids).verify_truncated_left(tag).ok()?;
        super::split(ids)
    }

    /// How links were made before, to test that they still open.
    #[cfg(test)]
    pub fn sign(secret: &[u8], tour_id: Uuid, sign_up_id: Uuid) -> String {
        let ids = super::ids(tour_id, sign_up_id);
        let tag = mac(secret, &ids).finalize().into_bytes();
        let mut bytes = ids.to_vec();
        bytes.extend_from_slice(&tag[..MAC_LEN]);
        URL_SAFE_NO_PAD.encode(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const OTHER_SECRET: &[u8] = b"another secret, just as long....";

    fn tampered(token: &str, i: usize) -> String {
        let mut chars: Vec<char> = token.chars().collect();
        chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
        chars.into_iter().collect()
    }

    #[test]
    fn a_signed_token_is_a_short_signer_seal_of_the_ids() {
        let (t, s) = (Uuid::now_v7(), Uuid::now_v7());
        let token = sign(SECRET, t, s);
        assert_eq!(verify(SECRET, &token), Some((t, s)));
        assert_eq!(token.len(), 64);
        // The one signing scheme of the service, bound to this purpose.
        let bytes = Signer::new(SECRET, PURPOSE).open(&token, 32).unwrap();
        assert_eq!(split(&bytes), Some((t, s)));
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }

    #[test]
    fn any_change_another_purpose_or_another_secret_is_refused() {
        let (t, s) = (Uuid::now_v7(), Uuid::now_v7());
        let token = sign(SECRET, t, s);
        for i in 0..token.len() {
            assert_eq!(verify(SECRET, &tampered(&token, i)), None, "position {i}");
        }
        assert_eq!(verify(OTHER_SECRET, &token), None);
        // The same ids sealed for another purpose (a form token, a cookie) are no link.
        let elsewhere = Signer::new(SECRET, "intake-complete").seal(&ids(t, s));
        assert_eq!(verify(SECRET, &elsewhere), None);
        assert_eq!(verify(SECRET, ""), None);
        assert_eq!(verify(SECRET, "not base64!"), None);
        assert_eq!(verify(SECRET, &token[..token.len() - 2]), None);
        assert_eq!(verify(SECRET, &format!("{token}AAAA")), None);
    }

    #[test]
    fn links_mailed_before_the_change_still_open_and_only_with_their_secret() {
        let (t, s) = (Uuid::now_v7(), Uuid::now_v7());
        let old = legacy::sign(SECRET, t, s);
        assert_ne!(old, sign(SECRET, t, s));
        assert_eq!(verify(SECRET, &old), Some((t, s)));
        assert_eq!(verify(OTHER_SECRET, &old), None);
        for i in 0..old.len() {
            assert_eq!(verify(SECRET, &tampered(&old, i)), None, "position {i}");
        }
    }
}
