//! The scheduler's rules: when each one runs (a cron expression in the city's time
//! zone, or `off`) and its offsets.
//!
//! `KUJIRA_RULE_<NAME>` is `off` or a cron expression: five fields (`minute hour
//! day-of-month month day-of-week`, as in crontab) or six with seconds first. Both
//! day fields must match when both are restricted (tokio-cron-scheduler's reading).

use anyhow::{Context, anyhow, bail};
use chrono::Utc;

/// The rules the scheduler knows, in the order they are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuleName {
    TourReminder,
    TourThankYou,
    Nurture,
    PostMove,
    SupportWindow,
    Digest,
}

impl RuleName {
    pub const ALL: [RuleName; 6] = [
        Self::TourReminder,
        Self::TourThankYou,
        Self::Nurture,
        Self::PostMove,
        Self::SupportWindow,
        Self::Digest,
    ];

    /// The name in status output, the `rule_runs` table and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TourReminder => "tour_reminder",
            Self::TourThankYou => "tour_thank_you",
            Self::Nurture => "nurture",
            Self::PostMove => "post_move",
            Self::SupportWindow => "support_window",
            Self::Digest => "digest",
        }
    }

    /// The variable that turns it off or retimes it.
    pub fn variable(self) -> &'static str {
        match self {
            Self::TourReminder => "KUJIRA_RULE_TOUR_REMINDER",
            Self::TourThankYou => "KUJIRA_RULE_TOUR_THANK_YOU",
            Self::Nurture => "KUJIRA_RULE_NURTURE",
            Self::PostMove => "KUJIRA_RULE_POST_MOVE",
            Self::SupportWindow => "KUJIRA_RULE_SUPPORT_WINDOW",
            Self::Digest => "KUJIRA_RULE_DIGEST",
        }
    }

    /// When it runs unless configured otherwise (crontab fields, city time).
    pub fn default_cron(self) -> &'static str {
        match self {
            Self::TourReminder | Self::TourThankYou | Self::Nurture | Self::PostMove => {
                "0 10 * * *"
            }
            Self::SupportWindow | Self::Digest => "30 8 * * *",
        }
    }

    /// What it does, in Japanese, for `kujira scheduler status`.
    pub fn label_ja(self) -> &'static str {
        match self {
            Self::TourReminder => "ツアー前のリマインド",
            Self::TourThankYou => "ツアー後のお礼とアンケート",
            Self::Nurture => "しばらく連絡のない方へのフォロー",
            Self::PostMove => "移住後のごあいさつ",
            Self::SupportWindow => "移住支援金の申請期限の連絡（職員向け）",
            Self::Digest => "コンシェルジュへの日次ダイジェスト",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for RuleName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A valid cron expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronExpr {
    /// As configured (five or six fields).
    pub written: String,
    /// Six fields, seconds first: what tokio-cron-scheduler and croner read.
    pub with_seconds: String,
}

impl CronExpr {
    /// Parses a crontab expression (five fields, or six with seconds first).
    pub fn parse(value: &str) -> Result<Self, String> {
        let written = value.split_whitespace().collect::<Vec<_>>().join(" ");
        let with_seconds = match written.split(' ').count() {
            5 => format!("0 {written}"),
            6 => written.clone(),
            n => {
                return Err(format!(
                    "{value:?} has {n} fields; write five (minute hour day month weekday, \
                     e.g. \"30 8 * * *\") or six with seconds first"
                ));
            }
        };
        let cron = parser()
            .parse(&with_seconds)
            .map_err(|e| format!("{value:?} is not a cron expression: {e}"))?;
        // An expression that never fires (the 30th of February) is a mistake.
        cron.find_next_occurrence(&Utc::now(), false)
            .map_err(|_| format!("{value:?} never runs"))?;
        Ok(Self {
            written,
            with_seconds,
        })
    }

    /// The parsed schedule.
    pub fn cron(&self) -> croner::Cron {
        parser()
            .parse(&self.with_seconds)
            .expect("checked when the configuration was read")
    }
}

/// How tokio-cron-scheduler reads expressions: seconds required, and both day
/// fields must match.
fn parser() -> croner::parser::CronParser {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .dom_and_dow(true)
        .build()
}

/// When a rule runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleSchedule {
    Off,
    Cron(CronExpr),
}

impl RuleSchedule {
    pub fn cron(&self) -> Option<&CronExpr> {
        match self {
            Self::Off => None,
            Self::Cron(c) => Some(c),
        }
    }
}

impl std::fmt::Display for RuleSchedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Off => f.write_str("off"),
            Self::Cron(c) => f.write_str(&c.written),
        }
    }
}

