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
/// stream (and of the person it is addressed to), by the [`RenderMail`] that owns its
/// template. It carries no personal data and no copy of the text: the facts stay the
/// one place that holds them (a later erasure reaches the mail too), and a submission
/// writes a few bytes instead of two rendered mails.
///
/// The routing fields let the mailer decide at send time, without rendering, whether
/// the mail may still go: to whom it is (`audience`), whether it is a follow-up that
/// quiet hours, opt-outs and bounces hold back (`kind`), and whose data it is
/// (`person_id`: erasure and suspension of use stop it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailQueued {
    /// Deterministic idempotency key: (rule, case or party, occurrence).
    pub key: String,
    /// Which [`RenderMail`] renders it, and how.
    pub template: String,
    /// The person the mail is addressed to (applicant mail) or about (staff notices).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person_id: Option<uuid::Uuid>,
    #[serde(default)]
    pub audience: Audience,
    #[serde(default)]
    pub kind: MailKind,
    /// What in the stream the mail is about, e.g. a tour sign-up's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub about: Option<uuid::Uuid>,
    /// Anything else the template needs. Never personal: it is stored in plaintext.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub params: serde_json::Value,
}

impl MailQueued {
    /// A transactional mail to the applicant `person_id`.
    pub fn to_applicant(key: String, template: &str, person_id: uuid::Uuid) -> Self {
        Self {
            key,
            template: template.to_owned(),
            person_id: Some(person_id),
            audience: Audience::Applicant,
            kind: MailKind::Transactional,
            about: None,
            params: serde_json::Value::Null,
        }
    }

    /// A notice to staff, about `person_id` when it concerns one person.
    pub fn to_staff(key: String, template: &str, person_id: Option<uuid::Uuid>) -> Self {
        Self {
            key,
            template: template.to_owned(),
            person_id,
            audience: Audience::Staff,
            kind: MailKind::Transactional,
            about: None,
            params: serde_json::Value::Null,
        }
    }

    pub fn about(mut self, id: uuid::Uuid) -> Self {
        self.about = Some(id);
        self
    }

    pub fn follow_up(mut self) -> Self {
        self.kind = MailKind::FollowUp;
        self
    }

    pub fn with_params(mut self, params: serde_json::Value) -> Self {
        self.params = params;
        self
    }

    /// The event id of the mail on `stream`: derived from the key, so that queueing
    /// the same mail twice (a retried tick, two schedulers) is a replay, not a second
    /// mail.
    pub fn event_id(&self, stream: &str) -> uuid::Uuid {
        uuid::Uuid::new_v5(
            &MAIL_NAMESPACE,
            format!("{stream}/mail/{}", self.key).as_bytes(),
        )
    }
}

const MAIL_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6b75_6a69_7261_2f6d_6169_6c2f_0000_0001);

/// Who a mail goes to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// The person who inquired or signed up.
    #[default]
    Applicant,
    /// Concierges and other staff.
    Staff,
}

/// What kind of mail it is, for the rules that hold mail back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailKind {
    /// Caused by the person's own action or by a fact they must know (auto-replies,
    /// confirmations, cancellations, invitations): never held, sent after an opt-out.
    #[default]
    Transactional,
    /// Sent on a schedule (reminders, thank-yous, nurture, check-ins): held in quiet
    /// hours, stopped by an opt-out or a bounce, and carries a one-click unsubscribe.
    FollowUp,
}

impl MailKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transactional => "transactional",
            Self::FollowUp => "follow_up",
        }
    }
}

impl Audience {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applicant => "applicant",
            Self::Staff => "staff",
        }
    }
}

/// The facts a queued mail is rendered from, decrypted: its own stream up to and
/// including the event that queued it, and the stream of the person it is addressed
/// to (corrections of their address apply to mail sent later).
#[derive(Debug, Clone, Copy)]
pub struct MailFacts<'a> {
    pub stream: &'a [(String, serde_json::Value)],
    pub person: &'a [(String, serde_json::Value)],
}

/// Why a queued mail could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The facts it was rendered from are not in the stream (anymore).
    #[error("the stream holds no facts to render {0} from")]
    NoFacts(String),
    #[error("cannot read an event of the stream: {0}")]
    Decode(String),
    /// The personal data the mail needs was erased: the mail must not be sent.
    #[error("the personal data of {0} was erased")]
    Erased(String),
}

/// Renders the queued mails of some templates from the facts they are about. Pure:
/// the mailer loads and decrypts the events, the renderer only reads them.
pub trait RenderMail: Send + Sync + std::fmt::Debug {
    /// The templates it renders.
    fn templates(&self) -> &[&'static str];

    /// Renders `mail` from `facts`. A mail about an erased person cannot be rendered
    /// ([`RenderError::Erased`]): the mailer then drops it.
    fn render(&self, mail: &MailQueued, facts: &MailFacts<'_>) -> Result<MailContent, RenderError>;
}

/// A mail rendered when it was requested (legacy: tours wrote these before every
/// mail became a [`MailQueued`]). Kept so that stored events still decode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailRequested {
    /// Deterministic idempotency key, e.g. `inquiry-received/<case id>/applicant`.
    /// One key is sent at most once (bar an SMTP accept just before a crash).
    pub key: String,
    /// What kind of mail this is, for statistics and templates: `inquiry_received`, ...
    pub template: String,
    /// Everything personal: addresses and the rendered text. Legacy only: written
    /// before mails were rendered at send time, sealed with the person's key since.
    pub personal: crate::personal::Personal<MailContent>,
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
    /// For follow-up mail: the https link of the RFC 8058 one-click unsubscribe
    /// (`List-Unsubscribe` and `List-Unsubscribe-Post` headers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsubscribe_url: Option<String>,
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
                unsubscribe_url: None,
            }
            .into(),
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
    fn queued_mail_stored_before_routing_fields_still_decodes() {
        let data = serde_json::json!({"key": "k", "template": "t"});
        let m: MailQueued = serde_json::from_value(data).unwrap();
        assert_eq!(
            (m.audience, m.kind, m.person_id),
            (Audience::Applicant, MailKind::Transactional, None)
        );
        // And a new one stores no empty routing fields.
        let m = MailQueued::to_staff("k".into(), "t", None);
        let json = serde_json::to_value(&m).unwrap();
        assert!(json.get("params").is_none() && json.get("person_id").is_none());
        assert_eq!(json["audience"], "staff");
    }

    #[test]
    fn mail_stored_without_attachments_still_decodes() {
        let data = serde_json::json!({
            "key": "k", "template": "t",
            "personal": {"to": ["a@example.jp"], "subject": "件名", "text": "本文", "html": null}
        });
        let mail = MailRequested::from_event_data(&data).unwrap();
        let content = mail.personal.known().unwrap();
        assert!(content.attachments.is_empty());
        assert_eq!(content.subject, "件名");
    }
}
