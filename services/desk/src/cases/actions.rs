//! The case page's actions, each a `POST /desk/cases/{id}/{action}` with CSRF,
//! all through the one command path (`kujira_store::execute`):
//!
//! * the command id derives from the page's one-time form token, the action and
//!   what was sent, so a double click records once, while a different entry from
//!   the same page is a new command;
//! * the command carries the stream version the page showed (`seen`), so an action
//!   that lost a race with another staff member is refused as stale: the page comes
//!   back (409) with the current state and the values kept, and nothing is
//!   overwritten;
//! * a bad value comes back as the page with the action's form open, the values
//!   kept and a Japanese message by the field (422).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use kujira_domain::casework::{
    CaseCommand, CaseError, CloseReason, ContactChannel, Move, NOTE_MAX,
};
use kujira_domain::decider::Decider;
use kujira_domain::inquiry::{
    Consultation, ConsultationCommand, ConsultationError, ConsultationEvent, Stage,
};
use kujira_domain::person::{
    ContactDetails, OptOutVia, Person, PersonCommand, PersonContext, PersonError,
};
use kujira_domain::values::{
    ConsultationMethod, Email, FreeText, Kana, PersonName, Phone, PostalCode, ValueError, optional,
};
use kujira_store::{CommandContext, CommandError};
use kujira_web::FormData;
use uuid::Uuid;

use super::page::{self, Loaded, TOKEN_FORM, Ui};
use super::query;
use crate::DeskState;
use crate::auth::{Right, Staff};
use crate::error::AppError;
use crate::form::{CsrfForm, FormErrors};

/// Namespace of the command ids the desk derives.
const NAMESPACE: Uuid = Uuid::from_u128(0x6b75_6a69_7261_2f64_6573_6b2f_6361_7365);

/// Every action the case page posts.
pub const ACTIONS: &[&str] = &[
    "assign",
    "phase",
    "contact",
    "consultation",
    "next-action",
    "move",
    "close",
    "reopen",
    "merge",
    "unmerge",
    "correct",
    "opt-out",
    "opt-in",
    "clear-bounce",
    "suspend",
    "lift-suspension",
];

/// The command id of one submission of one form: the token, the action and the
/// values (not the CSRF token, which is per browser).
pub fn command_id(token_id: Uuid, action: &str, form: &FormData) -> Uuid {
    let mut pairs: Vec<(&str, &str)> = form
        .pairs()
        .iter()
        .filter(|(k, _)| k != kujira_web::CSRF_FIELD)
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    pairs.sort_unstable();
    let body = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    Uuid::new_v5(&NAMESPACE, format!("{token_id}/{action}/{body}").as_bytes())
}

/// How an action ended.
enum Outcome {
    /// Recorded (or replayed): the notice key for the page.
    Done(&'static str),
    /// Nothing to record: it was already so.
    Unchanged,
    Invalid(FormErrors),
    Stale,
}

fn invalid(field: &str, message: impl Into<String>) -> Outcome {
    let mut e = FormErrors::new();
    e.add(field, message);
    Outcome::Invalid(e)
}

/// The field a refusal of the domain belongs to.
fn case_error(e: CaseError) -> Outcome {
    let field = match e {
        CaseError::PastConsultation => "consult_date",
        CaseError::InvalidLength => "consult_minutes",
        CaseError::FutureContact => "contact_date",
        CaseError::InvalidHousehold => "move_adults",
        CaseError::SameCase => "merge_into",
        CaseError::UseRecordMove => "phase",
        _ => "form",
    };
    if e == CaseError::NoChange {
        return Outcome::Unchanged;
    }
    invalid(field, e.message_ja())
}

fn local(tz: Tz, date: NaiveDate, time: NaiveTime) -> Option<DateTime<Utc>> {
    tz.from_local_datetime(&date.and_time(time))
        .earliest()
        .map(|t| t.to_utc())
}

fn parse_date(s: &str) -> Result<NaiveDate, ValueError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(ValueError::Required);
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| ValueError::InvalidDate)
}

