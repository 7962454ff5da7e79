//! Every KPI figure: its stable key (the CSV's `metric` column, the targets'
//! names), its Japanese label, its unit, and how it is made from the raw series.

/// How a figure reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// 件
    Cases,
    /// 組 (parties, households)
    Parties,
    /// 人
    People,
    /// 通 (mails)
    Mails,
    /// %
    Percent,
    /// 1–5
    Score,
}

impl Unit {
    pub fn suffix(self) -> &'static str {
        match self {
            Unit::Cases => "件",
            Unit::Parties => "組",
            Unit::People => "人",
            Unit::Mails => "通",
            Unit::Percent => "%",
            Unit::Score => "点",
        }
    }

    /// The largest target that makes sense.
    pub fn max_target(self) -> Option<f64> {
        match self {
            Unit::Percent => Some(100.0),
            Unit::Score => Some(5.0),
            _ => None,
        }
    }

    /// Whether values are whole numbers.
    pub fn whole(self) -> bool {
        !matches!(self, Unit::Percent | Unit::Score)
    }

    /// A value as the CSV writes it: whole numbers plainly, rates with one decimal,
    /// scores with two.
    pub fn plain(self, v: f64) -> String {
        match self {
            Unit::Percent => format!("{v:.1}"),
            Unit::Score => format!("{v:.2}"),
            _ => format!("{}", v.round() as i64),
        }
    }

    /// A value as a page shows it (thousands separators for counts).
    pub fn display(self, v: f64) -> String {
        if self.whole() {
            let n = v.round() as i64;
            let digits = n.unsigned_abs().to_string();
            let mut out = String::new();
            for (i, c) in digits.chars().enumerate() {
                if i > 0 && (digits.len() - i).is_multiple_of(3) {
                    out.push(',');
                }
                out.push(c);
            }
            if n < 0 {
                out.insert(0, '-');
            }
            out
        } else {
            self.plain(v)
        }
    }
}

/// How a figure is made from the raw monthly series.
#[derive(Debug, Clone, Copy)]
pub enum Make {
    /// The sum of these series (flows); the year's total is the sum of its months.
    Sum(&'static [&'static str]),
    /// The number at each month's end (stocks); the year's figure is its last month's.
    Stock(&'static str),
    /// 100 × numerators / denominators, months and year alike.
    Rate(&'static [&'static str], &'static [&'static str]),
    /// numerator / denominator (an average).
    Mean(&'static str, &'static str),
    /// A figure of the year's cohort (no months).
    Cohort(&'static str),
}

#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    pub key: &'static str,
    pub label: &'static str,
    pub unit: Unit,
    pub make: Make,
    pub group: Group,
}

/// The sections of the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Inquiries,
    Kgi,
    Pipeline,
    Tours,
    Funnel,
    Mail,
    Cohort,
}

impl Group {
    pub const ALL: [Group; 7] = [
        Group::Inquiries,
        Group::Kgi,
        Group::Pipeline,
        Group::Tours,
        Group::Funnel,
        Group::Mail,
        Group::Cohort,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Group::Inquiries => "新規相談",
            Group::Kgi => "移住の実績（KGI）",
            Group::Pipeline => "相談の段階",
            Group::Tours => "体験ツアー",
            Group::Funnel => "フォームの利用状況",
            Group::Mail => "メール",
            Group::Cohort => "年度別コホート（その年度に受け付けた相談のその後）",
        }
    }

    pub fn anchor(self) -> &'static str {
        match self {
            Group::Inquiries => "inquiries",
            Group::Kgi => "kgi",
            Group::Pipeline => "pipeline",
            Group::Tours => "tours",
            Group::Funnel => "funnel",
            Group::Mail => "mail",
            Group::Cohort => "cohort",
        }
    }
}

pub const FORMS: [&str; 3] = ["inquiry", "tour_request", "tour_signup"];
const VIEWS: &[&str] = &[
    "funnel_views:inquiry",
    "funnel_views:tour_request",
    "funnel_views:tour_signup",
];
const CONFIRMS: &[&str] = &[
    "funnel_confirms:inquiry",
    "funnel_confirms:tour_request",
    "funnel_confirms:tour_signup",
];
const COMPLETIONS: &[&str] = &[
    "funnel_completions:inquiry",
    "funnel_completions:tour_request",
    "funnel_completions:tour_signup",
];

