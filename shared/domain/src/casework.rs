//! Case work (案件対応): what concierges do with a consultation case once it is open.
//!
//! The facts live on the case's own stream (`consultation-<case id>`), after the
//! submission that opened it, so that one stream tells the whole story of a case
//! and its timeline is simply the stream read in order. Every fact names its time
//! (`at`); the staff member who acted is in the event metadata (`staff:<user id>`).
//!
//! Free text a concierge writes about a person (a contact note, the note of a
//! closing) is personal: it sits in `personal`, sealed with that person's key, so
//! that erasing the person erases the notes too.
//!
//! Merging two cases of the same person (a fair booth and the web form) is a fact
//! on the case merged away (`CaseMerged { into }`), undone by `CaseMergeUndone`:
//! nothing is deleted, and a wrong merge is reversible.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::inquiry::Stage;
use crate::personal::Personal;
use crate::values::{ConsultationMethod, FreeText, ValueError, choices};

/// Longest contact note, in characters.
pub const NOTE_MAX: usize = 2000;
/// Longest consultation, in minutes.
pub const CONSULTATION_MINUTES_MAX: u16 = 480;

choices!(
    /// How a contact happened, as the national survey splits it: everything but
    /// events and fairs counts as 窓口; fairs and seminars count as イベント.
    ContactChannel {
        Counter = "counter": "窓口来訪",
        Phone = "phone": "電話",
        Email = "email": "メール",
        Online = "online": "オンライン",
        Fair = "fair": "イベント・移住フェア",
        Line = "line": "LINE",
        Other = "other": "その他",
    }
);

impl ContactChannel {
    /// Whether the national survey counts it as イベント rather than 窓口.
    pub fn is_event(self) -> bool {
        matches!(self, Self::Fair)
    }
}

choices!(
    /// Why a case was closed (対応終了).
    CloseReason {
        MovedElsewhere = "moved_elsewhere": "他地域へ移住",
        GaveUp = "gave_up": "移住を見送り",
        NoResponse = "no_response": "連絡がとれない",
        Duplicate = "duplicate": "重複",
        Other = "other": "その他",
    }
);

/// What a contact note says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactNote {
    #[serde(default)]
    pub note: Option<FreeText>,
}

