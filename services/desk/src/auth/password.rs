//! Passwords: the policy, and argon2id hashing (the crate's default parameters,
//! stored as PHC strings, so that stronger parameters later still verify old hashes).
//!
//! Hashing and verifying take tens of milliseconds of CPU on purpose, so both run
//! on the blocking thread pool, never on the async workers.

use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use unicode_normalization::UnicodeNormalization;

/// The shortest password accepted (in characters).
pub const MIN_CHARS: usize = 12;
/// The longest password accepted; more only costs hashing time.
pub const MAX_CHARS: usize = 256;

/// Why a password was refused. [`PasswordError::message_ja`] is shown to the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("the password must be at least {MIN_CHARS} characters long (it has {0})")]
    TooShort(usize),
    #[error("the password must be at most {MAX_CHARS} characters long")]
    TooLong,
    #[error("the password contains a control character")]
    ControlCharacter,
}

impl PasswordError {
    pub fn message_ja(&self) -> String {
        match self {
            Self::TooShort(n) => {
                format!("パスワードは{MIN_CHARS}文字以上にしてください（入力は{n}文字です）。")
            }
            Self::TooLong => format!("パスワードは{MAX_CHARS}文字以内にしてください。"),
            Self::ControlCharacter => {
                "パスワードに使用できない文字（改行などの制御文字）が含まれています。".into()
            }
        }
    }
}

/// A password that meets the policy, NFKC-normalised so that the same password
/// typed in full-width or half-width characters (an IME left on) is the same.
#[derive(Clone)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

impl Password {
    /// Checks a new password against the policy.
    pub fn new(input: &str) -> Result<Self, PasswordError> {
        let s = normalise(input);
        if s.chars().any(char::is_control) {
            return Err(PasswordError::ControlCharacter);
        }
        let n = s.chars().count();
        if n < MIN_CHARS {
            return Err(PasswordError::TooShort(n));
        }
        if n > MAX_CHARS {
            return Err(PasswordError::TooLong);
        }
        Ok(Self(s))
    }

    /// The password's argon2id hash as a PHC string (blocking: call it through
    /// [`hash_blocking`] from async code).
    pub fn hash(&self) -> String {
        let mut raw_salt = [0u8; 16];
        rand::fill(&mut raw_salt);
        let salt = SaltString::encode_b64(&raw_salt).expect("16 bytes is a valid salt length");
        Argon2::default()
            .hash_password(self.0.as_bytes(), &salt)
            .expect("argon2 with default parameters hashes any password")
            .to_string()
    }
}

fn normalise(input: &str) -> String {
    input.nfkc().collect()
}

/// Hashes on the blocking pool.
pub async fn hash_blocking(password: Password) -> anyhow::Result<String> {
    Ok(tokio::task::spawn_blocking(move || password.hash()).await?)
}

/// Whether `attempt` matches `phc`. An unreadable hash never matches.
pub fn verify(attempt: &str, phc: &str) -> bool {
    let attempt = normalise(attempt);
    if attempt.chars().count() > MAX_CHARS {
        // Never stored, so it cannot match; refusing early also caps the work a
        // huge attempt could cause. Still spend the usual time (see below).
        let _ = verify_hash(&attempt[..0], &DUMMY_HASH);
        return false;
    }
    verify_hash(&attempt, phc)
}

fn verify_hash(attempt: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(attempt.as_bytes(), &parsed)
            .is_ok(),
        Err(e) => {
            tracing::error!(error = %e, "a stored password hash is unreadable");
            false
        }
    }
}

/// Verifies on the blocking pool. With `phc = None` (no such account) it verifies
/// against a dummy hash made with the same parameters, so that the time taken does
/// not tell whether the account exists.
pub async fn verify_blocking(attempt: String, phc: Option<String>) -> anyhow::Result<bool> {
    Ok(tokio::task::spawn_blocking(move || match phc {
        Some(phc) => verify(&attempt, &phc),
        None => {
            let _ = verify(&attempt, &DUMMY_HASH);
            false
        }
    })
    .await?)
}

/// A hash of a random password nobody knows, made once per process.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let mut raw = [0u8; 24];
    rand::fill(&mut raw);
    let text: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    Password(text).hash()
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_counts_characters_and_refuses_control_characters() {
        assert_eq!(
            Password::new("short").unwrap_err(),
            PasswordError::TooShort(5)
        );
        assert_eq!(
            Password::new("12345678901").unwrap_err(),
            PasswordError::TooShort(11)
        );
        assert!(Password::new("123456789012").is_ok());
        // Twelve kana are twelve characters (36 bytes).
        assert!(Password::new("くじらとくじらとくじらと").is_ok());
        assert_eq!(
            Password::new("correct horse\nbattery").unwrap_err(),
            PasswordError::ControlCharacter
        );
        assert_eq!(
            Password::new(&"x".repeat(MAX_CHARS + 1)).unwrap_err(),
            PasswordError::TooLong
        );
        assert!(
            PasswordError::TooShort(5)
                .message_ja()
                .contains("12文字以上")
        );
    }

    #[test]
    fn hashes_are_argon2id_phc_strings_that_verify_only_their_password() {
        let p = Password::new("correct horse battery").unwrap();
        let phc = p.hash();
        assert!(phc.starts_with("$argon2id$v=19$"), "{phc}");
        assert!(verify("correct horse battery", &phc));
        assert!(!verify("correct horse batterY", &phc));
        assert!(!verify("", &phc));
        assert!(!verify("correct horse battery", "not a hash"));
        // Salted: the same password hashes differently each time.
        assert_ne!(p.hash(), phc);
        // Full-width input is the same password.
        assert!(verify("ｃｏｒｒｅｃｔ　ｈｏｒｓｅ　ｂａｔｔｅｒｙ", &phc));
    }
}
