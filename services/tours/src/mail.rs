//! The mails that tour facts cause: queued as `MailQueued` in the same append as the
//! facts ([`mails_for`]), and rendered in Japanese (text and HTML) when the mailer in
//! services/scheduler sends them ([`TourMailTemplates`]), from the tour's facts as
//! they stand then. No mail event holds personal data: an erased party gets no mail,
//! and a corrected address is the one written to.
//!
//! Keys are deterministic, one per (fact, recipient), so a retried command can never
//! request a mail twice.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use kujira_config::Config;
use kujira_domain::decider::Decider;
use kujira_domain::mail::{
    Attachment, MailContent, MailFacts, MailQueued, MailRequested, RenderError, RenderMail,
};
use kujira_domain::personal::Personal;
use kujira_domain::tour::{
    SignUp, SignUpPersonal, Standing, Tour, TourDetails, TourEvent, TourState,
};
use kujira_web::mail_body::MailBody;
use uuid::Uuid;

use crate::token;

/// Template names, for statistics and the outbox.
mod ics;
mod render;

use render::{Fact, Renderer};

pub use ics::{IcsMethod, ics, ics_revised, ics_with};

pub mod templates {
    pub const CONFIRMED: &str = "tour_sign_up_confirmed";
    pub const WAITLISTED: &str = "tour_sign_up_waitlisted";
    pub const PROMOTED: &str = "tour_sign_up_promoted";
    pub const CANCELLED: &str = "tour_sign_up_cancelled";
    pub const TOUR_CANCELLED: &str = "tour_cancelled";
    /// Staff changed when or where the tour takes place (the desk's edit page).
    pub const TOUR_CHANGED: &str = "tour_changed";
    pub const CONCIERGE: &str = "tour_concierge_notice";
}

/// `2026年12月31日（木）10:00`, in the city's time zone.
pub fn ja_datetime(tz: Tz, at: DateTime<Utc>) -> String {
    let local = at.with_timezone(&tz);
    format!(
        "{}{}",
        kujira_domain::calendar::date_ja(local.date_naive()),
        local.format("%H:%M")
    )
}

/// The span of a tour: the end without its date when it ends the same day.
pub fn ja_span(tz: Tz, starts: DateTime<Utc>, ends: DateTime<Utc>) -> String {
    let (s, e) = (starts.with_timezone(&tz), ends.with_timezone(&tz));
    if s.date_naive() == e.date_naive() {
        format!("{}〜{}", ja_datetime(tz, starts), e.format("%H:%M"))
    } else {
        format!("{} 〜 {}", ja_datetime(tz, starts), ja_datetime(tz, ends))
    }
}

pub fn fee_ja(fee_yen: u32) -> String {
    if fee_yen == 0 {
        "無料".into()
    } else {
        // Thousands separators the Japanese way (3,000円).
        let digits = fee_yen.to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        format!("{out}円")
    }
}

/// The personal link of a sign-up.
pub fn sign_up_link(config: &Config, tour_id: Uuid, sign_up_id: Uuid) -> String {
    format!(
        "{}/signups/{}",
        config.public_url,
        token::sign(config.secret.expose(), tour_id, sign_up_id)
    )
}

/// The feedback form of a sign-up, for the after-tour mail (services/scheduler).
pub fn feedback_link(config: &Config, tour_id: Uuid, sign_up_id: Uuid) -> String {
    format!("{}/feedback", sign_up_link(config, tour_id, sign_up_id))
}

fn party_key(tour_id: Uuid, sign_up_id: Uuid, what: &str) -> String {
    format!("tour/{tour_id}/sign-up/{sign_up_id}/{what}")
}

/// Every mail the newly decided `events` cause, queued to be rendered when sent.
/// `after` is the tour once they are folded in.
pub fn mails_for(tour_id: Uuid, after: &TourState, events: &[TourEvent]) -> Vec<MailQueued> {
    let party = |s: &SignUp, what: &str, template: &str| {
        MailQueued::to_applicant(party_key(tour_id, s.id, what), template, s.person_id).about(s.id)
    };
    let staff = |s: &SignUp, what: &str| {
        MailQueued::to_staff(
            format!("{}/concierge", party_key(tour_id, s.id, what)),
            templates::CONCIERGE,
            Some(s.person_id),
        )
        .about(s.id)
        .with_params(serde_json::json!({ "what": what }))
    };
    let mut mails = Vec::new();
    for event in events {
        let (id, what, template) = match event {
            TourEvent::TourSignUpConfirmed(e) => (e.sign_up_id, "confirmed", templates::CONFIRMED),
            TourEvent::TourSignUpWaitlisted(e) => {
                (e.sign_up_id, "waitlisted", templates::WAITLISTED)
            }
            TourEvent::TourSignUpPromoted(e) => (e.sign_up_id, "promoted", templates::PROMOTED),
            TourEvent::TourSignUpCancelled(e) => (e.sign_up_id, "cancelled", templates::CANCELLED),
            TourEvent::TourDetailsChanged(e) if e.concerns_parties() => {
                for s in after.active_sign_ups() {
                    mails.push(
                        MailQueued::to_applicant(
                            format!("tour/{tour_id}/changed/{}/{}", e.revision, s.id),
                            templates::TOUR_CHANGED,
                            s.person_id,
                        )
                        .about(s.id)
                        .with_params(serde_json::json!({ "revision": e.revision })),
                    );
                }
                continue;
            }
            TourEvent::TourCancelled(e) => {
                for id in &e.affected_sign_ups {
                    if let Some(s) = after.sign_up(*id) {
                        mails.push(
                            MailQueued::to_applicant(
                                format!("tour/{tour_id}/cancelled/{id}"),
                                templates::TOUR_CANCELLED,
                                s.person_id,
                            )
                            .about(*id),
                        );
                    }
                }
                continue;
            }
            _ => continue,
        };
        if let Some(s) = after.sign_up(id) {
            mails.push(party(s, what, template));
            mails.push(staff(s, what));
        }
    }
    mails
}