fn parse_time(s: &str) -> Result<NaiveTime, ValueError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(ValueError::Required);
    }
    NaiveTime::parse_from_str(s, "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(s, "%H:%M:%S"))
        .map_err(|_| ValueError::InvalidDateTime)
}

fn count(s: &str, min: u16, max: u16) -> Result<u16, ValueError> {
    let t: String = persons_digits(s);
    if s.trim().is_empty() {
        return Err(ValueError::Required);
    }
    let range = ValueError::OutOfRange {
        min: i64::from(min),
        max: i64::from(max),
    };
    let n: u16 = t.parse().map_err(|_| range.clone())?;
    if (min..=max).contains(&n) && !t.is_empty() && t.len() == s.trim().chars().count() {
        Ok(n)
    } else {
        Err(range)
    }
}

/// Full-width digits as ASCII, anything else kept (so that "1a" stays invalid).
fn persons_digits(s: &str) -> String {
    s.trim()
        .chars()
        .map(|c| match c {
            '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32).unwrap_or(c),
            c => c,
        })
        .collect()
}

fn note(form: &FormData, field: &str, errors: &mut FormErrors) -> Option<Option<FreeText>> {
    errors.check(
        field,
        optional(form.get(field), |s| FreeText::parse_multiline(s, NOTE_MAX)),
    )
}

