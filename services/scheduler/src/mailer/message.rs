//! Turning a `MailRequested` into a MIME message.

use std::time::SystemTime;

use chrono::{DateTime, Utc};
use kujira_domain::mail::MailContent;
use lettre::Message;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use sha2::{Digest, Sha256};

/// Who mail comes from: the configured address, shown with the site's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    mailbox: Mailbox,
}

impl Sender {
    /// `mail_from` is `KUJIRA_MAIL_FROM`: an address, or a display name and an
    /// address (`くじらと。 <noreply@city.example.jp>`). Without a name of its own,
    /// mail comes under `default_name` (usually the site's name).
    pub fn new(default_name: &str, mail_from: &str) -> Result<Self, MessageError> {
        let (name, address) = kujira_config::parse_mailbox(mail_from)
            .map_err(|e| MessageError::Sender(e.to_string()))?;
        let address = address
            .parse()
            .map_err(|e| MessageError::Sender(format!("{address:?}: {e}")))?;
        let name = name
            .or_else(|| Some(default_name.trim().to_owned()))
            .filter(|n| !n.is_empty());
        Ok(Self {
            mailbox: Mailbox::new(name, address),
        })
    }

    /// The sender `kujira serve` uses: `KUJIRA_MAIL_FROM`, under its own display
    /// name or else the site's.
    pub fn from_config(config: &kujira_config::Config) -> Result<Self, MessageError> {
        let name = config
            .mail_from_name
            .as_deref()
            .unwrap_or(&config.words.site_name);
        let address = config
            .mail_from
            .parse()
            .map_err(|e| MessageError::Sender(format!("{:?}: {e}", config.mail_from)))?;
        Ok(Self {
            mailbox: Mailbox::new(Some(name.to_owned()).filter(|n| !n.is_empty()), address),
        })
    }

    pub fn mailbox(&self) -> &Mailbox {
        &self.mailbox
    }

    /// The domain that Message-IDs are minted under.
    pub fn domain(&self) -> &str {
        self.mailbox.email.domain()
    }
}

/// Why a message cannot be built. It will not get better by retrying.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("invalid sender address {0}")]
    Sender(String),
    #[error("invalid recipient address: {0}")]
    Recipient(String),
    #[error("the mail has no recipient")]
    NoRecipient,
    #[error("invalid content type {content_type:?} of attachment {filename:?}")]
    ContentType {
        filename: String,
        content_type: String,
    },
    #[error("cannot build the message: {0}")]
    Build(#[from] lettre::error::Error),
}

/// The Message-ID of the mail with idempotency key `key`: the same on every attempt,
/// so that a receiver (or a person) can tell a re-sent copy from a second mail.
pub fn message_id(key: &str, domain: &str) -> String {
    format!("<{}@{}>", &hex_sha256(key)[..32], domain)
}

/// The `.eml` file name of the mail with idempotency key `key`: readable, safe on any
/// file system, and the same on every attempt so that a re-send overwrites.
pub fn eml_file_name(key: &str) -> String {
    let readable: String = key
        .chars()
        .take(80)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    // The hash keeps two keys apart that sanitise to the same text.
    format!("{readable}.{}.eml", &hex_sha256(key)[..16])
}

