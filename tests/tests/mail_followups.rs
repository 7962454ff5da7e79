//! What the mailer decides at send time: quiet hours, the person's state (erased,
//! suspended, opted out, bouncing), bounces, the routing and subject it records, and
//! the sender's display name. Real PostgreSQL, real SMTP server, a `FixedClock`.

mod mail_support;

use chrono::Duration;
use kujira_domain::mail::{Audience, MailKind};
use kujira_domain::person::{OptOutVia, PersonCommand, PersonEvent};
use kujira_scheduler::{CancelReason, DeliveryStatus};
use mail_parser::MimeHeaders;
use mail_support::*;

#[tokio::test]
async fn a_follow_up_due_at_21_waits_until_08_and_a_transactional_mail_goes_at_once() {
    let w = World::new().await;
    let smtp = SmtpServer::started();
    let mailer = w.mailer(smtp.port);
    w.clock.set(tokyo("2026-12-01T21:00:00+09:00"));
    let p = w.person().await;
    w.follow_up(p, "k/follow-up").await;
    w.receipt(p, "k/receipt").await;
    w.staff_notice(p, "k/staff", MailKind::FollowUp).await;

    let r = mailer.deliver_due().await.unwrap();
    assert_eq!(r.held, vec!["k/follow-up".to_owned()]);
    let mut sent = r.sent.clone();
    sent.sort();
    assert_eq!(sent, vec!["k/receipt".to_owned(), "k/staff".to_owned()]);
    let held = w.delivery("k/follow-up").await;
    assert_eq!(
        (
            held.status,
            held.attempts,
            held.next_attempt_at,
            held.last_error
        ),
        (
            DeliveryStatus::Pending,
            0,
            Some(tokyo("2026-12-02T08:00:00+09:00")),
            None
        ),
        "held: not an attempt, not a failure"
    );

    // Still night: nothing goes, nothing is counted.
    w.clock.set(tokyo("2026-12-02T07:59:00+09:00"));
    let r = mailer.deliver_due().await.unwrap();
    assert_eq!((r.attempted(), r.held.len()), (0, 0), "{r:?}");
    assert!(smtp.received_by(&address_of(p)).len() == 1);

    // The window opens: the follow-up goes, once.
    w.clock.set(tokyo("2026-12-02T08:00:00+09:00"));
    let r = mailer.deliver_due().await.unwrap();
    assert_eq!(r.sent, vec!["k/follow-up".to_owned()]);
    let d = w.delivery("k/follow-up").await;
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Sent, 1));
    assert_eq!(d.sent_at, Some(tokyo("2026-12-02T08:00:00+09:00")));
    assert_eq!(smtp.received_by(&address_of(p)).len(), 2);
}

#[tokio::test]
async fn quiet_hours_turned_off_hold_nothing() {
    let mut w = World::new().await;
    w.config.quiet_hours = None;
    let smtp = SmtpServer::started();
    w.clock.set(tokyo("2026-12-01T23:30:00+09:00"));
    let p = w.person().await;
    w.follow_up(p, "k/night").await;
    let r = w.mailer(smtp.port).deliver_due().await.unwrap();
    assert_eq!((r.sent, r.held), (vec!["k/night".to_owned()], vec![]));
}

#[tokio::test]
async fn the_outbox_copies_the_routing_and_records_the_subject_at_send_time() {
    let w = World::new().await;
    let smtp = SmtpServer::started();
    let p = w.person().await;
    w.follow_up(p, "k/route").await;
    w.staff_notice(p, "k/desk", MailKind::Transactional).await;
    let d = w.delivery("k/route").await;
    assert_eq!(
        (d.person_id, d.audience, d.kind, d.subject.as_deref()),
        (Some(p), Some(Audience::Applicant), MailKind::FollowUp, None)
    );
    let d = w.delivery("k/desk").await;
    assert_eq!(
        (d.person_id, d.audience, d.kind),
        (Some(p), Some(Audience::Staff), MailKind::Transactional)
    );
    w.mailer(smtp.port).deliver_due().await.unwrap();
    let all = kujira_scheduler::deliveries_for_person(&w.db.pool, p)
        .await
        .unwrap();
    let sent: Vec<(String, Option<String>, bool)> = all
        .iter()
        .map(|d| (d.key.clone(), d.subject.clone(), d.sent_at.is_some()))
        .collect();
    assert_eq!(
        sent,
        vec![
            (
                "k/route".to_owned(),
                Some("【くじらと。】その後いかがですか".to_owned()),
                true
            ),
            (
                "k/desk".to_owned(),
                Some("【くじらと。】フォローアップの時期です".to_owned()),
                true
            ),
        ]
    );
}

