//! Where messages go: an SMTP server, or `.eml` files in a directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::message::eml_file_name;

/// How long one SMTP command may take. It must stay well below the mailer's lease, so
/// that no other worker takes a mail over while it is still being sent.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// A delivery backend.
#[derive(Clone)]
pub enum Transport {
    /// `KUJIRA_SMTP_URL`, e.g. `smtp://host:25`, `smtp://user:pass@host:587?tls=required`,
    /// `smtps://user:pass@host:465`.
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// The default: one `.eml` file per mail, named after its idempotency key.
    File(PathBuf),
}

impl std::fmt::Debug for Transport {
    // The SMTP transport holds credentials: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Smtp(_) => f.write_str("Transport::Smtp(..)"),
            Self::File(dir) => f.debug_tuple("Transport::File").field(dir).finish(),
        }
    }
}

/// Why a send failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The SMTP server refused the mail for good (a 5xx reply): retrying will not
    /// help. `bounce`: the reply blames the recipient's address (see [`blames_recipient`]).
    #[error("rejected: {reason}")]
    Rejected {
        code: u16,
        bounce: bool,
        reason: String,
    },
    /// The mail cannot be built or rendered: retrying will not help either.
    #[error("rejected: {0}")]
    Permanent(String),
    /// Anything that may pass later: a 4xx reply, a refused connection, a timeout,
    /// a full disk.
    #[error("{0}")]
    Transient(String),
}

impl SendError {
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Permanent(_) | Self::Rejected { .. })
    }
}

impl Transport {
    /// An SMTP transport from a `smtp://` or `smtps://` URL. Call it inside a Tokio
    /// runtime: the connection pool starts a task.
    pub fn smtp(url: &str) -> Result<Self, lettre::transport::smtp::Error> {
        Self::smtp_with_connections(url, 4)
    }

    /// An SMTP transport that keeps up to `connections` connections open: one per
    /// mail worker, so that no worker waits for another's connection.
    pub fn smtp_with_connections(
        url: &str,
        connections: usize,
    ) -> Result<Self, lettre::transport::smtp::Error> {
        let connections = u32::try_from(connections.max(1)).unwrap_or(u32::MAX);
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)?
            .timeout(Some(SMTP_TIMEOUT))
            // Idle connections are closed quickly: mail comes in small bursts.
            .pool_config(
                PoolConfig::new()
                    .max_size(connections)
                    .idle_timeout(Duration::from_secs(30)),
            )
            .build();
        Ok(Self::Smtp(transport))
    }

    /// `.eml` files in `dir` (created on the first send).
    pub fn file(dir: impl Into<PathBuf>) -> Self {
        Self::File(dir.into())
    }

    /// Sends `message`, the mail with idempotency key `key`.
    pub async fn send(&self, key: &str, message: &Message) -> Result<(), SendError> {
        match self {
            Self::Smtp(smtp) => smtp.send(message.clone()).await.map(drop).map_err(classify),
            Self::File(dir) => {
                let dir = dir.clone();
                let path = dir.join(eml_file_name(key));
                let bytes = message.formatted();
                tokio::task::spawn_blocking(move || write_atomically(&dir, &path, &bytes))
                    .await
                    .map_err(|e| SendError::Transient(format!("writer task failed: {e}")))?
                    .map_err(|e| SendError::Transient(format!("cannot write the .eml file: {e}")))
            }
        }
    }
}

fn classify(err: lettre::transport::smtp::Error) -> SendError {
    let text = redact_addresses(&format!("{err}"));
    let code = err.status().map(u16::from);
    // Authentication failures are 5xx too, but they are the operator's to fix, not
    // the mail's fault: keep the mail pending until the credentials work.
    let auth = matches!(code, Some(530 | 534 | 535 | 538));
    match code {
        Some(code) if err.is_permanent() && !auth => SendError::Rejected {
            code,
            bounce: blames_recipient(&text),
            reason: text,
        },
        _ if err.is_permanent() && !auth => SendError::Permanent(text),
        _ => SendError::Transient(text),
    }
}

/// Whether a 5xx reply means the recipient's address does not take mail, so that
/// follow-ups to it should stop. The enhanced status code (RFC 3463), when the
/// server gives one, tells whose fault it is: the sender's address (5.1.7, 5.1.8),
/// the message (5.3.x: too big; 5.6.x: content), the protocol (5.5.x) or a policy
/// (5.7.x: spam filters, relaying) are the service's problems, not the address's,
/// and must not mark every applicant as bouncing. Without one, any 5xx counts.
pub fn blames_recipient(reply: &str) -> bool {
    let enhanced = reply.split([' ', ':', '(', ')']).find_map(|word| {
        let mut parts = word.split('.');
        let (class, subject, detail) = (parts.next()?, parts.next()?, parts.next()?);
        let ok = parts.next().is_none()
            && class == "5"
            && !subject.is_empty()
            && subject.len() <= 3
            && subject.bytes().all(|b| b.is_ascii_digit())
            && !detail.is_empty()
            && detail.len() <= 3
            && detail.bytes().all(|b| b.is_ascii_digit());
        ok.then(|| (subject.to_owned(), detail.to_owned()))
    });
    match enhanced {
        None => true,
        Some((subject, detail)) => match subject.as_str() {
            "1" => !matches!(detail.as_str(), "7" | "8"),
            "3" | "5" | "6" | "7" => false,
            _ => true,
        },
    }
}

/// Keeps email addresses out of `last_error`: it lives outside the event, so an
/// erasure of the person would not reach it.
pub(crate) fn redact_addresses(text: &str) -> String {
    text.split(' ')
        .map(|word| {
            if word.contains('@') {
                "<redacted>"
            } else {
                word
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Temp file + fsync + rename: a reader (or a crash) sees the whole message or none,
/// and a second send of the same key replaces the first instead of adding a copy.
fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;

    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".sending-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // The rename itself is only durable once the directory is synced.
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_redacted_from_errors() {
        assert_eq!(
            redact_addresses("550 5.1.1 <taro@example.com>: Recipient address rejected"),
            "550 5.1.1 <redacted> Recipient address rejected"
        );
        assert_eq!(redact_addresses("connection refused"), "connection refused");
    }

    #[test]
    fn only_replies_about_the_recipient_are_bounces() {
        assert!(blames_recipient(
            "permanent error (550): 5.1.1 <redacted> Recipient address rejected"
        ));
        assert!(blames_recipient(
            "permanent error (552): 5.2.2 mailbox full"
        ));
        assert!(blames_recipient("permanent error (550): no such user"));
        assert!(!blames_recipient(
            "permanent error (553): 5.1.8 sender domain rejected"
        ));
        assert!(!blames_recipient(
            "permanent error (554): 5.7.1 message rejected as spam"
        ));
        assert!(!blames_recipient(
            "permanent error (552): 5.3.4 message too big"
        ));
    }

    #[tokio::test]
    async fn smtp_urls_are_checked() {
        assert!(Transport::smtp("smtp://127.0.0.1:2525").is_ok());
        assert!(Transport::smtp("smtps://user:pass@mail.example.jp").is_ok());
        assert!(Transport::smtp("smtp://mail.example.jp:587?tls=required").is_ok());
        assert!(Transport::smtp("http://mail.example.jp").is_err());
        assert!(Transport::smtp("smtp://mail.example.jp?tls=sometimes").is_err());
    }

    #[tokio::test]
    async fn debug_never_shows_credentials() {
        let t = Transport::smtp("smtp://user:hunter2@127.0.0.1:2525").unwrap();
        assert!(!format!("{t:?}").contains("hunter2"));
    }
}
