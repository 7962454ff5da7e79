//! The rules' mails, in Japanese, as plain text and HTML (maud), rendered when the
//! mailer sends them ([`RuleMailTemplates`]) from the facts of their stream and
//! of the person, in the words of the configuration in force then.
//!
//! Subjects hold no personal data (they are kept for the person's data export).
//! The mailer adds the one-click unsubscribe to every applicant follow-up; the
//! templates do not. Staff mail names cases by their reference and links to the
//! desk: never an applicant's name.

use std::sync::Arc;

use kujira_config::Config;
use kujira_domain::decider::Decider;
use kujira_domain::inquiry::{ConsultationEvent, Stage};
use kujira_domain::mail::{MailContent, MailFacts, MailQueued, RenderError, RenderMail};
use kujira_domain::tour::{SignUp, Tour, TourDetails, TourEvent};
use kujira_tours::mail::{fee_ja, feedback_link, ja_datetime, ja_span, sign_up_link};
use kujira_web::mail_body::MailBody;

use super::streams::{
    CaseRef, DigestCompiled, DigestItem, DigestSection, DigestTour, StaffMailEvent,
    SupportWindowNoted,
};

/// The templates of the rules' mails.
pub mod templates {
    /// To each confirmed party, days before the tour (follow-up).
    pub const TOUR_REMINDER: &str = "tour_reminder";
    /// To each party that came, the day after, with the feedback form (follow-up).
    pub const TOUR_THANK_YOU: &str = "tour_thank_you";
    /// To an applicant not heard from for a while (follow-up).
    pub const NURTURE: &str = "nurture_follow_up";
    /// To a household some months after it moved (follow-up).
    pub const POST_MOVE: &str = "post_move_check_in";
    /// To the concierge of a household that applies for 移住支援金 (staff).
    pub const SUPPORT_WINDOW: &str = "support_window_note";
    /// To each concierge, on business days (staff).
    pub const DIGEST: &str = "concierge_digest";
}

/// Renders the rules' mails.
#[derive(Debug, Clone)]
pub struct RuleMailTemplates {
    config: Arc<Config>,
}

impl RuleMailTemplates {
    pub fn new(config: Arc<Config>) -> Self {
        Self { config }
    }
}

impl RenderMail for RuleMailTemplates {
    fn templates(&self) -> &[&'static str] {
        &[
            templates::TOUR_REMINDER,
            templates::TOUR_THANK_YOU,
            templates::NURTURE,
            templates::POST_MOVE,
            templates::SUPPORT_WINDOW,
            templates::DIGEST,
        ]
    }

    fn render(&self, mail: &MailQueued, facts: &MailFacts<'_>) -> Result<MailContent, RenderError> {
        let r = Renderer {
            config: &self.config,
        };
        match mail.template.as_str() {
            templates::TOUR_REMINDER | templates::TOUR_THANK_YOU => r.tour(mail, facts),
            templates::NURTURE | templates::POST_MOVE => r.case(mail, facts),
            templates::SUPPORT_WINDOW | templates::DIGEST => r.staff(mail, facts),
            _ => Err(RenderError::NoFacts(mail.key.clone())),
        }
    }
}

/// Who an applicant mail goes to, as they are now (a correction wins).
struct Addressee {
    name: String,
    email: String,
}

fn addressee(name: String, email: String, person: &[(String, serde_json::Value)]) -> Addressee {
    match kujira_domain::person::latest_correction(person) {
        Some(c) => Addressee {
            name: c.name.to_string(),
            email: c.email.to_string(),
        },
        None => Addressee { name, email },
    }
}

fn decode<E: serde::de::DeserializeOwned>(
    facts: &[(String, serde_json::Value)],
) -> Result<Vec<E>, RenderError> {
    facts
        .iter()
        .map(|(t, d)| {
            serde_json::from_value::<E>(serde_json::json!({ "type": t, "data": d }))
                .map_err(|e| RenderError::Decode(e.to_string()))
        })
        .collect()
}

pub use kujira_domain::calendar::date_ja;

fn phase_ja(phase: &str) -> &'static str {
    match phase {
        "gathering" => Stage::Gathering.label_ja(),
        "considering" => Stage::Considering.label_ja(),
        "decided" => Stage::Decided.label_ja(),
        "moved" => Stage::Moved.label_ja(),
        _ => "不明",
    }
}

