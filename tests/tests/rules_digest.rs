//! The concierge digest: business days only (no digest on a weekend or a public
//! holiday, none for a past day), each concierge's cases and the unassigned ones
//! (未割り当て) in everyone's, tours of the coming week, references and desk links
//! but no applicant's name, and no mail for a concierge with nothing to report.

mod mail_support;
mod rules_support;

use kujira_config::RuleName;
use kujira_domain::casework::CaseCommand;
use kujira_domain::inquiry::Channel;
use kujira_scheduler::rules::{keys, templates};
use rules_support::*;

#[tokio::test]
async fn no_digest_on_a_weekend_or_a_holiday_and_none_for_a_past_day() {
    let w = World::new().await;
    // Something for everyone: an unassigned new case.
    w.case(jst("2026-11-20T12:00"), None).await;
    // Saturday, Sunday, and Monday 11-23 (勤労感謝の日).
    for at in [
        "2026-11-21T08:30",
        "2026-11-22T08:30",
        "2026-11-23T08:30",
        "2026-12-29T08:30", // the year-end closure
    ] {
        let r = w.run(RuleName::Digest, jst(at)).await;
        assert!(r.queued.is_empty(), "{at}: {r:?}");
    }
    // Tuesday 11-24, before 08:30: today's is not due yet, and yesterday's (a
    // holiday anyway) or last Friday's is never sent late.
    let r = w.run(RuleName::Digest, jst("2026-11-24T08:29")).await;
    assert!(r.queued.is_empty(), "{r:?}");
    let r = w.run(RuleName::Digest, jst("2026-11-24T08:30")).await;
    assert_eq!(r.queued.len(), 2, "{r:?}");
    assert!(
        r.queued
            .contains(&keys::digest(date("2026-11-24"), w.a().user_id))
    );
    // Later the same day (a catch-up): today's is still today's, and sent once.
    let r = w.run(RuleName::Digest, jst("2026-11-24T15:00")).await;
    assert!(r.queued.is_empty(), "{r:?}");
    assert_eq!(w.keys_of(templates::DIGEST).await.len(), 2);
}

#[tokio::test]
async fn each_concierge_gets_their_own_cases_and_the_unassigned_ones_and_nobody_gets_an_empty_one()
{
    let w = World::new().await;
    let a = w.a().user_id;
    // Tuesday 2026-12-01 08:30; the previous digest was Monday 11-30 08:30.
    let mine_new = w.case(jst("2026-11-30T12:00"), Some(a)).await;
    let unassigned_new = w.case(jst("2026-11-30T18:00"), None).await;
    // Opened Wednesday 11-25, never contacted: over 3 business days by Tuesday.
    let silent = w.case(jst("2026-11-25T09:00"), Some(a)).await;
    let overdue = w.case(jst("2026-11-02T10:00"), Some(a)).await;
    w.contact(overdue, jst("2026-11-02T11:00")).await;
    w.work(
        overdue,
        CaseCommand::SetNextAction {
            due: Some(date("2026-11-27")),
        },
        jst("2026-11-02T11:00"),
    )
    .await;
    // Opened 10-31, contacted then; its first follow-up came due on 11-30.
    let follow = w.case(jst("2026-10-31T09:00"), Some(a)).await;
    w.contact(follow, jst("2026-10-31T10:00")).await;

    let at = jst("2026-12-01T08:30");
    let r = w.run(RuleName::Digest, at).await;
    // 馬場 holds nothing, but the unassigned case is everyone's.
    assert_eq!(r.queued.len(), 2, "{r:?}");

    let smtp = SmtpServer::started();
    w.clock.set(jst("2026-12-01T08:31"));
    w.deliver(&w.mailer(smtp.port)).await;
    let to_a = smtp.received_by("aoki@city.example.jp");
    assert_eq!(to_a.len(), 1);
    let text = text_of(&to_a[0]);
    let url = |c: Case| format!("https://kujira.example.jp/desk/cases/{}", c.id);
    for (what, c) in [
        ("new", mine_new),
        ("unassigned", unassigned_new),
        ("no first contact", silent),
        ("past next action", overdue),
        ("follow-up due", follow),
    ] {
        assert!(text.contains(&url(c)), "{what} missing:\n{text}");
    }
    assert!(
        text.contains("新しい案件（前回のお知らせ以降）（担当 1件）"),
        "{text}"
    );
    assert!(text.contains("（未割り当て 1件）"), "{text}");
    assert!(text.contains("3営業日以内に連絡していない案件"), "{text}");
    assert!(text.contains("次回対応日 2026年11月27日（金）"), "{text}");
    assert!(!text.contains(APPLICANT_NAME), "no applicant name:\n{text}");
    let subject = subject_of(&to_a[0]);
    assert!(subject.contains("2026年12月1日（火）"), "{subject}");
    let to_b = text_of(&smtp.received_by("baba@city.example.jp")[0]);
    assert!(to_b.contains(&url(unassigned_new)) && !to_b.contains(&url(mine_new)));

    // Wednesday: everything assigned, no tours this week: 馬場 gets nothing.
    w.work(
        unassigned_new,
        CaseCommand::Assign { concierge: Some(a) },
        jst("2026-12-01T09:00"),
    )
    .await;
    let r = w.run(RuleName::Digest, jst("2026-12-02T08:30")).await;
    assert_eq!(
        r.queued,
        [keys::digest(date("2026-12-02"), a)],
        "a concierge with nothing gets no mail"
    );
}