#[tokio::test]
async fn an_erased_person_gets_no_mail_and_staff_get_none_about_them() {
    let w = World::new().await;
    let smtp = SmtpServer::started();
    let p = w.person().await;
    w.receipt(p, "k/receipt").await;
    w.staff_notice(p, "k/staff", MailKind::Transactional).await;
    // Erased after the mails were queued, before they were sent: the facts say so,
    // and the key is gone.
    w.on_person(p, PersonCommand::Erase { rule: None }).await;
    w.store.vault().destroy(p).await.unwrap();

    let r = w.mailer(smtp.port).deliver_due().await.unwrap();
    let mut cancelled = r.cancelled.clone();
    cancelled.sort();
    assert_eq!(
        cancelled,
        vec!["k/receipt".to_owned(), "k/staff".to_owned()]
    );
    assert!(r.failed.is_empty(), "cancelled is not a failure");
    for key in ["k/receipt", "k/staff"] {
        let d = w.delivery(key).await;
        assert_eq!(
            (d.status, d.cancel_reason, d.cancelled_at.is_some()),
            (DeliveryStatus::Cancelled, Some(CancelReason::Erased), true)
        );
    }
    assert!(smtp.received().is_empty());
    let status = kujira_scheduler::outbox_status_at(&w.db.pool, w.clock_now())
        .await
        .unwrap();
    assert_eq!((status.pending, status.failed, status.cancelled), (0, 0, 2));
    // Final: later rounds leave it alone.
    w.clock.advance(Duration::days(2));
    assert_eq!(
        w.mailer(smtp.port).deliver_due().await.unwrap().attempted(),
        0
    );
}

#[tokio::test]
async fn a_key_destroyed_before_the_erasure_is_recorded_cancels_too() {
    let w = World::new().await;
    let smtp = SmtpServer::started();
    let p = w.person().await;
    w.receipt(p, "k/receipt").await;
    w.store.vault().destroy(p).await.unwrap();
    let r = w.mailer(smtp.port).deliver_due().await.unwrap();
    assert_eq!(r.cancelled, vec!["k/receipt".to_owned()]);
    assert_eq!(
        w.delivery("k/receipt").await.cancel_reason,
        Some(CancelReason::Erased)
    );
}

#[tokio::test]
async fn a_suspended_person_gets_no_mail_but_the_desk_still_hears_about_them() {
    let w = World::new().await;
    let smtp = SmtpServer::started();
    let p = w.person().await;
    w.on_person(p, PersonCommand::Suspend).await;
    w.receipt(p, "k/receipt").await;
    w.follow_up(p, "k/follow-up").await;
    w.staff_notice(p, "k/staff", MailKind::Transactional).await;

    let r = w.mailer(smtp.port).deliver_due().await.unwrap();
    assert_eq!(r.sent, vec!["k/staff".to_owned()]);
    for key in ["k/receipt", "k/follow-up"] {
        assert_eq!(
            w.delivery(key).await.cancel_reason,
            Some(CancelReason::Suspended),
            "{key}"
        );
    }
    assert!(smtp.received_by(&address_of(p)).is_empty());

    // Lifted: new mail goes again.
    w.on_person(p, PersonCommand::LiftSuspension).await;
    w.receipt(p, "k/receipt-2").await;
    assert_eq!(
        w.mailer(smtp.port).deliver_due().await.unwrap().sent,
        vec!["k/receipt-2".to_owned()]
    );
}

#[tokio::test]
async fn an_opt_out_stops_follow_ups_but_not_transactional_mail() {
    let w = World::new().await;
    let smtp = SmtpServer::started();
    let p = w.person().await;
    w.follow_up(p, "k/follow-up").await;
    w.receipt(p, "k/receipt").await;
    // The person changes their mind after the follow-up was queued.
    kujira_scheduler::set_follow_ups_opted_out(
        &w.store,
        p,
        true,
        OptOutVia::Staff,
        "staff:1",
        w.clock_now(),
    )
    .await
    .unwrap();

    let r = w.mailer(smtp.port).deliver_due().await.unwrap();
    assert_eq!(r.sent, vec!["k/receipt".to_owned()]);
    assert_eq!(r.cancelled, vec!["k/follow-up".to_owned()]);
    assert_eq!(
        w.delivery("k/follow-up").await.cancel_reason,
        Some(CancelReason::OptedOut)
    );
    let received = smtp.received_by(&address_of(p));
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].header("List-Unsubscribe"), None);
}