struct Renderer<'a> {
    config: &'a Config,
}

impl Renderer<'_> {
    fn subject(&self, what: &str) -> String {
        format!("【{}】{what}", self.config.words.site_name)
    }

    /// The public signature of applicant mail.
    fn signature(&self) -> Vec<String> {
        kujira_web::mail_body::signature(self.config)
    }

    fn staff_signature(&self) -> Vec<String> {
        vec![format!(
            "{} 自動送信（配信の設定は管理者へ）",
            self.config.words.site_name
        )]
    }

    fn applicant(&self, to: &Addressee, subject: String, body: &MailBody) -> MailContent {
        MailContent {
            to: vec![to.email.clone()],
            subject,
            text: body.text(&self.signature()),
            html: Some(body.html(&self.signature())),
            attachments: vec![],
            unsubscribe_url: None,
        }
    }

    // -----------------------------------------------------------------
    // Tour mails

    fn tour(&self, mail: &MailQueued, facts: &MailFacts<'_>) -> Result<MailContent, RenderError> {
        let no_facts = || RenderError::NoFacts(mail.key.clone());
        let events: Vec<TourEvent> = decode(facts.stream)?;
        let state = Tour::replay(&events);
        let tour_id = state.id.ok_or_else(no_facts)?;
        let d = state.details.as_ref().ok_or_else(no_facts)?;
        let s = state
            .sign_up(mail.about.ok_or_else(no_facts)?)
            .ok_or_else(no_facts)?;
        let p = s
            .personal
            .known()
            .ok_or_else(|| RenderError::Erased(mail.key.clone()))?;
        let to = addressee(p.name.to_string(), p.email.to_string(), facts.person);
        Ok(if mail.template == templates::TOUR_REMINDER {
            self.reminder(tour_id, d, s, &to)
        } else {
            self.thank_you(tour_id, d, s, &to)
        })
    }

    fn tour_rows(&self, d: &TourDetails, s: &SignUp) -> Vec<(String, String)> {
        let mut rows = vec![
            ("ツアー".into(), d.title.clone()),
            ("種類".into(), d.kind.label_ja().into()),
            (
                "日時".into(),
                ja_span(self.config.timezone, d.starts_at, d.ends_at),
            ),
        ];
        if !d.meeting_place.is_empty() {
            rows.push(("集合場所".into(), d.meeting_place.clone()));
        }
        rows.push(("参加費".into(), fee_ja(d.fee_yen)));
        rows.push((
            "参加人数".into(),
            format!("大人{}名・子ども{}名", s.party.adults, s.party.children),
        ));
        if let Some(t) = s.transport {
            rows.push(("来場方法".into(), t.label_ja().into()));
        }
        rows
    }

    fn reminder(
        &self,
        tour_id: uuid::Uuid,
        d: &TourDetails,
        s: &SignUp,
        to: &Addressee,
    ) -> MailContent {
        let w = &self.config.words;
        let day = d
            .starts_at
            .with_timezone(&self.config.timezone)
            .date_naive();
        let body = MailBody {
            greeting: format!("{} 様", to.name),
            paragraphs: vec![
                format!(
                    "{}の{}です。お申し込みいただいている体験ツアーの開催が近づいてまいりましたので、ご案内いたします。",
                    w.city_name, w.site_name
                ),
                "当日お会いできるのを楽しみにしております。".into(),
            ],
            sections: vec![("ご参加いただくツアー".into(), self.tour_rows(d, s))],
            links: vec![(
                "お申し込みの確認・キャンセル".into(),
                sign_up_link(self.config, tour_id, s.id),
            )],
            closing: vec![
                "ご都合が悪くなった場合は、上のリンクからキャンセルのお手続きをお願いします。キャンセル待ちの方にお席をお譲りできます。".into(),
                format!(
                    "当日のご連絡や、遅れそうなときは、{}（{}）までお電話ください。",
                    w.desk_name, w.desk_phone
                ),
            ],
            ..MailBody::default()
        };
        // The date and the tour, nothing about the person.
        let subject = self.subject(&format!(
            "{}開催のツアーのご案内：{}",
            date_ja(day),
            d.title
        ));
        self.applicant(to, subject, &body)
    }

    fn thank_you(
        &self,
        tour_id: uuid::Uuid,
        d: &TourDetails,
        s: &SignUp,
        to: &Addressee,
    ) -> MailContent {
        let w = &self.config.words;
        let body = MailBody {
            greeting: format!("{} 様", to.name),
            paragraphs: vec![
                format!(
                    "先日は「{}」（{}）にご参加いただき、ありがとうございました。",
                    d.title,
                    ja_datetime(self.config.timezone, d.starts_at)
                ),
                "今後のツアーづくりの参考にさせていただくため、アンケートへのご協力をお願いいたします（1分ほどで終わります）。".into(),
            ],
            links: vec![
                ("アンケートに答える".into(), feedback_link(self.config, tour_id, s.id)),
                (
                    "移住のご相談はこちら".into(),
                    format!("{}/inquiry", self.config.public_url),
                ),
            ],
            closing: vec![format!(
                "住まいや仕事、子育てのことなど、{}での暮らしについて気になることがあれば、いつでもお気軽にご相談ください。",
                w.city_name
            )],
            ..MailBody::default()
        };
        let subject = self.subject(&format!("ご参加ありがとうございました：{}", d.title));
        self.applicant(to, subject, &body)
    }

    // -----------------------------------------------------------------
    // Case mails

    fn case(&self, mail: &MailQueued, facts: &MailFacts<'_>) -> Result<MailContent, RenderError> {
        let erased = || RenderError::Erased(mail.key.clone());
        let mut who = None;
        for (t, data) in facts.stream {
            if t != "InquirySubmitted" && t != "TourRequestSubmitted" {
                continue;
            }
            let e: ConsultationEvent =
                serde_json::from_value(serde_json::json!({ "type": t, "data": data }))
                    .map_err(|e| RenderError::Decode(e.to_string()))?;
            who = match e {
                ConsultationEvent::InquirySubmitted(s) => {
                    let p = s.inquiry.personal.known().ok_or_else(erased)?;
                    Some((p.name.to_string(), p.email.to_string()))
                }
                ConsultationEvent::TourRequestSubmitted(s) => {
                    let p = s.request.personal.known().ok_or_else(erased)?;
                    Some((p.name.to_string(), p.email.to_string()))
                }
                _ => None,
            };
            break;
        }
        let (name, email) = who.ok_or_else(|| RenderError::NoFacts(mail.key.clone()))?;
        let to = addressee(name, email, facts.person);
        Ok(if mail.template == templates::NURTURE {
            let step = mail
                .params
                .get("step")
                .and_then(|s| s.as_u64())
                .unwrap_or(1);
            self.nurture(&to, step)
        } else {
            let days = mail
                .params
                .get("days")
                .and_then(|s| s.as_u64())
                .unwrap_or(90);
            self.post_move(&to, days)
        })
    }

    fn nurture(&self, to: &Addressee, step: u64) -> MailContent {
        let w = &self.config.words;
        let url = &self.config.public_url;
        let (subject, opening) = if step <= 1 {
            (
                "その後、移住のご検討はいかがですか".to_owned(),
                format!(
                    "以前は{}への移住についてお問い合わせいただき、ありがとうございました。その後、ご検討の状況はいかがでしょうか。",
                    w.city_name
                ),
            )
        } else {
            (
                format!("{}での暮らし、引き続きご案内しています", w.city_name),
                format!(
                    "{}の{}です。しばらくご連絡が途絶えておりましたので、近況をおうかがいしたくご連絡しました。",
                    w.city_name, w.site_name
                ),
            )
        };
        let body = MailBody {
            greeting: format!("{} 様", to.name),
            paragraphs: vec![
                opening,
                "住まい・仕事・子育てのことなど、気になることがあれば、いつでもお気軽にご相談ください。窓口のほか、オンラインでのご相談も承っています。".into(),
                "ご家族の状況やお仕事が変わって、移住を考えるタイミングが変わったときも、どうぞお声がけください。".into(),
            ],
            links: vec![
                ("移住相談のお申し込み".into(), format!("{url}/inquiry")),
                ("おためし移住体験ツアーの一覧".into(), format!("{url}/tours")),
            ],
            closing: vec![format!(
                "このメールは、{}へ移住のご相談をいただいた方にお送りしています。",
                w.desk_name
            )],
            ..MailBody::default()
        };
        self.applicant(to, self.subject(&subject), &body)
    }

    fn post_move(&self, to: &Addressee, days: u64) -> MailContent {
        let w = &self.config.words;
        let since = if days.is_multiple_of(30) {
            format!("{}か月", days / 30)
        } else {
            format!("{days}日")
        };
        let body = MailBody {
            greeting: format!("{} 様", to.name),
            paragraphs: vec![
                format!(
                    "{}へ移住されて{since}ほどが経ちました。新しい暮らしには慣れてこられましたか。",
                    w.city_name
                ),
                self.config.rules.community_info.clone(),
                "暮らしの中で困っていることや、知りたいことがあれば、移住・定住相談窓口までお気軽にご連絡ください。".into(),
            ],
            ..MailBody::default()
        };
        let subject = self.subject(&format!("{}での暮らしはいかがですか", w.city_name));
        self.applicant(to, subject, &body)
    }

    // -----------------------------------------------------------------
    // Staff mails

    fn staff(&self, mail: &MailQueued, facts: &MailFacts<'_>) -> Result<MailContent, RenderError> {
        let events: Vec<StaffMailEvent> = decode(facts.stream)?;
        for e in events.iter().rev() {
            match e {
                StaffMailEvent::DigestCompiled(d) if d.key == mail.key => return Ok(self.digest(d)),
                StaffMailEvent::SupportWindowNoted(n) if n.key == mail.key => {
                    return Ok(self.support_window(n));
                }
                _ => {}
            }
        }
        Err(RenderError::NoFacts(mail.key.clone()))
    }

    fn case_url(&self, case_id: uuid::Uuid) -> String {
        format!("{}/desk/cases/{case_id}", self.config.public_url)
    }

    fn staff_mail(&self, to: &str, subject: String, body: &MailBody) -> MailContent {
        MailContent {
            to: vec![to.to_owned()],
            subject,
            text: body.text(&self.staff_signature()),
            html: Some(body.html(&self.staff_signature())),
            attachments: vec![],
            unsubscribe_url: None,
        }
    }

    fn support_window(&self, n: &SupportWindowNoted) -> MailContent {
        let months = self.config.rules.support_window_months;
        let mut paragraphs = vec![format!(
            "移住支援金の申請を予定している世帯が、転入から{months}か月を迎えました。申請の期限（転入日から1年）が近づいています。申請書類の準備状況をご確認ください。"
        )];
        if !n.assigned {
            paragraphs.push(
                "この案件には担当者がいないため、すべてのコンシェルジュにお送りしています。".into(),
            );
        }
        let body = MailBody {
            greeting: format!("{} さん", n.recipient.display_name),
            paragraphs,
            sections: vec![(
                "案件".into(),
                vec![
                    ("受付番号".into(), n.reference.clone()),
                    ("転入日".into(), date_ja(n.move_in)),
                    (
                        "申請期限の目安".into(),
                        format!("{}まで", date_ja(n.closes_on)),
                    ),
                ],
            )],
            links: vec![("案件を開く".into(), self.case_url(n.case_id))],
            ..MailBody::default()
        };
        let subject = self.subject(&format!(
            "移住支援金の申請期限が近づいています（受付番号 {}）",
            n.reference
        ));
        self.staff_mail(&n.recipient.email, subject, &body)
    }

    fn digest(&self, d: &DigestCompiled) -> MailContent {
        let tz = self.config.timezone;
        let mut lists = Vec::new();
        for s in &d.sections {
            if s.is_empty() {
                continue;
            }
            let title = section_title(s.item, &self.config.rules);
            if s.mine_total > 0 {
                lists.push((
                    format!("{title}（担当 {}件）", s.mine_total),
                    self.case_lines(s, &s.mine, s.mine_total),
                ));
            }
            if s.unassigned_total > 0 {
                lists.push((
                    format!("{title}（未割り当て {}件）", s.unassigned_total),
                    self.case_lines(s, &s.unassigned, s.unassigned_total),
                ));
            }
        }
        if !d.tours.is_empty() {
            lists.push((
                format!("今後{}日間のツアー", self.config.rules.digest_tours_days),
                d.tours.iter().map(|t| self.tour_line(t)).collect(),
            ));
        }
        let body = MailBody {
            greeting: format!("{} さん", d.recipient.display_name),
            paragraphs: vec![format!(
                "おはようございます。{}の対応状況をお知らせします（{}現在）。案件は受付番号で示しています。詳しくはデスクで確認してください。",
                date_ja(d.date),
                ja_datetime(tz, d.at)
            )],
            lists,
            links: vec![(
                "デスクを開く".into(),
                format!("{}/desk", self.config.public_url),
            )],
            ..MailBody::default()
        };
        // Only the date: counts and cases are in the body, names nowhere.
        let subject = self.subject(&format!("今日の対応のお知らせ（{}）", date_ja(d.date)));
        self.staff_mail(&d.recipient.email, subject, &body)
    }

    fn case_lines(
        &self,
        s: &DigestSection,
        cases: &[CaseRef],
        total: u32,
    ) -> Vec<(String, Option<String>)> {
        let tz = self.config.timezone;
        let mut lines: Vec<(String, Option<String>)> = cases
            .iter()
            .map(|c| {
                let when = match (s.item, c.at, c.date) {
                    (DigestItem::NewCases | DigestItem::NoFirstContact, Some(at), _) => {
                        format!("受付 {}", ja_datetime(tz, at))
                    }
                    (DigestItem::FollowUpsDue, Some(at), _) => {
                        format!("最終連絡・段階変更 {}", ja_datetime(tz, at))
                    }
                    (DigestItem::Idle, Some(at), _) => {
                        format!("最終対応 {}", ja_datetime(tz, at))
                    }
                    (DigestItem::Bouncing, Some(at), _) => {
                        format!("不達 {}", ja_datetime(tz, at))
                    }
                    (_, _, Some(date)) => format!("次回対応日 {}", date_ja(date)),
                    _ => String::new(),
                };
                (
                    format!("{}（{}）{when}", c.reference, phase_ja(&c.phase)),
                    Some(self.case_url(c.case_id)),
                )
            })
            .collect();
        let shown = u32::try_from(cases.len()).unwrap_or(u32::MAX);
        if total > shown {
            lines.push((
                format!("ほか {}件はデスクで確認してください", total - shown),
                None,
            ));
        }
        lines
    }

    fn tour_line(&self, t: &DigestTour) -> (String, Option<String>) {
        let people = match t.max_people {
            Some(max) => format!("{}名／最大{}名", t.confirmed_people, max),
            None => format!("{}名", t.confirmed_people),
        };
        let mut line = format!(
            "{} {}：参加確定 {}組／定員{}組（{people}）",
            ja_span(self.config.timezone, t.starts_at, t.ends_at),
            t.title,
            t.confirmed_parties,
            t.capacity_parties,
        );
        if t.confirmed_parties >= t.capacity_parties {
            line.push_str("・満席");
        }
        if t.waitlist_length > 0 {
            line.push_str(&format!("・キャンセル待ち {}組", t.waitlist_length));
        }
        (
            line,
            Some(format!(
                "{}/desk/tours/{}",
                self.config.public_url, t.tour_id
            )),
        )
    }
}

fn section_title(item: DigestItem, rules: &kujira_config::RuleSettings) -> String {
    match item {
        DigestItem::NewCases => "新しい案件（前回のお知らせ以降）".into(),
        DigestItem::NoFirstContact => format!(
            "{}営業日以内に連絡していない案件",
            rules.digest_no_contact_business_days
        ),
        DigestItem::FollowUpsDue => format!(
            "フォローの時期を迎えた案件（最終連絡から{}日）",
            rules
                .nurture_days
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join("・")
        ),
        DigestItem::PastNextAction => "次回対応日を過ぎた案件".into(),
        DigestItem::Idle => format!("{}日以上対応のない案件", rules.digest_idle_days),
        DigestItem::Bouncing => "メールが届かない案件（アドレスの確認が必要）".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_read_the_japanese_way() {
        assert_eq!(
            date_ja("2026-12-01".parse().unwrap()),
            "2026年12月1日（火）"
        );
    }
}
