//! The consultation mail a concierge's scheduling queues, rendered at send time and
//! delivered with its `.ics` to the real SMTP test server (the mail tests' helper).

mod cases_support;
#[path = "../../../tests/tests/mail_support/mod.rs"]
mod mail_support;
mod support;

use std::sync::Arc;

use axum::http::StatusCode;
use cases_support::{Applicant, CONCIERGE, World, post_action};
use kujira_projector::Projector;
use kujira_scheduler::{MailOutboxProjection, Mailer, Sender, Transport};
use mail_parser::MimeHeaders;
use mail_support::SmtpServer;

#[tokio::test]
async fn a_scheduled_consultation_reaches_the_applicant_with_a_calendar_entry() {
    let w = World::new().await;
    let (case_id, _) = w
        .inquiry(&Applicant::new(
            "柏崎 太郎",
            "カシワザキ タロウ",
            "taro@example.jp",
        ))
        .await;
    let mut b = w.browser(CONCIERGE).await;
    let page = b.get(&format!("/desk/cases/{case_id}")).await;
    let r = post_action(
        &mut b,
        case_id,
        &page.body,
        "consultation",
        &[
            ("consult_date", "2026-12-10"),
            ("consult_time", "14:00"),
            ("consult_minutes", "90"),
            ("consult_method", "visit"),
            ("consult_place", "柏崎市役所 2階 相談室"),
            ("consult_note", "印鑑は不要です"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);

    let outbox = Projector::new(w.app.store.events().clone()).with(MailOutboxProjection::new());
    outbox.catch_up().await.unwrap();
    let page = b.get(&format!("/desk/cases/{case_id}")).await;
    assert!(
        page.body
            .contains("相談日時のご案内（カレンダー添付）（ご本人宛）"),
        "{}",
        page.body
    );
    assert!(page.body.contains("送信状況：送信待ち"), "{}", page.body);
    let smtp = SmtpServer::started();
    // The concierges' notice of the new case is refused for good.
    smtp.state
        .unknown
        .lock()
        .unwrap()
        .extend(w.app.config.concierge_emails.iter().cloned());
    let mailer = Mailer::new(
        w.app.store.clone(),
        Transport::smtp(&format!("smtp://127.0.0.1:{}", smtp.port)).unwrap(),
        Sender::from_config(&w.app.config).unwrap(),
        Arc::new(w.app.clock.clone()),
    )
    .with_renderer(Arc::new(kujira_intake::mail::MailTemplates::new(
        w.app.config.clone(),
    )))
    .with_renderer(Arc::new(kujira_desk::DeskMailTemplates::new(
        w.app.config.clone(),
    )));
    let report = mailer.deliver_due().await.unwrap();
    let key = format!("consultation/{case_id}/");
    assert!(
        report.sent.iter().any(|k| k.starts_with(&key)),
        "{report:?}"
    );

    // The case page says what became of each of the case's mails.
    let page = b.get(&format!("/desk/cases/{case_id}")).await;
    let states: Vec<&str> = page
        .body
        .split("class=\"mail-state")
        .skip(1)
        .map(|s| &s[..s.find("</p>").unwrap()])
        .collect();
    assert_eq!(states.len(), 3, "{}", page.body);
    assert_eq!(
        states
            .iter()
            .filter(|s| s.contains("送信状況：送信済み（2026-"))
            .count(),
        2,
        "{states:?}"
    );
    assert!(
        states
            .iter()
            .any(|s| s.starts_with(" failed") && s.contains("送信できませんでした")),
        "{states:?}"
    );
    assert!(!page.body.contains("送信状況：送信待ち"), "{states:?}");
    let received = smtp.state.received.lock().unwrap().clone();
    let mail = received
        .iter()
        .find(|m| m.raw().contains("consultation.ics"))
        .expect("the consultation mail arrived");
    assert_eq!(mail.to, ["taro@example.jp"]);
    let parsed = mail.parsed();
    assert_eq!(
        parsed.subject(),
        Some("【くじらと。】移住相談の日時のご案内")
    );
    let text = parsed.body_text(0).unwrap();
    assert!(text.contains("柏崎 太郎 様"));
    assert!(text.contains("2026年12月10日（木） 14:00〜15:30（90分）"));
    assert!(text.contains("柏崎市役所 2階 相談室") && text.contains("印鑑は不要です"));
    let ics = parsed
        .attachments()
        .find(|a| a.attachment_name() == Some("consultation.ics"))
        .expect("an .ics attachment");
    let ics = String::from_utf8_lossy(ics.contents()).replace("\r\n ", "");
    for line in [
        "BEGIN:VCALENDAR",
        "METHOD:PUBLISH",
        "DTSTART:20261210T050000Z",
        "DTEND:20261210T063000Z",
        "LOCATION:柏崎市役所 2階 相談室",
    ] {
        assert!(ics.contains(line), "{line} in {ics}");
    }
    assert!(ics.contains("UID:consultation-"));
}