/// Every rule's schedule and offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSettings {
    pub tour_reminder: RuleSchedule,
    /// `KUJIRA_TOUR_REMINDER_DAYS_BEFORE` (3): the reminder goes at the rule's first
    /// run on or after this many days before the tour's start date.
    pub tour_reminder_days_before: u32,
    pub tour_thank_you: RuleSchedule,
    /// `KUJIRA_TOUR_THANK_YOU_DAYS_AFTER` (1): the thank-you goes at the rule's first
    /// run on or after this many days after the tour's end date.
    pub tour_thank_you_days_after: u32,
    pub nurture: RuleSchedule,
    /// `KUJIRA_NURTURE_DAYS` (`30,90`): days without a logged contact or a phase
    /// change after which a case in 情報収集中 or 移住検討中 gets a follow-up, one per step.
    pub nurture_days: Vec<u32>,
    pub post_move: RuleSchedule,
    /// `KUJIRA_POST_MOVE_DAYS` (90): days after a case reaches 移住済み.
    pub post_move_days: u32,
    /// `KUJIRA_COMMUNITY_INFO`: the community news of the post-move mail (the next
    /// 移住者交流会, …).
    pub community_info: String,
    pub support_window: RuleSchedule,
    /// `KUJIRA_SUPPORT_WINDOW_MONTHS` (9): months after the move-in date at which the
    /// concierge is reminded of the 移住支援金 application (the window closes at 12).
    pub support_window_months: u32,
    pub digest: RuleSchedule,
    /// `KUJIRA_DIGEST_NO_CONTACT_BUSINESS_DAYS` (3): a new case with no contact logged
    /// within this many business days is listed.
    pub digest_no_contact_business_days: u32,
    /// `KUJIRA_DIGEST_IDLE_DAYS` (14): an open case with no action for this many days
    /// is listed.
    pub digest_idle_days: u32,
    /// `KUJIRA_DIGEST_TOURS_DAYS` (7): tours starting within this many days are listed.
    pub digest_tours_days: u32,
}

impl RuleSettings {
    pub fn schedule(&self, rule: RuleName) -> &RuleSchedule {
        match rule {
            RuleName::TourReminder => &self.tour_reminder,
            RuleName::TourThankYou => &self.tour_thank_you,
            RuleName::Nurture => &self.nurture,
            RuleName::PostMove => &self.post_move,
            RuleName::SupportWindow => &self.support_window,
            RuleName::Digest => &self.digest,
        }
    }

    pub fn schedule_mut(&mut self, rule: RuleName) -> &mut RuleSchedule {
        match rule {
            RuleName::TourReminder => &mut self.tour_reminder,
            RuleName::TourThankYou => &mut self.tour_thank_you,
            RuleName::Nurture => &mut self.nurture,
            RuleName::PostMove => &mut self.post_move,
            RuleName::SupportWindow => &mut self.support_window,
            RuleName::Digest => &mut self.digest,
        }
    }

    pub(crate) fn from_lookup(
        get: &impl Fn(&str) -> Option<String>,
        city_name: &str,
    ) -> anyhow::Result<Self> {
        let schedule = |rule: RuleName| -> anyhow::Result<RuleSchedule> {
            let var = rule.variable();
            match get(var) {
                Some(v) if v.trim().eq_ignore_ascii_case("off") => Ok(RuleSchedule::Off),
                Some(v) => CronExpr::parse(&v)
                    .map(RuleSchedule::Cron)
                    .map_err(|e| anyhow!("{var}: {e} (or `off`)")),
                None => Ok(RuleSchedule::Cron(
                    CronExpr::parse(rule.default_cron()).expect("the defaults are valid"),
                )),
            }
        };
        let days = |var: &str, default: u32, range: std::ops::RangeInclusive<u32>| {
            let v = match get(var) {
                Some(raw) => raw
                    .trim()
                    .parse::<u32>()
                    .map_err(|e| anyhow!("{var}: invalid value {raw:?}: {e}"))?,
                None => default,
            };
            if !range.contains(&v) {
                bail!(
                    "{var} must be between {} and {} (got {v})",
                    range.start(),
                    range.end()
                );
            }
            Ok(v)
        };
        let nurture_days = match get("KUJIRA_NURTURE_DAYS") {
            None => vec![30, 90],
            Some(raw) => parse_steps(&raw).context("KUJIRA_NURTURE_DAYS")?,
        };
        Ok(Self {
            tour_reminder: schedule(RuleName::TourReminder)?,
            tour_reminder_days_before: days("KUJIRA_TOUR_REMINDER_DAYS_BEFORE", 3, 1..=60)?,
            tour_thank_you: schedule(RuleName::TourThankYou)?,
            tour_thank_you_days_after: days("KUJIRA_TOUR_THANK_YOU_DAYS_AFTER", 1, 0..=30)?,
            nurture: schedule(RuleName::Nurture)?,
            nurture_days,
            post_move: schedule(RuleName::PostMove)?,
            post_move_days: days("KUJIRA_POST_MOVE_DAYS", 90, 1..=730)?,
            community_info: get("KUJIRA_COMMUNITY_INFO").unwrap_or_else(|| {
                format!(
                    "{city_name}では、移住された方どうしが気軽に集まる「移住者交流会」を開いています。\
                     次回の日程や参加のお申し込みは、下記の窓口までお気軽にお問い合わせください。"
                )
            }),
            support_window: schedule(RuleName::SupportWindow)?,
            support_window_months: days("KUJIRA_SUPPORT_WINDOW_MONTHS", 9, 3..=11)?,
            digest: schedule(RuleName::Digest)?,
            digest_no_contact_business_days: days(
                "KUJIRA_DIGEST_NO_CONTACT_BUSINESS_DAYS",
                3,
                1..=30,
            )?,
            digest_idle_days: days("KUJIRA_DIGEST_IDLE_DAYS", 14, 1..=365)?,
            digest_tours_days: days("KUJIRA_DIGEST_TOURS_DAYS", 7, 1..=60)?,
        })
    }
}