#[tokio::test]
async fn a_case_the_desk_entered_does_not_wait_for_a_first_contact() {
    // Staff who enter a case at a fair booth or on the phone have spoken with the
    // person: the digest does not list it as uncontacted, as the desk's board does
    // not flag it.
    let w = World::new().await;
    let a = w.a().user_id;
    let web = w.case(jst("2026-11-25T09:00"), Some(a)).await;
    let person = w.store.vault().new_person().await.unwrap();
    let fair = w
        .case_for(person, jst("2026-11-25T10:00"), Some(a), Channel::Desk)
        .await;
    let r = w.run(RuleName::Digest, jst("2026-12-01T08:30")).await;
    assert_eq!(r.queued, [keys::digest(date("2026-12-01"), a)]);
    let smtp = SmtpServer::started();
    w.clock.set(jst("2026-12-01T08:31"));
    w.deliver(&w.mailer(smtp.port)).await;
    let text = text_of(&smtp.received_by("aoki@city.example.jp")[0]);
    let url = |c: Case| format!("https://kujira.example.jp/desk/cases/{}", c.id);
    assert!(text.contains("3営業日以内に連絡していない案件"), "{text}");
    assert!(text.contains(&url(web)), "{text}");
    assert!(!text.contains(&url(fair)), "{text}");
}

#[tokio::test]
async fn the_digest_shows_how_full_the_tours_of_the_week_are() {
    let w = World::new().await;
    let tour = w
        .tour(
            jst("2026-12-05T10:00"),
            jst("2026-12-05T16:00"),
            2,
            jst("2026-11-01T09:00"),
        )
        .await;
    for h in ["10", "11", "12"] {
        w.sign_up(tour, jst(&format!("2026-11-20T{h}:00"))).await;
    }
    // Far away: not this week.
    w.tour(
        jst("2026-12-20T10:00"),
        jst("2026-12-20T16:00"),
        2,
        jst("2026-11-01T09:00"),
    )
    .await;
    let r = w.run(RuleName::Digest, jst("2026-12-01T08:30")).await;
    assert_eq!(r.queued.len(), 2, "tours are news for everyone: {r:?}");
    let smtp = SmtpServer::started();
    w.clock.set(jst("2026-12-01T08:31"));
    w.deliver(&w.mailer(smtp.port)).await;
    let text = text_of(&smtp.received_by("aoki@city.example.jp")[0]);
    assert!(text.contains("今後7日間のツアー"), "{text}");
    assert!(
        text.contains("参加確定 2組／定員2組（4名）・満席・キャンセル待ち 1組"),
        "{text}"
    );
    assert!(
        text.contains(&format!("https://kujira.example.jp/desk/tours/{tour}")),
        "{text}"
    );
    assert_eq!(text.matches("親子で体験").count(), 1, "{text}");
}
