//! The desk's mail: the consultation a concierge scheduled, with an `.ics` calendar
//! entry, to the applicant. Queued as `MailQueued` in the same append as
//! `ConsultationScheduled` (the key names the consultation, so the mail goes once)
//! and rendered when it is sent, from the case's facts and the person's corrections,
//! by [`DeskMailTemplates`] (registered with the mailer in `services/kujira`).

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use icalendar::{Calendar, Component, EventLike};
use kujira_config::Config;
use kujira_domain::casework::ConsultationScheduled;
use kujira_domain::inquiry::ConsultationEvent;
use kujira_domain::mail::{
    Attachment, MailContent, MailFacts, MailQueued, RenderError, RenderMail,
};
use kujira_domain::values::ConsultationMethod;
use kujira_web::mail_body::MailBody;
use uuid::Uuid;

/// The template of the consultation mail.
pub const CONSULTATION_SCHEDULED: &str = "consultation_scheduled";

/// The mail a scheduled consultation queues.
pub fn consultation_mail(case_id: Uuid, person_id: Uuid, consultation_id: Uuid) -> MailQueued {
    MailQueued::to_applicant(
        format!("consultation/{case_id}/{consultation_id}"),
        CONSULTATION_SCHEDULED,
        person_id,
    )
    .about(consultation_id)
}

/// Renders the desk's templates.
#[derive(Debug, Clone)]
pub struct DeskMailTemplates {
    config: Arc<Config>,
}

impl DeskMailTemplates {
    pub fn new(config: Arc<Config>) -> Self {
        Self { config }
    }
}

fn host(config: &Config) -> &str {
    config
        .public_url
        .split("://")
        .nth(1)
        .unwrap_or("kujira")
        .split(['/', ':'])
        .next()
        .unwrap_or("kujira")
}

/// The `.ics` of a consultation (UTC times, so every client reads them alike).
pub fn ics(
    config: &Config,
    c: &ConsultationScheduled,
    place: Option<&str>,
    stamp: DateTime<Utc>,
) -> String {
    let w = &config.words;
    let mut event = icalendar::Event::new();
    event
        .uid(&format!(
            "consultation-{}@{}",
            c.consultation_id,
            host(config)
        ))
        .timestamp(stamp)
        .summary(&format!("移住相談（{}）", w.city_name))
        .starts(c.starts_at)
        .ends(c.starts_at + Duration::minutes(i64::from(c.minutes)))
        .description(&format!(
            "相談方法：{}\nお問い合わせ：{} {}",
            c.method.label_ja(),
            w.desk_name,
            w.desk_phone
        ));
    if let Some(p) = place.filter(|p| !p.trim().is_empty()) {
        event.location(p);
    }
    let mut cal = Calendar::new();
    cal.append_property(icalendar::Property::new("METHOD", "PUBLISH"));
    cal.name(&format!("{} 移住相談", w.city_name))
        .push(event.done());
    cal.done().to_string()
}

impl RenderMail for DeskMailTemplates {
    fn templates(&self) -> &[&'static str] {
        &[CONSULTATION_SCHEDULED]
    }

    fn render(&self, mail: &MailQueued, facts: &MailFacts<'_>) -> Result<MailContent, RenderError> {
        let erased = || RenderError::Erased(mail.key.clone());
        let mut contact: Option<(String, String)> = None;
        let mut scheduled: Option<ConsultationScheduled> = None;
        for (event_type, data) in facts.stream {
            let event: ConsultationEvent = match event_type.as_str() {
                "InquirySubmitted" | "TourRequestSubmitted" | "ConsultationScheduled" => {
                    serde_json::from_value(serde_json::json!({ "type": event_type, "data": data }))
                        .map_err(|e| RenderError::Decode(e.to_string()))?
                }
                _ => continue,
            };
            match event {
                ConsultationEvent::InquirySubmitted(s) => {
                    let p = s.inquiry.personal.known().ok_or_else(erased)?;
                    contact = Some((p.name.to_string(), p.email.to_string()));
                }
                ConsultationEvent::TourRequestSubmitted(s) => {
                    let p = s.request.personal.known().ok_or_else(erased)?;
                    contact = Some((p.name.to_string(), p.email.to_string()));
                }
                ConsultationEvent::ConsultationScheduled(c)
                    if Some(c.consultation_id) == mail.about =>
                {
                    scheduled = Some(c);
                }
                _ => {}
            }
        }
        // Mail goes to the person as they are now: a corrected address wins.
        if let Some(c) = kujira_domain::person::latest_correction(facts.person) {
            contact = Some((c.name.to_string(), c.email.to_string()));
        }
        let (name, email) = contact.ok_or_else(|| RenderError::NoFacts(mail.key.clone()))?;
        let c = scheduled.ok_or_else(|| RenderError::NoFacts(mail.key.clone()))?;
        let note = c.personal.known().ok_or_else(erased)?;
        let tz = self.config.timezone;
        let w = &self.config.words;
        let when = kujira_intake::mail::datetime_ja(c.starts_at, tz);
        let end = (c.starts_at + Duration::minutes(i64::from(c.minutes)))
            .with_timezone(&tz)
            .format("%H:%M");
        let place = note.place.as_ref().map(|p| p.to_string());
        let how = match c.method {
            ConsultationMethod::Online => "オンライン（接続先は下記の場所・ご案内をご覧ください）",
            ConsultationMethod::Visit => "来庁",
            ConsultationMethod::Phone => "電話（担当者からお電話します）",
            ConsultationMethod::Email => "メール",
            ConsultationMethod::Fair => "出張相談会・移住フェア",
        };
        let mut rows = vec![
            (
                "日時".to_owned(),
                format!("{when}〜{end}（{}分）", c.minutes),
            ),
            ("相談方法".to_owned(), how.to_owned()),
        ];
        if let Some(p) = &place {
            rows.push(("場所".to_owned(), p.clone()));
        }
        if let Some(n) = &note.note {
            rows.push(("ご案内".to_owned(), n.to_string()));
        }
        let subject = format!("【{}】移住相談の日時のご案内", w.site_name);
        let body = MailBody {
            greeting: format!("{name} 様"),
            paragraphs: vec![format!(
                "{}の{}です。移住相談の日時が決まりましたので、お知らせします。",
                w.city_name, w.desk_name
            )],
            sections: vec![("ご相談の日時".into(), rows)],
            closing: vec![
                "カレンダーに登録できるファイル（consultation.ics）を添付しています。".into(),
                "ご都合が悪くなった場合は、お手数ですが下記までご連絡ください。".into(),
            ],
            ..MailBody::default()
        };
        let signature = kujira_web::mail_body::signature(&self.config);
        let (text, html) = (body.text(&signature), body.html(&signature));
        Ok(MailContent {
            to: vec![email],
            subject,
            text,
            html: Some(html),
            attachments: vec![Attachment {
                filename: "consultation.ics".into(),
                content_type: "text/calendar; charset=utf-8; method=PUBLISH".into(),
                content: ics(&self.config, &c, place.as_deref(), c.at),
            }],
            unsubscribe_url: None,
        })
    }
}
