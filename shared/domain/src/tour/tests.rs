//! Given/when/then tests of the tour aggregate. No database: events in, events out.

use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;

use super::form::SignUpInput;
use super::*;
use crate::values::ValueError;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap()
}

fn tour_id() -> Uuid {
    Uuid::from_u128(0x70)
}

fn sid(n: u128) -> Uuid {
    Uuid::from_u128(0x1000 + n)
}

fn details(capacity: u32, max_people: Option<u32>) -> TourDetails {
    TourDetails {
        title: "親子で体験！柏崎の保育園・学校めぐり".into(),
        kind: TourKind::DayTrip,
        starts_at: t0() + Duration::days(30),
        ends_at: t0() + Duration::days(30) + Duration::hours(7),
        meeting_place: "柏崎駅 改札前".into(),
        capacity_parties: capacity,
        max_people,
        fee_yen: 0,
        deadline: Some(t0() + Duration::days(20)),
        description: "保育園、小学校、住宅、先輩移住者との交流。".into(),
        audience: "子育て世帯".into(),
    }
}

fn scheduled(capacity: u32, max_people: Option<u32>) -> Vec<TourEvent> {
    Tour::decide(
        &TourState::default(),
        &TourCommand::Schedule {
            tour_id: tour_id(),
            details: details(capacity, max_people),
            publish: true,
            at: t0(),
        },
    )
    .unwrap()
}

fn new_sign_up(n: u128, adults: u8, children: u8) -> NewSignUp {
    let input = SignUpInput {
        name: format!("柏崎 太郎{n}"),
        name_kana: "カシワザキ タロウ".into(),
        email: format!("taro{n}@example.jp"),
        email_confirm: None,
        phone: "090-1234-5678".into(),
        prefecture: "東京都".into(),
        adults: adults.to_string(),
        children: children.to_string(),
        children_ages: "5歳".into(),
        transport: "train".into(),
        needs: "卵アレルギー".into(),
        source: "instagram".into(),
        consent: true,
    };
    input
        .validate(sid(n))
        .unwrap()
        .for_person(Uuid::from_u128(1000 + n))
}

fn sign_up(n: u128, adults: u8, children: u8) -> TourCommand {
    TourCommand::SignUp {
        sign_up: new_sign_up(n, adults, children),
        at: t0() + Duration::days(1),
    }
}

fn cancel(n: u128) -> TourCommand {
    TourCommand::CancelSignUp {
        sign_up_id: sid(n),
        by: CancelledBy::Party,
        at: t0() + Duration::days(2),
    }
}

/// Given `history`, decide `command`; return the new events and the state after them.
fn given_when(history: &[TourEvent], command: &TourCommand) -> (Vec<TourEvent>, TourState) {
    let state = Tour::replay(history);
    let events = Tour::decide(&state, command).unwrap();
    let after = events.iter().fold(state, Tour::evolve);
    (events, after)
}

fn given_fails(history: &[TourEvent], command: &TourCommand) -> TourError {
    Tour::decide(&Tour::replay(history), command).unwrap_err()
}

/// Applies commands one after another, keeping every event.
fn history(commands: &[TourCommand], start: Vec<TourEvent>) -> Vec<TourEvent> {
    let mut events = start;
    for c in commands {
        let new = Tour::decide(&Tour::replay(&events), c).unwrap();
        events.extend(new);
    }
    events
}

