//! The case page's timeline (経過): every fact of the case's stream and of its
//! person's stream, in Japanese, with who and when. Read through the Store,
//! decrypted on demand; free text (contact notes, closing notes, consultation
//! notes) shows only to staff who may see personal data, and a correction names
//! the fields it changed, never the values.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use kujira_domain::inquiry::{Channel, ConsultationEvent};
use kujira_domain::mail::Audience;
use kujira_domain::person::PersonEvent;
use kujira_eventlog::RecordedEvent;
use uuid::Uuid;

use super::Shown;
use crate::auth::Staff;

/// One line of the timeline.
#[derive(Debug, Clone)]
pub struct Entry {
    pub at: DateTime<Utc>,
    pub who: String,
    pub text: String,
    /// Free text that goes with it (a note), as the staff member may see it.
    pub note: Option<Shown>,
    /// A queued mail's idempotency key: the page shows its delivery state beside it.
    pub mail_key: Option<String>,
    pub position: i64,
}

/// Who did it, from the event's actor.
pub fn who(actor: &str, staff_names: &HashMap<Uuid, String>) -> String {
    if let Some(id) = actor.strip_prefix("staff:") {
        return Uuid::parse_str(id)
            .ok()
            .and_then(|id| staff_names.get(&id).cloned())
            .unwrap_or_else(|| "職員（不明なアカウント）".into());
    }
    match actor {
        "applicant" => "ご本人".into(),
        "cli" => "管理コマンド".into(),
        a if a.starts_with("system") => "システム（自動処理）".into(),
        _ => "不明".into(),
    }
}

/// The Japanese name of a field a correction changed.
pub fn field_ja(field: &str) -> &str {
    match field {
        "name" => "氏名",
        "name_kana" => "フリガナ",
        "email" => "メールアドレス",
        "phone" => "電話番号",
        "postal_code" => "郵便番号",
        "address" => "住所",
        other => other,
    }
}

/// What a template is, for the timeline (whom it went to is said apart, from the
/// mail's audience).
pub fn template_ja(template: &str) -> &str {
    match template {
        "inquiry_received" => "移住相談の受付メール",
        "inquiry_received_concierge" => "新しい相談のお知らせ",
        "tour_request_received" => "ツアー申込の受付メール",
        "tour_request_received_concierge" => "新しいツアー申込のお知らせ",
        super::mail::CONSULTATION_SCHEDULED => "相談日時のご案内（カレンダー添付）",
        "tour_reminder" => "体験ツアー開催のご案内（リマインド）",
        "tour_thank_you" => "体験ツアーのお礼",
        "nurture_follow_up" => "その後のご様子伺い（フォローアップ）",
        "post_move_check_in" => "移住後のご様子伺い",
        "support_window_note" => "移住支援金の申請期限のお知らせ",
        "concierge_digest" => "今日の対応のお知らせ",
        "tour_sign_up_confirmed" => "体験ツアーの参加確定",
        "tour_sign_up_waitlisted" => "体験ツアーのキャンセル待ち受付",
        "tour_sign_up_promoted" => "体験ツアーの繰り上げ参加確定",
        "tour_sign_up_cancelled" => "体験ツアーのキャンセル受付",
        "tour_cancelled" => "体験ツアーの中止のお知らせ",
        "tour_changed" => "体験ツアーの内容変更のお知らせ",
        "tour_concierge_notice" => "体験ツアー申込のお知らせ",
        _ => "メール",
    }
}

fn note_of(staff: &Staff, note: Option<Option<&str>>) -> Option<Shown> {
    match note {
        // The personal part was erased.
        None => Some(Shown::of(staff, None, true)),
        Some(None) => None,
        Some(Some(n)) => Some(Shown::of(staff, Some(n), false)),
    }
}

