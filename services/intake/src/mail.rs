//! The mails a new case requests: a notice to the concierges with a link to the
//! case, and the applicant's auto-reply (受付完了).
//!
//! The case's first append queues them as `MailQueued` (a key and a template, no
//! text), so a submission writes a few bytes rather than two rendered mails and the
//! personal data stays in one fact. The mailer renders them when it sends them, with
//! [`MailTemplates`], from the case's opening fact.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use kujira_config::Config;
use kujira_domain::inquiry::ConsultationEvent;
use kujira_domain::inquiry::{
    CaseOpening, Inquiry, InquiryPersonal, TourRequest, TourRequestPersonal,
};
use kujira_domain::mail::{
    MailContent, MailFacts, MailQueued, MailRequested, RenderError, RenderMail,
};
use kujira_domain::person::ContactDetails;
use kujira_web::mail_body::MailBody;

pub use kujira_domain::calendar::date_ja;

/// `2026年11月27日（金）10:00`, in the city's time zone.
pub fn datetime_ja(t: DateTime<Utc>, tz: Tz) -> String {
    let local = t.with_timezone(&tz);
    format!("{} {}", date_ja(local.date_naive()), local.format("%H:%M"))
}

fn join<T: Copy>(items: &[T], label: fn(T) -> &'static str) -> String {
    items
        .iter()
        .map(|i| label(*i))
        .collect::<Vec<_>>()
        .join("、")
}

fn opt<T: Copy>(v: Option<T>, label: fn(T) -> &'static str) -> String {
    v.map_or("（未回答）", label).to_owned()
}

fn text_or_blank(v: Option<&impl AsRef<str>>) -> String {
    v.map_or_else(|| "（未入力）".to_owned(), |s| s.as_ref().to_owned())
}

/// The link to the case on the staff desk.
pub fn case_url(config: &Config, opening: &CaseOpening) -> String {
    format!("{}/desk/cases/{}", config.public_url, opening.case_id)
}