pub async fn act(
    State(state): State<DeskState>,
    staff: Staff,
    Path((id, action)): Path<(String, String)>,
    CsrfForm(form): CsrfForm,
) -> Result<Response, AppError> {
    staff.require(Right::ActOnCases)?;
    let case_id = Uuid::parse_str(&id).map_err(|_| AppError::NotFound)?;
    let Some(action) = ACTIONS.iter().copied().find(|a| *a == action) else {
        return Err(AppError::NotFound);
    };
    let Some(loaded) = page::load(&state, case_id).await? else {
        return Err(AppError::NotFound);
    };
    let token = state
        .kit()
        .form_tokens()
        .verify(TOKEN_FORM, form.get(kujira_web::FORM_TOKEN_FIELD))
        .ok_or_else(|| {
            AppError::BadRequest(
                "フォームの情報が正しくありません。案件のページを開き直して、もう一度操作してください。"
                    .into(),
            )
        })?;
    let version = |name: &str| -> Result<u64, AppError> {
        form.get(name).trim().parse().map_err(|_| {
            AppError::BadRequest(
                "フォームの情報が正しくありません。案件のページを開き直して、もう一度操作してください。"
                    .into(),
            )
        })
    };
    let seen = version("version")?;
    let person_seen = version("person_version")?;
    let cid = command_id(token.id, action, &form);
    let outcome = match action {
        "correct" | "opt-out" | "opt-in" | "clear-bounce" | "suspend" | "lift-suspension" => {
            person_action(&state, &staff, &loaded, action, &form, cid, person_seen).await?
        }
        _ => case_action(&state, &staff, &loaded, action, &form, cid, seen).await?,
    };
    let again = |ui: Ui, status: StatusCode| {
        let state = state.clone();
        let staff = staff.clone();
        async move {
            let fresh = page::load(&state, case_id)
                .await?
                .ok_or(AppError::NotFound)?;
            page::render(&state, &staff, &fresh, &ui, status).await
        }
    };
    match outcome {
        Outcome::Done(key) => {
            Ok(Redirect::to(&format!("/desk/cases/{case_id}?done={key}")).into_response())
        }
        Outcome::Unchanged => {
            Ok(Redirect::to(&format!("/desk/cases/{case_id}?done=nothing")).into_response())
        }
        Outcome::Invalid(errors) => {
            again(
                Ui {
                    failed: Some((action.to_owned(), form, errors)),
                    ..Ui::default()
                },
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Outcome::Stale => {
            again(
                Ui {
                    failed: Some((action.to_owned(), form, FormErrors::new())),
                    stale: true,
                    ..Ui::default()
                },
                StatusCode::CONFLICT,
            )
            .await
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn case_action(
    state: &DeskState,
    staff: &Staff,
    l: &Loaded,
    action: &'static str,
    form: &FormData,
    cid: Uuid,
    seen: u64,
) -> Result<Outcome, AppError> {
    let tz = state.config().timezone;
    let now = state.now();
    let mut e = FormErrors::new();
    let command = match action {
        "assign" => {
            let v = form.get("concierge").trim();
            if v == "none" {
                CaseCommand::Assign { concierge: None }
            } else {
                let concierges = query::concierges(state.pool()).await?;
                match Uuid::parse_str(v)
                    .ok()
                    .filter(|id| concierges.iter().any(|(c, _)| c == id))
                {
                    Some(c) => CaseCommand::Assign { concierge: Some(c) },
                    None => return Ok(invalid("concierge", "担当者を一覧から選んでください。")),
                }
            }
        }
        "phase" => match super::parse_stage(form.get("phase").trim()) {
            Some(Stage::Moved) => return Ok(case_error(CaseError::UseRecordMove)),
            Some(to) => CaseCommand::ChangePhase { to },
            None => return Ok(invalid("phase", "フェーズを一覧から選んでください。")),
        },
        "contact" => {
            let channel = e.check(
                "contact_channel",
                ContactChannel::parse(form.get("contact_channel")),
            );
            let date = e.check("contact_date", parse_date(form.get("contact_date")));
            let time = e.check(
                "contact_time",
                optional(form.get("contact_time"), parse_time),
            );
            let text = note(form, "contact_note", &mut e);
            let (Some(channel), Some(date), Some(time), Some(text)) = (channel, date, time, text)
            else {
                return Ok(Outcome::Invalid(e));
            };
            let today = query::today(now, tz);
            let occurred_at = match time {
                Some(t) => local(tz, date, t),
                // No time: now for today, noon for an earlier day.
                None if date == today => Some(now),
                None => local(
                    tz,
                    date,
                    NaiveTime::from_hms_opt(12, 0, 0).unwrap_or_default(),
                ),
            };
            let Some(occurred_at) = occurred_at else {
                return Ok(invalid(
                    "contact_time",
                    ValueError::InvalidDateTime.message_ja(),
                ));
            };
            CaseCommand::LogContact {
                contact_id: Uuid::new_v5(&cid, b"contact"),
                channel,
                occurred_at,
                note: text,
            }
        }
        "consultation" => {
            let date = e.check("consult_date", parse_date(form.get("consult_date")));
            let time = e.check("consult_time", parse_time(form.get("consult_time")));
            let minutes = e.check(
                "consult_minutes",
                count(
                    form.get("consult_minutes"),
                    10,
                    kujira_domain::casework::CONSULTATION_MINUTES_MAX,
                ),
            );
            let method = e.check(
                "consult_method",
                ConsultationMethod::parse(form.get("consult_method")),
            );
            let place = e.check(
                "consult_place",
                optional(form.get("consult_place"), |s| FreeText::parse_line(s, 200)),
            );
            let text = note(form, "consult_note", &mut e);
            let (Some(date), Some(time), Some(minutes), Some(method), Some(place), Some(text)) =
                (date, time, minutes, method, place, text)
            else {
                return Ok(Outcome::Invalid(e));
            };
            let Some(starts_at) = local(tz, date, time) else {
                return Ok(invalid(
                    "consult_time",
                    ValueError::InvalidDateTime.message_ja(),
                ));
            };
            CaseCommand::ScheduleConsultation {
                consultation_id: Uuid::new_v5(&cid, b"consultation"),
                starts_at,
                minutes,
                method,
                place,
                note: text,
            }
        }
        "next-action" => match optional(form.get("next_action"), parse_date) {
            Ok(due) => CaseCommand::SetNextAction { due },
            Err(err) => return Ok(invalid("next_action", err.message_ja())),
        },
        "move" => {
            let move_in = e.check("move_in", parse_date(form.get("move_in")));
            let adults = e.check("move_adults", count(form.get("move_adults"), 1, 10));
            let children = e.check("move_children", count(form.get("move_children"), 0, 10));
            let (Some(move_in), Some(adults), Some(children)) = (move_in, adults, children) else {
                return Ok(Outcome::Invalid(e));
            };
            CaseCommand::RecordMove(Move {
                move_in,
                adults: adults as u8,
                children: children as u8,
                applies_for_support: form.checked("move_support"),
            })
        }
        "close" => {
            let reason = e.check("close_reason", CloseReason::parse(form.get("close_reason")));
            let text = note(form, "close_note", &mut e);
            let (Some(reason), Some(text)) = (reason, text) else {
                return Ok(Outcome::Invalid(e));
            };
            CaseCommand::Close { reason, note: text }
        }
        "reopen" => CaseCommand::Reopen,
        "unmerge" => CaseCommand::UndoMerge,
        "merge" => match merge_target(state, l, form.get("merge_into")).await? {
            Ok(cmd) => cmd,
            Err(outcome) => return Ok(outcome),
        },
        _ => return Err(AppError::NotFound),
    };
    let ctx = CommandContext::new(staff.actor())
        .command_id(cid)
        .seen(seen)
        .with("action", action);
    let person_id = l.person_id;
    let case_id = l.case_id;
    let executed = kujira_store::execute::<Consultation>(
        state.store(),
        &super::stream(case_id),
        &ctx,
        None,
        |current| {
            let mut events = Consultation::decide(
                current,
                &ConsultationCommand::Work {
                    command: command.clone(),
                    at: now,
                },
            )?;
            // A scheduled consultation mails the applicant in the same append.
            let mails: Vec<ConsultationEvent> = events
                .iter()
                .filter_map(|ev| match ev {
                    ConsultationEvent::ConsultationScheduled(c) => {
                        Some(ConsultationEvent::MailQueued(
                            super::mail::consultation_mail(case_id, person_id, c.consultation_id),
                        ))
                    }
                    _ => None,
                })
                .collect();
            events.extend(mails);
            Ok(events)
        },
    )
    .await;
    Ok(match executed {
        Ok(_) => Outcome::Done(action),
        Err(CommandError::Refused(ConsultationError::Case(err))) => case_error(err),
        Err(CommandError::Refused(other)) => return Err(AppError::internal(other)),
        Err(CommandError::Stale { .. }) => Outcome::Stale,
        Err(CommandError::Contended(_)) => Outcome::Stale,
        Err(CommandError::Store(err)) => return Err(AppError::internal(err)),
    })
}

/// The merge command for the case with 連番 `reference`, or why not.
async fn merge_target(
    state: &DeskState,
    l: &Loaded,
    reference: &str,
) -> Result<Result<CaseCommand, Outcome>, AppError> {
    let reference = crate::persons::name_key(reference);
    if reference.is_empty() {
        return Ok(Err(invalid(
            "merge_into",
            ValueError::Required.message_ja(),
        )));
    }
    let Some(target) = query::by_reference(state.pool(), &reference).await? else {
        return Ok(Err(invalid(
            "merge_into",
            format!("連番 {reference} の案件は見つかりません。連番を確かめてください。"),
        )));
    };
    if target.case_id == l.case_id {
        return Ok(Err(case_error(CaseError::SameCase)));
    }
    if !l.merged_here.is_empty() {
        return Ok(Err(invalid(
            "merge_into",
            "この案件には、ほかの案件が統合されています。統合先として残すか、先にそれらの統合を取り消してください。",
        )));
    }
    // The target as its own stream says now (the list may lag by a moment).
    let (target_state, _) =
        kujira_store::load::<Consultation>(state.store(), &super::stream(target.case_id), None)
            .await
            .map_err(AppError::internal)?;
    let Some(opened) = target_state.opened else {
        return Ok(Err(invalid(
            "merge_into",
            "統合先の案件を読み取れませんでした。",
        )));
    };
    if target_state.work.merged_into.is_some() {
        return Ok(Err(invalid(
            "merge_into",
            "統合先の案件は、すでに別の案件に統合されています。統合先の統合先を指定してください。",
        )));
    }
    if target_state.work.closed.is_some() {
        return Ok(Err(invalid(
            "merge_into",
            "統合先の案件は対応終了です。統合先の対応を再開してから統合してください。",
        )));
    }
    Ok(Ok(CaseCommand::MergeInto {
        into: target.case_id,
        into_person: opened.person_id,
    }))
}

fn person_error(e: CommandError<PersonError>) -> Result<Outcome, AppError> {
    match e {
        CommandError::Refused(PersonError::NoChange) => Ok(Outcome::Unchanged),
        CommandError::Refused(err) => Ok(invalid("form", err.message_ja())),
        CommandError::Stale { .. } | CommandError::Contended(_) => Ok(Outcome::Stale),
        CommandError::Store(err) => Err(AppError::internal(err)),
    }
}

#[allow(clippy::too_many_arguments)]
async fn person_action(
    state: &DeskState,
    staff: &Staff,
    l: &Loaded,
    action: &'static str,
    form: &FormData,
    cid: Uuid,
    seen: u64,
) -> Result<Outcome, AppError> {
    let now = state.now();
    let person_id = l.person_id;
    if l.erased() {
        return Ok(invalid("form", PersonError::Erased.message_ja()));
    }
    if action == "clear-bounce" {
        // The scheduler's own command (a bounce is its fact): one path for it.
        return match kujira_scheduler::clear_bounce(state.store(), person_id, &staff.actor(), now)
            .await
        {
            Ok(true) => Ok(Outcome::Done(action)),
            Ok(false) => Ok(Outcome::Unchanged),
            Err(e) => person_error(e),
        };
    }
    let mut linked_new: Option<Email> = None;
    let mut unlink_old: Option<Email> = None;
    let command = match action {
        "opt-out" => PersonCommand::OptOut {
            via: OptOutVia::Staff,
        },
        "opt-in" => PersonCommand::OptIn {
            via: OptOutVia::Staff,
        },
        "suspend" => PersonCommand::Suspend,
        "lift-suspension" => PersonCommand::LiftSuspension,
        "correct" => {
            let mut e = FormErrors::new();
            let name = e.check("c_name", PersonName::parse(form.get("c_name")));
            let kana = e.check("c_kana", Kana::parse(form.get("c_kana")));
            let email = e.check("c_email", Email::parse(form.get("c_email")));
            let phone = e.check("c_phone", optional(form.get("c_phone"), Phone::parse));
            let postal = e.check(
                "c_postal",
                optional(form.get("c_postal"), PostalCode::parse),
            );
            let address = e.check(
                "c_address",
                optional(form.get("c_address"), |s| FreeText::parse_line(s, 100)),
            );
            let (Some(name), Some(kana), Some(email), Some(phone), Some(postal), Some(address)) =
                (name, kana, email, phone, postal, address)
            else {
                return Ok(Outcome::Invalid(e));
            };
            let details = ContactDetails {
                name,
                name_kana: kana,
                email,
                phone,
                postal_code: postal,
                address,
            };
            let c = l.contact();
            let before = (|| {
                Some(ContactDetails {
                    name: PersonName::parse(c.name.as_deref()?).ok()?,
                    name_kana: Kana::parse(c.name_kana.as_deref()?).ok()?,
                    email: Email::parse(c.email.as_deref()?).ok()?,
                    phone: c.phone.as_deref().and_then(|p| Phone::parse(p).ok()),
                    postal_code: c
                        .postal_code
                        .as_deref()
                        .and_then(|p| PostalCode::parse(p).ok()),
                    address: c
                        .address
                        .as_deref()
                        .and_then(|a| FreeText::parse_line(a, 100).ok()),
                })
            })();
            let changed = kujira_domain::person::changed_fields(
                before.as_ref().or(l.person_state.corrected.as_ref()),
                &details,
            );
            if changed.is_empty() {
                return Ok(Outcome::Unchanged);
            }
            let old_email = before.as_ref().map(|b| b.email.clone());
            if old_email.as_ref() != Some(&details.email) {
                // The new address must find this person, and no one else.
                let vault = state.store().vault();
                let held: Option<Uuid> =
                    sqlx::query_scalar("SELECT person_id FROM person_lookup WHERE email_hash = $1")
                        .bind(&vault.email_hash(&details.email)[..])
                        .fetch_optional(state.pool())
                        .await?;
                match held {
                    Some(p) if p == person_id => {}
                    Some(_) => {
                        return Ok(invalid(
                            "c_email",
                            "このメールアドレスは、別の方の記録で使われています。同じ方であれば、先に案件を統合してください（「別の案件に統合する」）。",
                        ));
                    }
                    None => match vault.link_email(person_id, &details.email).await {
                        Ok(()) => linked_new = Some(details.email.clone()),
                        Err(kujira_store::VaultError::EmailTaken(_)) => {
                            return Ok(invalid(
                                "c_email",
                                "このメールアドレスは、別の方の記録で使われています。同じ方であれば、先に案件を統合してください（「別の案件に統合する」）。",
                            ));
                        }
                        Err(err) => return Err(AppError::internal(err)),
                    },
                }
                unlink_old = old_email;
            }
            PersonCommand::Correct { details, before }
        }
        _ => return Err(AppError::NotFound),
    };
    let ctx = CommandContext::new(staff.actor())
        .command_id(cid)
        .seen(seen)
        .with("action", action);
    let executed = kujira_store::execute::<Person>(
        state.store(),
        &super::person_stream(person_id),
        &ctx,
        None,
        |current| {
            Person::decide(
                current,
                &(PersonContext { person_id, at: now }, command.clone()),
            )
        },
    )
    .await;
    match executed {
        Ok(done) => {
            if let Some(old) = unlink_old {
                // The old address no longer finds the person.
                state
                    .store()
                    .vault()
                    .unlink_email(person_id, &old)
                    .await
                    .map_err(AppError::internal)?;
            }
            Ok(if done.recorded.is_empty() && !done.replayed {
                Outcome::Unchanged
            } else {
                Outcome::Done(action)
            })
        }
        Err(err) => {
            if let Some(new) = linked_new {
                // Nothing was recorded: the new address must not find the person.
                state
                    .store()
                    .vault()
                    .unlink_email(person_id, &new)
                    .await
                    .map_err(AppError::internal)?;
            }
            person_error(err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_ids_tell_a_double_click_from_a_second_entry() {
        let token = Uuid::now_v7();
        let a = FormData::from_pairs(vec![
            ("csrf_token".into(), "x".into()),
            ("contact_note".into(), "電話".into()),
        ]);
        let a2 = FormData::from_pairs(vec![
            ("contact_note".into(), "電話".into()),
            ("csrf_token".into(), "y".into()),
        ]);
        let b = FormData::from_pairs(vec![("contact_note".into(), "来庁".into())]);
        assert_eq!(
            command_id(token, "contact", &a),
            command_id(token, "contact", &a2)
        );
        assert_ne!(
            command_id(token, "contact", &a),
            command_id(token, "contact", &b)
        );
        assert_ne!(
            command_id(token, "contact", &a),
            command_id(token, "close", &a)
        );
    }

    #[test]
    fn counts_take_full_width_digits_and_refuse_the_rest() {
        assert_eq!(count("２", 1, 10), Ok(2));
        assert_eq!(count(" 10 ", 1, 10), Ok(10));
        assert!(count("0", 1, 10).is_err());
        assert!(count("1a", 1, 10).is_err());
        assert_eq!(count("", 1, 10), Err(ValueError::Required));
    }
}
