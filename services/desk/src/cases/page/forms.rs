//! The case page's action forms: each action a form of its own, posted to
//! `/desk/cases/{id}/{action}` with the versions the staff member saw, and shown
//! again with their values and errors when the action was refused.

use super::*;

struct FormCtx<'a> {
    staff: &'a Staff,
    case_id: Uuid,
    token: &'a str,
    version: u64,
    person_version: u64,
    ui: &'a Ui,
}

impl FormCtx<'_> {
    fn failed(&self, action: &str) -> Option<(&FormData, &FormErrors)> {
        self.ui
            .failed
            .as_ref()
            .filter(|(a, ..)| a == action)
            .map(|(_, v, e)| (v, e))
    }

    /// The value of `name` in the failed form of `action`, else `default`.
    fn value(&self, action: &str, name: &str, default: &str) -> String {
        match self.failed(action) {
            Some((v, _)) => v.get(name).to_owned(),
            None => default.to_owned(),
        }
    }

    fn error(&self, action: &str, name: &str) -> Option<String> {
        self.failed(action)
            .and_then(|(_, e)| e.get(name).map(str::to_owned))
    }

    /// One action's form, in a disclosure that is open when its form failed.
    fn form(&self, action: &str, title: &str, button: &str, inner: Markup) -> Markup {
        let failed = self.failed(action);
        html! {
            details.action open[failed.is_some()] id=(format!("a-{action}")) {
                summary { (title) }
                form method="post" action=(format!("/desk/cases/{}/{action}", self.case_id)) novalidate {
                    (self.staff.csrf_field())
                    (fields::hidden(kujira_web::FORM_TOKEN_FIELD, self.token))
                    (fields::hidden("version", &self.version.to_string()))
                    (fields::hidden("person_version", &self.person_version.to_string()))
                    @if let Some((_, errors)) = failed {
                        (errors.summary(label_ja))
                        @if let Some(m) = errors.get("form") {
                            p.error-text { "エラー：" (m) }
                        }
                    }
                    (inner)
                    button.button.small type="submit" { (button) }
                }
            }
        }
    }
}

fn select_field(
    name: &str,
    label: &str,
    required: bool,
    options: &[(&str, &str)],
    selected: &str,
    error: Option<&str>,
) -> Markup {
    fields::select(
        &Field::new(name, label, required).error(error),
        options,
        selected,
    )
}

#[allow(clippy::too_many_arguments)]
fn input_field(
    name: &str,
    label: &str,
    required: bool,
    kind: &str,
    value: &str,
    error: Option<&str>,
    help: Option<&str>,
    opts: InputOpts,
) -> Markup {
    let mut f = Field::new(name, label, required).error(error);
    if let Some(h) = help {
        f = f.help(h);
    }
    fields::input(&f, kind, value, opts)
}

fn textarea_field(name: &str, label: &str, value: &str, error: Option<&str>, max: usize) -> Markup {
    fields::textarea(
        &Field::new(name, label, false).error(error),
        value,
        Some(max),
    )
}