/// Where and what of a scheduled consultation, written by staff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsultationNote {
    /// A room, an address or a meeting URL.
    #[serde(default)]
    pub place: Option<FreeText>,
    #[serde(default)]
    pub note: Option<FreeText>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseAssigned {
    pub case_id: Uuid,
    pub at: DateTime<Utc>,
    /// The staff user now in charge; `None` takes the case off everyone.
    pub concierge: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CasePhaseChanged {
    pub case_id: Uuid,
    pub at: DateTime<Utc>,
    pub from: Stage,
    pub to: Stage,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactLogged {
    pub case_id: Uuid,
    pub person_id: Uuid,
    pub at: DateTime<Utc>,
    pub contact_id: Uuid,
    pub channel: ContactChannel,
    /// When the contact happened (may be earlier than `at`, when it was logged).
    pub occurred_at: DateTime<Utc>,
    pub personal: Personal<ContactNote>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsultationScheduled {
    pub case_id: Uuid,
    pub person_id: Uuid,
    pub at: DateTime<Utc>,
    pub consultation_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub minutes: u16,
    pub method: ConsultationMethod,
    pub personal: Personal<ConsultationNote>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextActionSet {
    pub case_id: Uuid,
    pub at: DateTime<Utc>,
    /// `None` clears it.
    pub due: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoveRecorded {
    pub case_id: Uuid,
    pub at: DateTime<Utc>,
    pub move_in: NaiveDate,
    pub adults: u8,
    pub children: u8,
    /// Whether the household applies for 移住支援金 (window: 3 months to 1 year
    /// after the move-in date).
    pub applies_for_support: bool,
}

impl MoveRecorded {
    pub fn people(&self) -> u32 {
        u32::from(self.adults) + u32::from(self.children)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseClosed {
    pub case_id: Uuid,
    pub person_id: Uuid,
    pub at: DateTime<Utc>,
    pub reason: CloseReason,
    pub personal: Personal<ContactNote>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseReopened {
    pub case_id: Uuid,
    pub at: DateTime<Utc>,
}

/// This case was merged into `into` (the same person's other case).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseMerged {
    pub case_id: Uuid,
    pub at: DateTime<Utc>,
    pub into: Uuid,
    /// The person of the case merged into: the two persons are one from now on.
    pub into_person: Uuid,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseMergeUndone {
    pub case_id: Uuid,
    pub at: DateTime<Utc>,
    pub into: Uuid,
}

/// A move as the decider sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    pub move_in: NaiveDate,
    pub adults: u8,
    pub children: u8,
    pub applies_for_support: bool,
}

/// What staff ask of a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseCommand {
    Assign {
        concierge: Option<Uuid>,
    },
    ChangePhase {
        to: Stage,
    },
    LogContact {
        contact_id: Uuid,
        channel: ContactChannel,
        occurred_at: DateTime<Utc>,
        note: Option<FreeText>,
    },
    ScheduleConsultation {
        consultation_id: Uuid,
        starts_at: DateTime<Utc>,
        minutes: u16,
        method: ConsultationMethod,
        place: Option<FreeText>,
        note: Option<FreeText>,
    },
    SetNextAction {
        due: Option<NaiveDate>,
    },
    RecordMove(Move),
    Close {
        reason: CloseReason,
        note: Option<FreeText>,
    },
    Reopen,
    /// Merge this case into `into`, whose person is `into_person`. The caller has
    /// checked that `into` is open and not merged itself.
    MergeInto {
        into: Uuid,
        into_person: Uuid,
    },
    UndoMerge,
}

/// Why staff could not do that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CaseError {
    #[error("no such case")]
    NotOpen,
    #[error("the case is closed")]
    Closed,
    #[error("the case was merged into another")]
    Merged,
    #[error("nothing would change")]
    NoChange,
    #[error("a case cannot be merged into itself")]
    SameCase,
    #[error("the case is not merged")]
    NotMerged,
    #[error("the case is not closed")]
    NotClosed,
    #[error("invalid household size")]
    InvalidHousehold,
    #[error("the consultation must be in the future")]
    PastConsultation,
    #[error("invalid consultation length")]
    InvalidLength,
    #[error("a contact cannot be in the future")]
    FutureContact,
    #[error("use a recorded move to reach this phase")]
    UseRecordMove,
}

impl CaseError {
    /// What staff read, in Japanese.
    pub fn message_ja(self) -> &'static str {
        match self {
            Self::NotOpen => "この案件は見つかりません。",
            Self::Closed => "この案件は対応終了になっています。再開してから操作してください。",
            Self::Merged => {
                "この案件は別の案件に統合されています。統合先の案件で操作してください。"
            }
            Self::NoChange => "変更はありません（すでにその状態です）。",
            Self::SameCase => "同じ案件どうしは統合できません。",
            Self::NotMerged => "この案件は統合されていません。",
            Self::NotClosed => "この案件は対応終了になっていません。",
            Self::InvalidHousehold => "世帯人数は大人1〜10人、子ども0〜10人で入力してください。",
            Self::PastConsultation => "相談日時は現在より後の日時を指定してください。",
            Self::InvalidLength => "相談時間は10〜480分で指定してください。",
            Self::FutureContact => "対応日時に未来の日時は指定できません。",
            Self::UseRecordMove => {
                "「移住済み」にするには、転入日などを「移住の記録」から登録してください。"
            }
        }
    }
}

/// The move recorded on a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoveInfo {
    pub move_in: NaiveDate,
    pub adults: u8,
    pub children: u8,
    pub applies_for_support: bool,
    pub recorded_at: DateTime<Utc>,
}

/// What case work leaves on a case's state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseWork {
    pub concierge: Option<Uuid>,
    pub last_contact_at: Option<DateTime<Utc>>,
    pub contacts: u32,
    pub next_action: Option<NaiveDate>,
    pub moved: Option<MoveInfo>,
    pub closed: Option<(CloseReason, DateTime<Utc>)>,
    pub merged_into: Option<Uuid>,
    /// When the phase last changed (or the case opened): the nurture clock resets on
    /// it, as on any logged contact.
    pub last_phase_change_at: Option<DateTime<Utc>>,
    /// The last time anyone did anything on the case.
    pub last_activity_at: Option<DateTime<Utc>>,
}

impl fmt::Display for CaseCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Assign { .. } => "assign",
            Self::ChangePhase { .. } => "change_phase",
            Self::LogContact { .. } => "log_contact",
            Self::ScheduleConsultation { .. } => "schedule_consultation",
            Self::SetNextAction { .. } => "set_next_action",
            Self::RecordMove(_) => "record_move",
            Self::Close { .. } => "close",
            Self::Reopen => "reopen",
            Self::MergeInto { .. } => "merge",
            Self::UndoMerge => "undo_merge",
        };
        f.write_str(name)
    }
}