fn hex_sha256(s: &str) -> String {
    use std::fmt::Write;
    Sha256::digest(s.as_bytes())
        .iter()
        .fold(String::with_capacity(64), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// Builds the message for `mail`: text and HTML as `multipart/alternative`, wrapped
/// in `multipart/mixed` when there are attachments. `date` should be the time of the
/// request, so that every attempt produces the same message.
pub fn build_message(
    sender: &Sender,
    key: &str,
    content: &MailContent,
    date: DateTime<Utc>,
) -> Result<Message, MessageError> {
    build_message_with(sender, key, content, date, None)
}

/// The footer line every applicant follow-up carries, in its text part.
pub fn unsubscribe_footer_text(url: &str) -> String {
    format!(
        "\n\n――――――――――――――――\n配信停止はこちら（ご案内メールが不要な場合）：\n{url}\n\
         ※お申し込みの確認など、お手続きに必要なメールは配信停止後もお送りします。\n"
    )
}

fn unsubscribe_footer_html(url: &str) -> String {
    maud::html! {
        hr;
        p style="color:#444;font-size:small" {
            a href=(url) { "配信停止はこちら" } "（ご案内メールが不要な場合）" br;
            "※お申し込みの確認など、お手続きに必要なメールは配信停止後もお送りします。"
        }
    }
    .into_string()
}

/// Puts `footer` before the closing `</body>` of an HTML document, or at its end.
fn append_to_html(html: &str, footer: &str) -> String {
    match html.to_ascii_lowercase().rfind("</body>") {
        Some(i) => format!("{}{footer}{}", &html[..i], &html[i..]),
        None => format!("{html}{footer}"),
    }
}

/// [`build_message`], and when `unsubscribe` is the person's one-click link, the
/// RFC 8058 headers (`List-Unsubscribe` with the https link, and
/// `List-Unsubscribe-Post: List-Unsubscribe=One-Click`) and a footer line with the
/// link in the text and HTML parts. The mailer adds them to every applicant
/// follow-up, so that no template can forget them.
pub fn build_message_with(
    sender: &Sender,
    key: &str,
    content: &MailContent,
    date: DateTime<Utc>,
    unsubscribe: Option<&str>,
) -> Result<Message, MessageError> {
    let MailContent {
        to,
        subject,
        text,
        html,
        attachments,
        // The mailer adds the link itself (see above); a template's own is ignored.
        unsubscribe_url: _,
    } = content;
    let (text, html) = match unsubscribe {
        Some(url) => (
            format!("{}{}", text.trim_end(), unsubscribe_footer_text(url)),
            html.as_ref()
                .map(|h| append_to_html(h, &unsubscribe_footer_html(url))),
        ),
        None => (text.clone(), html.clone()),
    };
    let (text, html) = (&text, &html);
    if to.is_empty() {
        return Err(MessageError::NoRecipient);
    }
    let mut builder = Message::builder()
        .from(sender.mailbox.clone())
        .subject(subject.clone())
        .date(SystemTime::from(date))
        .message_id(Some(message_id(key, sender.domain())));
    for recipient in to {
        let mailbox: Mailbox = recipient
            .parse()
            .map_err(|e| MessageError::Recipient(format!("{e}")))?;
        builder = builder.to(mailbox);
    }

    // Boundaries from the key instead of random ones make every attempt produce the
    // same bytes. "=_" cannot occur in base64 or quoted-printable text.
    let hash = hex_sha256(key);
    let boundary = |kind: &str| format!("=_kujira_{kind}_{}", &hash[..32]);
    let text_part = SinglePart::plain(text.clone());
    let alternative = |html: &String| {
        MultiPart::alternative()
            .boundary(boundary("alt"))
            .singlepart(text_part.clone())
            .singlepart(SinglePart::html(html.clone()))
    };
    let mut message = match (html, attachments.is_empty()) {
        (None, true) => builder.singlepart(text_part.clone())?,
        (Some(html), true) => builder.multipart(alternative(html))?,
        (html, false) => {
            let mut mixed = match html {
                Some(html) => MultiPart::mixed()
                    .boundary(boundary("mix"))
                    .multipart(alternative(html)),
                None => MultiPart::mixed()
                    .boundary(boundary("mix"))
                    .singlepart(text_part.clone()),
            };
            for a in attachments {
                let content_type =
                    ContentType::parse(&a.content_type).map_err(|_| MessageError::ContentType {
                        filename: a.filename.clone(),
                        content_type: a.content_type.clone(),
                    })?;
                let part =
                    Attachment::new(a.filename.clone()).body(a.content.clone(), content_type);
                mixed = mixed.singlepart(part);
            }
            builder.multipart(mixed)?
        }
    };
    mark_auto_submitted(&mut message);
    if let Some(url) = unsubscribe {
        let headers = message.headers_mut();
        headers.insert_raw(HeaderValue::new(
            HeaderName::new_from_ascii_str("List-Unsubscribe"),
            format!("<{url}>"),
        ));
        headers.insert_raw(HeaderValue::new(
            HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
            "List-Unsubscribe=One-Click".to_owned(),
        ));
    }
    Ok(message)
}

/// RFC 3834: every mail kujira sends is machine-generated, which keeps vacation
/// responders from answering it and starting a loop.
fn mark_auto_submitted(message: &mut Message) {
    message.headers_mut().insert_raw(HeaderValue::new(
        HeaderName::new_from_ascii_str("Auto-Submitted"),
        "auto-generated".to_owned(),
    ));
}

#[cfg(test)]
mod tests {
    use kujira_domain::mail::MailRequested;

    fn build(s: &Sender, m: &MailRequested, d: DateTime<Utc>) -> Result<Message, MessageError> {
        build_message(s, &m.key, m.personal.known().unwrap(), d)
    }
    use kujira_domain::mail::Attachment as MailAttachment;
    use mail_parser::MimeHeaders;

    use super::*;

    fn sender() -> Sender {
        Sender::new("くじらと。", "kujira@example.jp").unwrap()
    }

    fn mail(html: Option<&str>, attachments: Vec<MailAttachment>) -> MailRequested {
        MailRequested {
            key: "inquiry-received/0190/applicant".into(),
            template: "inquiry_received".into(),
            personal: MailContent {
                to: vec!["山田 太郎 <taro@example.com>".into()],
                subject: "【柏崎市】移住相談を受け付けました".into(),
                text: "山田様\nお問い合わせありがとうございます。".into(),
                html: html.map(str::to_owned),
                attachments,
                unsubscribe_url: None,
            }
            .into(),
        }
    }

    fn date() -> DateTime<Utc> {
        "2026-11-24T01:02:03Z".parse().unwrap()
    }

    // MIME text travels with CRLF line ends; the requested text has LF.
    fn parse(message: &Message) -> mail_parser::Message<'static> {
        let raw = message.formatted();
        mail_parser::MessageParser::default()
            .parse(&raw)
            .expect("the message parses")
            .into_owned()
    }

    #[test]
    fn message_ids_are_deterministic_per_key() {
        let a = message_id("k/1", "example.jp");
        assert_eq!(a, message_id("k/1", "example.jp"));
        assert_ne!(a, message_id("k/2", "example.jp"));
        assert!(a.starts_with('<') && a.ends_with("@example.jp>"), "{a}");
        assert_eq!(a.len(), "<@example.jp>".len() + 32);
    }

    #[test]
    fn eml_file_names_are_safe_and_keep_similar_keys_apart() {
        let a = eml_file_name("inquiry-received/0190/applicant");
        assert!(a.starts_with("inquiry-received_0190_applicant."), "{a}");
        assert!(a.ends_with(".eml"));
        assert_ne!(a, eml_file_name("inquiry-received_0190_applicant"));
        let odd = eml_file_name("../../etc/passwd\0日本");
        assert!(
            !odd.contains('/') && !odd.contains('\0') && !odd.starts_with(".."),
            "{odd}"
        );
        assert!(eml_file_name(&"x".repeat(1000)).len() < 120);
    }

    #[test]
    fn japanese_text_and_html_become_alternatives() {
        let m = build(&sender(), &mail(Some("<p>山田様</p>"), vec![]), date()).unwrap();
        let raw = String::from_utf8(m.formatted()).unwrap();
        // Headers must be 7-bit: the subject is RFC 2047-encoded, not raw UTF-8.
        let headers = raw.split("\r\n\r\n").next().unwrap();
        assert!(headers.is_ascii(), "{headers}");
        assert!(headers.contains("Auto-Submitted: auto-generated"));

        let parsed = parse(&m);
        assert_eq!(parsed.subject(), Some("【柏崎市】移住相談を受け付けました"));
        let expected_id = message_id("inquiry-received/0190/applicant", "example.jp");
        assert_eq!(
            parsed.message_id(),
            Some(expected_id.trim_start_matches('<').trim_end_matches('>'))
        );
        assert_eq!(
            parsed.from().unwrap().first().unwrap().name(),
            Some("くじらと。")
        );
        let to = parsed.to().unwrap().first().unwrap();
        assert_eq!(to.address(), Some("taro@example.com"));
        assert_eq!(to.name(), Some("山田 太郎"));
        assert_eq!(
            parsed
                .body_text(0)
                .map(|t| t.replace("\r\n", "\n"))
                .as_deref(),
            Some("山田様\nお問い合わせありがとうございます。")
        );
        assert_eq!(parsed.body_html(0).as_deref(), Some("<p>山田様</p>"));
        assert_eq!(
            parsed.content_type().unwrap().subtype(),
            Some("alternative")
        );
        assert_eq!(parsed.date().unwrap().to_rfc3339(), "2026-11-24T01:02:03Z");
    }

    #[test]
    fn attachments_make_the_message_mixed() {
        let ics = MailAttachment {
            filename: "tour.ics".into(),
            content_type: "text/calendar; charset=utf-8; method=PUBLISH".into(),
            content: "BEGIN:VCALENDAR\r\nSUMMARY:移住体験ツアー\r\nEND:VCALENDAR\r\n".into(),
        };
        for html in [Some("<p>ツアー</p>"), None] {
            let m = build(&sender(), &mail(html, vec![ics.clone()]), date()).unwrap();
            let parsed = parse(&m);
            assert_eq!(parsed.content_type().unwrap().subtype(), Some("mixed"));
            assert_eq!(parsed.attachment_count(), 1);
            let a = parsed.attachment(0).unwrap();
            assert_eq!(a.attachment_name(), Some("tour.ics"));
            let ct = a.content_type().unwrap();
            assert_eq!((ct.ctype(), ct.subtype()), ("text", Some("calendar")));
            assert_eq!(ct.attribute("method"), Some("PUBLISH"));
            assert_eq!(a.text_contents(), Some(ics.content.as_str()));
            let has_html_part = parsed.parts.iter().any(|p| {
                p.content_type()
                    .is_some_and(|ct| ct.ctype() == "text" && ct.subtype() == Some("html"))
            });
            assert_eq!(has_html_part, html.is_some());
            assert_eq!(
                parsed
                    .body_text(0)
                    .map(|t| t.replace("\r\n", "\n"))
                    .as_deref(),
                Some("山田様\nお問い合わせありがとうございます。")
            );
        }
    }

    #[test]
    fn every_attempt_builds_the_same_bytes() {
        let ics = MailAttachment {
            filename: "tour.ics".into(),
            content_type: "text/calendar; charset=utf-8; method=PUBLISH".into(),
            content: "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n".into(),
        };
        let m = mail(Some("<p>山田様</p>"), vec![ics]);
        let a = build(&sender(), &m, date()).unwrap().formatted();
        let b = build(&sender(), &m, date()).unwrap().formatted();
        assert!(a == b, "messages differ");
        let mut other = m.clone();
        other.key.push('2');
        let c = build(&sender(), &other, date()).unwrap().formatted();
        assert!(a != c, "another key is another message");
    }

    #[test]
    fn a_display_name_in_mail_from_is_shown_rfc2047_encoded() {
        let s = Sender::new("サイト名", "くじらと。 <noreply@city.example.jp>").unwrap();
        let m = build(&s, &mail(None, vec![]), date()).unwrap();
        let raw = String::from_utf8(m.formatted()).unwrap();
        let from = raw
            .lines()
            .find(|l| l.starts_with("From:"))
            .unwrap()
            .to_owned();
        assert!(from.contains("=?utf-8?b?"), "{from}");
        assert!(from.ends_with("<noreply@city.example.jp>"), "{from}");
        let parsed = parse(&m);
        let f = parsed.from().unwrap().first().unwrap();
        assert_eq!(f.name(), Some("くじらと。"));
        assert_eq!(f.address(), Some("noreply@city.example.jp"));
        // A bare address comes under the default name.
        let s = Sender::new("サイト名", "noreply@city.example.jp").unwrap();
        assert_eq!(s.mailbox().name.as_deref(), Some("サイト名"));
        assert!(Sender::new("x", "くじらと。 <nobody>").is_err());
    }

    #[test]
    fn a_follow_up_carries_the_one_click_unsubscribe() {
        let url = "https://kujira.example.jp/unsubscribe/abc.def";
        let m = mail(Some("<html><body><p>山田様</p></body></html>"), vec![]);
        let built = build_message_with(
            &sender(),
            &m.key,
            m.personal.known().unwrap(),
            date(),
            Some(url),
        )
        .unwrap();
        let raw = String::from_utf8(built.formatted()).unwrap();
        assert!(
            raw.contains(&format!("\r\nList-Unsubscribe: <{url}>\r\n")),
            "{raw}"
        );
        assert!(raw.contains("\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
        let parsed = parse(&built);
        let text = parsed.body_text(0).unwrap().replace("\r\n", "\n");
        assert!(text.starts_with("山田様\nお問い合わせ"), "{text}");
        assert!(text.contains(&format!(
            "配信停止はこちら（ご案内メールが不要な場合）：\n{url}\n"
        )));
        let html = parsed.body_html(0).unwrap();
        assert!(
            html.contains(&format!("<a href=\"{url}\">配信停止はこちら</a>")),
            "{html}"
        );
        assert!(html.trim_end().ends_with("</body></html>"), "{html}");
        // Without a link, nothing of it.
        let plain = build(&sender(), &m, date()).unwrap();
        let raw = String::from_utf8(plain.formatted()).unwrap();
        assert!(!raw.contains("List-Unsubscribe") && !raw.contains("配信停止"));
    }

    #[test]
    fn text_only_mail_is_a_single_part() {
        let m = build(&sender(), &mail(None, vec![]), date()).unwrap();
        let parsed = parse(&m);
        assert_eq!(parsed.content_type().unwrap().ctype(), "text");
        assert_eq!(
            parsed
                .body_text(0)
                .map(|t| t.replace("\r\n", "\n"))
                .as_deref(),
            Some("山田様\nお問い合わせありがとうございます。")
        );
    }

    #[test]
    fn bad_recipients_are_errors_not_panics() {
        let m = mail(None, vec![]);
        let mut c = m.personal.known().unwrap().clone();
        c.to = vec![];
        assert!(matches!(
            build_message(&sender(), &m.key, &c, date()),
            Err(MessageError::NoRecipient)
        ));
        c.to = vec!["not an address".into()];
        assert!(matches!(
            build_message(&sender(), &m.key, &c, date()),
            Err(MessageError::Recipient(_))
        ));
        assert!(Sender::new("x", "nobody").is_err());
    }
}
