//! The two public forms (移住相談, オーダーメイドツアー申込) described as data, so
//! that one renderer draws their input page, their confirm page and their errors.

use chrono::{NaiveDate, NaiveDateTime};
use kujira_config::CityWords;
use kujira_domain::calendar::date_ja;
use kujira_domain::inquiry::{
    DateRules, InquiryInput, LINE_MAX, MESSAGE_MAX, TOUR_MESSAGE_MAX, TourRequestInput,
};
use kujira_domain::values::{
    AgeGroup, ConsultationMethod, Email, FieldErrors, Gender, Household, Kana, MoveTiming, Phone,
    PostalCode, Prefecture, Segment, Source, Topic, TourInterest,
};
use kujira_web::fields::{self, Field, InputOpts};
use kujira_web::{FormData, JsonObject};
use maud::{Markup, html};

mod confirm;

pub use confirm::render_confirm;

/// How a field is drawn.
#[derive(Debug, Clone)]
pub enum Widget {
    Input {
        kind: &'static str,
        autocomplete: Option<&'static str>,
        inputmode: Option<&'static str>,
        maxlength: Option<usize>,
    },
    TextArea {
        maxlength: usize,
    },
    Select(Vec<(&'static str, &'static str)>),
    Radios(Vec<(&'static str, &'static str)>),
    Checkboxes(Vec<(&'static str, &'static str)>),
    /// The privacy purpose and the consent box.
    Consent,
    /// A single opt-in box with its text.
    OptIn(&'static str),
}

#[derive(Debug, Clone)]
pub struct Spec {
    pub name: &'static str,
    pub label: &'static str,
    pub required: bool,
    pub help: Option<String>,
    pub widget: Widget,
}

/// One public form.
#[derive(Debug, Clone)]
pub struct FormDef {
    /// The form token's form name and the funnel's `form`.
    pub token_name: &'static str,
    /// `/inquiry` or `/tours/request`.
    pub base: &'static str,
    pub title: &'static str,
    pub intro: &'static str,
    pub sections: Vec<(&'static str, Vec<Spec>)>,
}

impl FormDef {
    pub fn specs(&self) -> impl Iterator<Item = &Spec> {
        self.sections.iter().flat_map(|(_, s)| s.iter())
    }

