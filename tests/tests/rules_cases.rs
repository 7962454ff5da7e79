//! The case rules: nurture follow-ups at 30 and 90 days and the reset of their
//! clock, a contact logged a moment ago winning over the projection, quiet hours at
//! send time, the post-move check-in with the city's community text, and the
//! 移住支援金 note to the case's concierge.

mod mail_support;
mod rules_support;

use chrono::Duration;
use kujira_config::RuleName;
use kujira_domain::casework::{CaseCommand, Move};
use kujira_domain::inquiry::{Channel, Stage};
use kujira_scheduler::rules::{keys, templates};
use rules_support::*;

#[tokio::test]
async fn a_person_with_two_open_cases_gets_one_follow_up_not_two() {
    let w = World::new().await;
    let opened = jst("2026-09-01T14:00");
    let web = w.case(opened, None).await;
    // The same person at a fair booth the same afternoon: a second case, not merged.
    let fair = w
        .case_for(web.person, jst("2026-09-01T16:00"), None, Channel::Form)
        .await;
    let other = w.case(opened, None).await;
    let r = w.run(RuleName::Nurture, jst("2026-10-02T10:00")).await;
    let mut queued = r.queued.clone();
    queued.sort();
    let mut expected = vec![
        keys::nurture(web.id, opened, 1),
        keys::nurture(other.id, opened, 1),
    ];
    expected.sort();
    assert_eq!(queued, expected, "one mail for the person of two cases");
    w.outbox_keys().await;
    // The next day the fair case's follow-up is still due on its own clock, but its
    // person heard from the city yesterday.
    let r = w.run(RuleName::Nurture, jst("2026-10-03T10:00")).await;
    assert!(r.queued.is_empty(), "{r:?}");
    assert!(
        !w.keys_of(templates::NURTURE)
            .await
            .iter()
            .any(|k| k.contains(&fair.id.to_string()))
    );
}

#[tokio::test]
async fn nurture_goes_at_30_and_90_days_and_any_contact_or_phase_change_resets_the_clock() {
    let w = World::new().await;
    let opened = jst("2026-09-01T14:00");
    let case = w.case(opened, Some(w.a().user_id)).await;
    let quiet = w.case(opened, None).await;

    let r = w.run(RuleName::Nurture, jst("2026-09-30T10:00")).await;
    assert!(r.queued.is_empty(), "29 days: {r:?}");
    // 30 days after 14:00 is 10-01 14:00: the rule's first run after it, 10-02 10:00.
    let r = w.run(RuleName::Nurture, jst("2026-10-01T23:00")).await;
    assert!(
        r.queued.is_empty(),
        "due, but the rule has not run since: {r:?}"
    );
    let r = w.run(RuleName::Nurture, jst("2026-10-02T10:00")).await;
    let mut queued = r.queued.clone();
    queued.sort();
    let mut expected = vec![
        keys::nurture(case.id, opened, 1),
        keys::nurture(quiet.id, opened, 1),
    ];
    expected.sort();
    assert_eq!(queued, expected);

    // A contact resets the clock of one case; a phase change the other's.
    w.contact(case, jst("2026-10-20T11:00")).await;
    w.work(
        quiet,
        CaseCommand::ChangePhase {
            to: Stage::Considering,
        },
        jst("2026-10-25T11:00"),
    )
    .await;
    // 30 days after the contact: a first follow-up of the new clock.
    let r = w.run(RuleName::Nurture, jst("2026-11-20T10:00")).await;
    assert_eq!(
        r.queued,
        [keys::nurture(case.id, jst("2026-10-20T11:00"), 1)]
    );
    let r = w.run(RuleName::Nurture, jst("2026-11-25T10:00")).await;
    assert_eq!(
        r.queued,
        [keys::nurture(quiet.id, jst("2026-10-25T11:00"), 1)]
    );
    // 90 days after opening: the old clock is gone, so no second follow-up of it.
    let r = w.run(RuleName::Nurture, jst("2026-12-01T10:00")).await;
    assert!(r.queued.is_empty(), "{r:?}");
    // And 90 days after it, the second.
    let r = w.run(RuleName::Nurture, jst("2027-01-19T10:00")).await;
    assert_eq!(
        r.queued,
        [keys::nurture(case.id, jst("2026-10-20T11:00"), 2)]
    );
    // A decided case is not nurtured, nor a closed one.
    let decided = w.case(opened, None).await;
    w.work(
        decided,
        CaseCommand::ChangePhase { to: Stage::Decided },
        opened,
    )
    .await;
    let r = w.run(RuleName::Nurture, jst("2026-10-02T10:00")).await;
    assert!(!r.queued.iter().any(|k| k.contains(&decided.id.to_string())));
}

#[tokio::test]
async fn a_contact_logged_a_moment_ago_wins_over_the_projection() {
    let w = World::new().await;
    let opened = jst("2026-09-01T14:00");
    let case = w.case(opened, None).await;
    let rules = w.rules();
    w.projector.catch_up().await.unwrap();
    let now = jst("2026-10-02T10:00");
    let planned = rules.plan(RuleName::Nurture, now).await.unwrap();
    assert_eq!(planned.len(), 1, "the projection says the follow-up is due");
    // The concierge calls just then.
    w.contact(case, now - Duration::seconds(5)).await;
    let r = rules.queue(planned, now).await.unwrap();
    assert!(r.queued.is_empty(), "{r:?}");
    assert_eq!(r.declined, 1);
    assert!(w.keys_of(templates::NURTURE).await.is_empty());
}

