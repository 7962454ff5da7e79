//! The tour rules: the reminder three days before (eligibility from the sign-up
//! time, a reminder at promotion, never after the start) and the thank-you the day
//! after (to those who came, or without check-in data to every confirmed party),
//! rendered and sent through the real mailer to a real SMTP server.

mod mail_support;
mod rules_support;

use kujira_config::RuleName;
use kujira_scheduler::rules::{keys, templates};
use rules_support::*;

#[tokio::test]
async fn the_reminder_goes_at_its_moment_to_parties_signed_up_before_it() {
    let w = World::new().await;
    // Friday 2026-12-04 10:00–16:00: the reminder's moment is Tuesday 12-01 10:00.
    let tour = w
        .tour(
            jst("2026-12-04T10:00"),
            jst("2026-12-04T16:00"),
            5,
            jst("2026-11-01T09:00"),
        )
        .await;
    let (early, _) = w.sign_up(tour, jst("2026-11-20T12:00")).await;
    let just_before = w
        .sign_up(
            tour,
            jst("2026-12-01T09:59")
                .checked_add_signed(chrono::Duration::seconds(59))
                .unwrap(),
        )
        .await
        .0;

    // Before the moment: nothing.
    let r = w.run(RuleName::TourReminder, jst("2026-12-01T09:59")).await;
    assert!(r.queued.is_empty(), "{r:?}");

    let at = jst("2026-12-01T10:00");
    let r = w.run(RuleName::TourReminder, at).await;
    let mut expected = vec![
        keys::tour_reminder(tour, early),
        keys::tour_reminder(tour, just_before),
    ];
    expected.sort();
    let mut queued = r.queued.clone();
    queued.sort();
    assert_eq!(queued, expected);

    // Just after the moment: the party has its confirmation, and no stale reminder.
    let (just_after, _) = w
        .sign_up(
            tour,
            at.checked_add_signed(chrono::Duration::seconds(1)).unwrap(),
        )
        .await;
    let r = w.run(RuleName::TourReminder, jst("2026-12-01T10:01")).await;
    assert!(r.queued.is_empty(), "{r:?}");
    let r = w.run(RuleName::TourReminder, jst("2026-12-03T10:00")).await;
    assert!(r.queued.is_empty(), "{r:?}");
    assert!(
        !w.outbox_keys()
            .await
            .contains(&keys::tour_reminder(tour, just_after))
    );

    // Sent: to the party's address, a follow-up with its one-click unsubscribe.
    let smtp = SmtpServer::started();
    w.clock.set(jst("2026-12-01T10:05"));
    let sent = w.deliver(&w.mailer(smtp.port)).await;
    assert_eq!(sent.sent.len(), 2, "{sent:?}");
    let mail = &smtp.received()[0];
    let text = text_of(mail);
    assert!(text.contains(&format!("{APPLICANT_NAME} 様")), "{text}");
    assert!(text.contains("2026年12月4日（金）10:00〜16:00"), "{text}");
    assert!(text.contains("JR柏崎駅 改札前"), "{text}");
    assert!(
        text.contains("https://kujira.example.jp/signups/"),
        "{text}"
    );
    let subject = subject_of(mail);
    assert!(subject.contains("親子で体験") && !subject.contains(APPLICANT_NAME));
    assert!(mail.header("List-Unsubscribe").is_some());
}

#[tokio::test]
async fn a_party_promoted_after_the_moment_gets_one_reminder_at_promotion_and_never_after_the_start()
 {
    let w = World::new().await;
    let tour = w
        .tour(
            jst("2026-12-04T10:00"),
            jst("2026-12-04T16:00"),
            1,
            jst("2026-11-01T09:00"),
        )
        .await;
    let (first, _) = w.sign_up(tour, jst("2026-11-20T12:00")).await;
    let (waiting, _) = w.sign_up(tour, jst("2026-11-21T12:00")).await;
    let r = w.run(RuleName::TourReminder, jst("2026-12-01T10:00")).await;
    assert_eq!(r.queued, [keys::tour_reminder(tour, first)]);

    // The first party cancels on Wednesday afternoon; the waiting one is promoted.
    w.cancel_sign_up(tour, first, jst("2026-12-02T15:00")).await;
    // The minute sweep after the promotion sends its reminder.
    let r = w.run(RuleName::TourReminder, jst("2026-12-02T15:01")).await;
    assert_eq!(r.queued, [keys::tour_reminder(tour, waiting)]);
    let r = w.run(RuleName::TourReminder, jst("2026-12-03T10:00")).await;
    assert!(r.queued.is_empty(), "one reminder per party: {r:?}");
    assert_eq!(w.keys_of(templates::TOUR_REMINDER).await.len(), 2);

    // Another tour: a promotion after its start is impossible, and a reminder whose
    // moment passed while the service was down is not sent once the tour started.
    let late = w
        .tour(
            jst("2026-12-10T09:00"),
            jst("2026-12-10T12:00"),
            3,
            jst("2026-11-01T09:00"),
        )
        .await;
    w.sign_up(late, jst("2026-11-20T12:00")).await;
    let r = w.run(RuleName::TourReminder, jst("2026-12-10T09:00")).await;
    assert!(r.queued.is_empty(), "{r:?}");
    let r = w.run(RuleName::TourReminder, jst("2026-12-09T10:00")).await;
    assert_eq!(r.queued.len(), 1, "still in time the day before: {r:?}");
}