/// Renders the tour mails from the tour's facts, in the words of the configuration
/// in force when they are sent.
#[derive(Debug, Clone)]
pub struct TourMailTemplates {
    config: std::sync::Arc<Config>,
}

impl TourMailTemplates {
    pub fn new(config: std::sync::Arc<Config>) -> Self {
        Self { config }
    }
}

/// The sign-up's personal part, with the person's later corrections (訂正) applied.
fn corrected(s: &SignUp, person: &[(String, serde_json::Value)]) -> Result<SignUp, RenderError> {
    let Some(p) = s.personal.known() else {
        return Err(RenderError::Erased(format!("sign-up {}", s.id)));
    };
    let mut p = p.clone();
    if let Some(c) = kujira_domain::person::latest_correction(person) {
        p.name = c.name;
        p.name_kana = c.name_kana;
        p.email = c.email;
        if let Some(phone) = c.phone {
            p.phone = phone;
        }
    }
    let mut s = s.clone();
    s.personal = Personal::Known(p);
    Ok(s)
}

impl RenderMail for TourMailTemplates {
    fn templates(&self) -> &[&'static str] {
        &[
            templates::CONFIRMED,
            templates::WAITLISTED,
            templates::PROMOTED,
            templates::CANCELLED,
            templates::TOUR_CANCELLED,
            templates::TOUR_CHANGED,
            templates::CONCIERGE,
        ]
    }

    fn render(&self, mail: &MailQueued, facts: &MailFacts<'_>) -> Result<MailContent, RenderError> {
        let events = facts
            .stream
            .iter()
            .map(|(t, d)| {
                serde_json::from_value::<TourEvent>(serde_json::json!({ "type": t, "data": d }))
                    .map_err(|e| RenderError::Decode(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let state = Tour::replay(&events);
        let no_facts = || RenderError::NoFacts(mail.key.clone());
        let tour_id = state.id.ok_or_else(no_facts)?;
        let d = state.details.as_ref().ok_or_else(no_facts)?;
        let id = mail.about.ok_or_else(no_facts)?;
        let s = corrected(state.sign_up(id).ok_or_else(no_facts)?, facts.person)?;
        let r = Renderer {
            config: &self.config,
            tour_id,
            tour: &state,
            d,
        };
        // The fact the mail is about: the last of its kind for this sign-up.
        let last = |pick: &dyn Fn(&TourEvent) -> Option<Fact>| {
            events.iter().rev().find_map(pick).ok_or_else(no_facts)
        };
        let rendered = match mail.template.as_str() {
            templates::CONFIRMED => {
                let f = last(&|e| match e {
                    TourEvent::TourSignUpConfirmed(c) if c.sign_up_id == id => Some(Fact::at(c.at)),
                    _ => None,
                })?;
                r.confirmed(&s, f.at, false)
            }
            templates::PROMOTED => {
                let f = last(&|e| match e {
                    TourEvent::TourSignUpPromoted(c) if c.sign_up_id == id => Some(Fact::at(c.at)),
                    _ => None,
                })?;
                r.confirmed(&s, f.at, true)
            }
            templates::WAITLISTED => {
                let f = last(&|e| match e {
                    TourEvent::TourSignUpWaitlisted(w) if w.sign_up_id == id => Some(Fact {
                        position: w.position,
                        ..Fact::at(w.at)
                    }),
                    _ => None,
                })?;
                r.waitlisted(&s, f.position)
            }
            templates::CANCELLED => {
                let f = last(&|e| match e {
                    TourEvent::TourSignUpCancelled(c) if c.sign_up_id == id => Some(Fact {
                        was: c.was,
                        ..Fact::at(c.at)
                    }),
                    _ => None,
                })?;
                r.cancelled(&s, f.was, f.at)
            }
            templates::TOUR_CANCELLED => {
                let cancelled = events.iter().rev().find_map(|e| match e {
                    TourEvent::TourCancelled(c) => Some(c),
                    _ => None,
                });
                let c = cancelled.ok_or_else(no_facts)?;
                r.tour_cancelled(&s, c.reason.as_deref(), c.at)
            }
            templates::TOUR_CHANGED => {
                let revision = mail
                    .params
                    .get("revision")
                    .and_then(|r| r.as_u64())
                    .ok_or_else(no_facts)?;
                let changed = events.iter().rev().find_map(|e| match e {
                    TourEvent::TourDetailsChanged(c) if u64::from(c.revision) == revision => {
                        Some(c)
                    }
                    _ => None,
                });
                let c = changed.ok_or_else(no_facts)?;
                r.tour_changed(&s, c)
            }
            templates::CONCIERGE => {
                let what = mail
                    .params
                    .get("what")
                    .and_then(|w| w.as_str())
                    .unwrap_or("");
                let what_ja = match what {
                    "confirmed" => "参加確定",
                    "waitlisted" => "キャンセル待ち",
                    "promoted" => "キャンセル待ちから繰り上げ",
                    "cancelled" => "キャンセル",
                    _ => return Err(no_facts()),
                };
                r.concierge(&s, what_ja, what)
            }
            _ => return Err(no_facts()),
        };
        rendered
            .personal
            .into_known()
            .ok_or_else(|| RenderError::Erased(mail.key.clone()))
    }
}

#[cfg(test)]
mod tests;
