//! The desk's page frame: Japanese, no JavaScript, phone and desktop, a skip link,
//! the menu by role (the admin-only ユーザー, 監査ログ and 個人情報 entries are shown
//! to admins only), the person logged in and the logout button (a POST with its
//! CSRF token).
//!
//! ```ignore
//! async fn board(staff: Staff) -> Result<Html<String>, AppError> {
//!     staff.require(Right::ViewAggregates)?;
//!     Ok(Html(layout::page(&staff, Section::Cases, "案件", html! { h1 { "案件" } }).into_string()))
//! }
//! ```

use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::auth::{Right, Staff};

/// The desk's name, after each page title.
pub const DESK_NAME: &str = "移住相談デスク";

/// The menu entry a page belongs to (marked `aria-current="page"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// 案件 (`/desk`): the pipeline and the case pages.
    Cases,
    /// ツアー (`/desk/tours`).
    Tours,
    /// KPI (`/desk/kpi`).
    Kpi,
    /// ユーザー (`/desk/users`), admins only.
    Users,
    /// 監査ログ (`/desk/audit`), admins only.
    Audit,
    /// 個人情報 (`/desk/privacy`): erasure records and holdings, admins only.
    Privacy,
    /// A page outside the menu.
    None,
}

/// Desk additions to the public kit's styles: a wider page, a menu bar, tables.
const DESK_CSS: &str = r#"
main{max-width:72rem}
input[type=password]{width:100%;font-size:1rem;padding:.6rem;border:1px solid #767676;border-radius:4px;background:#fff}
.narrow{max-width:32rem}
.site-header{display:flex;flex-wrap:wrap;align-items:center;gap:.25rem 1rem;justify-content:space-between}
.site-header .who{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem;font-size:.9rem}
.site-header .who form{margin:0}
.link-button{background:none;border:2px solid #fff;color:#fff;border-radius:4px;padding:.2rem .75rem;font-size:.9rem;cursor:pointer;font-family:inherit}
.skip{position:absolute;left:-10000px;top:0;background:#fff;color:#00387a;padding:.5rem 1rem;z-index:10}
.skip:focus{left:0}
nav.desk-nav{background:#e8edf5;border-bottom:1px solid #c9c9c5}
nav.desk-nav ul{display:flex;flex-wrap:wrap;list-style:none;margin:0 auto;padding:0 .5rem;max-width:72rem}
nav.desk-nav a{display:block;padding:.65rem 1rem;color:#00387a;font-weight:700;text-decoration:none;border-bottom:4px solid transparent}
nav.desk-nav a[aria-current=page]{border-bottom-color:#00387a;background:#fff}
nav.desk-nav a:hover{text-decoration:underline}
.notice{border-left:6px solid #1d7a33;background:#eef7f0;padding:.75rem 1rem;margin:0 0 1.5rem;border-radius:4px}
.table-wrap{overflow-x:auto;margin:0 0 1.5rem;background:#fff;border:1px solid #c9c9c5;border-radius:4px}
table{border-collapse:collapse;width:100%;font-size:.95rem}
th,td{text-align:left;padding:.5rem .75rem;border-bottom:1px solid #e4e4e0;vertical-align:top}
thead th{background:#f0f0ec;white-space:nowrap}
.inline-form{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;margin:0}
.inline-form select{width:auto;padding:.35rem}
.inline-form .error-text{flex-basis:100%}
.button.small{display:inline-block;width:auto;min-width:0;font-size:.9rem;padding:.35rem .9rem;border-radius:4px}
.status-off{color:#8a1c1c;font-weight:700}
.status-locked{color:#8a4b00;font-weight:700}
.vh{position:absolute !important;width:1px;height:1px;margin:-1px;padding:0;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;border:0}
.panel{background:#fff;border:1px solid #c9c9c5;border-radius:4px;padding:1rem 1rem .25rem;margin:0 0 1.5rem}
.panel>h2:first-child{margin-top:0}
.cell-label{display:none}
details{margin-top:.5rem}
summary{cursor:pointer;color:#0045a5;text-decoration:underline;padding:.25rem 0}
details input[type=password]{max-width:16rem}
details label{display:block;font-size:.9rem;font-weight:700;flex-basis:100%}
@media (max-width:40rem){
table.stack thead{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
table.stack tr{display:block;border-bottom:2px solid #c9c9c5;padding:.5rem 0}
table.stack th,table.stack td{display:block;border:0;padding:.2rem .75rem}
table.stack .cell-label{display:inline-block;min-width:6.5rem;font-weight:700;color:#4a4a4a;font-size:.85rem}
}
@media (min-width:40rem){.actions .button{min-width:12rem}}
@media print{.skip,nav.desk-nav,.site-header .who,.no-print{display:none !important}body{background:#fff}main{max-width:none;padding:0}.table-wrap{overflow:visible;border:0}a{color:inherit;text-decoration:none}}
"#;

fn head(title: &str) -> Markup {
    html! {
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        meta name="robots" content="noindex, nofollow";
        title { (title) " | " (DESK_NAME) }
        style { (PreEscaped(kujira_web::layout::CSS)) (PreEscaped(DESK_CSS)) }
    }
}

/// A desk page for a logged-in staff member, with the menu for their role.
pub fn page(staff: &Staff, section: Section, title: &str, body: Markup) -> Markup {
    page_with_css(staff, section, title, "", body)
}

/// [`page`] with styles of its own (charts, a printed roster) after the desk's.
pub fn page_with_css(
    staff: &Staff,
    section: Section,
    title: &str,
    css: &str,
    body: Markup,
) -> Markup {
    let privacy = staff.can(Right::ManagePrivacy);
    let entries: [(Section, &str, &str, bool); 6] = [
        (Section::Cases, "/desk", "案件", true),
        (Section::Tours, "/desk/tours", "ツアー", true),
        (Section::Kpi, "/desk/kpi", "KPI", true),
        (
            Section::Users,
            "/desk/users",
            "ユーザー",
            staff.can(Right::ManageUsers),
        ),
        (Section::Audit, "/desk/audit", "監査ログ", privacy),
        (Section::Privacy, "/desk/privacy", "個人情報", privacy),
    ];
    html! {
        (DOCTYPE)
        html lang="ja" {
            head { (head(title)) @if !css.is_empty() { style { (PreEscaped(css)) } } }
            body {
                a.skip href="#main" { "本文へスキップ" }
                header.site-header {
                    div {
                        a href="/desk" { (DESK_NAME) }
                        span.city { (staff.words().city_name) }
                    }
                    div.who {
                        // 「・」, not brackets: the viewer's label has brackets of its own.
                        span { (staff.display_name) "・" (staff.role.label_ja()) }
                        form method="post" action="/desk/logout" {
                            (staff.csrf_field())
                            button.link-button type="submit" { "ログアウト" }
                        }
                    }
                }
                nav.desk-nav aria-label="デスクのメニュー" {
                    ul {
                        @for (s, href, label, shown) in entries {
                            @if shown {
                                li {
                                    a href=(href) aria-current=[(s == section).then_some("page")] { (label) }
                                }
                            }
                        }
                    }
                }
                main id="main" tabindex="-1" { (body) }
            }
        }
    }
}

/// A page without the menu: the login page and error pages.
pub fn bare_page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="ja" {
            head { (head(title)) }
            body {
                header.site-header {
                    div { a href="/desk" { (DESK_NAME) } }
                }
                main id="main" { (body) }
            }
        }
    }
}

/// A table inside a horizontally scrollable, keyboard-reachable region, so that
/// wide tables stay usable on a phone.
pub fn table_region(label: &str, table: Markup) -> Markup {
    html! {
        div.table-wrap role="region" aria-label=(label) tabindex="0" { (table) }
    }
}

/// The label of a cell, shown only on phones where a `table.stack` turns each row
/// into a card. Hidden from assistive technology, which has the column header.
/// A `table.stack` keeps explicit ARIA roles (`table`, `rowgroup`, `row`,
/// `columnheader`, `rowheader`, `cell`) because browsers drop the table semantics
/// of an element whose `display` is changed.
pub fn cell_label(text: &str) -> Markup {
    html! { span.cell-label aria-hidden="true" { (text) } }
}

/// A confirmation shown after a successful action (`role="status"`).
pub fn notice(text: &str) -> Markup {
    html! { p.notice role="status" { (text) } }
}

/// `2026-12-01 09:30` in the city's time zone, or `—`.
/// Keyset paging under a list, for a list at `path` filtered by the query string
/// `qs`: a link to newer rows (`before=<cursor>`), one back to the first page, and
/// one to older rows (`after=<cursor>`), each given with its words; `None` leaves a
/// link out, and with none at all there is no navigation.
pub fn pager(
    path: &str,
    qs: &str,
    newer: Option<(&str, String)>,
    first: Option<&str>,
    older: Option<(&str, String)>,
) -> Markup {
    let href = |key: Option<(&str, &str)>| {
        let mut h = path.to_owned();
        let mut sep = '?';
        if !qs.is_empty() {
            h.push(sep);
            h.push_str(qs);
            sep = '&';
        }
        if let Some((k, v)) = key {
            h.push(sep);
            h.push_str(&format!("{k}={v}"));
        }
        h
    };
    html! {
        @if newer.is_some() || first.is_some() || older.is_some() {
            nav.pager aria-label="ページ送り" {
                @if let Some((words, cursor)) = &newer {
                    a href=(href(Some(("before", cursor)))) rel="prev" { (words) } " "
                }
                @if let Some(words) = first {
                    a href=(href(None)) { (words) } " "
                }
                @if let Some((words, cursor)) = &older {
                    a href=(href(Some(("after", cursor)))) rel="next" { (words) }
                }
            }
        }
    }
}

pub fn datetime_ja(at: Option<chrono::DateTime<chrono::Utc>>, tz: chrono_tz::Tz) -> String {
    at.map_or_else(
        || "—".to_owned(),
        |t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string(),
    )
}