const fn m(
    key: &'static str,
    label: &'static str,
    unit: Unit,
    make: Make,
    group: Group,
) -> MetricDef {
    MetricDef {
        key,
        label,
        unit,
        make,
        group,
    }
}

use Group as G;
use Make as K;
use Unit as U;

/// Every figure, in the order of the dashboard and the CSV.
pub const METRICS: &[MetricDef] = &[
    m(
        "inquiries_web",
        "新規相談（Web：フォーム・API）",
        U::Cases,
        K::Sum(&["inquiries_web"]),
        G::Inquiries,
    ),
    m(
        "inquiries_window",
        "新規相談（窓口：来訪・電話・メール等）",
        U::Cases,
        K::Sum(&["inquiries_window"]),
        G::Inquiries,
    ),
    m(
        "inquiries_event",
        "新規相談（イベント・移住フェア）",
        U::Cases,
        K::Sum(&["inquiries_event"]),
        G::Inquiries,
    ),
    m(
        "inquiries_total",
        "新規相談（合計）",
        U::Cases,
        K::Sum(&["inquiries_web", "inquiries_window", "inquiries_event"]),
        G::Inquiries,
    ),
    m(
        "contacts_window",
        "相談対応（窓口）",
        U::Cases,
        K::Sum(&["contacts_window"]),
        G::Inquiries,
    ),
    m(
        "contacts_event",
        "相談対応（イベント）",
        U::Cases,
        K::Sum(&["contacts_event"]),
        G::Inquiries,
    ),
    m(
        "moved_households",
        "移住世帯数（転入日の月）",
        U::Parties,
        K::Sum(&["moved_households"]),
        G::Kgi,
    ),
    m(
        "moved_people",
        "移住者数（転入日の月）",
        U::People,
        K::Sum(&["moved_people"]),
        G::Kgi,
    ),
    m(
        "phase_gathering",
        "情報収集中（月末時点）",
        U::Cases,
        K::Stock("stock:gathering"),
        G::Pipeline,
    ),
    m(
        "phase_considering",
        "移住検討中（月末時点）",
        U::Cases,
        K::Stock("stock:considering"),
        G::Pipeline,
    ),
    m(
        "phase_decided",
        "移住確定（月末時点）",
        U::Cases,
        K::Stock("stock:decided"),
        G::Pipeline,
    ),
    m(
        "phase_moved",
        "移住済み（月末時点）",
        U::Cases,
        K::Stock("stock:moved"),
        G::Pipeline,
    ),
    m(
        "phase_closed",
        "対応終了（月末時点）",
        U::Cases,
        K::Stock("stock:closed"),
        G::Pipeline,
    ),
    m(
        "phase_entered_considering",
        "移住検討中へ進んだ案件",
        U::Cases,
        K::Sum(&["phase_entered_considering"]),
        G::Pipeline,
    ),
    m(
        "phase_entered_decided",
        "移住確定へ進んだ案件",
        U::Cases,
        K::Sum(&["phase_entered_decided"]),
        G::Pipeline,
    ),
    m(
        "phase_entered_moved",
        "移住済みへ進んだ案件",
        U::Cases,
        K::Sum(&["phase_entered_moved"]),
        G::Pipeline,
    ),
    m(
        "cases_closed",
        "対応終了とした案件",
        U::Cases,
        K::Sum(&["cases_closed"]),
        G::Pipeline,
    ),
    m(
        "tour_signups",
        "ツアー申込（組、申込日の月）",
        U::Parties,
        K::Sum(&["tour_signups"]),
        G::Tours,
    ),
    m(
        "tour_signup_people",
        "ツアー申込（人）",
        U::People,
        K::Sum(&["tour_signup_people"]),
        G::Tours,
    ),
    m(
        "tour_participant_parties",
        "ツアー参加（組、開催月）",
        U::Parties,
        K::Sum(&["tour_participant_parties"]),
        G::Tours,
    ),
    m(
        "tour_participants",
        "ツアー参加者（人、開催月）",
        U::People,
        K::Sum(&["tour_participants"]),
        G::Tours,
    ),
    m(
        "tour_attendance_rate",
        "ツアー出席率（受付記録のある組のうち参加）",
        U::Percent,
        K::Rate(&["tour_attended"], &["tour_checked"]),
        G::Tours,
    ),
    m(
        "tour_feedback_avg",
        "ツアー満足度の平均（5段階）",
        U::Score,
        K::Mean("tour_feedback_sum", "tour_feedback_n"),
        G::Tours,
    ),
    m(
        "funnel_form_views",
        "フォーム表示",
        U::Cases,
        K::Sum(VIEWS),
        G::Funnel,
    ),
    m(
        "funnel_confirm_views",
        "確認画面表示",
        U::Cases,
        K::Sum(CONFIRMS),
        G::Funnel,
    ),
    m(
        "funnel_completions",
        "送信完了",
        U::Cases,
        K::Sum(COMPLETIONS),
        G::Funnel,
    ),
    m(
        "funnel_confirm_rate",
        "確認画面への到達率（表示→確認）",
        U::Percent,
        K::Rate(CONFIRMS, VIEWS),
        G::Funnel,
    ),
    m(
        "funnel_completion_rate",
        "送信率（確認→完了）",
        U::Percent,
        K::Rate(COMPLETIONS, CONFIRMS),
        G::Funnel,
    ),
    m(
        "funnel_overall_rate",
        "完了率（表示→完了）",
        U::Percent,
        K::Rate(COMPLETIONS, VIEWS),
        G::Funnel,
    ),
    m(
        "emails_sent",
        "メール送信",
        U::Mails,
        K::Sum(&["emails_sent"]),
        G::Mail,
    ),
    m(
        "emails_failed",
        "メール送信失敗",
        U::Mails,
        K::Sum(&["emails_failed"]),
        G::Mail,
    ),
    m(
        "cohort_cases",
        "年度内に受け付けた相談（組）",
        U::Parties,
        K::Cohort("cases"),
        G::Cohort,
    ),
    m(
        "cohort_cases_people",
        "年度内に受け付けた相談（人）",
        U::People,
        K::Cohort("cases_people"),
        G::Cohort,
    ),
    m(
        "cohort_toured",
        "うちツアーに参加・参加予定（組）",
        U::Parties,
        K::Cohort("toured"),
        G::Cohort,
    ),
    m(
        "cohort_toured_people",
        "うちツアーに参加・参加予定（人）",
        U::People,
        K::Cohort("toured_people"),
        G::Cohort,
    ),
    m(
        "cohort_decided",
        "うち移住確定以上に進んだ（組）",
        U::Parties,
        K::Cohort("decided"),
        G::Cohort,
    ),
    m(
        "cohort_decided_people",
        "うち移住確定以上に進んだ（人）",
        U::People,
        K::Cohort("decided_people"),
        G::Cohort,
    ),
    m(
        "cohort_moved",
        "うち移住した（組）",
        U::Parties,
        K::Cohort("moved"),
        G::Cohort,
    ),
    m(
        "cohort_moved_people",
        "うち移住した（人）",
        U::People,
        K::Cohort("moved_people"),
        G::Cohort,
    ),
];