#[tokio::test]
async fn the_thank_you_goes_the_day_after_to_those_who_came_with_the_feedback_link() {
    let w = World::new().await;
    let config = w.config.clone();
    // Without check-in data: every confirmed party.
    let plain = w
        .tour(
            jst("2026-12-04T10:00"),
            jst("2026-12-04T16:00"),
            5,
            jst("2026-11-01T09:00"),
        )
        .await;
    let (p1, _) = w.sign_up(plain, jst("2026-11-20T12:00")).await;
    let (p2, _) = w.sign_up(plain, jst("2026-11-20T13:00")).await;
    let (cancelled, _) = w.sign_up(plain, jst("2026-11-20T14:00")).await;
    w.cancel_sign_up(plain, cancelled, jst("2026-11-25T09:00"))
        .await;
    // With check-in: only those who came.
    let checked = w
        .tour(
            jst("2026-12-04T10:00"),
            jst("2026-12-04T16:00"),
            5,
            jst("2026-11-01T09:00"),
        )
        .await;
    let (came, _) = w.sign_up(checked, jst("2026-11-20T12:00")).await;
    let (no_show, _) = w.sign_up(checked, jst("2026-11-20T13:00")).await;
    w.attendance(checked, came, true, jst("2026-12-04T09:50"))
        .await;
    w.attendance(checked, no_show, false, jst("2026-12-04T10:30"))
        .await;

    let r = w.run(RuleName::TourThankYou, jst("2026-12-05T09:59")).await;
    assert!(r.queued.is_empty(), "not before the day after at 10:00");
    let r = w.run(RuleName::TourThankYou, jst("2026-12-05T10:00")).await;
    let mut queued = r.queued.clone();
    queued.sort();
    let mut expected = vec![
        keys::tour_thank_you(plain, p1),
        keys::tour_thank_you(plain, p2),
        keys::tour_thank_you(checked, came),
    ];
    expected.sort();
    assert_eq!(queued, expected);

    let smtp = SmtpServer::started();
    w.clock.set(jst("2026-12-05T10:01"));
    w.deliver(&w.mailer(smtp.port)).await;
    let mails = smtp.received();
    assert_eq!(mails.len(), 3);
    let text = text_of(&mails[0]);
    let link = kujira_tours::mail::feedback_link(&config, plain, p1);
    let any_link = [
        link,
        kujira_tours::mail::feedback_link(&config, plain, p2),
        kujira_tours::mail::feedback_link(&config, checked, came),
    ];
    assert!(any_link.iter().any(|l| text.contains(l)), "{text}");
    assert!(subject_of(&mails[0]).contains("ご参加ありがとうございました"));

    // A week later it is too late to thank anyone; nothing new either way.
    let r = w.run(RuleName::TourThankYou, jst("2026-12-12T10:00")).await;
    assert!(r.queued.is_empty());
}

#[tokio::test]
async fn a_tour_moved_a_week_later_moves_its_reminder_with_it() {
    let w = World::new().await;
    let tour = w
        .tour(
            jst("2026-12-04T10:00"),
            jst("2026-12-04T16:00"),
            5,
            jst("2026-11-01T09:00"),
        )
        .await;
    let (party, _) = w.sign_up(tour, jst("2026-11-20T12:00")).await;
    // Staff move it to Friday 12-11: the reminder's moment becomes Tuesday 12-08.
    w.move_tour(
        tour,
        jst("2026-12-11T10:00"),
        jst("2026-12-11T16:00"),
        5,
        jst("2026-11-25T09:00"),
    )
    .await;

    let r = w.run(RuleName::TourReminder, jst("2026-12-01T10:00")).await;
    assert!(r.queued.is_empty(), "a reminder for the old date: {r:?}");
    let r = w.run(RuleName::TourReminder, jst("2026-12-08T10:00")).await;
    assert_eq!(r.queued, vec![keys::tour_reminder(tour, party)]);
}