/// Decides a case-work command on an open case.
pub(crate) fn decide(
    open: &OpenedCase,
    work: &CaseWork,
    command: &CaseCommand,
    at: DateTime<Utc>,
) -> Result<Vec<ConsultationEvent>, CaseError> {
    let case_id = open.case_id;
    let person_id = open.person_id;
    // A merged case is read-only but for undoing the merge; a closed one but for
    // reopening it (and merging: a duplicate is closed, then merged).
    match command {
        CaseCommand::UndoMerge => {
            let into = work.merged_into.ok_or(CaseError::NotMerged)?;
            return Ok(vec![ConsultationEvent::CaseMergeUndone(CaseMergeUndone {
                case_id,
                at,
                into,
            })]);
        }
        _ if work.merged_into.is_some() => return Err(CaseError::Merged),
        CaseCommand::Reopen => {
            if work.closed.is_none() {
                return Err(CaseError::NotClosed);
            }
            return Ok(vec![ConsultationEvent::CaseReopened(CaseReopened {
                case_id,
                at,
            })]);
        }
        CaseCommand::MergeInto { .. } => {}
        _ if work.closed.is_some() => return Err(CaseError::Closed),
        _ => {}
    }
    let event = match command {
        CaseCommand::Assign { concierge } => {
            if *concierge == work.concierge {
                return Err(CaseError::NoChange);
            }
            ConsultationEvent::CaseAssigned(CaseAssigned {
                case_id,
                at,
                concierge: *concierge,
            })
        }
        CaseCommand::ChangePhase { to } => {
            if *to == open.stage {
                return Err(CaseError::NoChange);
            }
            if *to == Stage::Moved {
                return Err(CaseError::UseRecordMove);
            }
            ConsultationEvent::CasePhaseChanged(CasePhaseChanged {
                case_id,
                at,
                from: open.stage,
                to: *to,
            })
        }
        CaseCommand::LogContact {
            contact_id,
            channel,
            occurred_at,
            note,
        } => {
            if *occurred_at > at {
                return Err(CaseError::FutureContact);
            }
            ConsultationEvent::ContactLogged(ContactLogged {
                case_id,
                person_id,
                at,
                contact_id: *contact_id,
                channel: *channel,
                occurred_at: *occurred_at,
                personal: Personal::Known(ContactNote { note: note.clone() }),
            })
        }
        CaseCommand::ScheduleConsultation {
            consultation_id,
            starts_at,
            minutes,
            method,
            place,
            note,
        } => {
            if *starts_at <= at {
                return Err(CaseError::PastConsultation);
            }
            if !(10..=CONSULTATION_MINUTES_MAX).contains(minutes) {
                return Err(CaseError::InvalidLength);
            }
            ConsultationEvent::ConsultationScheduled(ConsultationScheduled {
                case_id,
                person_id,
                at,
                consultation_id: *consultation_id,
                starts_at: *starts_at,
                minutes: *minutes,
                method: *method,
                personal: Personal::Known(ConsultationNote {
                    place: place.clone(),
                    note: note.clone(),
                }),
            })
        }
        CaseCommand::SetNextAction { due } => {
            if *due == work.next_action {
                return Err(CaseError::NoChange);
            }
            ConsultationEvent::NextActionSet(NextActionSet {
                case_id,
                at,
                due: *due,
            })
        }
        CaseCommand::RecordMove(m) => {
            if !(1..=10).contains(&m.adults) || m.children > 10 {
                return Err(CaseError::InvalidHousehold);
            }
            let recorded = ConsultationEvent::MoveRecorded(MoveRecorded {
                case_id,
                at,
                move_in: m.move_in,
                adults: m.adults,
                children: m.children,
                applies_for_support: m.applies_for_support,
            });
            if open.stage == Stage::Moved {
                return Ok(vec![recorded]);
            }
            return Ok(vec![
                recorded,
                ConsultationEvent::CasePhaseChanged(CasePhaseChanged {
                    case_id,
                    at,
                    from: open.stage,
                    to: Stage::Moved,
                }),
            ]);
        }
        CaseCommand::Close { reason, note } => ConsultationEvent::CaseClosed(CaseClosed {
            case_id,
            person_id,
            at,
            reason: *reason,
            personal: Personal::Known(ContactNote { note: note.clone() }),
        }),
        CaseCommand::MergeInto { into, into_person } => {
            if *into == case_id {
                return Err(CaseError::SameCase);
            }
            ConsultationEvent::CaseMerged(CaseMerged {
                case_id,
                at,
                into: *into,
                into_person: *into_person,
            })
        }
        CaseCommand::Reopen | CaseCommand::UndoMerge => unreachable!("handled above"),
    };
    Ok(vec![event])
}