#[tokio::test]
async fn a_follow_up_decided_at_21_00_waits_for_08_00() {
    let w = World::new().await;
    let case = w.case(jst("2026-09-01T14:00"), None).await;
    let at = jst("2026-10-02T21:00");
    let r = w.run(RuleName::Nurture, at).await;
    assert_eq!(r.queued.len(), 1);
    let smtp = SmtpServer::started();
    let mailer = w.mailer(smtp.port);
    w.clock.set(at);
    let report = w.deliver(&mailer).await;
    assert_eq!(report.held.len(), 1, "{report:?}");
    assert!(smtp.received().is_empty());
    w.clock.set(jst("2026-10-03T07:59"));
    assert!(w.deliver(&mailer).await.sent.is_empty());
    w.clock.set(jst("2026-10-03T08:00"));
    let report = w.deliver(&mailer).await;
    assert_eq!(report.sent.len(), 1, "{report:?}");
    let mail = &smtp.received()[0];
    assert_eq!(mail.to, [address_of(case.person)]);
    let text = text_of(mail);
    assert!(text.contains(&format!("{APPLICANT_NAME} 様")), "{text}");
    assert!(text.contains("https://kujira.example.jp/inquiry"), "{text}");
    assert!(!subject_of(mail).contains(APPLICANT_NAME));
    assert!(mail.header("List-Unsubscribe-Post").is_some());
}

#[tokio::test]
async fn the_post_move_check_in_carries_the_city_s_community_text() {
    let w = World::with(|k| {
        (k == "KUJIRA_COMMUNITY_INFO")
            .then(|| "次回の移住者交流会は3月15日（日）、市民プラザで開きます。".into())
    })
    .await;
    let case = w.case(jst("2026-05-01T10:00"), Some(w.a().user_id)).await;
    let moved_at = jst("2026-09-01T15:00");
    w.work(
        case,
        CaseCommand::RecordMove(Move {
            move_in: date("2026-08-25"),
            adults: 2,
            children: 1,
            applies_for_support: false,
        }),
        moved_at,
    )
    .await;
    let r = w.run(RuleName::PostMove, jst("2026-11-29T10:00")).await;
    assert!(r.queued.is_empty(), "89 days: {r:?}");
    let r = w.run(RuleName::PostMove, jst("2026-12-01T10:00")).await;
    assert_eq!(r.queued, [keys::post_move(case.id, moved_at)]);
    let smtp = SmtpServer::started();
    w.clock.set(jst("2026-12-01T10:00"));
    w.deliver(&w.mailer(smtp.port)).await;
    let text = text_of(&smtp.received()[0]);
    assert!(text.contains("移住されて3か月"), "{text}");
    assert!(text.contains("次回の移住者交流会は3月15日（日）"), "{text}");
    // A moved household is not nurtured.
    let r = w.run(RuleName::Nurture, jst("2026-12-01T10:00")).await;
    assert!(r.queued.is_empty(), "{r:?}");
}

#[tokio::test]
async fn the_support_window_note_goes_to_the_case_s_concierge_or_to_all_when_nobody_holds_it() {
    let w = World::new().await;
    let moved = |applies| Move {
        move_in: date("2026-03-10"),
        adults: 2,
        children: 0,
        applies_for_support: applies,
    };
    let held = w.case(jst("2025-10-01T10:00"), Some(w.a().user_id)).await;
    let nobody = w.case(jst("2025-10-01T10:00"), None).await;
    let no_support = w.case(jst("2025-10-01T10:00"), Some(w.a().user_id)).await;
    for (c, applies) in [(held, true), (nobody, true), (no_support, false)] {
        w.work(
            c,
            CaseCommand::RecordMove(moved(applies)),
            jst("2026-03-12T10:00"),
        )
        .await;
    }
    let r = w
        .run(RuleName::SupportWindow, jst("2026-12-09T08:30"))
        .await;
    assert!(r.queued.is_empty(), "not yet nine months: {r:?}");
    let r = w
        .run(RuleName::SupportWindow, jst("2026-12-10T08:30"))
        .await;
    let mut queued = r.queued.clone();
    queued.sort();
    let mut expected = vec![
        keys::support_window(held.id, date("2026-03-10"), w.a().user_id),
        keys::support_window(nobody.id, date("2026-03-10"), w.a().user_id),
        keys::support_window(nobody.id, date("2026-03-10"), w.b().user_id),
    ];
    expected.sort();
    assert_eq!(queued, expected);
    let r = w
        .run(RuleName::SupportWindow, jst("2026-12-11T08:30"))
        .await;
    assert!(r.queued.is_empty(), "once: {r:?}");

    let smtp = SmtpServer::started();
    w.clock.set(jst("2026-12-10T08:31"));
    w.deliver(&w.mailer(smtp.port)).await;
    let to_a = smtp.received_by("aoki@city.example.jp");
    assert_eq!(to_a.len(), 2);
    assert_eq!(smtp.received_by("baba@city.example.jp").len(), 1);
    for m in smtp.received() {
        let text = text_of(&m);
        assert!(!text.contains(APPLICANT_NAME), "no applicant name: {text}");
        assert!(text.contains("2027年3月10日（水）まで"), "{text}");
        assert!(
            text.contains("https://kujira.example.jp/desk/cases/"),
            "{text}"
        );
        assert!(subject_of(&m).contains("移住支援金"));
        assert!(m.header("List-Unsubscribe").is_none(), "staff mail");
    }
    // After the window closed, nothing.
    let late = w.case(jst("2025-01-01T10:00"), None).await;
    w.work(
        late,
        CaseCommand::RecordMove(Move {
            move_in: date("2025-11-01"),
            ..moved(true)
        }),
        jst("2025-11-02T10:00"),
    )
    .await;
    let r = w
        .run(RuleName::SupportWindow, jst("2026-11-02T08:30"))
        .await;
    assert!(
        !r.queued.iter().any(|k| k.contains(&late.id.to_string())),
        "{r:?}"
    );
}
