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
use icalendar::{Calendar, Component, EventLike};
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

/// Whether an `.ics` adds the tour to a calendar or takes it out again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcsMethod {
    Publish,
    /// Same UID, a higher SEQUENCE and STATUS:CANCELLED: calendar clients remove the
    /// entry that the confirmation added.
    Cancel,
}

impl IcsMethod {
    fn as_str(self) -> &'static str {
        match self {
            IcsMethod::Publish => "PUBLISH",
            IcsMethod::Cancel => "CANCEL",
        }
    }

    /// The attachment's content type, which repeats the method (RFC 6047).
    pub fn content_type(self) -> String {
        format!("text/calendar; charset=utf-8; method={}", self.as_str())
    }
}

/// The `.ics` calendar entry of a tour (UTC times, so every client reads them alike).
pub fn ics(config: &Config, tour_id: Uuid, d: &TourDetails, stamp: DateTime<Utc>) -> String {
    ics_with(config, tour_id, d, stamp, IcsMethod::Publish)
}

/// The entry of a tour whose details staff changed `revision` times: the same UID
/// with a higher SEQUENCE, so that calendar clients update the entry they have.
pub fn ics_revised(
    config: &Config,
    tour_id: Uuid,
    d: &TourDetails,
    stamp: DateTime<Utc>,
    method: IcsMethod,
    revision: u32,
) -> String {
    let sequence = match method {
        IcsMethod::Publish => revision,
        IcsMethod::Cancel => revision + 1,
    };
    ics_sequenced(config, tour_id, d, stamp, method, sequence)
}

/// [`ics`] with a method: `Cancel` withdraws the entry a confirmation added.
pub fn ics_with(
    config: &Config,
    tour_id: Uuid,
    d: &TourDetails,
    stamp: DateTime<Utc>,
    method: IcsMethod,
) -> String {
    let sequence = match method {
        IcsMethod::Publish => 0,
        IcsMethod::Cancel => 1,
    };
    ics_sequenced(config, tour_id, d, stamp, method, sequence)
}

fn ics_sequenced(
    config: &Config,
    tour_id: Uuid,
    d: &TourDetails,
    stamp: DateTime<Utc>,
    method: IcsMethod,
    sequence: u32,
) -> String {
    let host = config
        .public_url
        .split("://")
        .nth(1)
        .unwrap_or("kujira")
        .split(['/', ':'])
        .next()
        .unwrap_or("kujira");
    let mut event = icalendar::Event::new();
    event
        .uid(&format!("tour-{tour_id}@{host}"))
        .timestamp(stamp)
        .summary(&format!("{}（{}）", d.title, config.words.city_name))
        .starts(d.starts_at)
        .ends(d.ends_at)
        .description(&format!(
            "{}\n\nお問い合わせ：{} {}",
            d.description, config.words.desk_name, config.words.desk_phone
        ))
        .url(&format!("{}/tours/{tour_id}", config.public_url));
    if !d.meeting_place.is_empty() {
        event.location(&d.meeting_place);
    }
    if method == IcsMethod::Cancel {
        event.status(icalendar::EventStatus::Cancelled);
    }
    if sequence > 0 {
        event.sequence(sequence);
    }
    let mut cal = Calendar::new();
    cal.append_property(icalendar::Property::new("METHOD", method.as_str()));
    cal.name(&d.title).push(event.done());
    cal.done().to_string()
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

/// What a mail needs of the fact it is about.
struct Fact {
    at: DateTime<Utc>,
    position: u32,
    was: Standing,
}

impl Fact {
    fn at(at: DateTime<Utc>) -> Self {
        Self {
            at,
            position: 0,
            was: Standing::Confirmed,
        }
    }
}

/// The personal part of a sign-up being rendered.
fn pd(s: &SignUp) -> &SignUpPersonal {
    s.personal
        .known()
        .expect("every sign-up passes `corrected`, which refuses erased ones, before rendering")
}

struct Renderer<'a> {
    config: &'a Config,
    tour_id: Uuid,
    tour: &'a TourState,
    d: &'a TourDetails,
}