/// Folds a case-work fact into the case.
pub(crate) fn evolve(open: &mut OpenedCase, work: &mut CaseWork, event: &ConsultationEvent) {
    let at = match event {
        ConsultationEvent::CaseAssigned(e) => {
            work.concierge = e.concierge;
            e.at
        }
        ConsultationEvent::CasePhaseChanged(e) => {
            open.stage = e.to;
            work.last_phase_change_at = Some(e.at);
            e.at
        }
        ConsultationEvent::ContactLogged(e) => {
            work.contacts += 1;
            if work.last_contact_at.is_none_or(|t| t < e.occurred_at) {
                work.last_contact_at = Some(e.occurred_at);
            }
            e.at
        }
        ConsultationEvent::ConsultationScheduled(e) => e.at,
        ConsultationEvent::NextActionSet(e) => {
            work.next_action = e.due;
            e.at
        }
        ConsultationEvent::MoveRecorded(e) => {
            work.moved = Some(MoveInfo {
                move_in: e.move_in,
                adults: e.adults,
                children: e.children,
                applies_for_support: e.applies_for_support,
                recorded_at: e.at,
            });
            e.at
        }
        ConsultationEvent::CaseClosed(e) => {
            work.closed = Some((e.reason, e.at));
            e.at
        }
        ConsultationEvent::CaseReopened(e) => {
            work.closed = None;
            e.at
        }
        ConsultationEvent::CaseMerged(e) => {
            work.merged_into = Some(e.into);
            e.at
        }
        ConsultationEvent::CaseMergeUndone(e) => {
            work.merged_into = None;
            e.at
        }
        _ => return,
    };
    work.last_activity_at = Some(work.last_activity_at.map_or(at, |t| t.max(at)));
}