#[tokio::test]
async fn a_follow_up_carries_the_one_click_unsubscribe_and_a_footer() {
    let w = World::new().await;
    let smtp = SmtpServer::started();
    let p = w.person().await;
    w.follow_up(p, "k/follow-up").await;
    w.mailer(smtp.port).deliver_due().await.unwrap();
    let m = &smtp.received_by(&address_of(p))[0];
    let links = kujira_scheduler::UnsubscribeLinks::from_config(&w.config);
    let url = links.url(p);
    assert!(url.starts_with("https://kujira.example.jp/unsubscribe/"));
    assert_eq!(m.header("List-Unsubscribe"), Some(format!("<{url}>")));
    assert_eq!(
        m.header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    let parsed = m.parsed();
    let text = parsed.body_text(0).unwrap().replace("\r\n", "\n");
    assert!(text.contains(&format!(
        "配信停止はこちら（ご案内メールが不要な場合）：\n{url}"
    )));
    let html = parsed.body_html(0).unwrap();
    assert!(html.contains(&format!("href=\"{url}\"")), "{html}");
    assert!(html.contains("配信停止はこちら"));
}

#[tokio::test]
async fn a_5xx_marks_the_address_as_bouncing_until_the_desk_clears_it() {
    let w = World::new().await;
    let smtp = SmtpServer::started();
    let mailer = w.mailer(smtp.port);
    let p = w.person().await;
    smtp.state.unknown.lock().unwrap().push(address_of(p));
    w.follow_up(p, "k/first").await;

    let r = mailer.deliver_due().await.unwrap();
    assert_eq!(r.failed, vec!["k/first".to_owned()]);
    let d = w.delivery("k/first").await;
    assert_eq!(
        d.status,
        DeliveryStatus::Failed,
        "rejected for good stays failed"
    );
    let events = w.person_events(p).await;
    assert!(
        matches!(events.as_slice(), [PersonEvent::AddressBounced(b)]
            if b.code == 550 && b.delivery_key == "k/first" && b.person_id == p),
        "{events:?}"
    );

    // Follow-ups stop for the person; transactional mail still tries.
    smtp.state.unknown.lock().unwrap().clear();
    w.follow_up(p, "k/second").await;
    w.receipt(p, "k/receipt").await;
    let r = mailer.deliver_due().await.unwrap();
    assert_eq!(r.cancelled, vec!["k/second".to_owned()]);
    assert_eq!(r.sent, vec!["k/receipt".to_owned()]);
    assert_eq!(
        w.delivery("k/second").await.cancel_reason,
        Some(CancelReason::Bouncing)
    );

    // The desk corrects the address and clears the mark: follow-ups go again.
    let cleared = kujira_scheduler::clear_bounce(&w.store, p, "staff:7", w.clock_now())
        .await
        .unwrap();
    assert!(cleared);
    assert!(
        !kujira_scheduler::clear_bounce(&w.store, p, "staff:7", w.clock_now())
            .await
            .unwrap(),
        "clearing twice records one fact"
    );
    assert!(matches!(
        w.person_events(p).await.last(),
        Some(PersonEvent::BounceCleared(c)) if c.person_id == p
    ));
    w.follow_up(p, "k/third").await;
    assert_eq!(
        mailer.deliver_due().await.unwrap().sent,
        vec!["k/third".to_owned()]
    );
}

#[tokio::test]
async fn a_rejected_staff_mail_marks_no_one() {
    let w = World::new().await;
    let smtp = SmtpServer::started();
    smtp.state
        .unknown
        .lock()
        .unwrap()
        .push("concierge@example.jp".into());
    let p = w.person().await;
    w.staff_notice(p, "k/staff", MailKind::Transactional).await;
    let r = w.mailer(smtp.port).deliver_due().await.unwrap();
    assert_eq!(r.failed, vec!["k/staff".to_owned()]);
    assert!(w.person_events(p).await.is_empty());
}

#[tokio::test]
async fn the_sender_s_display_name_from_mail_from_is_shown_rfc2047_encoded() {
    let mut w = World::new().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_string_lossy().into_owned();
    let smtp = SmtpServer::started();
    let smtp_url = format!("smtp://127.0.0.1:{}", smtp.port);
    w.config = kujira_config::Config::from_lookup(|k| match k {
        "KUJIRA_DATA_DIR" => Some(d.clone()),
        "KUJIRA_SECRET" => Some("test-secret-test-secret-test-secret!".into()),
        "KUJIRA_MASTER_KEY" => Some("a3VqaXJhLXRlc3QtbWFzdGVyLWtleS0zMi1ieXRlcyE=".into()),
        "KUJIRA_PUBLIC_URL" => Some("https://kujira.example.jp".into()),
        "KUJIRA_SMTP_URL" => Some(smtp_url.clone()),
        "KUJIRA_MAIL_FROM" => Some("くじらと。 <noreply@city.example.jp>".into()),
        _ => None,
    })
    .unwrap();
    let mailer = kujira_scheduler::Mailer::from_config(
        w.store.clone(),
        &w.config,
        std::sync::Arc::new(w.clock.clone()),
    )
    .unwrap()
    .with_renderer(std::sync::Arc::new(NoteTemplates));
    let p = w.person().await;
    w.receipt(p, "k/from").await;
    assert_eq!(mailer.deliver_due().await.unwrap().sent.len(), 1);
    let m = &smtp.received()[0];
    let from = m.header("From").unwrap();
    assert!(from.starts_with("=?utf-8?b?"), "{from}");
    assert!(from.ends_with("<noreply@city.example.jp>"), "{from}");
    let parsed = m.parsed();
    let sender = parsed.from().unwrap().first().unwrap();
    assert_eq!(
        (sender.name(), sender.address()),
        (Some("くじらと。"), Some("noreply@city.example.jp"))
    );
    assert!(parsed.message_id().unwrap().ends_with("@city.example.jp"));
    assert!(parsed.content_type().is_some());
}