impl Renderer<'_> {
    fn key(&self, s: &SignUp, what: &str) -> String {
        format!("tour/{}/sign-up/{}/{what}", self.tour_id, s.id)
    }

    fn subject(&self, what: &str) -> String {
        format!(
            "【{}】{}：{}",
            self.config.words.site_name, what, self.d.title
        )
    }

    fn tour_rows(&self) -> Vec<(String, String)> {
        let tz = self.config.timezone;
        let mut rows = vec![
            ("ツアー".into(), self.d.title.clone()),
            ("種類".into(), self.d.kind.label_ja().into()),
            ("日時".into(), ja_span(tz, self.d.starts_at, self.d.ends_at)),
        ];
        if !self.d.meeting_place.is_empty() {
            rows.push(("集合場所".into(), self.d.meeting_place.clone()));
        }
        rows.push(("参加費".into(), fee_ja(self.d.fee_yen)));
        rows
    }

    fn party_rows(&self, s: &SignUp) -> Vec<(String, String)> {
        let mut rows = vec![
            ("代表者".into(), format!("{} 様", pd(s).name)),
            (
                "参加人数".into(),
                format!("大人{}名・子ども{}名", s.party.adults, s.party.children),
            ),
        ];
        if let Some(t) = s.transport {
            rows.push(("来場方法".into(), t.label_ja().into()));
        }
        if let Some(n) = &pd(s).needs {
            rows.push(("配慮事項".into(), n.to_string()));
        }
        rows
    }

    fn signature(&self) -> Vec<String> {
        kujira_web::mail_body::signature(self.config)
    }

    fn link(&self, s: &SignUp) -> (String, String) {
        (
            "お申し込みの確認・キャンセル".into(),
            sign_up_link(self.config, self.tour_id, s.id),
        )
    }

    fn to_party(
        &self,
        s: &SignUp,
        what: &str,
        template: &str,
        subject: String,
        body: MailBody,
        attachments: Vec<Attachment>,
    ) -> MailRequested {
        MailRequested {
            key: self.key(s, what),
            template: template.into(),
            personal: MailContent {
                to: vec![pd(s).email.to_string()],
                subject,
                text: body.text(&self.signature()),
                html: Some(body.html(&self.signature())),
                attachments,
                unsubscribe_url: None,
            }
            .into(),
        }
    }

    fn confirmed(&self, s: &SignUp, at: DateTime<Utc>, promoted: bool) -> MailRequested {
        let mut paragraphs = if promoted {
            vec![
                format!(
                    "キャンセル待ちでお申し込みいただいていた「{}」に空きが出たため、参加が確定しました。",
                    self.d.title
                ),
                "ご都合が合わなくなった場合は、下のリンクからキャンセルの手続きをお願いします。"
                    .into(),
            ]
        } else {
            vec![
                format!(
                    "{}の「{}」にお申し込みいただき、ありがとうございます。参加が確定しましたのでお知らせします。",
                    self.config.words.city_name, self.d.title
                ),
                "ご都合が悪くなった場合は、下のリンクからキャンセルしてください。キャンセル待ちの方に順番にご案内します。".into(),
            ]
        };
        paragraphs.push("カレンダーに登録できるファイル（tour.ics）を添付しています。".into());
        let body = MailBody {
            greeting: format!("{} 様", pd(s).name),
            paragraphs,
            sections: vec![
                ("ツアーの内容".into(), self.tour_rows()),
                ("お申し込みの内容".into(), self.party_rows(s)),
            ],
            links: vec![self.link(s)],
            closing: vec!["当日お会いできることを楽しみにしています。".into()],
            lists: vec![],
        };
        let ics = Attachment {
            filename: "tour.ics".into(),
            content_type: IcsMethod::Publish.content_type(),
            content: ics_revised(
                self.config,
                self.tour_id,
                self.d,
                at,
                IcsMethod::Publish,
                self.tour.revision,
            ),
        };
        let (what, template, subject) = if promoted {
            (
                "promoted",
                templates::PROMOTED,
                self.subject("キャンセル待ちから参加確定になりました"),
            )
        } else {
            (
                "confirmed",
                templates::CONFIRMED,
                self.subject("ツアーへの参加が確定しました"),
            )
        };
        self.to_party(s, what, template, subject, body, vec![ics])
    }

    fn waitlisted(&self, s: &SignUp, position: u32) -> MailRequested {
        let body = MailBody {
            greeting: format!("{} 様", pd(s).name),
            paragraphs: vec![
                format!(
                    "「{}」にお申し込みいただき、ありがとうございます。定員に達しているため、キャンセル待ちとして受け付けました。",
                    self.d.title
                ),
                format!("現在のキャンセル待ちの順番は {position} 番目です。"),
                "空きが出た場合は、お申し込み順に繰り上げて参加確定とし、メールでお知らせします。キャンセル待ちをやめる場合は、下のリンクから手続きできます。".into(),
            ],
            sections: vec![
                ("ツアーの内容".into(), self.tour_rows()),
                ("お申し込みの内容".into(), self.party_rows(s)),
            ],
            links: vec![self.link(s)],
            closing: vec![],
            lists: vec![],
        };
        self.to_party(
            s,
            "waitlisted",
            templates::WAITLISTED,
            self.subject("キャンセル待ちで受け付けました"),
            body,
            vec![],
        )
    }

    /// The entry that takes the tour out of the party's calendar again.
    fn ics_cancel(&self, at: DateTime<Utc>) -> Attachment {
        Attachment {
            filename: "tour.ics".into(),
            content_type: IcsMethod::Cancel.content_type(),
            content: ics_revised(
                self.config,
                self.tour_id,
                self.d,
                at,
                IcsMethod::Cancel,
                self.tour.revision,
            ),
        }
    }

    fn cancelled(&self, s: &SignUp, was: Standing, at: DateTime<Utc>) -> MailRequested {
        let what = match was {
            Standing::Confirmed => "ツアーへのお申し込み",
            Standing::Waitlisted => "キャンセル待ち",
        };
        let body = MailBody {
            greeting: format!("{} 様", pd(s).name),
            paragraphs: vec![
                format!("「{}」の{what}のキャンセルを受け付けました。", self.d.title),
                "またの機会にぜひご参加ください。移住に関するご相談は、いつでも窓口で承っています。"
                    .into(),
            ],
            sections: vec![("キャンセルしたツアー".into(), self.tour_rows())],
            links: vec![],
            closing: vec![],
            lists: vec![],
        };
        // Only a confirmed party was sent the calendar entry to take back.
        let attachments = match was {
            Standing::Confirmed => vec![self.ics_cancel(at)],
            Standing::Waitlisted => vec![],
        };
        self.to_party(
            s,
            "cancelled",
            templates::CANCELLED,
            self.subject("キャンセルを受け付けました"),
            body,
            attachments,
        )
    }

    fn tour_changed(
        &self,
        s: &SignUp,
        c: &kujira_domain::tour::TourDetailsChanged,
    ) -> MailRequested {
        let what: Vec<&str> = c
            .changed
            .iter()
            .filter_map(|f| match f.as_str() {
                "starts_at" | "ends_at" => Some("日時"),
                "meeting_place" => Some("集合場所"),
                "fee_yen" => Some("参加費"),
                _ => None,
            })
            .fold(Vec::new(), |mut v, w| {
                if !v.contains(&w) {
                    v.push(w);
                }
                v
            });
        let mut paragraphs = vec![
            format!(
                "お申し込みいただいている「{}」の{}が変更になりました。変更後の内容は次のとおりです。",
                self.d.title,
                what.join("・")
            ),
            "ご都合が合わなくなった場合は、下のリンクからキャンセルの手続きをお願いします。".into(),
        ];
        let confirmed = s.is_confirmed();
        if confirmed {
            paragraphs
                .push("カレンダーの予定を更新できるファイル（tour.ics）を添付しています。".into());
        }
        let body = MailBody {
            greeting: format!("{} 様", pd(s).name),
            paragraphs,
            sections: vec![
                ("変更後のツアーの内容".into(), self.tour_rows()),
                ("お申し込みの内容".into(), self.party_rows(s)),
            ],
            links: vec![self.link(s)],
            closing: vec!["ご不便をおかけしますが、よろしくお願いいたします。".into()],
            lists: vec![],
        };
        let attachments = if confirmed {
            vec![Attachment {
                filename: "tour.ics".into(),
                content_type: IcsMethod::Publish.content_type(),
                content: ics_revised(
                    self.config,
                    self.tour_id,
                    self.d,
                    c.at,
                    IcsMethod::Publish,
                    c.revision,
                ),
            }]
        } else {
            vec![]
        };
        MailRequested {
            key: format!("tour/{}/changed/{}/{}", self.tour_id, c.revision, s.id),
            template: templates::TOUR_CHANGED.into(),
            personal: MailContent {
                to: vec![pd(s).email.to_string()],
                subject: self.subject("ツアーの内容変更のお知らせ"),
                text: body.text(&self.signature()),
                html: Some(body.html(&self.signature())),
                attachments,
                unsubscribe_url: None,
            }
            .into(),
        }
    }

    fn tour_cancelled(&self, s: &SignUp, reason: Option<&str>, at: DateTime<Utc>) -> MailRequested {
        let mut paragraphs = vec![format!(
            "お申し込みいただいていた「{}」は、誠に勝手ながら中止することになりました。楽しみにしていただいていたところ、申し訳ありません。",
            self.d.title
        )];
        if let Some(r) = reason {
            paragraphs.push(format!("中止の理由：{r}"));
        }
        paragraphs.push(
            "お手続きは必要ありません。次回のツアーやオーダーメイドツアーについては、窓口までお気軽にお問い合わせください。"
                .into(),
        );
        let body = MailBody {
            greeting: format!("{} 様", pd(s).name),
            paragraphs,
            sections: vec![("中止となったツアー".into(), self.tour_rows())],
            links: vec![],
            closing: vec![],
            lists: vec![],
        };
        MailRequested {
            key: format!("tour/{}/cancelled/{}", self.tour_id, s.id),
            template: templates::TOUR_CANCELLED.into(),
            personal: MailContent {
                to: vec![pd(s).email.to_string()],
                subject: self.subject("ツアー中止のお知らせ"),
                text: body.text(&self.signature()),
                html: Some(body.html(&self.signature())),
                // A CANCEL for an entry a waitlisted party never had is ignored by
                // calendar clients, so every party gets it.
                attachments: vec![self.ics_cancel(at)],
                unsubscribe_url: None,
            }
            .into(),
        }
    }

    fn concierge(&self, s: &SignUp, what_ja: &str, what: &str) -> MailRequested {
        let p = pd(s);
        let mut person = vec![
            ("氏名".into(), format!("{}（{}）", p.name, p.name_kana)),
            ("メール".into(), p.email.to_string()),
            ("電話".into(), p.phone.to_string()),
            ("都道府県".into(), s.prefecture.to_string()),
            (
                "参加人数".into(),
                format!("大人{}名・子ども{}名", s.party.adults, s.party.children),
            ),
        ];
        if let Some(a) = &p.children_ages {
            person.push(("子どもの年齢".into(), a.to_string()));
        }
        if let Some(t) = s.transport {
            person.push(("来場方法".into(), t.label_ja().into()));
        }
        if let Some(n) = &p.needs {
            person.push(("配慮事項".into(), n.to_string()));
        }
        if let Some(src) = s.source {
            person.push(("知ったきっかけ".into(), src.label_ja().into()));
        }
        let capacity = self.d.capacity_parties;
        let counts = vec![
            (
                "参加確定".into(),
                format!(
                    "{}組 / 定員{}組（{}名）",
                    self.tour.confirmed_parties(),
                    capacity,
                    self.tour.confirmed_people()
                ),
            ),
            (
                "キャンセル待ち".into(),
                format!("{}組", self.tour.waitlist_length()),
            ),
        ];
        let body = MailBody {
            greeting: "移住コンシェルジュ各位".into(),
            paragraphs: vec![format!("「{}」に{what_ja}がありました。", self.d.title)],
            sections: vec![
                ("ツアー".into(), self.tour_rows()),
                ("お申し込み".into(), person),
                ("現在の状況".into(), counts),
            ],
            links: vec![(
                "ツアーの参加者一覧".into(),
                format!("{}/desk/tours/{}", self.config.public_url, self.tour_id),
            )],
            closing: vec![],
            lists: vec![],
        };
        MailRequested {
            key: format!("{}/concierge", self.key(s, what)),
            template: templates::CONCIERGE.into(),
            personal: MailContent {
                to: self.config.concierge_emails.clone(),
                // No name in the subject: subjects are kept as a record of what was sent.
                subject: format!(
                    "【ツアー{what_ja}】{}（大人{}名・子ども{}名）",
                    self.d.title, s.party.adults, s.party.children
                ),
                // Staff mail: no public signature, only where it comes from.
                text: body.text(&[format!("{} 自動送信", self.config.words.site_name)]),
                html: Some(body.html(&[format!("{} 自動送信", self.config.words.site_name)])),
                attachments: vec![],
                unsubscribe_url: None,
            }
            .into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kujira_domain::decider::Decider;
    use kujira_domain::tour::form::SignUpInput;
    use kujira_domain::tour::{Tour, TourCommand, TourKind};

    fn config() -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        let c = Config::for_tests(dir.path());
        (dir, c)
    }

    fn at() -> DateTime<Utc> {
        "2026-12-01T00:00:00Z".parse().unwrap()
    }

    /// A tour's stream as the service writes it: facts, then the mails they queue.
    struct Sim {
        id: Uuid,
        config: Config,
        history: Vec<TourEvent>,
    }

    /// A queued mail, rendered as the mailer renders it at send time.
    struct Rendered {
        key: String,
        template: String,
        personal: MailContent,
    }

    impl Sim {
        fn state(&self) -> TourState {
            Tour::replay(&self.history)
        }

        /// Decides `cmd`, queues its mails, and renders them from the stream.
        fn apply(&mut self, cmd: TourCommand) -> Vec<Rendered> {
            let state = self.state();
            let decided = Tour::decide(&state, &cmd).unwrap();
            let after = decided.iter().fold(state, Tour::evolve);
            let queued = mails_for(self.id, &after, &decided);
            self.history.extend(decided);
            let templates = TourMailTemplates::new(std::sync::Arc::new(self.config.clone()));
            let mut out = Vec::new();
            for m in queued {
                self.history.push(TourEvent::MailQueued(m.clone()));
                let facts: Vec<(String, serde_json::Value)> = self
                    .history
                    .iter()
                    .map(|e| {
                        let v = serde_json::to_value(e).unwrap();
                        (v["type"].as_str().unwrap().to_owned(), v["data"].clone())
                    })
                    .collect();
                let personal = templates
                    .render(
                        &m,
                        &MailFacts {
                            stream: &facts,
                            person: &[],
                        },
                    )
                    .unwrap();
                out.push(Rendered {
                    key: m.key,
                    template: m.template,
                    personal,
                });
            }
            out
        }

        fn sign_up(&mut self, n: u128) -> Vec<Rendered> {
            let input = SignUpInput {
                name: "柏崎 太郎".into(),
                name_kana: "カシワザキ タロウ".into(),
                email: format!("taro{n}@example.jp"),
                phone: "090-1234-5678".into(),
                prefecture: "東京都".into(),
                adults: "2".into(),
                needs: "卵アレルギー\nベビーカー".into(),
                consent: true,
                ..SignUpInput::default()
            };
            let sign_up = input
                .validate(Uuid::from_u128(100 + n))
                .unwrap()
                .for_person(Uuid::from_u128(500 + n));
            self.apply(TourCommand::SignUp { sign_up, at: at() })
        }
    }

    fn tour(capacity: u32) -> Sim {
        let (_dir, config) = config();
        let id = Uuid::from_u128(7);
        let details = TourDetails {
            title: "冬の柏崎 1泊2日".into(),
            kind: TourKind::Overnight,
            starts_at: "2026-12-31T00:00:00Z".parse().unwrap(),
            ends_at: "2027-01-01T06:00:00Z".parse().unwrap(),
            meeting_place: "JR柏崎駅".into(),
            capacity_parties: capacity,
            max_people: None,
            fee_yen: 12000,
            deadline: None,
            description: "雪国の暮らしを体験します。".into(),
            audience: String::new(),
        };
        let mut sim = Sim {
            id,
            config,
            history: vec![],
        };
        sim.apply(TourCommand::Schedule {
            tour_id: id,
            details,
            publish: true,
            at: at(),
        });
        sim
    }

    #[test]
    fn dates_read_the_japanese_way_in_the_city_time_zone() {
        let tz = chrono_tz::Asia::Tokyo;
        let start = "2026-12-31T00:00:00Z".parse().unwrap();
        assert_eq!(ja_datetime(tz, start), "2026年12月31日（木）09:00");
        let same_day = "2026-12-31T07:30:00Z".parse().unwrap();
        assert_eq!(
            ja_span(tz, start, same_day),
            "2026年12月31日（木）09:00〜16:30"
        );
        assert_eq!(fee_ja(0), "無料");
        assert_eq!(fee_ja(12000), "12,000円");
        assert_eq!(fee_ja(1_234_567), "1,234,567円");
    }

    #[test]
    fn a_confirmation_carries_the_details_an_ics_and_the_personal_link() {
        let mut sim = tour(1);
        let (id, config) = (sim.id, sim.config.clone());
        let mails = sim.sign_up(1);
        assert_eq!(mails.len(), 2, "the party and the concierges");
        let party = &mails[0];
        assert_eq!(party.template, templates::CONFIRMED);
        assert_eq!(party.personal.to, ["taro1@example.jp"]);
        assert_eq!(
            party.key,
            format!("tour/{id}/sign-up/{}/confirmed", Uuid::from_u128(101))
        );
        let text = &party.personal.text;
        assert!(text.starts_with("柏崎 太郎 様"));
        assert!(text.contains("2026年12月31日（木）09:00 〜 2027年1月1日（金）15:00"));
        assert!(text.contains("12,000円"));
        assert!(text.contains("卵アレルギー\n　　ベビーカー"));
        assert!(text.contains(&config.words.desk_phone));
        let link = sign_up_link(&config, id, Uuid::from_u128(101));
        assert!(text.contains(&link));
        assert!(
            party
                .personal
                .html
                .as_ref()
                .unwrap()
                .contains(&format!("href=\"{link}\""))
        );
        let ics = &party.personal.attachments[0];
        assert!(ics.content_type.starts_with("text/calendar"));
        for line in [
            "BEGIN:VCALENDAR",
            "METHOD:PUBLISH",
            "BEGIN:VEVENT",
            "DTSTART:20261231T000000Z",
            "DTEND:20270101T060000Z",
            "LOCATION:JR柏崎駅",
        ] {
            assert!(ics.content.contains(line), "{line} in {}", ics.content);
        }
        let notice = &mails[1];
        assert_eq!(notice.personal.to, config.concierge_emails);
        assert!(notice.personal.text.contains("taro1@example.jp"));
        assert!(
            !notice.personal.subject.contains("柏崎 太郎"),
            "no name in subjects"
        );
        assert!(notice.personal.text.contains("1組 / 定員1組（2名）"));
    }

    #[test]
    fn a_waitlisted_party_is_told_its_place() {
        let mut sim = tour(1);
        sim.sign_up(1);
        let mails = sim.sign_up(2);
        assert_eq!(mails[0].template, templates::WAITLISTED);
        assert!(mails[0].personal.text.contains("1 番目"));
        assert!(mails[0].personal.attachments.is_empty());
    }

    fn calendar_of(mail: &Rendered) -> &Attachment {
        mail.personal
            .attachments
            .iter()
            .find(|a| a.content_type.starts_with("text/calendar"))
            .unwrap_or_else(|| panic!("{} has no calendar entry", mail.key))
    }

    #[test]
    fn cancelling_takes_the_tour_back_out_of_the_calendar() {
        let mut sim = tour(1);
        let published = calendar_of(&sim.sign_up(1)[0]).clone();
        let uid = published
            .content
            .lines()
            .find(|l| l.starts_with("UID:"))
            .unwrap()
            .to_owned();

        // The party cancels: the receipt withdraws the same entry.
        let mails = sim.apply(TourCommand::CancelSignUp {
            sign_up_id: Uuid::from_u128(101),
            by: kujira_domain::tour::CancelledBy::Party,
            at: at(),
        });
        let receipt = mails
            .iter()
            .find(|m| m.template == templates::CANCELLED)
            .unwrap();
        let cancel = calendar_of(receipt);
        assert!(cancel.content_type.ends_with("method=CANCEL"));
        for line in [
            "METHOD:CANCEL",
            "STATUS:CANCELLED",
            "SEQUENCE:1",
            uid.as_str(),
        ] {
            assert!(
                cancel.content.contains(line),
                "{line} in {}",
                cancel.content
            );
        }

        // The city cancels the tour: every party's notice withdraws it too.
        let mut sim = tour(1);
        sim.sign_up(2);
        let mails = sim.apply(TourCommand::Cancel {
            reason: Some("大雪のため".into()),
            at: at(),
        });
        let notice = mails
            .iter()
            .find(|m| m.template == templates::TOUR_CANCELLED)
            .unwrap();
        assert!(calendar_of(notice).content.contains("METHOD:CANCEL"));
        assert!(notice.personal.text.contains("大雪のため"));
    }
}