pub(super) fn actions(
    staff: &Staff,
    l: &Loaded,
    ui: &Ui,
    token: &str,
    today: NaiveDate,
    mover_definition: &str,
) -> Markup {
    let Some(open) = l.state.opened.as_ref() else {
        return html! {};
    };
    let work = &l.state.work;
    let f = FormCtx {
        staff,
        case_id: l.case_id,
        token,
        version: l.version,
        person_version: l.person_version,
        ui,
    };
    let merged = work.merged_into.is_some();
    let closed = work.closed.is_some();
    let erased = l.erased();
    let contact = l.contact();
    let concierge_options: Vec<(String, String)> = l
        .concierges
        .iter()
        .map(|(id, n)| (id.to_string(), n.clone()))
        .chain([("none".to_owned(), "担当なし（未割当）".to_owned())])
        .collect();
    let concierge_refs: Vec<(&str, &str)> = concierge_options
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let phase_options: Vec<(&str, &str)> = PHASES[..3]
        .iter()
        .map(|p| (crate::cases::projection::stage_str(*p), p.label_ja()))
        .collect();
    let channels: Vec<(&str, &str)> = ContactChannel::ALL
        .iter()
        .map(|c| (c.as_str(), c.label_ja()))
        .collect();
    let methods: Vec<(&str, &str)> = ConsultationMethod::ALL
        .iter()
        .map(|c| (c.as_str(), c.label_ja()))
        .collect();
    let reasons: Vec<(&str, &str)> = CloseReason::ALL
        .iter()
        .map(|c| (c.as_str(), c.label_ja()))
        .collect();
    let today_s = today.format("%Y-%m-%d").to_string();
    let current_concierge = work.concierge.map_or("none".to_owned(), |c| c.to_string());
    let move_default = work.moved;
    html! {
        section.panel aria-labelledby="actions-heading" id="actions" {
            h2 id="actions-heading" { "対応する" }
            @if merged {
                p { "この案件は別の案件に統合されています。操作は統合先の案件で行ってください（統合の取り消しのみ可能です）。" }
                (f.form("unmerge", "統合を取り消す", "統合を取り消す", html! {
                    p { "統合を取り消すと、この案件は元どおり独立した案件に戻ります（記録は消えません）。" }
                }))
            } @else if closed {
                p { "この案件は対応終了です。操作するには、先に対応を再開してください。" }
                (f.form("reopen", "対応を再開する", "対応を再開する", html! {}))
                (merge_form(&f))
            } @else {
                (f.form("assign", "担当を変更する", "担当を変更する", html! {
                    (select_field("concierge", "担当", true, &concierge_refs,
                        &f.value("assign", "concierge", &current_concierge), f.error("assign", "concierge").as_deref()))
                }))
                (f.form("phase", "フェーズを変更する", "フェーズを変更する", html! {
                    p.help { "「移住済み」にするには「移住を記録する」を使ってください。" }
                    (select_field("phase", "フェーズ", true, &phase_options,
                        &f.value("phase", "phase", crate::cases::projection::stage_str(open.stage)), f.error("phase", "phase").as_deref()))
                }))
                (f.form("contact", "対応を記録する", "対応を記録する", html! {
                    (select_field("contact_channel", "対応方法", true, &channels,
                        &f.value("contact", "contact_channel", ""), f.error("contact", "contact_channel").as_deref()))
                    (input_field("contact_date", "対応日", true, "date", &f.value("contact", "contact_date", &today_s),
                        f.error("contact", "contact_date").as_deref(), None, InputOpts { max: Some(&today_s), ..InputOpts::default() }))
                    (input_field("contact_time", "対応時刻", false, "time", &f.value("contact", "contact_time", ""),
                        f.error("contact", "contact_time").as_deref(), Some("空欄なら記録した時刻になります。"), InputOpts::default()))
                    (textarea_field("contact_note", "対応内容メモ", &f.value("contact", "contact_note", ""),
                        f.error("contact", "contact_note").as_deref(), kujira_domain::casework::NOTE_MAX))
                }))
                @if !erased {
                    (f.form("consultation", "相談の予定を登録する（ご本人に案内メール）", "予定を登録してメールを送る", html! {
                        (input_field("consult_date", "相談日", true, "date", &f.value("consultation", "consult_date", ""),
                            f.error("consultation", "consult_date").as_deref(), None, InputOpts { min: Some(&today_s), ..InputOpts::default() }))
                        (input_field("consult_time", "開始時刻", true, "time", &f.value("consultation", "consult_time", ""),
                            f.error("consultation", "consult_time").as_deref(), None, InputOpts::default()))
                        (input_field("consult_minutes", "相談時間（分）", true, "number", &f.value("consultation", "consult_minutes", "60"),
                            f.error("consultation", "consult_minutes").as_deref(), Some("10〜480分"),
                            InputOpts { min: Some("10"), max: Some("480"), inputmode: Some("numeric"), ..InputOpts::default() }))
                        (select_field("consult_method", "相談方法", true, &methods,
                            &f.value("consultation", "consult_method", ""), f.error("consultation", "consult_method").as_deref()))
                        (input_field("consult_place", "場所・接続先", false, "text", &f.value("consultation", "consult_place", ""),
                            f.error("consultation", "consult_place").as_deref(), Some("例：市役所本館2階 相談室、またはオンライン会議のURL"),
                            InputOpts { maxlength: Some(200), ..InputOpts::default() }))
                        (textarea_field("consult_note", "ご本人へのご案内", &f.value("consultation", "consult_note", ""),
                            f.error("consultation", "consult_note").as_deref(), kujira_domain::casework::NOTE_MAX))
                    }))
                }
                (f.form("next-action", "次回対応日を設定する", "次回対応日を設定する", html! {
                    (input_field("next_action", "次回対応日", false, "date",
                        &f.value("next-action", "next_action", &work.next_action.map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default()),
                        f.error("next-action", "next_action").as_deref(), Some("空欄にすると解除します。"), InputOpts::default()))
                }))
                (f.form("move", "移住を記録する", "移住を記録する", html! {
                    p.help { "KGIの移住者として数えます。この市の定義：" (mover_definition) }
                    (input_field("move_in", "転入日", true, "date",
                        &f.value("move", "move_in", &move_default.map(|m| m.move_in.format("%Y-%m-%d").to_string()).unwrap_or_default()),
                        f.error("move", "move_in").as_deref(), None, InputOpts::default()))
                    (input_field("move_adults", "大人の人数", true, "number",
                        &f.value("move", "move_adults", &move_default.map_or("1".to_owned(), |m| m.adults.to_string())),
                        f.error("move", "move_adults").as_deref(), Some("1〜10人"),
                        InputOpts { min: Some("1"), max: Some("10"), inputmode: Some("numeric"), ..InputOpts::default() }))
                    (input_field("move_children", "子どもの人数", true, "number",
                        &f.value("move", "move_children", &move_default.map_or("0".to_owned(), |m| m.children.to_string())),
                        f.error("move", "move_children").as_deref(), Some("0〜10人"),
                        InputOpts { min: Some("0"), max: Some("10"), inputmode: Some("numeric"), ..InputOpts::default() }))
                    (fields::checkbox(&Field::new("move_support", "移住支援金", false), "移住支援金を申請する予定",
                        match f.failed("move") { Some((v, _)) => v.checked("move_support"), None => move_default.is_some_and(|m| m.applies_for_support) }))
                }))
                (f.form("close", "対応終了にする", "対応終了にする", html! {
                    (select_field("close_reason", "終了の理由", true, &reasons,
                        &f.value("close", "close_reason", ""), f.error("close", "close_reason").as_deref()))
                    (textarea_field("close_note", "メモ", &f.value("close", "close_note", ""),
                        f.error("close", "close_note").as_deref(), kujira_domain::casework::NOTE_MAX))
                }))
                (merge_form(&f))
            }
            h3 { "相談者について" }
            @if erased {
                p { "この方の個人情報は削除済みのため、相談者についての操作はできません。" }
            } @else {
                (f.form("correct", "連絡先を訂正する", "訂正する", html! {
                    p.help { "ご本人からの申し出などで、氏名・連絡先を正しい内容に直します（訂正の記録が残ります）。" }
                    (input_field("c_name", "氏名", true, "text", &f.value("correct", "c_name", contact.name.as_deref().unwrap_or("")),
                        f.error("correct", "c_name").as_deref(), None, InputOpts { maxlength: Some(50), ..InputOpts::default() }))
                    (input_field("c_kana", "フリガナ", true, "text", &f.value("correct", "c_kana", contact.name_kana.as_deref().unwrap_or("")),
                        f.error("correct", "c_kana").as_deref(), Some("全角カタカナ"), InputOpts { maxlength: Some(50), ..InputOpts::default() }))
                    (input_field("c_email", "メールアドレス", true, "email", &f.value("correct", "c_email", contact.email.as_deref().unwrap_or("")),
                        f.error("correct", "c_email").as_deref(), None, InputOpts { maxlength: Some(254), ..InputOpts::default() }))
                    (input_field("c_phone", "電話番号", false, "tel", &f.value("correct", "c_phone", contact.phone.as_deref().unwrap_or("")),
                        f.error("correct", "c_phone").as_deref(), None, InputOpts { maxlength: Some(24), ..InputOpts::default() }))
                    (input_field("c_postal", "郵便番号", false, "text", &f.value("correct", "c_postal", contact.postal_code.as_deref().unwrap_or("")),
                        f.error("correct", "c_postal").as_deref(), None, InputOpts { maxlength: Some(8), inputmode: Some("numeric"), ..InputOpts::default() }))
                    (input_field("c_address", "住所（市区町村以下）", false, "text", &f.value("correct", "c_address", contact.address.as_deref().unwrap_or("")),
                        f.error("correct", "c_address").as_deref(), None, InputOpts { maxlength: Some(100), ..InputOpts::default() }))
                }))
                @if l.person_state.opted_out {
                    (f.form("opt-in", "フォローアップメールの配信を再開する", "配信を再開する", html! {}))
                } @else {
                    (f.form("opt-out", "フォローアップメールの配信を停止する", "配信を停止する", html! {
                        p.help { "ご本人の申し出で、フォローアップ（お知らせ・定期連絡）のメールを止めます。受付や予定の案内は届きます。" }
                    }))
                }
                @if l.person_state.bouncing.is_some() {
                    (f.form("clear-bounce", "メール不達の記録を解除する", "不達の記録を解除する", html! {
                        p.help { "メールアドレスを訂正した後などに解除すると、フォローアップのメールが再び届くようになります。" }
                    }))
                }
                @if l.person_state.suspended {
                    (f.form("lift-suspension", "利用停止を解除する", "利用停止を解除する", html! {}))
                } @else {
                    (f.form("suspend", "利用停止にする", "利用停止にする", html! {
                        p.help { "ご本人から利用停止の請求があったときに使います。この方には一切メールを送らなくなります（解除できます）。" }
                    }))
                }
            }
        }
    }
}

fn merge_form(f: &FormCtx<'_>) -> Markup {
    html! {
        (f.form("merge", "別の案件に統合する（重複の整理）", "統合する", html! {
            p.help { "同じ方の重複した案件（イベントでの受付とウェブのお申し込みなど）を、残す案件に統合します。統合は後から取り消せます。" }
            (input_field("merge_into", "統合先の連番", true, "text", &f.value("merge", "merge_into", ""),
                f.error("merge", "merge_into").as_deref(), Some("例：2026-0012"), InputOpts { maxlength: Some(20), ..InputOpts::default() }))
        }))
    }
}
