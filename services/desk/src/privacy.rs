//! The admins' APPI duties on the desk, through `kujira_privacy`:
//!
//! * 開示 (`GET /desk/cases/{id}/export.json`): everything held about the case's
//!   person (and the persons a merge joined to them) as a JSON attachment, recorded
//!   in the audit trail as an export;
//! * 消去 (`POST /desk/cases/{id}/erase`): crypto-shredding of the case's person,
//!   after the admin typed the case's 連番 to confirm. It appends `PersonErased`;
//!   the erasure projection destroys the key and writes the 消去記録, and every
//!   projection that keeps personal data scrubs it. Erasing twice records nothing
//!   new in the log;
//! * `GET /desk/privacy`: the 消去記録 (when, by whom, rule or request, what each
//!   store did) and how many persons the service holds, for the 個人情報ファイル簿.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use kujira_privacy::PrivacyError;
use kujira_privacy::erasure::{ErasureRecord, Target};
use kujira_web::fields::{self, Field, InputOpts};
use maud::{Markup, html};
use sqlx::Row;
use unicode_normalization::UnicodeNormalization;
use uuid::Uuid;

use crate::DeskState;
use crate::audit::{self, AuditAction};
use crate::auth::{Right, Staff};
use crate::cases::page::{self, Loaded, Ui};
use crate::error::AppError;
use crate::form::{CsrfForm, FormErrors};
use crate::keyset::{Cursor, Page};
use crate::layout::{self, Section, cell_label};

/// The field in which the admin types the case's 連番 to confirm an erasure.
pub const CONFIRM_FIELD: &str = "erase_reference";

/// The desk's projections that keep personal data and scrub it on `PersonErased`,
/// with what they hold, as the erasure records list them.
pub const SCRUBBING_PROJECTIONS: [(&str, &str); 3] = [
    (
        crate::persons::PersonsProjection::NAME,
        "相談者の連絡先・検索用データ",
    ),
    (crate::cases::CasesProjection::NAME, "案件一覧の相談概要"),
    (crate::tours::RosterProjection::NAME, "ツアー参加者名簿"),
];

fn privacy_error(e: PrivacyError) -> AppError {
    match e {
        PrivacyError::NotFound | PrivacyError::BadTarget(_) => AppError::NotFound,
        PrivacyError::Internal(e) => AppError::Internal(e),
    }
}

fn case_id(raw: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(raw).map_err(|_| AppError::NotFound)
}

/// The 連番 of a case, from its first fact (the log, not a projection, so that a
/// case is exportable the moment it exists). `None`: no such case.
async fn reference_of(state: &DeskState, case_id: Uuid) -> Result<Option<String>, AppError> {
    let first = state
        .store()
        .events()
        .read_stream(&crate::cases::stream(case_id), 0, 1)
        .await?;
    Ok(first.first().map(|e| {
        e.data
            .get("reference")
            .and_then(|r| r.as_str())
            .unwrap_or_default()
            .to_owned()
    }))
}