struct Parts<'a> {
    kind_ja: &'a str,
    key_prefix: &'a str,
    template: &'a str,
    name: String,
    email: String,
    /// Shown to the concierges (no contact details: those are on the desk).
    staff_rows: Vec<(&'a str, String)>,
    /// Echoed to the applicant.
    applicant_rows: Vec<(&'a str, String)>,
    next_steps: &'a str,
}

fn build(config: &Config, opening: &CaseOpening, p: Parts) -> Vec<MailRequested> {
    let w = &config.words;
    let url = case_url(config, opening);
    let reference = &opening.reference;
    let received = datetime_ja(opening.submitted_at, config.timezone);

    let staff_subject = format!(
        "【{}】新しい{}（受付番号 {reference}）",
        w.site_name, p.kind_ja
    );
    let owned = |rows: &[(&str, String)]| -> Vec<(String, String)> {
        rows.iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    };
    let numbered = format!("受付番号：{reference}\n受付日時：{received}");
    let staff = MailBody {
        greeting: format!("{}がありました。", p.kind_ja),
        paragraphs: vec![numbered.clone()],
        sections: vec![("受付内容".into(), owned(&p.staff_rows))],
        links: vec![("案件を開く".into(), url)],
        ..MailBody::default()
    };
    let signature = kujira_web::mail_body::signature(config);
    let (staff_text, staff_html) = (staff.text(&signature), staff.html(&signature));

    let applicant_subject = format!(
        "【{}】{}を受け付けました（受付番号 {reference}）",
        w.site_name, p.kind_ja
    );
    let applicant = MailBody {
        greeting: format!("{} 様", p.name),
        paragraphs: vec![
            format!(
                "{}の{}へ{}をいただき、ありがとうございます。\n以下の内容で受け付けました（受付完了）。",
                w.city_name, w.site_name, p.kind_ja
            ),
            numbered,
            format!(
                "【今後の流れ】\n{}\nお問い合わせの際は、受付番号をお知らせください。",
                p.next_steps.trim_end()
            ),
        ],
        sections: vec![("お申し込み内容".into(), owned(&p.applicant_rows))],
        closing: vec![
            "このメールにお心当たりのない場合は、お手数ですが下記までご連絡ください。".into(),
            "※このメールは送信専用アドレスからお送りしています。".into(),
        ],
        ..MailBody::default()
    };
    let (applicant_text, applicant_html) = (applicant.text(&signature), applicant.html(&signature));

    vec![
        MailRequested {
            key: format!("{}/{}/concierge", p.key_prefix, opening.case_id),
            template: format!("{}_concierge", p.template),
            personal: MailContent {
                to: config.concierge_emails.clone(),
                subject: staff_subject,
                text: staff_text,
                html: Some(staff_html),
                attachments: vec![],
                unsubscribe_url: None,
            }
            .into(),
        },
        MailRequested {
            key: format!("{}/{}/applicant", p.key_prefix, opening.case_id),
            template: p.template.to_owned(),
            personal: MailContent {
                to: vec![p.email],
                subject: applicant_subject,
                text: applicant_text,
                html: Some(applicant_html),
                attachments: vec![],
                unsubscribe_url: None,
            }
            .into(),
        },
    ]
}

/// The templates of the mails a case queues.
pub mod templates {
    pub const INQUIRY_APPLICANT: &str = "inquiry_received";
    pub const INQUIRY_CONCIERGE: &str = "inquiry_received_concierge";
    pub const TOUR_REQUEST_APPLICANT: &str = "tour_request_received";
    pub const TOUR_REQUEST_CONCIERGE: &str = "tour_request_received_concierge";
}

const INQUIRY_KEYS: &str = "inquiry-received";
const TOUR_REQUEST_KEYS: &str = "tour-request-received";

fn queue(
    opening: &CaseOpening,
    key_prefix: &str,
    applicant: &str,
    concierge: &str,
) -> Vec<MailQueued> {
    vec![
        MailQueued::to_staff(
            format!("{key_prefix}/{}/concierge", opening.case_id),
            concierge,
            Some(opening.person_id),
        ),
        MailQueued::to_applicant(
            format!("{key_prefix}/{}/applicant", opening.case_id),
            applicant,
            opening.person_id,
        ),
    ]
}

/// What a new inquiry queues: the concierge notice and the auto-reply.
pub fn inquiry_queue(opening: &CaseOpening) -> Vec<MailQueued> {
    queue(
        opening,
        INQUIRY_KEYS,
        templates::INQUIRY_APPLICANT,
        templates::INQUIRY_CONCIERGE,
    )
}

/// What a new order-made tour request queues.
pub fn tour_request_queue(opening: &CaseOpening) -> Vec<MailQueued> {
    queue(
        opening,
        TOUR_REQUEST_KEYS,
        templates::TOUR_REQUEST_APPLICANT,
        templates::TOUR_REQUEST_CONCIERGE,
    )
}

/// Renders the mails a case queued, from the case's opening fact, in the words of
/// the configuration in force when they are sent.
#[derive(Debug, Clone)]
pub struct MailTemplates {
    config: std::sync::Arc<Config>,
}

impl MailTemplates {
    pub fn new(config: std::sync::Arc<Config>) -> Self {
        Self { config }
    }
}

impl RenderMail for MailTemplates {
    fn templates(&self) -> &[&'static str] {
        &[
            templates::INQUIRY_APPLICANT,
            templates::INQUIRY_CONCIERGE,
            templates::TOUR_REQUEST_APPLICANT,
            templates::TOUR_REQUEST_CONCIERGE,
        ]
    }

    fn render(&self, mail: &MailQueued, facts: &MailFacts<'_>) -> Result<MailContent, RenderError> {
        let correction = kujira_domain::person::latest_correction(facts.person);
        for (event_type, data) in facts.stream {
            if event_type != "InquirySubmitted" && event_type != "TourRequestSubmitted" {
                continue;
            }
            let event: ConsultationEvent =
                serde_json::from_value(serde_json::json!({ "type": event_type, "data": data }))
                    .map_err(|e| RenderError::Decode(e.to_string()))?;
            let erased = || RenderError::Erased(mail.key.clone());
            let rendered = match &event {
                ConsultationEvent::InquirySubmitted(s) => {
                    let mut p = s.inquiry.personal.known().cloned().ok_or_else(erased)?;
                    if let Some(c) = &correction {
                        correct_inquiry(&mut p, c);
                    }
                    inquiry_mails(&self.config, &s.opening, &s.inquiry, &p)
                }
                ConsultationEvent::TourRequestSubmitted(s) => {
                    let mut p = s.request.personal.known().cloned().ok_or_else(erased)?;
                    if let Some(c) = &correction {
                        correct_tour_request(&mut p, c);
                    }
                    tour_request_mails(&self.config, &s.opening, &s.request, &p)
                }
                _ => continue,
            };
            if let Some(m) = rendered.into_iter().find(|m| m.key == mail.key) {
                return m.personal.into_known().ok_or_else(erased);
            }
        }
        Err(RenderError::NoFacts(mail.key.clone()))
    }
}

/// Mail goes to the person as they are now: a corrected name or address wins over
/// the one submitted.
fn correct_inquiry(p: &mut InquiryPersonal, c: &ContactDetails) {
    p.name = c.name.clone();
    p.name_kana = c.name_kana.clone();
    p.email = c.email.clone();
    p.phone = c.phone.clone();
    p.postal_code = c.postal_code.clone();
}

fn correct_tour_request(p: &mut TourRequestPersonal, c: &ContactDetails) {
    p.name = c.name.clone();
    p.name_kana = c.name_kana.clone();
    p.email = c.email.clone();
    if let Some(phone) = &c.phone {
        p.phone = phone.clone();
    }
}

/// The concierge notice and the auto-reply of a new inquiry.
pub fn inquiry_mails(
    config: &Config,
    opening: &CaseOpening,
    i: &Inquiry,
    p: &InquiryPersonal,
) -> Vec<MailRequested> {
    use kujira_domain::values::{
        AgeGroup, ConsultationMethod, Gender, Household, MoveTiming, Segment, Source, Topic,
    };
    let tz = config.timezone;
    let dates = if i.preferred_dates.is_empty() {
        "（指定なし）".to_owned()
    } else {
        i.preferred_dates
            .iter()
            .enumerate()
            .map(|(n, d)| format!("第{}希望：{}", n + 1, datetime_ja(*d, tz)))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let common = vec![
        ("移住の形", Segment::label_ja(i.segment).to_owned()),
        ("お住まいの都道府県", i.prefecture.name().to_owned()),
        ("相談したい内容", join(&i.topics, Topic::label_ja)),
        (
            "希望する相談方法",
            ConsultationMethod::label_ja(i.method).to_owned(),
        ),
        ("希望日時", dates),
    ];
    let mut staff_rows = vec![("お名前", format!("{}（{}）", p.name, p.name_kana))];
    staff_rows.extend(common.iter().cloned());
    staff_rows.extend([
        ("年代", opt(i.age_group, AgeGroup::label_ja)),
        ("同居予定のご家族", opt(i.household, Household::label_ja)),
        ("移住の希望時期", opt(i.move_timing, MoveTiming::label_ja)),
        ("知ったきっかけ", opt(i.source, Source::label_ja)),
    ]);
    let mut applicant_rows = vec![
        ("お名前", p.name.to_string()),
        ("フリガナ", p.name_kana.to_string()),
        ("メールアドレス", p.email.to_string()),
        ("電話番号", text_or_blank(p.phone.as_ref())),
    ];
    applicant_rows.extend(common);
    applicant_rows.extend([
        ("年代", opt(i.age_group, AgeGroup::label_ja)),
        ("性別", opt(i.gender, Gender::label_ja)),
        ("ご相談内容・ご質問", text_or_blank(p.message.as_ref())),
    ]);
    build(
        config,
        opening,
        Parts {
            kind_ja: "移住相談のお申し込み",
            key_prefix: INQUIRY_KEYS,
            template: templates::INQUIRY_APPLICANT,
            name: p.name.to_string(),
            email: p.email.to_string(),
            staff_rows,
            applicant_rows,
            next_steps: "担当の移住コンシェルジュが内容を確認し、3営業日以内にメールまたはお電話でご連絡します。ご希望の日時での相談が難しい場合は、別の日時をご提案することがあります。",
        },
    )
}

/// The concierge notice and the auto-reply of a new order-made tour request.
pub fn tour_request_mails(
    config: &Config,
    opening: &CaseOpening,
    r: &TourRequest,
    p: &TourRequestPersonal,
) -> Vec<MailRequested> {
    use kujira_domain::values::TourInterest;
    let dates = r
        .preferred_dates
        .iter()
        .enumerate()
        .map(|(n, d)| format!("第{}希望：{}", n + 1, date_ja(*d)))
        .collect::<Vec<_>>()
        .join("\n");
    let party = format!("大人 {}人、子ども {}人", r.adults, r.children);
    let staff_rows = vec![
        ("お名前", format!("{}（{}）", p.name, p.name_kana)),
        ("お住まいの都道府県", r.prefecture.name().to_owned()),
        ("希望日", dates.clone()),
        ("見学したいもの", join(&r.interests, TourInterest::label_ja)),
        ("参加人数", party.clone()),
    ];
    let applicant_rows = vec![
        ("お名前", p.name.to_string()),
        ("フリガナ", p.name_kana.to_string()),
        ("メールアドレス", p.email.to_string()),
        ("電話番号", p.phone.to_string()),
        ("希望日", dates),
        ("見学したいもの", join(&r.interests, TourInterest::label_ja)),
        ("参加人数", party),
        (
            "お子さまの年齢・学年",
            text_or_blank(p.children_ages.as_ref()),
        ),
        ("ご要望・ご質問", text_or_blank(p.message.as_ref())),
    ];
    build(
        config,
        opening,
        Parts {
            kind_ja: "オーダーメイドツアーのお申し込み",
            key_prefix: TOUR_REQUEST_KEYS,
            template: templates::TOUR_REQUEST_APPLICANT,
            name: p.name.to_string(),
            email: p.email.to_string(),
            staff_rows,
            applicant_rows,
            next_steps: "担当の移住コンシェルジュがご希望を確認し、3営業日以内に日程と行程のご相談のためメールまたはお電話でご連絡します。ツアーの内容は、ご連絡のうえで決定します。",
        },
    )
}