fn types(events: &[TourEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            serde_json::to_value(e).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[test]
fn scheduling_with_publish_records_both_facts() {
    let events = scheduled(5, None);
    assert_eq!(types(&events), ["TourScheduled", "TourPublished"]);
    let state = Tour::replay(&events);
    assert_eq!(state.status, TourStatus::Published);
    assert_eq!(state.places_left(), 5);
}

#[test]
fn scheduling_refuses_nonsense() {
    let mut d = details(5, None);
    d.ends_at = d.starts_at;
    let cmd = |d: TourDetails| TourCommand::Schedule {
        tour_id: tour_id(),
        details: d,
        publish: false,
        at: t0(),
    };
    assert!(matches!(
        given_fails(&[], &cmd(d)),
        TourError::InvalidSchedule(_)
    ));
    let mut d = details(0, None);
    assert!(matches!(
        given_fails(&[], &cmd(d.clone())),
        TourError::InvalidSchedule(_)
    ));
    d.capacity_parties = 3;
    d.deadline = Some(d.starts_at + Duration::hours(1));
    assert!(matches!(
        given_fails(&[], &cmd(d)),
        TourError::InvalidSchedule(_)
    ));
    assert_eq!(
        given_fails(&scheduled(5, None), &cmd(details(5, None))),
        TourError::AlreadyScheduled
    );
}

#[test]
fn a_party_is_confirmed_while_there_is_room() {
    let (events, state) = given_when(&scheduled(2, None), &sign_up(1, 2, 1));
    assert_eq!(
        types(&events),
        ["TourSignUpReceived", "TourSignUpConfirmed"]
    );
    let TourEvent::TourSignUpReceived(r) = &events[0] else {
        panic!()
    };
    // Head counts and statistics at the top, the person in `personal`.
    let json = serde_json::to_value(&events[0]).unwrap();
    assert_eq!(json["data"]["adults"], 2);
    assert_eq!(json["data"]["prefecture"], "東京都");
    assert_eq!(json["data"]["personal"]["needs"], "卵アレルギー");
    assert!(json["data"].get("email").is_none());
    assert_eq!(
        r.personal.known().unwrap().email.as_str(),
        "taro1@example.jp"
    );
    assert_eq!(state.confirmed_parties(), 1);
    assert_eq!(state.confirmed_people(), 3);
    assert_eq!(state.places_left(), 1);
}

#[test]
fn parties_beyond_capacity_wait_in_order_of_arrival() {
    let events = history(
        &[
            sign_up(1, 1, 0),
            sign_up(2, 1, 0),
            sign_up(3, 2, 2),
            sign_up(4, 1, 0),
        ],
        scheduled(2, None),
    );
    let state = Tour::replay(&events);
    assert_eq!(state.confirmed_parties(), 2);
    let waiting: Vec<Uuid> = state.waitlist().map(|s| s.id).collect();
    assert_eq!(waiting, [sid(3), sid(4)]);
    assert_eq!(state.waitlist_position(sid(4)), Some(2));
    let positions: Vec<u32> = events
        .iter()
        .filter_map(|e| match e {
            TourEvent::TourSignUpWaitlisted(w) => Some(w.position),
            _ => None,
        })
        .collect();
    assert_eq!(positions, [1, 2]);
}

#[test]
fn a_party_is_never_split_by_the_maximum_of_people() {
    // 5 parties, at most 6 people: a family of 4 after 3 people must wait whole.
    let given = history(&[sign_up(1, 2, 1)], scheduled(5, Some(6)));
    let (events, state) = given_when(&given, &sign_up(2, 2, 2));
    assert_eq!(
        types(&events),
        ["TourSignUpReceived", "TourSignUpWaitlisted"]
    );
    assert_eq!(state.confirmed_people(), 3);
    // A smaller party that fits is still confirmed.
    let (events, state) = given_when(&[given, events].concat(), &sign_up(3, 1, 2));
    assert_eq!(
        types(&events),
        ["TourSignUpReceived", "TourSignUpConfirmed"]
    );
    assert_eq!(state.confirmed_people(), 6);
}

#[test]
fn a_party_larger_than_the_tour_is_refused() {
    assert_eq!(
        given_fails(&scheduled(5, Some(4)), &sign_up(1, 3, 2)),
        TourError::PartyTooLarge
    );
}

#[test]
fn the_same_sign_up_twice_records_nothing_new() {
    let given = history(&[sign_up(1, 1, 0)], scheduled(1, None));
    let state = Tour::replay(&given);
    assert_eq!(Tour::decide(&state, &sign_up(1, 1, 0)).unwrap(), vec![]);
}

#[test]
fn sign_ups_close_at_the_deadline() {
    let given = scheduled(5, None);
    let late = TourCommand::SignUp {
        sign_up: new_sign_up(1, 1, 0),
        at: t0() + Duration::days(20),
    };
    assert_eq!(given_fails(&given, &late), TourError::DeadlinePassed);
    let just_before = TourCommand::SignUp {
        sign_up: new_sign_up(1, 1, 0),
        at: t0() + Duration::days(20) - Duration::seconds(1),
    };
    assert!(Tour::decide(&Tour::replay(&given), &just_before).is_ok());
}

#[test]
fn a_tour_that_has_started_refuses_sign_ups() {
    let given = scheduled(5, None);
    let past = TourCommand::SignUp {
        sign_up: new_sign_up(1, 1, 0),
        at: t0() + Duration::days(31),
    };
    assert_eq!(given_fails(&given, &past), TourError::TourStarted);
}

#[test]
fn draft_and_cancelled_tours_refuse_sign_ups() {
    let draft = Tour::decide(
        &TourState::default(),
        &TourCommand::Schedule {
            tour_id: tour_id(),
            details: details(5, None),
            publish: false,
            at: t0(),
        },
    )
    .unwrap();
    assert_eq!(
        given_fails(&draft, &sign_up(1, 1, 0)),
        TourError::NotPublished
    );
    let cancelled = history(
        &[TourCommand::Cancel {
            reason: Some("大雪のため".into()),
            at: t0(),
        }],
        scheduled(5, None),
    );
    assert_eq!(
        given_fails(&cancelled, &sign_up(1, 1, 0)),
        TourError::TourCancelled
    );
    assert_eq!(given_fails(&[], &sign_up(1, 1, 0)), TourError::NotScheduled);
}

#[test]
fn cancelling_a_tour_names_every_party_still_holding_a_place_or_slot() {
    let given = history(
        &[
            sign_up(1, 1, 0),
            sign_up(2, 1, 0),
            sign_up(3, 1, 0),
            cancel(1),
        ],
        scheduled(1, None),
    );
    let (events, state) = given_when(
        &given,
        &TourCommand::Cancel {
            reason: None,
            at: t0() + Duration::days(3),
        },
    );
    let TourEvent::TourCancelled(c) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(c.affected_sign_ups, [sid(2), sid(3)]);
    assert_eq!(state.status, TourStatus::Cancelled);
    assert_eq!(
        given_fails(&[given, events].concat(), &cancel(2)),
        TourError::TourCancelled
    );
}

#[test]
fn cancelling_a_confirmed_party_promotes_the_first_waitlisted_party_that_fits() {
    // Capacity 2 parties, 6 people. 1 (3 people) and 2 (3 people) confirmed;
    // 3 (5 people) waits first, 4 (2 people) waits second.
    let given = history(
        &[
            sign_up(1, 2, 1),
            sign_up(2, 2, 1),
            sign_up(3, 2, 3),
            sign_up(4, 1, 1),
        ],
        scheduled(2, Some(6)),
    );
    let (events, state) = given_when(&given, &cancel(1));
    assert_eq!(
        types(&events),
        ["TourSignUpCancelled", "TourSignUpPromoted"]
    );
    let TourEvent::TourSignUpPromoted(p) = &events[1] else {
        panic!()
    };
    // 3 does not fit (3 + 5 > 6): 4 is promoted, and 3 keeps its turn.
    assert_eq!(p.sign_up_id, sid(4));
    assert_eq!(p.after_cancellation_of, Some(sid(1)));
    assert_eq!(state.waitlist().map(|s| s.id).collect::<Vec<_>>(), [sid(3)]);
    let four = state.sign_up(sid(4)).unwrap();
    assert!(four.is_confirmed());
    assert!(four.promoted_at.is_some());
}

#[test]
fn promotion_follows_arrival_order() {
    let given = history(
        &[
            sign_up(1, 1, 0),
            sign_up(2, 1, 0),
            sign_up(3, 1, 0),
            sign_up(4, 1, 0),
        ],
        scheduled(2, None),
    );
    let (events, _) = given_when(&given, &cancel(2));
    let promoted: Vec<Uuid> = events
        .iter()
        .filter_map(|e| match e {
            TourEvent::TourSignUpPromoted(p) => Some(p.sign_up_id),
            _ => None,
        })
        .collect();
    assert_eq!(promoted, [sid(3)]);
}

#[test]
fn a_waitlisted_party_can_leave_without_promoting_anyone() {
    let given = history(
        &[sign_up(1, 1, 0), sign_up(2, 1, 0), sign_up(3, 1, 0)],
        scheduled(1, None),
    );
    let (events, state) = given_when(&given, &cancel(2));
    assert_eq!(types(&events), ["TourSignUpCancelled"]);
    let TourEvent::TourSignUpCancelled(c) = &events[0] else {
        panic!()
    };
    assert_eq!(c.was, Standing::Waitlisted);
    assert_eq!(state.waitlist_position(sid(3)), Some(1));
    assert_eq!(
        given_fails(&[given, events].concat(), &cancel(2)),
        TourError::SignUpAlreadyCancelled
    );
}

#[test]
fn unknown_sign_ups_cannot_be_cancelled() {
    assert_eq!(
        given_fails(&scheduled(1, None), &cancel(9)),
        TourError::UnknownSignUp
    );
}

#[test]
fn every_sign_up_state_is_rebuilt_from_the_events_alone() {
    let events = history(
        &[
            sign_up(1, 1, 0),
            sign_up(2, 1, 0),
            sign_up(3, 1, 0),
            sign_up(4, 1, 0),
            cancel(1),
        ],
        scheduled(2, None),
    );
    // Through JSON, as they come back from the store.
    let stored: Vec<TourEvent> = events
        .iter()
        .map(|e| serde_json::from_value(serde_json::to_value(e).unwrap()).unwrap())
        .collect();
    assert_eq!(stored, events);
    let state = Tour::replay(&stored);
    let s = |n| state.sign_up(sid(n)).unwrap();
    assert_eq!(s(1).status, SignUpStatus::Cancelled);
    assert_eq!(
        s(1).cancelled.map(|c| (c.0, c.1)),
        Some((Standing::Confirmed, CancelledBy::Party))
    );
    assert_eq!(s(2).status, SignUpStatus::Confirmed);
    assert!(s(2).promoted_at.is_none());
    assert_eq!(s(3).status, SignUpStatus::Confirmed);
    assert!(s(3).promoted_at.is_some());
    assert_eq!(s(4).status, SignUpStatus::Waitlisted);
    assert_eq!(state.waitlist_position(sid(4)), Some(1));
}

#[test]
fn feedback_is_recorded_once_after_the_tour_from_confirmed_parties() {
    let given = history(&[sign_up(1, 1, 0), sign_up(2, 1, 0)], scheduled(1, None));
    let feedback = |n, at| TourCommand::RecordFeedback {
        sign_up_id: sid(n),
        satisfaction: 5,
        comments: Some(
            crate::values::FreeText::parse_multiline("雪の話が参考になりました", 2000).unwrap(),
        ),
        at,
    };
    let after = t0() + Duration::days(31);
    assert_eq!(
        given_fails(&given, &feedback(1, t0() + Duration::days(2))),
        TourError::FeedbackNotOpen
    );
    assert_eq!(
        given_fails(&given, &feedback(2, after)),
        TourError::FeedbackNotAllowed
    );
    let (events, state) = given_when(&given, &feedback(1, after));
    let json = serde_json::to_value(&events[0]).unwrap();
    assert_eq!(json["type"], "TourFeedbackRecorded");
    assert_eq!(json["data"]["satisfaction"], 5);
    assert_eq!(
        json["data"]["personal"]["comments"],
        "雪の話が参考になりました"
    );
    assert_eq!(state.sign_up(sid(1)).unwrap().feedback, Some(5));
    assert_eq!(
        given_fails(&[given, events].concat(), &feedback(1, after)),
        TourError::FeedbackAlreadyRecorded
    );
}

#[test]
fn event_keys_are_unique_per_fact() {
    let events = history(
        &[sign_up(1, 1, 0), sign_up(2, 1, 0), cancel(1)],
        scheduled(1, None),
    );
    let mut keys: Vec<String> = events.iter().map(TourEvent::key).collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n);
}

#[test]
fn the_form_reports_every_fault_in_order() {
    let input = SignUpInput {
        name: "".into(),
        name_kana: "柏崎".into(),
        email: "taro@example.jp".into(),
        email_confirm: Some("jiro@example.jp".into()),
        phone: "12".into(),
        prefecture: "東京".into(),
        adults: "0".into(),
        children: "11".into(),
        children_ages: "".into(),
        transport: "bus".into(),
        needs: "あ".repeat(1001),
        source: "tv".into(),
        consent: false,
    };
    let errors = input.validate(sid(1)).unwrap_err();
    let fields: Vec<&str> = errors.iter().map(|(f, _)| f).collect();
    assert_eq!(
        fields,
        [
            "name",
            "name_kana",
            "email_confirm",
            "phone",
            "prefecture",
            "adults",
            "children",
            "transport",
            "needs",
            "source",
            "consent"
        ]
    );
    assert_eq!(errors.get("email_confirm"), Some(&ValueError::Mismatch));
    assert_eq!(
        errors.get("needs"),
        Some(&ValueError::TooLong { max: 1000 })
    );
    assert_eq!(errors.get("consent"), Some(&ValueError::MustAgree));
}

#[test]
fn the_form_accepts_full_width_counts_and_blank_optionals() {
    let input = SignUpInput {
        name: "柏崎 花子".into(),
        name_kana: "ｶｼﾜｻﾞｷ ﾊﾅｺ".into(),
        email: "hanako@example.jp".into(),
        email_confirm: Some("hanako@example.jp".into()),
        phone: "0257-21-2334".into(),
        prefecture: "新潟県".into(),
        adults: "２".into(),
        consent: true,
        ..SignUpInput::default()
    };
    let s = input.validate(sid(1)).unwrap();
    assert_eq!(
        s.party,
        Party {
            adults: 2,
            children: 0
        }
    );
    assert_eq!(s.personal.name_kana.as_str(), "カシワザキ ハナコ");
    assert_eq!(s.transport, None);
    assert_eq!(s.personal.needs, None);
    assert!(
        s.person_id.is_nil(),
        "the service attributes the sign-up to a person"
    );
}

#[test]
fn check_in_opens_on_the_day_for_confirmed_parties_and_can_be_corrected() {
    let h = history(&[sign_up(1, 2, 1), sign_up(2, 1, 0)], scheduled(1, None));
    let attend = |n: u128, attended: bool, at: DateTime<Utc>| TourCommand::RecordAttendance {
        sign_up_id: sid(n),
        attended,
        at,
    };
    let day = t0() + Duration::days(30) - Duration::hours(1);
    assert_eq!(
        given_fails(&h, &attend(1, true, t0() + Duration::days(25))),
        TourError::AttendanceNotOpen
    );
    assert_eq!(
        given_fails(&h, &attend(2, true, day)),
        TourError::NotConfirmed
    );
    let (came, state) = given_when(&h, &attend(1, true, day));
    assert_eq!(state.sign_up(sid(1)).unwrap().attended, Some(true));
    let h = [h, came].concat();
    assert_eq!(given_fails(&h, &attend(1, true, day)), TourError::NoChange);
    // A mis-click at the door is corrected with a later fact, with its own id.
    let later = day + Duration::minutes(5);
    let (fixed, state) = given_when(&h, &attend(1, false, later));
    assert_eq!(state.sign_up(sid(1)).unwrap().attended, Some(false));
    assert_ne!(fixed[0].key(), h.last().unwrap().key());
}

fn change(d: TourDetails, days: i64) -> TourCommand {
    TourCommand::ChangeDetails {
        details: d,
        at: t0() + Duration::days(days),
    }
}

#[test]
fn given_a_tour_when_staff_change_its_time_then_the_change_names_the_fields() {
    let mut d = details(2, None);
    d.starts_at += Duration::hours(1);
    d.meeting_place = "柏崎市役所 正面玄関".into();
    let (events, state) = given_when(&scheduled(2, None), &change(d.clone(), 1));
    assert_eq!(types(&events), ["TourDetailsChanged"]);
    let TourEvent::TourDetailsChanged(c) = &events[0] else {
        panic!()
    };
    assert_eq!(c.changed, ["starts_at", "meeting_place"]);
    assert_eq!(c.revision, 1);
    assert!(c.concerns_parties());
    assert_eq!(state.details.as_ref(), Some(&d));
    assert_eq!(state.revision, 1);
    // The same details again change nothing.
    let history = [scheduled(2, None), events].concat();
    assert_eq!(given_fails(&history, &change(d, 2)), TourError::NoChange);
}

#[test]
fn given_confirmed_parties_then_capacity_never_drops_below_them() {
    let history = history(&[sign_up(1, 2, 0), sign_up(2, 1, 1)], scheduled(3, None));
    let mut d = details(1, None);
    assert_eq!(
        given_fails(&history, &change(d.clone(), 2)),
        TourError::CapacityBelowConfirmed { confirmed: 2 }
    );
    d.capacity_parties = 2;
    d.max_people = Some(3);
    assert_eq!(
        given_fails(&history, &change(d.clone(), 2)),
        TourError::MaxPeopleBelowConfirmed { confirmed: 4 }
    );
    d.max_people = Some(4);
    let (events, state) = given_when(&history, &change(d, 2));
    assert_eq!(types(&events), ["TourDetailsChanged"]);
    assert_eq!(state.places_left(), 0);
}

#[test]
fn given_a_waiting_list_when_the_capacity_rises_then_waiting_parties_are_promoted_in_order() {
    let history = history(
        &[
            sign_up(1, 1, 0),
            sign_up(2, 2, 0),
            sign_up(3, 1, 0),
            sign_up(4, 1, 0),
        ],
        scheduled(1, None),
    );
    assert_eq!(Tour::replay(&history).waitlist_length(), 3);
    let (events, state) = given_when(&history, &change(details(3, None), 3));
    assert_eq!(
        types(&events),
        [
            "TourDetailsChanged",
            "TourSignUpPromoted",
            "TourSignUpPromoted"
        ]
    );
    let promoted: Vec<(Uuid, Option<Uuid>)> = events
        .iter()
        .filter_map(|e| match e {
            TourEvent::TourSignUpPromoted(p) => Some((p.sign_up_id, p.after_cancellation_of)),
            _ => None,
        })
        .collect();
    assert_eq!(promoted, [(sid(2), None), (sid(3), None)]);
    assert_eq!(state.waitlist().map(|s| s.id).collect::<Vec<_>>(), [sid(4)]);
    assert_eq!(state.waitlist_position(sid(4)), Some(1));
}

#[test]
fn given_a_cancelled_or_started_tour_then_it_cannot_be_edited() {
    let mut d = details(5, None);
    d.title = "変更後のタイトル".into();
    let cancelled = history(
        &[TourCommand::Cancel {
            reason: Some("荒天のため".into()),
            at: t0() + Duration::days(1),
        }],
        scheduled(5, None),
    );
    assert_eq!(
        given_fails(&cancelled, &change(d.clone(), 2)),
        TourError::TourCancelled
    );
    // On the day, after the start.
    assert_eq!(
        given_fails(&scheduled(5, None), &change(d.clone(), 31)),
        TourError::TourStarted
    );
    // Nor moved into the past, nor given nonsense.
    let mut past = d.clone();
    past.starts_at = t0();
    assert!(matches!(
        given_fails(&scheduled(5, None), &change(past, 1)),
        TourError::InvalidSchedule(_)
    ));
    let mut empty = d;
    empty.title = "  ".into();
    assert!(matches!(
        given_fails(&scheduled(5, None), &change(empty, 1)),
        TourError::InvalidSchedule(_)
    ));
}

#[test]
fn promotions_after_a_cancellation_still_name_it_and_old_events_decode() {
    let json = serde_json::json!({
        "type": "TourSignUpPromoted",
        "data": {"sign_up_id": sid(1), "at": t0(), "adults": 1, "children": 0,
                 "after_cancellation_of": sid(2)}
    });
    let TourEvent::TourSignUpPromoted(p) = serde_json::from_value::<TourEvent>(json).unwrap()
    else {
        panic!()
    };
    assert_eq!(p.after_cancellation_of, Some(sid(2)));
}

#[test]
fn a_person_holds_one_party_per_tour_until_they_cancel() {
    // Given person 1001's confirmed party, when the same person signs up again
    // (another sign-up id), then it is refused, naming the sign-up they hold.
    let events = history(&[sign_up(1, 2, 0)], scheduled(5, None));
    let again = TourCommand::SignUp {
        sign_up: new_sign_up(2, 1, 0).for_person(Uuid::from_u128(1001)),
        at: t0() + Duration::days(1),
    };
    assert_eq!(
        given_fails(&events, &again),
        TourError::AlreadySignedUp { sign_up_id: sid(1) }
    );
    // Waiting counts too: a full tour, person 1002 on the waiting list.
    let full = history(&[sign_up(1, 2, 0), sign_up(2, 1, 0)], scheduled(1, None));
    let twice = TourCommand::SignUp {
        sign_up: new_sign_up(3, 1, 0).for_person(Uuid::from_u128(1002)),
        at: t0() + Duration::days(1),
    };
    assert_eq!(
        given_fails(&full, &twice),
        TourError::AlreadySignedUp { sign_up_id: sid(2) }
    );
    // Once cancelled, the person may sign up anew.
    let cancelled = history(&[cancel(1)], events);
    let (new, _) = given_when(&cancelled, &again);
    assert_eq!(types(&new), ["TourSignUpReceived", "TourSignUpConfirmed"]);
}