/// The timeline of a case: its own events and its person's, newest first.
/// `references` names other cases (merge targets) by their 連番.
pub fn build(
    staff: &Staff,
    tz: Tz,
    case_events: &[RecordedEvent],
    person_events: &[RecordedEvent],
    staff_names: &HashMap<Uuid, String>,
    references: &HashMap<Uuid, String>,
) -> Vec<Entry> {
    let dt = |t: DateTime<Utc>| t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string();
    let reference = |id: &Uuid| {
        references
            .get(id)
            .cloned()
            .unwrap_or_else(|| "（不明な案件）".into())
    };
    let mut out = Vec::new();
    for r in case_events {
        let Ok(e) = r.decode::<ConsultationEvent>() else {
            out.push(Entry {
                at: r.recorded_at,
                who: who(&r.metadata.actor, staff_names),
                text: format!("読み取れない記録（{}）", r.event_type),
                note: None,
                mail_key: None,
                position: r.position,
            });
            continue;
        };
        use ConsultationEvent as E;
        let mail_key = match &e {
            E::MailQueued(m) => Some(m.key.clone()),
            E::MailRequested(m) => Some(m.key.clone()),
            _ => None,
        };
        let (at, text, note) = match &e {
            E::InquirySubmitted(s) => (
                s.opening.submitted_at,
                match s.opening.channel {
                    Channel::Form => format!(
                        "移住相談フォームから相談を受け付けました（受付番号 {}）",
                        s.opening.reference
                    ),
                    Channel::Api => format!(
                        "APIから相談を受け付けました（受付番号 {}）",
                        s.opening.reference
                    ),
                    Channel::Desk => format!(
                        "{}で受けた相談を登録しました（受付番号 {}）",
                        super::desk_source_ja(s.opening.desk_source.map(|d| d.as_str())),
                        s.opening.reference
                    ),
                },
                None,
            ),
            E::TourRequestSubmitted(s) => (
                s.opening.submitted_at,
                format!(
                    "オーダーメイドツアーの申込を受け付けました（受付番号 {}）",
                    s.opening.reference
                ),
                None,
            ),
            E::MailQueued(m) => (
                r.recorded_at,
                format!(
                    "メールを送信予約しました：{}（{}）",
                    template_ja(&m.template),
                    match m.audience {
                        Audience::Applicant => "ご本人宛",
                        Audience::Staff => "職員宛",
                    }
                ),
                None,
            ),
            E::MailRequested(m) => (
                r.recorded_at,
                format!("メールを送信予約しました：{}", template_ja(&m.template)),
                None,
            ),
            E::CaseAssigned(a) => (
                a.at,
                match a.concierge {
                    Some(c) => format!(
                        "担当を{}さんにしました",
                        staff_names.get(&c).map_or("（不明な職員）", String::as_str)
                    ),
                    None => "担当を外しました（未割当）".into(),
                },
                None,
            ),
            E::CasePhaseChanged(p) => (
                p.at,
                format!(
                    "フェーズを「{}」から「{}」に変更しました",
                    p.from.label_ja(),
                    p.to.label_ja()
                ),
                None,
            ),
            E::ContactLogged(c) => (
                c.at,
                format!(
                    "対応を記録しました（{}、{}）",
                    c.channel.label_ja(),
                    dt(c.occurred_at)
                ),
                note_of(
                    staff,
                    c.personal
                        .known()
                        .map(|p| p.note.as_ref().map(|n| n.as_str())),
                ),
            ),
            E::ConsultationScheduled(c) => (
                c.at,
                format!(
                    "相談の予定を登録しました（{}から{}分、{}）",
                    dt(c.starts_at),
                    c.minutes,
                    c.method.label_ja()
                ),
                match c.personal.known() {
                    None => Some(Shown::of(staff, None, true)),
                    Some(p) => {
                        let parts: Vec<String> = [
                            p.place.as_ref().map(|x| format!("場所：{x}")),
                            p.note.as_ref().map(|x| x.to_string()),
                        ]
                        .into_iter()
                        .flatten()
                        .collect();
                        (!parts.is_empty())
                            .then(|| Shown::of(staff, Some(&parts.join("\n")), false))
                    }
                },
            ),
            E::NextActionSet(n) => (
                n.at,
                match n.due {
                    Some(d) => format!("次回対応日を{}に設定しました", d.format("%Y-%m-%d")),
                    None => "次回対応日を解除しました".into(),
                },
                None,
            ),
            E::MoveRecorded(m) => (
                m.at,
                format!(
                    "移住を記録しました（転入日 {}、大人{}人・子ども{}人、移住支援金：{}）",
                    m.move_in.format("%Y-%m-%d"),
                    m.adults,
                    m.children,
                    if m.applies_for_support {
                        "申請予定"
                    } else {
                        "申請しない"
                    }
                ),
                None,
            ),
            E::CaseClosed(c) => (
                c.at,
                format!("対応終了にしました（理由：{}）", c.reason.label_ja()),
                note_of(
                    staff,
                    c.personal
                        .known()
                        .map(|p| p.note.as_ref().map(|n| n.as_str())),
                ),
            ),
            E::CaseReopened(c) => (c.at, "対応を再開しました".into(), None),
            E::CaseMerged(m) => (
                m.at,
                format!("案件 {} に統合しました", reference(&m.into)),
                None,
            ),
            E::CaseMergeUndone(u) => (
                u.at,
                format!("案件 {} への統合を取り消しました", reference(&u.into)),
                None,
            ),
        };
        out.push(Entry {
            at,
            who: who(&r.metadata.actor, staff_names),
            text,
            note,
            mail_key,
            position: r.position,
        });
    }
    for r in person_events {
        let Ok(e) = r.decode::<PersonEvent>() else {
            continue;
        };
        let (at, text) = match &e {
            PersonEvent::PersonDetailsCorrected(c) => (
                c.at,
                format!(
                    "個人情報を訂正しました（{}）",
                    c.fields
                        .iter()
                        .map(|f| field_ja(f))
                        .collect::<Vec<_>>()
                        .join("、")
                ),
            ),
            PersonEvent::PersonErased(e) => (
                e.at,
                match &e.rule {
                    Some(rule) => format!("個人情報を削除しました（保存期間の規則 {rule} による）"),
                    None => "個人情報を削除しました".into(),
                },
            ),
            PersonEvent::PersonSuspended(e) => {
                (e.at, "利用停止にしました（メールを送りません）".into())
            }
            PersonEvent::PersonSuspensionLifted(e) => (e.at, "利用停止を解除しました".into()),
            PersonEvent::MailOptedOut(e) => (
                e.at,
                format!(
                    "フォローアップメールの配信を停止しました（{}）",
                    e.via.label_ja()
                ),
            ),
            PersonEvent::MailOptedIn(e) => (
                e.at,
                format!(
                    "フォローアップメールの配信を再開しました（{}）",
                    e.via.label_ja()
                ),
            ),
            PersonEvent::AddressBounced(e) => (
                e.at,
                format!("メールが届きませんでした（不達、SMTP {}）", e.code),
            ),
            PersonEvent::BounceCleared(e) => (e.at, "メール不達の記録を解除しました".into()),
        };
        out.push(Entry {
            at,
            who: who(&r.metadata.actor, staff_names),
            text,
            note: None,
            mail_key: None,
            position: r.position,
        });
    }
    out.sort_by_key(|e| std::cmp::Reverse(e.position));
    out
}