/// `GET /desk/cases/{id}/export.json` (admins): the disclosure (開示) of the case's
/// person as a JSON attachment named after the case's 連番.
pub async fn export_json(
    State(state): State<DeskState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    staff.require(Right::ManagePrivacy)?;
    let case_id = case_id(&id)?;
    let reference = reference_of(&state, case_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let export = kujira_privacy::export::export(state.store(), &Target::Case(case_id), state.now())
        .await
        .map_err(privacy_error)?;
    let persons: Vec<Uuid> = export
        .get("persons")
        .and_then(|p| p.as_array())
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p.get("person_id")?.as_str())
                .filter_map(|s| Uuid::parse_str(s).ok())
                .collect()
        })
        .unwrap_or_default();
    let body = serde_json::to_vec_pretty(&export).map_err(AppError::internal)?;
    // Recorded before a byte is sent: when the record fails, nothing is disclosed.
    audit::record(
        state.pool(),
        staff.id,
        state.now(),
        AuditAction::ExportPerson,
        &persons,
        &format!(
            "page=/desk/cases/{case_id}/export.json case={reference} persons={}",
            persons.len()
        ),
    )
    .await?;
    // The 連番 is digits and hyphens; anything else is left out of the header.
    let safe: String = reference
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    let filename = if safe.is_empty() {
        format!("disclosure-{case_id}.json")
    } else {
        format!("disclosure-{safe}.json")
    };
    let mut res = (StatusCode::OK, body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

/// `POST /desk/cases/{id}/erase` (admins, CSRF): erases the case's person once the
/// admin typed the case's 連番; a missing or different one gives the case page
/// again with the form open and the message by the field (422).
pub async fn erase(
    State(state): State<DeskState>,
    staff: Staff,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm,
) -> Result<Response, AppError> {
    staff.require(Right::ManagePrivacy)?;
    let case_id = case_id(&id)?;
    let Some(loaded) = page::load(&state, case_id).await? else {
        return Err(AppError::NotFound);
    };
    let typed: String = form.get(CONFIRM_FIELD).trim().nfkc().collect();
    if typed != loaded.reference() {
        let mut errors = FormErrors::new();
        errors.add(
            CONFIRM_FIELD,
            if typed.is_empty() {
                "確認のため、この案件の連番を入力してください。"
            } else {
                "入力された連番がこの案件の連番と一致しません。ページ上部の連番を確かめて、正確に入力してください。"
            },
        );
        let ui = Ui {
            failed: Some(("erase".to_owned(), form, errors)),
            ..Ui::default()
        };
        return page::render(
            &state,
            &staff,
            &loaded,
            &ui,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let already = loaded.erased();
    let persons = kujira_privacy::erasure::erase(
        state.store(),
        &Target::Case(case_id),
        &staff.actor(),
        None,
        state.now(),
    )
    .await
    .map_err(privacy_error)?;
    audit::record(
        state.pool(),
        staff.id,
        state.now(),
        AuditAction::ErasePerson,
        &persons,
        &format!(
            "page=/desk/cases/{case_id}/erase case={} persons={}",
            loaded.reference(),
            persons.len()
        ),
    )
    .await?;
    let done = if already { "erased-already" } else { "erased" };
    Ok(Redirect::to(&format!("/desk/cases/{case_id}?done={done}")).into_response())
}

/// The case page's panel for admins: the disclosure download and the erasure form.
pub fn case_panel(staff: &Staff, l: &Loaded, ui: &Ui) -> Markup {
    let failed = ui
        .failed
        .as_ref()
        .filter(|(a, ..)| a == "erase")
        .map(|(_, v, e)| (v, e));
    let error = failed.and_then(|(_, e)| e.get(CONFIRM_FIELD));
    let value = failed.map_or("", |(v, _)| v.get(CONFIRM_FIELD));
    let reference = l.reference();
    let help = format!("この案件の連番「{reference}」を入力してください。");
    let mut others: Vec<&str> = l
        .others
        .iter()
        .chain(l.merged_here.iter())
        .map(|c| c.reference.as_str())
        .collect();
    others.sort_unstable();
    others.dedup();
    html! {
        section.panel aria-labelledby="privacy-heading" id="privacy" {
            h2 id="privacy-heading" { "個人情報の開示・消去（管理者）" }
            p {
                a href=(format!("/desk/cases/{}/export.json", l.case_id)) download {
                    "開示用データ（JSON）をダウンロード"
                }
            }
            p.help {
                "ご本人からの開示請求に応えるためのデータです。この方（統合でつながった方を含む）について保有している記録をすべて含みます。ダウンロードは監査ログに記録されます。"
            }
            @if l.erased() {
                p { "この方の個人情報は消去済みです。" }
            } @else {
                details.action open[failed.is_some()] id="a-erase" {
                    summary { "個人情報を消去する" }
                    form method="post" action=(format!("/desk/cases/{}/erase", l.case_id)) novalidate {
                        (staff.csrf_field())
                        @if let Some((_, errors)) = failed {
                            (errors.summary(|_| "確認の連番".to_owned()))
                        }
                        div.warning {
                            p {
                                strong { "消去は取り消せません。" }
                                "この方の氏名・連絡先・相談内容・メモなどの個人情報が、すべての画面・CSV・メール・記録から読めなくなります。件数・セグメント・フェーズなどの統計は残ります。"
                            }
                            @if !others.is_empty() {
                                p {
                                    "この方の他の案件（統合でつながった方を含む）も対象です："
                                    (others.join("、"))
                                }
                            }
                        }
                        (fields::input(
                            &Field::new(CONFIRM_FIELD, "確認のための連番", true).help(&help).error(error),
                            "text",
                            value,
                            InputOpts { maxlength: Some(20), autocomplete: Some("off"), ..InputOpts::default() },
                        ))
                        button.button.small.danger type="submit" { "個人情報を消去する" }
                    }
                }
            }
        }
    }
}

/// How an erasure record names who did it.
fn actor_ja(actor: &str, staff: &HashMap<Uuid, (String, String)>) -> String {
    if let Some(id) = actor
        .strip_prefix("staff:")
        .and_then(|s| Uuid::parse_str(s).ok())
    {
        return staff.get(&id).map_or_else(
            || format!("職員（{id}）"),
            |(name, email)| format!("{name}（{email}）"),
        );
    }
    match actor {
        "cli" => "運用者（コマンド）".to_owned(),
        kujira_privacy::retention::ACTOR => "保有期間による自動消去".to_owned(),
        other => other.to_owned(),
    }
}

/// `5y` → 5年, `18m` → 18か月, `400d` → 400日.
fn period_ja(period: &str) -> String {
    let (n, unit) = period.split_at(period.len().saturating_sub(1));
    match unit {
        "y" => format!("{n}年"),
        "m" => format!("{n}か月"),
        "d" => format!("{n}日"),
        _ => period.to_owned(),
    }
}

/// Why a person was erased.
fn rule_ja(rule: Option<&str>) -> String {
    match rule {
        None => "請求・管理者の判断".to_owned(),
        Some(r) => match r.strip_prefix("retention:") {
            Some(p) => format!("保有期間の経過（最後の利用から{}）", period_ja(p)),
            None => r.to_owned(),
        },
    }
}

/// `GET /desk/privacy` (admins): the persons held and erased, by fiscal year, and
/// every 消去記録 with what each store did.
pub async fn show(
    State(state): State<DeskState>,
    staff: Staff,
    Query(params): Query<PrivacyParams>,
) -> Result<Response, AppError> {
    staff.require(Right::ManagePrivacy)?;
    let after = match Page::from_params(params.after.as_deref().unwrap_or(""), "")? {
        Page::After(c) => Some((c.at, c.id)),
        Page::First | Page::Before(_) => None,
    };
    let pool = state.pool();
    let tz = state.config().timezone;
    let stats = kujira_privacy::stats::stats(pool, tz).await?;
    let mut records =
        kujira_privacy::erasure::records_page(pool, after, RECORDS_PER_PAGE + 1).await?;
    let more = records.len() as i64 > RECORDS_PER_PAGE;
    records.truncate(RECORDS_PER_PAGE as usize);
    let next = more
        .then(|| {
            records.last().map(|r| {
                Cursor {
                    at: r.erased_at,
                    id: r.person_id,
                }
                .encode()
            })
        })
        .flatten();
    let names: Vec<&str> = SCRUBBING_PROJECTIONS.iter().map(|(n, _)| *n).collect();
    let scrubbed = kujira_privacy::erasure::scrubbed_by_each(pool, &records, &names).await?;
    // Erasures recorded in the log that the erasure projection has not carried out yet.
    let pending: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM privacy_persons p WHERE p.erased_at IS NOT NULL \
         AND NOT EXISTS (SELECT 1 FROM erasure_records r WHERE r.person_id = p.person_id)",
    )
    .fetch_one(pool)
    .await?;
    let mut staff_names = HashMap::new();
    for r in sqlx::query("SELECT user_id, display_name, email FROM staff_users")
        .fetch_all(pool)
        .await?
    {
        staff_names.insert(
            r.try_get::<Uuid, _>("user_id")?,
            (
                r.try_get::<String, _>("display_name")?,
                r.try_get::<String, _>("email")?,
            ),
        );
    }
    let references: Vec<String> = records.iter().flat_map(|r| r.cases.clone()).collect();
    let mut case_ids: HashMap<String, Uuid> = HashMap::new();
    if !references.is_empty() {
        for r in sqlx::query("SELECT reference, case_id FROM desk_cases WHERE reference = ANY($1)")
            .bind(&references)
            .fetch_all(pool)
            .await?
        {
            case_ids.insert(r.try_get("reference")?, r.try_get("case_id")?);
        }
    }
    let retention = state.config().retention;
    let body = html! {
        h1 { "個人情報の管理" }
        p.list-tools { a href="/desk/audit" { "監査ログ（閲覧・出力の記録）" } }
        section.panel aria-labelledby="holdings-heading" {
            h2 id="holdings-heading" { "保有状況" }
            dl.facts {
                dt { "個人情報を保有している人数" } dd { (stats.held) "人" }
                dt { "消去した人数（累計）" } dd { (stats.erased) "人" }
                @if pending > 0 {
                    dt { "消去の処理中" } dd { (pending) "人（数秒から数分で完了します）" }
                }
                dt { "保有期間" }
                dd {
                    @match retention {
                        kujira_config::Retention::Off => { "自動消去なし（KUJIRA_RETENTION=off）" }
                        r => { "最後の利用から" (period_ja(&r.to_string())) "で自動消去（KUJIRA_RETENTION=" (r) "）" }
                    }
                }
            }
            @if stats.years.is_empty() {
                p { "まだ記録はありません。" }
            } @else {
                (layout::table_region("年度別の人数", html! {
                    table {
                        caption { "年度別の人数（個人情報ファイル簿の記載用。年度は4月から翌年3月）" }
                        thead {
                            tr {
                                th scope="col" { "年度" }
                                th scope="col" { "新たに保有した人数" }
                                th scope="col" { "消去（請求・判断）" }
                                th scope="col" { "消去（保有期間の経過）" }
                            }
                        }
                        tbody {
                            @for y in &stats.years {
                                tr {
                                    th scope="row" { (y.fiscal_year) "年度" }
                                    td { (y.new_persons) "人" }
                                    td { (y.erased_on_request) "人" }
                                    td { (y.erased_by_retention) "人" }
                                }
                            }
                        }
                    }
                }))
            }
        }
        section aria-labelledby="records-heading" {
            h2 id="records-heading" { "消去記録（新しい順）" }
            p.help {
                "消去した方の個人情報は記録していません。対象は案件の連番で示します。バックアップに残る暗号鍵は、バックアップの保存期間が過ぎた時点で消去が完了します。"
            }
            @if records.is_empty() && after.is_some() {
                p role="status" { "これより古い消去記録はありません。" }
            } @else if records.is_empty() {
                p role="status" { "消去の記録はまだありません。" }
            } @else {
                (layout::table_region("消去記録", html! {
                    table.stack role="table" {
                        caption.vh { "消去記録（新しい順）" }
                        thead role="rowgroup" {
                            tr role="row" {
                                @for c in ["消去日時", "実行者", "理由", "対象", "実施した処理"] {
                                    th role="columnheader" scope="col" { (c) }
                                }
                            }
                        }
                        tbody role="rowgroup" {
                            @for (r, done) in records.iter().zip(&scrubbed) {
                                (record_row(r, done, &staff_names, &case_ids, tz))
                            }
                        }
                    }
                }))
            }
            (layout::pager(
                "/desk/privacy",
                "",
                None,
                after.is_some().then_some("← 最新の記録"),
                next.map(|n| ("古い記録 →", n)),
            ))
        }
        style {
            "dl.facts{display:grid;grid-template-columns:minmax(10rem,max-content) 1fr;gap:.35rem 1rem;margin:0 0 1rem}"
            "dl.facts dt{font-weight:700;color:#4a4a4a}"
            "dl.facts dd{margin:0}"
            "ul.done{margin:0;padding-left:1.1rem}"
            ".pager{display:flex;gap:1rem;margin:1rem 0}"
            ".pending{color:#8a4b00;font-weight:700}"
            "@media (max-width:40rem){dl.facts{grid-template-columns:1fr}}"
        }
    };
    Ok(
        Html(layout::page(&staff, Section::Privacy, "個人情報の管理", body).into_string())
            .into_response(),
    )
}

/// Erasure records shown per page of `/desk/privacy`.
const RECORDS_PER_PAGE: i64 = 100;

/// `GET /desk/privacy`'s query: `after`, the last record of the page before.
#[derive(Debug, Default, serde::Deserialize)]
pub struct PrivacyParams {
    #[serde(default)]
    after: Option<String>,
}

/// A record's keyset position: `<erased_at in µs>_<person id>`.
fn record_row(
    r: &ErasureRecord,
    done: &[(String, bool)],
    staff: &HashMap<Uuid, (String, String)>,
    case_ids: &HashMap<String, Uuid>,
    tz: chrono_tz::Tz,
) -> Markup {
    fn label_of(name: &str) -> &str {
        SCRUBBING_PROJECTIONS
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(name, |(_, l)| *l)
    }
    html! {
        tr role="row" {
            th role="rowheader" scope="row" {
                (cell_label("消去日時"))
                time datetime=(r.erased_at.to_rfc3339()) { (layout::datetime_ja(Some(r.erased_at), tz)) }
            }
            td role="cell" { (cell_label("実行者")) (actor_ja(&r.actor, staff)) }
            td role="cell" { (cell_label("理由")) (rule_ja(r.rule.as_deref())) }
            td role="cell" {
                (cell_label("対象"))
                @if r.cases.is_empty() { "案件なし" }
                @for (i, reference) in r.cases.iter().enumerate() {
                    @if i > 0 { "、" }
                    @match case_ids.get(reference) {
                        Some(id) => { a href=(format!("/desk/cases/{id}")) { (reference) } }
                        None => { (reference) }
                    }
                }
                @if r.tour_sign_ups > 0 { br; "ツアーの申込 " (r.tour_sign_ups) "件" }
            }
            td role="cell" {
                (cell_label("実施した処理"))
                ul.done {
                    li { "暗号鍵：" (if r.key_destroyed { "破棄しました" } else { "すでにありません" }) }
                    li { "メールアドレスの照合用データ：" (r.lookups_removed) "件削除" }
                    li { "送信前のメール：" (r.mails_cancelled) "通を取り消し" }
                    li { "メールの控え（.eml）：" (r.mail_files_deleted) "件削除" }
                    @for (name, ok) in done {
                        li {
                            (label_of(name)) "："
                            @if *ok { "消去済み" } @else { span.pending { "処理待ち" } }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_and_actors_read_in_japanese() {
        assert_eq!(rule_ja(None), "請求・管理者の判断");
        assert_eq!(
            rule_ja(Some("retention:5y")),
            "保有期間の経過（最後の利用から5年）"
        );
        assert_eq!(
            rule_ja(Some("retention:18m")),
            "保有期間の経過（最後の利用から18か月）"
        );
        assert_eq!(period_ja("400d"), "400日");
        let id = Uuid::from_u128(1);
        let staff = HashMap::from([(id, ("柏崎 花子".to_owned(), "h@example.jp".to_owned()))]);
        assert_eq!(
            actor_ja(&format!("staff:{id}"), &staff),
            "柏崎 花子（h@example.jp）"
        );
        assert_eq!(
            actor_ja("system:retention", &staff),
            "保有期間による自動消去"
        );
        assert_eq!(actor_ja("cli", &staff), "運用者（コマンド）");
    }
}