/// `30,90`: strictly increasing day counts, one follow-up each.
fn parse_steps(raw: &str) -> anyhow::Result<Vec<u32>> {
    let steps = raw
        .split(',')
        .map(|s| {
            s.trim()
                .parse::<u32>()
                .map_err(|_| anyhow!("{:?} is not a number of days", s.trim()))
        })
        .collect::<anyhow::Result<Vec<u32>>>()?;
    if steps.is_empty() || steps.len() > 5 {
        bail!("give one to five day counts, like 30,90");
    }
    if steps[0] == 0 || steps.windows(2).any(|w| w[0] >= w[1]) || steps[steps.len() - 1] > 3650 {
        bail!("the day counts must increase, from 1 to 3650 (got {raw:?})");
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> anyhow::Result<RuleSettings> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        RuleSettings::from_lookup(&|k| map.get(k).cloned(), "柏崎市")
    }

    #[test]
    fn defaults_are_the_issue_s() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.tour_reminder.to_string(), "0 10 * * *");
        assert_eq!(s.tour_reminder.cron().unwrap().with_seconds, "0 0 10 * * *");
        assert_eq!(s.digest.to_string(), "30 8 * * *");
        assert_eq!(s.nurture_days, [30, 90]);
        assert_eq!(
            (
                s.tour_reminder_days_before,
                s.post_move_days,
                s.support_window_months
            ),
            (3, 90, 9)
        );
        assert!(s.community_info.contains("柏崎市"));
    }

    #[test]
    fn rules_turn_off_and_retime() {
        let s = settings(&[
            ("KUJIRA_RULE_NURTURE", "off"),
            ("KUJIRA_RULE_DIGEST", "0 9 * * 1-5"),
            ("KUJIRA_RULE_TOUR_REMINDER", "0 0 9 * * *"),
            ("KUJIRA_NURTURE_DAYS", "14, 60,180"),
        ])
        .unwrap();
        assert_eq!(s.nurture, RuleSchedule::Off);
        assert_eq!(s.digest.cron().unwrap().with_seconds, "0 0 9 * * 1-5");
        assert_eq!(s.tour_reminder.to_string(), "0 0 9 * * *");
        assert_eq!(s.nurture_days, [14, 60, 180]);
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (var, value) in [
            ("KUJIRA_RULE_DIGEST", "every morning"),
            ("KUJIRA_RULE_DIGEST", "30 8 * *"),
            ("KUJIRA_RULE_NURTURE", "0 10 30 2 *"),
            ("KUJIRA_RULE_POST_MOVE", "0 25 * * *"),
            ("KUJIRA_NURTURE_DAYS", "90,30"),
            ("KUJIRA_NURTURE_DAYS", "thirty"),
            ("KUJIRA_TOUR_REMINDER_DAYS_BEFORE", "0"),
            ("KUJIRA_SUPPORT_WINDOW_MONTHS", "12"),
            ("KUJIRA_DIGEST_IDLE_DAYS", "-1"),
        ] {
            let err = settings(&[(var, value)]).expect_err(var);
            assert!(format!("{err:#}").contains(var), "{var}: {err:#}");
        }
    }
}