use crate::inquiry::{ConsultationEvent, OpenedCase};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decider::Decider;
    use crate::inquiry::{
        CaseOpening, Channel, Consultation, ConsultationCommand, ConsultationError,
        ConsultationState, TourRequest, TourRequestPersonal, TourRequestSubmitted,
    };
    use crate::values::{Email, Kana, PersonName, Phone, Prefecture, TourInterest};

    fn t(h: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + h * 3600, 0).unwrap()
    }

    fn case() -> Uuid {
        Uuid::from_u128(1)
    }

    fn opened() -> Vec<ConsultationEvent> {
        let submission = TourRequestSubmitted {
            opening: CaseOpening {
                case_id: case(),
                person_id: Uuid::from_u128(2),
                reference: "2027-0001".into(),
                channel: Channel::Desk,
                submitted_at: t(0),
                privacy_purpose: "目的".into(),
                desk_source: Some(ContactChannel::Fair),
            },
            request: TourRequest {
                preferred_dates: vec![],
                interests: vec![TourInterest::Schools],
                adults: 2,
                children: 0,
                prefecture: Prefecture::parse("東京都").unwrap(),
                source: None,
                newsletter: false,
                personal: Personal::Known(TourRequestPersonal {
                    name: PersonName::parse("柏崎 太郎").unwrap(),
                    name_kana: Kana::parse("カシワザキ タロウ").unwrap(),
                    email: Email::parse("taro@example.jp").unwrap(),
                    phone: Phone::parse("0257-21-2334").unwrap(),
                    children_ages: None,
                    message: None,
                }),
            },
        };
        Consultation::decide(
            &ConsultationState::default(),
            &ConsultationCommand::SubmitTourRequest {
                submission,
                mails: vec![],
            },
        )
        .unwrap()
    }

    fn given(extra: &[ConsultationEvent]) -> ConsultationState {
        Consultation::replay(opened().iter().chain(extra))
    }

    fn when(
        state: &ConsultationState,
        command: CaseCommand,
        at: DateTime<Utc>,
    ) -> Result<Vec<ConsultationEvent>, ConsultationError> {
        Consultation::decide(state, &ConsultationCommand::Work { command, at })
    }

    fn err(e: CaseError) -> Result<Vec<ConsultationEvent>, ConsultationError> {
        Err(ConsultationError::Case(e))
    }

    #[test]
    fn given_a_new_case_when_the_phase_changes_then_the_clock_resets() {
        let state = given(&[]);
        assert_eq!(state.work.last_phase_change_at, Some(t(0)));
        let changed = when(
            &state,
            CaseCommand::ChangePhase {
                to: Stage::Considering,
            },
            t(5),
        )
        .unwrap();
        let after = given(&changed);
        assert_eq!(after.opened.as_ref().unwrap().stage, Stage::Considering);
        assert_eq!(after.work.last_phase_change_at, Some(t(5)));
        assert_eq!(
            when(
                &after,
                CaseCommand::ChangePhase {
                    to: Stage::Considering
                },
                t(6)
            ),
            err(CaseError::NoChange)
        );
        assert_eq!(
            when(&after, CaseCommand::ChangePhase { to: Stage::Moved }, t(6)),
            err(CaseError::UseRecordMove)
        );
    }

    #[test]
    fn given_a_case_when_a_move_is_recorded_then_it_is_moved_with_its_household() {
        let state = given(&[]);
        let m = Move {
            move_in: NaiveDate::from_ymd_opt(2027, 4, 1).unwrap(),
            adults: 2,
            children: 1,
            applies_for_support: true,
        };
        let events = when(&state, CaseCommand::RecordMove(m), t(1)).unwrap();
        assert_eq!(events.len(), 2, "the move and the phase change");
        let after = given(&events);
        assert_eq!(after.opened.as_ref().unwrap().stage, Stage::Moved);
        assert!(after.work.moved.unwrap().applies_for_support);
        let bad = Move { adults: 0, ..m };
        assert_eq!(
            when(&after, CaseCommand::RecordMove(bad), t(2)),
            err(CaseError::InvalidHousehold)
        );
    }

    #[test]
    fn given_a_closed_case_then_only_reopening_and_merging_are_allowed() {
        let closed = when(
            &given(&[]),
            CaseCommand::Close {
                reason: CloseReason::Duplicate,
                note: None,
            },
            t(1),
        )
        .unwrap();
        let state = given(&closed);
        assert_eq!(
            when(&state, CaseCommand::SetNextAction { due: None }, t(2)),
            err(CaseError::Closed)
        );
        assert!(
            when(
                &state,
                CaseCommand::MergeInto {
                    into: Uuid::from_u128(9),
                    into_person: Uuid::from_u128(8)
                },
                t(2)
            )
            .is_ok()
        );
        let reopened = when(&state, CaseCommand::Reopen, t(2)).unwrap();
        assert!(given(&[closed, reopened].concat()).work.closed.is_none());
    }

    #[test]
    fn given_a_merged_case_then_it_is_read_only_until_the_merge_is_undone() {
        let merged = when(
            &given(&[]),
            CaseCommand::MergeInto {
                into: Uuid::from_u128(9),
                into_person: Uuid::from_u128(8),
            },
            t(1),
        )
        .unwrap();
        let state = given(&merged);
        assert_eq!(state.work.merged_into, Some(Uuid::from_u128(9)));
        assert_eq!(
            when(
                &state,
                CaseCommand::Assign {
                    concierge: Some(Uuid::from_u128(3))
                },
                t(2)
            ),
            err(CaseError::Merged)
        );
        assert_eq!(
            when(
                &given(&[]),
                CaseCommand::MergeInto {
                    into: case(),
                    into_person: Uuid::from_u128(2)
                },
                t(1)
            ),
            err(CaseError::SameCase)
        );
        let undone = when(&state, CaseCommand::UndoMerge, t(3)).unwrap();
        let after = given(&[merged, undone].concat());
        assert_eq!(after.work.merged_into, None);
        assert_eq!(
            when(&after, CaseCommand::UndoMerge, t(4)),
            err(CaseError::NotMerged)
        );
    }

    #[test]
    fn a_contact_note_is_personal_and_the_last_contact_is_when_it_happened() {
        let state = given(&[]);
        let logged = when(
            &state,
            CaseCommand::LogContact {
                contact_id: Uuid::from_u128(5),
                channel: ContactChannel::Phone,
                occurred_at: t(3),
                note: Some(FreeText::parse_multiline("住まいの相談", 100).unwrap()),
            },
            t(4),
        )
        .unwrap();
        let json = serde_json::to_value(&logged[0]).unwrap();
        assert_eq!(json["data"]["personal"]["note"], "住まいの相談");
        assert_eq!(json["data"]["person_id"], Uuid::from_u128(2).to_string());
        assert_eq!(json["data"]["channel"], "phone");
        let after = given(&logged);
        assert_eq!(
            (after.work.contacts, after.work.last_contact_at),
            (1, Some(t(3)))
        );
        assert_eq!(
            when(
                &after,
                CaseCommand::LogContact {
                    contact_id: Uuid::from_u128(6),
                    channel: ContactChannel::Phone,
                    occurred_at: t(9),
                    note: None,
                },
                t(5)
            ),
            err(CaseError::FutureContact)
        );
        assert!(ContactChannel::Fair.is_event() && !ContactChannel::Counter.is_event());
    }
}