pub fn find(key: &str) -> Option<&'static MetricDef> {
    METRICS.iter().find(|m| m.key == key)
}

pub fn form_ja(form: &str) -> &'static str {
    match form {
        "inquiry" => "移住相談フォーム",
        "tour_request" => "オーダーメイドツアー申込",
        "tour_signup" => "体験ツアー申込",
        _ => "その他",
    }
}

pub fn phase_ja(p: &str) -> &'static str {
    match p {
        "gathering" => "情報収集中",
        "considering" => "移住検討中",
        "decided" => "移住確定",
        "moved" => "移住済み",
        "closed" => "対応終了",
        _ => "不明",
    }
}

pub const PHASES: [&str; 4] = ["gathering", "considering", "decided", "moved"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_the_required_ones_are_there() {
        let mut keys: Vec<&str> = METRICS.iter().map(|m| m.key).collect();
        for k in [
            "inquiries_web",
            "inquiries_window",
            "inquiries_event",
            "moved_households",
            "moved_people",
            "tour_signups",
            "tour_participants",
            "funnel_form_views",
            "funnel_confirm_views",
            "funnel_completions",
            "emails_sent",
            "emails_failed",
        ] {
            assert!(keys.contains(&k), "{k}");
        }
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), METRICS.len());
        assert_eq!(Unit::Cases.display(1234567.0), "1,234,567");
        assert_eq!(Unit::Percent.plain(12.345), "12.3");
    }
}
