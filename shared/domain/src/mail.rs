//! Mail requested by the domain. A mail is a fact recorded in the same append as the
//! business event that caused it (an inquiry, a sign-up), so that the two can never
//! part: the mailer (services/scheduler) turns every `MailRequested` into exactly
//! one delivery, whatever crashes in between.
//!
//! Every aggregate's event enum carries a `MailRequested(MailRequested)` variant, so
//! that the event type string is the same on every stream.

use serde::{Deserialize, Serialize};

/// The event type string of [`MailRequested`] on every stream.
pub const MAIL_REQUESTED: &str = "MailRequested";
/// The event type string of [`MailQueued`] on every stream.
pub const MAIL_QUEUED: &str = "MailQueued";

/// A mail whose content is rendered when it is sent, from the facts of its own
/// stream, by the [`RenderMail`] that owns its template. It carries no personal data
/// and no copy of the text: the facts stay the one place that holds them (a later
/// erasure reaches the mail too), and a submission writes a few bytes instead of two
/// rendered mails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailQueued {
    /// Deterministic idempotency key, as for [`MailRequested`].
    pub key: String,
    /// Which [`RenderMail`] renders it, and how.
    pub template: String,
}

/// Why a queued mail could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The facts it was rendered from are not in the stream (anymore).
    #[error("the stream holds no facts to render {0} from")]
    NoFacts(String),
    #[error("cannot read an event of the stream: {0}")]
    Decode(String),
}

/// Renders the queued mails of some templates from the facts of their stream. Pure:
/// the mailer loads the events, the renderer only reads them.
pub trait RenderMail: Send + Sync + std::fmt::Debug {
    /// The templates it renders.
    fn templates(&self) -> &[&'static str];

    /// Renders `mail` from the stream's events, as `(event type, data)` pairs in
    /// stream order, up to and including the event that queued it.
    fn render(
        &self,
        mail: &MailQueued,
        stream: &[(String, serde_json::Value)],
    ) -> Result<MailContent, RenderError>;
}

/// A mail to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailRequested {
    /// Deterministic idempotency key, e.g. `inquiry-received/<case id>/applicant`.
    /// One key is sent at most once (bar an SMTP accept just before a crash).
    pub key: String,
    /// What kind of mail this is, for statistics and templates: `inquiry_received`, ...
    pub template: String,
    /// Everything personal: addresses and the rendered text.
    pub personal: MailContent,
}

/// The rendered mail, kept apart as personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailContent {
    pub to: Vec<String>,
    pub subject: String,
    /// The plain-text alternative (always present).
    pub text: String,
    /// The HTML alternative.
    pub html: Option<String>,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
}

/// A small attachment, such as an `.ics` calendar entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub filename: String,
    /// e.g. `text/calendar; charset=utf-8; method=PUBLISH`
    pub content_type: String,
    /// The content itself, as text (calendar entries are text).
    pub content: String,
}

impl MailRequested {
    /// The event data as stored, for readers that do not know the stream's enum
    /// (the outbox projection reads `MailRequested` from every stream).
    pub fn from_event_data(data: &serde_json::Value) -> Result<Self, serde_json::Error> {
        Self::deserialize(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Any stream's event enum, as the services write them.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "type", content = "data")]
    enum SomeStreamEvent {
        MailRequested(MailRequested),
    }

    fn requested() -> MailRequested {
        MailRequested {
            key: "inquiry-received/0190/applicant".into(),
            template: "inquiry_received".into(),
            personal: MailContent {
                to: vec!["taro@example.com".into()],
                subject: "移住相談を受け付けました".into(),
                text: "本文".into(),
                html: None,
                attachments: vec![],
            },
        }
    }

    #[test]
    fn the_event_type_is_the_same_on_every_stream() {
        let json = serde_json::to_value(SomeStreamEvent::MailRequested(requested())).unwrap();
        assert_eq!(json["type"], MAIL_REQUESTED);
        // Statistics read key and template; everything personal sits under `personal`.
        let data = json["data"].as_object().unwrap();
        let mut fields: Vec<&str> = data.keys().map(String::as_str).collect();
        fields.sort_unstable();
        assert_eq!(fields, ["key", "personal", "template"]);
        assert_eq!(data["personal"]["to"][0], "taro@example.com");
    }

    #[test]
    fn data_decodes_without_knowing_the_stream_enum() {
        let json = serde_json::to_value(SomeStreamEvent::MailRequested(requested())).unwrap();
        assert_eq!(
            MailRequested::from_event_data(&json["data"]).unwrap(),
            requested()
        );
    }

    #[test]
    fn mail_stored_without_attachments_still_decodes() {
        let data = serde_json::json!({
            "key": "k", "template": "t",
            "personal": {"to": ["a@example.jp"], "subject": "件名", "text": "本文", "html": null}
        });
        let mail = MailRequested::from_event_data(&data).unwrap();
        assert!(mail.personal.attachments.is_empty());
        assert_eq!(mail.personal.subject, "件名");
    }
}
