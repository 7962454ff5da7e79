//! The consultation pipeline on the desk: the board (`/desk`), the case list and
//! its CSV (`/desk/cases`, `/desk/cases.csv`), the case page with its timeline and
//! actions (`/desk/cases/{id}`), staff-entered intake (`/desk/cases/new`) and the
//! April rotation (`/desk/cases/reassign`), over the `desk.cases` and
//! `desk.persons` projections and the case and person streams.
//!
//! Masking: whoever lacks [`Right::ViewPersonalData`] (viewers) reads 非表示 in
//! place of every name, kana, e-mail, phone, postal code, address and free text,
//! on every page and in every export, through [`Shown`]; and may search by 連番
//! only. Every page that shows personal data records it in the audit trail first.

pub mod actions;
pub mod board;
pub mod list;
pub mod mail;
pub mod new;
pub mod page;
pub mod projection;
pub mod query;
pub mod timeline;

use kujira_domain::casework::{CloseReason, ContactChannel};
use kujira_domain::inquiry::Stage;
use kujira_domain::personal::{ERASED_JA, HIDDEN_JA};
use kujira_domain::values::{AgeGroup, Gender, Segment, Source, Topic, TourInterest};
use kujira_eventlog::StreamName;
use uuid::Uuid;

use crate::auth::{Right, Staff};

pub use projection::CasesProjection;

/// The four phases of the board, in order.
pub const PHASES: [Stage; 4] = [
    Stage::Gathering,
    Stage::Considering,
    Stage::Decided,
    Stage::Moved,
];

pub fn stream(case_id: Uuid) -> StreamName {
    StreamName::new(kujira_domain::inquiry::CATEGORY, case_id)
}

pub fn person_stream(person_id: Uuid) -> StreamName {
    StreamName::new(kujira_domain::person::CATEGORY, person_id)
}

pub fn parse_stage(s: &str) -> Option<Stage> {
    PHASES.into_iter().find(|p| projection::stage_str(*p) == s)
}

/// A personal value as a staff member may see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shown {
    Value(String),
    /// Not given.
    Blank,
    /// The staff member's role may not see it.
    Hidden,
    /// The person was erased.
    Erased,
}

impl Shown {
    pub fn of(staff: &Staff, value: Option<&str>, erased: bool) -> Self {
        if !staff.can(Right::ViewPersonalData) {
            Self::Hidden
        } else if erased {
            Self::Erased
        } else {
            match value {
                Some(v) if !v.trim().is_empty() => Self::Value(v.to_owned()),
                _ => Self::Blank,
            }
        }
    }

    /// As shown in a page or a CSV cell.
    pub fn text(&self) -> &str {
        match self {
            Self::Value(v) => v,
            Self::Blank => "",
            Self::Hidden => HIDDEN_JA,
            Self::Erased => ERASED_JA,
        }
    }

    /// As shown on a page, with a dash for a blank.
    pub fn page_text(&self) -> &str {
        match self {
            Self::Blank => "—",
            other => other.text(),
        }
    }
}

pub fn segment_ja(s: Option<&str>) -> &'static str {
    s.and_then(|s| Segment::parse(s).ok())
        .map_or("", Segment::label_ja)
}

/// The segment's short name for tables (Uターン…).
pub fn segment_short_ja(s: Option<&str>) -> &'static str {
    match s {
        Some("u_turn") => "Uターン",
        Some("i_turn") => "Iターン",
        Some("j_turn") => "Jターン",
        Some("undecided") => "未定",
        _ => "",
    }
}

pub fn age_ja(s: Option<&str>) -> &'static str {
    s.and_then(|s| AgeGroup::parse(s).ok())
        .map_or("", AgeGroup::label_ja)
}

pub fn gender_ja(s: Option<&str>) -> &'static str {
    s.and_then(|s| Gender::parse(s).ok())
        .map_or("", Gender::label_ja)
}

pub fn source_ja(s: Option<&str>) -> &'static str {
    s.and_then(|s| Source::parse(s).ok())
        .map_or("", Source::label_ja)
}

pub fn desk_source_ja(s: Option<&str>) -> &'static str {
    s.and_then(|s| ContactChannel::parse(s).ok())
        .map_or("", ContactChannel::label_ja)
}

pub fn close_reason_ja(s: Option<&str>) -> &'static str {
    s.and_then(|s| CloseReason::parse(s).ok())
        .map_or("", CloseReason::label_ja)
}

/// 相談内容: the topics of an inquiry, the interests of a tour request.
pub fn topics_ja(kind: &str, topics: &[String]) -> String {
    let labels: Vec<&str> = topics
        .iter()
        .filter_map(|t| {
            if kind == "tour_request" {
                TourInterest::parse(t).ok().map(TourInterest::label_ja)
            } else {
                Topic::parse(t).ok().map(Topic::label_ja)
            }
        })
        .collect();
    let joined = labels.join("、");
    if kind == "tour_request" {
        format!("オーダーメイドツアー：{joined}")
    } else {
        joined
    }
}

/// How a case came in, as the KPI sheet counts it: ウェブ, 窓口 or イベント.
pub fn intake_ja(channel: &str, desk_source: Option<&str>) -> &'static str {
    match (
        channel,
        desk_source.and_then(|s| ContactChannel::parse(s).ok()),
    ) {
        ("desk", Some(s)) if s.is_event() => "イベント",
        ("desk", _) => "窓口",
        _ => "ウェブ",
    }
}

/// ステータス: the phase, or 対応終了 / 統合済み.
pub fn status_ja(phase: &str, closed_reason: Option<&str>, merged: bool) -> String {
    if merged {
        return "統合済み".into();
    }
    if closed_reason.is_some() {
        return format!("対応終了（{}）", close_reason_ja(closed_reason));
    }
    parse_stage(phase).map_or_else(|| phase.to_owned(), |s| s.label_ja().to_owned())
}
