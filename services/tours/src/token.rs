//! The personal link of a sign-up: `/signups/<token>`.
//!
//! The token is `base64url(tour id ‖ sign-up id ‖ MAC)`, where the MAC is a
//! truncated HMAC-SHA256 under the service secret. It needs no table: the ids say
//! where to look, and the MAC proves that we issued it. Sign-up ids come from form
//! tokens or v7 uuids, so without the MAC a link would be guessable.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

/// Separates these MACs from every other use of the same secret.
const DOMAIN: &[u8] = b"kujira/tour-sign-up-link/v1";
/// 128 bits of MAC: far beyond guessing, and it keeps the link short.
const MAC_LEN: usize = 16;
const TOKEN_BYTES: usize = 32 + MAC_LEN;

fn mac(secret: &[u8], ids: &[u8]) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    m.update(DOMAIN);
    m.update(ids);
    m
}

/// The token for one sign-up.
pub fn sign(secret: &[u8], tour_id: Uuid, sign_up_id: Uuid) -> String {
    let mut bytes = Vec::with_capacity(TOKEN_BYTES);
    bytes.extend_from_slice(tour_id.as_bytes());
    bytes.extend_from_slice(sign_up_id.as_bytes());
    let tag = mac(secret, &bytes).finalize().into_bytes();
    bytes.extend_from_slice(&tag[..MAC_LEN]);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The (tour id, sign-up id) of a token we issued; `None` for anything else.
pub fn verify(secret: &[u8], token: &str) -> Option<(Uuid, Uuid)> {
    if token.len() > 128 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    if bytes.len() != TOKEN_BYTES {
        return None;
    }
    let (ids, tag) = bytes.split_at(32);
    // Constant-time comparison of the truncated tag.
    mac(secret, ids).verify_truncated_left(tag).ok()?;
    let tour = Uuid::from_slice(&ids[..16]).ok()?;
    let sign_up = Uuid::from_slice(&ids[16..]).ok()?;
    Some((tour, sign_up))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn a_signed_token_verifies_to_its_ids() {
        let (t, s) = (Uuid::now_v7(), Uuid::now_v7());
        let token = sign(SECRET, t, s);
        assert_eq!(verify(SECRET, &token), Some((t, s)));
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }

    #[test]
    fn any_change_or_another_secret_is_refused() {
        let token = sign(SECRET, Uuid::now_v7(), Uuid::now_v7());
        for i in 0..token.len() {
            let mut chars: Vec<char> = token.chars().collect();
            chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
            let tampered: String = chars.into_iter().collect();
            assert_eq!(verify(SECRET, &tampered), None, "position {i}");
        }
        assert_eq!(verify(b"another secret, just as long....", &token), None);
        assert_eq!(verify(SECRET, ""), None);
        assert_eq!(verify(SECRET, "not base64!"), None);
        assert_eq!(verify(SECRET, &token[..token.len() - 2]), None);
    }
}