    pub fn label(&self, name: &str) -> String {
        self.specs()
            .find(|s| s.name == name)
            .map_or_else(|| name.to_owned(), |s| s.label.to_owned())
    }
}

fn choices<T: Copy>(
    all: &[T],
    wire: fn(T) -> &'static str,
    label: fn(T) -> &'static str,
) -> Vec<(&'static str, &'static str)> {
    all.iter().map(|c| (wire(*c), label(*c))).collect()
}

fn text(
    kind: &'static str,
    autocomplete: Option<&'static str>,
    inputmode: Option<&'static str>,
    maxlength: Option<usize>,
) -> Widget {
    Widget::Input {
        kind,
        autocomplete,
        inputmode,
        maxlength,
    }
}

fn spec(
    name: &'static str,
    label: &'static str,
    required: bool,
    help: Option<&str>,
    widget: Widget,
) -> Spec {
    Spec {
        name,
        label,
        required,
        help: help.map(str::to_owned),
        widget,
    }
}

fn prefectures() -> Vec<(&'static str, &'static str)> {
    Prefecture::NAMES.iter().map(|n| (*n, *n)).collect()
}

fn person_section(with_postal: bool, phone_required: bool) -> Vec<Spec> {
    let mut v = vec![
        spec(
            "name",
            "お名前",
            true,
            Some("例：柏崎 太郎"),
            text("text", Some("name"), None, Some(50)),
        ),
        spec(
            "name_kana",
            "フリガナ",
            true,
            Some(
                "全角カタカナで入力してください（ひらがな・半角でも受け付けます）。例：カシワザキ タロウ",
            ),
            text("text", None, None, Some(50)),
        ),
        spec(
            "email",
            "メールアドレス",
            true,
            Some("例：taro@example.jp"),
            text("email", Some("email"), Some("email"), Some(254)),
        ),
        spec(
            "email_confirm",
            "メールアドレス（確認用）",
            true,
            Some("確認のため、もう一度入力してください。"),
            text("email", Some("email"), Some("email"), Some(254)),
        ),
        spec(
            "phone",
            "電話番号",
            phone_required,
            Some("例：090-1234-5678"),
            text("tel", Some("tel"), Some("tel"), Some(24)),
        ),
    ];
    if with_postal {
        v.push(spec(
            "postal_code",
            "郵便番号",
            false,
            Some("7桁の数字（ハイフンなしでも可）。例：945-8511"),
            text("text", Some("postal-code"), Some("numeric"), Some(8)),
        ));
    }
    v.push(spec(
        "prefecture",
        "お住まいの都道府県",
        true,
        None,
        Widget::Select(prefectures()),
    ));
    v
}

/// The 移住相談 form. `lead_days` goes into the preferred dates' help text.
pub fn inquiry_form(lead_days: u32) -> FormDef {
    let date_help = format!("本日から{lead_days}日以降の日時を指定してください。");
    let mut who = person_section(true, false);
    who.extend([
        spec(
            "city",
            "お住まいの市区町村",
            false,
            None,
            text("text", Some("address-level2"), None, Some(LINE_MAX)),
        ),
        spec(
            "age_group",
            "年代",
            false,
            None,
            Widget::Select(choices(AgeGroup::ALL, AgeGroup::as_str, AgeGroup::label_ja)),
        ),
        spec(
            "gender",
            "性別",
            false,
            None,
            Widget::Radios(choices(Gender::ALL, Gender::as_str, Gender::label_ja)),
        ),
        spec(
            "segment",
            "移住の形",
            true,
            None,
            Widget::Radios(choices(Segment::ALL, Segment::as_str, Segment::label_ja)),
        ),
        spec(
            "hometown",
            "出身地",
            false,
            Some("例：新潟県柏崎市"),
            text("text", None, None, Some(LINE_MAX)),
        ),
    ]);
    FormDef {
        token_name: "inquiry",
        base: "/inquiry",
        title: "移住相談のお申し込み",
        intro: "移住コンシェルジュが、仕事・住まい・子育てなど、移住に関するご相談をお受けします。ご相談は無料です。",
        sections: vec![
            ("ご相談者について", who),
            (
                "ご家族と移住の時期",
                vec![
                    spec(
                        "household",
                        "同居予定のご家族",
                        false,
                        None,
                        Widget::Radios(choices(
                            Household::ALL,
                            Household::as_str,
                            Household::label_ja,
                        )),
                    ),
                    spec(
                        "children_ages",
                        "お子さまの年齢・学年",
                        false,
                        Some("例：5歳、小学2年"),
                        text("text", None, None, Some(LINE_MAX)),
                    ),
                    spec(
                        "move_timing",
                        "移住の希望時期",
                        false,
                        None,
                        Widget::Radios(choices(
                            MoveTiming::ALL,
                            MoveTiming::as_str,
                            MoveTiming::label_ja,
                        )),
                    ),
                ],
            ),
            (
                "ご相談の内容",
                vec![
                    spec(
                        "topics",
                        "相談したい内容",
                        true,
                        Some("当てはまるものをすべて選んでください。"),
                        Widget::Checkboxes(choices(Topic::ALL, Topic::as_str, Topic::label_ja)),
                    ),
                    spec(
                        "method",
                        "希望する相談方法",
                        true,
                        None,
                        Widget::Radios(choices(
                            ConsultationMethod::ALL,
                            ConsultationMethod::as_str,
                            ConsultationMethod::label_ja,
                        )),
                    ),
                    spec(
                        "preferred_date_1",
                        "希望日時（第1希望）",
                        false,
                        Some(&date_help),
                        text("datetime-local", None, None, None),
                    ),
                    spec(
                        "preferred_date_2",
                        "希望日時（第2希望）",
                        false,
                        Some(&date_help),
                        text("datetime-local", None, None, None),
                    ),
                    spec(
                        "preferred_date_3",
                        "希望日時（第3希望）",
                        false,
                        Some(&date_help),
                        text("datetime-local", None, None, None),
                    ),
                    spec(
                        "message",
                        "ご相談内容・ご質問",
                        false,
                        Some("2,000文字以内"),
                        Widget::TextArea {
                            maxlength: MESSAGE_MAX,
                        },
                    ),
                    spec(
                        "source",
                        "この相談窓口を知ったきっかけ",
                        false,
                        None,
                        Widget::Select(choices(Source::ALL, Source::as_str, Source::label_ja)),
                    ),
                ],
            ),
            (
                "同意とお知らせ",
                vec![
                    spec(
                        "consent",
                        "個人情報の取り扱いへの同意",
                        true,
                        None,
                        Widget::Consent,
                    ),
                    spec(
                        "newsletter",
                        "移住情報のお知らせ",
                        false,
                        None,
                        Widget::OptIn("移住に関するイベントや支援制度のお知らせをメールで受け取る"),
                    ),
                ],
            ),
        ],
    }
}

/// The オーダーメイドツアー form.
pub fn tour_request_form(lead_days: u32) -> FormDef {
    let date_help = format!("本日から{lead_days}日以降の日付を指定してください。");
    FormDef {
        token_name: "tour_request",
        base: "/tours/request",
        title: "オーダーメイドツアーのお申し込み",
        intro: "ご希望の日程と見学したい内容に合わせて、移住コンシェルジュが体験ツアーを組み立てます。お申し込み後、担当者から日程調整のご連絡をします。",
        sections: vec![
            ("代表者について", person_section(false, true)),
            (
                "ご希望の日程と内容",
                vec![
                    spec(
                        "preferred_date_1",
                        "希望日（第1希望）",
                        true,
                        Some(&date_help),
                        text("date", None, None, None),
                    ),
                    spec(
                        "preferred_date_2",
                        "希望日（第2希望）",
                        false,
                        Some(&date_help),
                        text("date", None, None, None),
                    ),
                    spec(
                        "preferred_date_3",
                        "希望日（第3希望）",
                        false,
                        Some(&date_help),
                        text("date", None, None, None),
                    ),
                    spec(
                        "interests",
                        "見学したいもの",
                        true,
                        Some("当てはまるものをすべて選んでください。"),
                        Widget::Checkboxes(choices(
                            TourInterest::ALL,
                            TourInterest::as_str,
                            TourInterest::label_ja,
                        )),
                    ),
                ],
            ),
            (
                "参加される方",
                vec![
                    spec(
                        "adults",
                        "大人の人数",
                        true,
                        Some("1〜10人"),
                        text("number", None, Some("numeric"), Some(2)),
                    ),
                    spec(
                        "children",
                        "子どもの人数",
                        false,
                        Some("0〜10人"),
                        text("number", None, Some("numeric"), Some(2)),
                    ),
                    spec(
                        "children_ages",
                        "お子さまの年齢・学年",
                        false,
                        Some("例：5歳、小学2年"),
                        text("text", None, None, Some(LINE_MAX)),
                    ),
                    spec(
                        "message",
                        "ご要望・ご質問",
                        false,
                        Some(
                            "アレルギーや配慮が必要なことなども、こちらにお書きください（2,000文字以内）。",
                        ),
                        Widget::TextArea {
                            maxlength: TOUR_MESSAGE_MAX,
                        },
                    ),
                    spec(
                        "source",
                        "ツアーを知ったきっかけ",
                        false,
                        None,
                        Widget::Select(choices(Source::ALL, Source::as_str, Source::label_ja)),
                    ),
                ],
            ),
            (
                "同意とお知らせ",
                vec![
                    spec(
                        "consent",
                        "個人情報の取り扱いへの同意",
                        true,
                        None,
                        Widget::Consent,
                    ),
                    spec(
                        "newsletter",
                        "移住情報のお知らせ",
                        false,
                        None,
                        Widget::OptIn("移住に関するイベントや支援制度のお知らせをメールで受け取る"),
                    ),
                ],
            ),
        ],
    }
}

/// Reads the inquiry from a posted form.
pub fn inquiry_from_form(f: &FormData) -> InquiryInput {
    InquiryInput {
        name: f.get("name").into(),
        name_kana: f.get("name_kana").into(),
        email: f.get("email").into(),
        email_confirm: Some(f.get("email_confirm").into()),
        phone: f.get("phone").into(),
        postal_code: f.get("postal_code").into(),
        prefecture: f.get("prefecture").into(),
        city: f.get("city").into(),
        age_group: f.get("age_group").into(),
        gender: f.get("gender").into(),
        segment: f.get("segment").into(),
        hometown: f.get("hometown").into(),
        household: f.get("household").into(),
        children_ages: f.get("children_ages").into(),
        move_timing: f.get("move_timing").into(),
        topics: f.all("topics"),
        method: f.get("method").into(),
        preferred_date_1: f.get("preferred_date_1").into(),
        preferred_date_2: f.get("preferred_date_2").into(),
        preferred_date_3: f.get("preferred_date_3").into(),
        message: f.get("message").into(),
        source: f.get("source").into(),
        consent: f.checked("consent"),
        newsletter: f.checked("newsletter"),
    }
}

/// Reads the inquiry from an API body; wrong JSON types are recorded in `errors`.
/// The API has no `email_confirm` unless the client sends one.
pub fn inquiry_from_json(j: &JsonObject, errors: &mut FieldErrors) -> InquiryInput {
    let confirm =
        j.0.contains_key("email_confirm")
            .then(|| j.text("email_confirm", errors));
    InquiryInput {
        name: j.text("name", errors),
        name_kana: j.text("name_kana", errors),
        email: j.text("email", errors),
        email_confirm: confirm,
        phone: j.text("phone", errors),
        postal_code: j.text("postal_code", errors),
        prefecture: j.text("prefecture", errors),
        city: j.text("city", errors),
        age_group: j.text("age_group", errors),
        gender: j.text("gender", errors),
        segment: j.text("segment", errors),
        hometown: j.text("hometown", errors),
        household: j.text("household", errors),
        children_ages: j.text("children_ages", errors),
        move_timing: j.text("move_timing", errors),
        topics: j.list("topics", errors),
        method: j.text("method", errors),
        preferred_date_1: j.text("preferred_date_1", errors),
        preferred_date_2: j.text("preferred_date_2", errors),
        preferred_date_3: j.text("preferred_date_3", errors),
        message: j.text("message", errors),
        source: j.text("source", errors),
        consent: j.flag("consent", errors),
        newsletter: j.flag("newsletter", errors),
    }
}

/// Reads the tour request from a posted form.
pub fn tour_request_from_form(f: &FormData) -> TourRequestInput {
    TourRequestInput {
        name: f.get("name").into(),
        name_kana: f.get("name_kana").into(),
        email: f.get("email").into(),
        email_confirm: Some(f.get("email_confirm").into()),
        phone: f.get("phone").into(),
        prefecture: f.get("prefecture").into(),
        preferred_date_1: f.get("preferred_date_1").into(),
        preferred_date_2: f.get("preferred_date_2").into(),
        preferred_date_3: f.get("preferred_date_3").into(),
        interests: f.all("interests"),
        adults: f.get("adults").into(),
        children: f.get("children").into(),
        children_ages: f.get("children_ages").into(),
        message: f.get("message").into(),
        source: f.get("source").into(),
        consent: f.checked("consent"),
        newsletter: f.checked("newsletter"),
    }
}

/// The date the pickers start from (`min`), so browsers grey out days too soon.
pub fn earliest(rules: &DateRules) -> NaiveDate {
    rules.earliest_date()
}

fn field<'a>(s: &'a Spec, error: Option<&'a str>) -> Field<'a> {
    let f = Field::new(s.name, s.label, s.required).error(error);
    match &s.help {
        Some(h) => f.help(h),
        None => f,
    }
}

/// Draws the input page's form. `errors` empty means a fresh or re-edited form.
pub fn render_form(
    def: &FormDef,
    words: &CityWords,
    values: &FormData,
    errors: &FieldErrors,
    csrf: &str,
    token: &str,
    earliest: NaiveDate,
) -> Markup {
    let items = fields::summary_items(errors, |n| def.label(n));
    html! {
        (kujira_web::layout::steps(0))
        h1 { (def.title) }
        (fields::error_summary(&items))
        p { (def.intro) }
        p { span.badge.req { "※必須" } " の項目は必ず入力してください。" }
        form method="post" action=(format!("{}/confirm", def.base)) novalidate {
            (fields::form_guards(csrf, token))
            (render_sections(def, words, values, errors, earliest, &[]))
            (fields::honeypot())
            div.actions {
                button.button type="submit" { "入力内容を確認する" }
            }
        }
    }
}

/// Draws the form's sections and fields, with their values and errors, leaving out
/// the fields named in `skip`. The public forms and the staff desk's entry form
/// (which has no e-mail confirmation and asks staff about consent in its own words)
/// draw the same fields with it.
pub fn render_sections(
    def: &FormDef,
    words: &CityWords,
    values: &FormData,
    errors: &FieldErrors,
    earliest: NaiveDate,
    skip: &[&str],
) -> Markup {
    let min_date = earliest.format("%Y-%m-%d").to_string();
    let min_datetime = format!("{min_date}T00:00");
    html! {
        @for (title, specs) in &def.sections {
            @let shown: Vec<&Spec> = specs.iter().filter(|s| !skip.contains(&s.name)).collect();
            @if !shown.is_empty() {
                h2 { (title) }
            }
            @for s in shown {
                @let err = fields::error_for(errors, s.name);
                @let f = field(s, err.as_deref());
                @match &s.widget {
                    Widget::Input { kind, autocomplete, inputmode, maxlength } => {
                        @let min = match *kind {
                            "date" => Some(min_date.as_str()),
                            "datetime-local" => Some(min_datetime.as_str()),
                            "number" => Some(if s.name == "adults" { "1" } else { "0" }),
                            _ => None,
                        };
                        (fields::input(&f, kind, values.get(s.name), InputOpts {
                            autocomplete: *autocomplete,
                            inputmode: *inputmode,
                            maxlength: *maxlength,
                            min,
                            max: (*kind == "number").then_some("10"),
                            ..InputOpts::default()
                        }))
                    }
                    Widget::TextArea { maxlength } => (fields::textarea(&f, values.get(s.name), Some(*maxlength))),
                    Widget::Select(options) => (fields::select(&f, options, values.get(s.name))),
                    Widget::Radios(options) => (fields::radios(&f, options, values.get(s.name))),
                    Widget::Checkboxes(options) => (fields::checkboxes(&f, options, &values.all(s.name))),
                    Widget::Consent => (fields::consent(words, s.name, values.checked(s.name), err.as_deref())),
                    Widget::OptIn(text) => (fields::checkbox(&f, text, values.checked(s.name))),
                }
            }
        }
    }
}
