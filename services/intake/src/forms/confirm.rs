//! The confirm page (確認): every value as it will be stored, in Japanese, with
//! 送信する and 修正する.

use super::*;

/// What the confirm page shows for one field.
fn display(spec: &Spec, values: &FormData) -> String {
    let pick = |options: &[(&str, &str)], v: &str| {
        options
            .iter()
            .find(|(w, _)| *w == v)
            .map_or_else(|| v.to_owned(), |(_, l)| (*l).to_owned())
    };
    let v = values.get(spec.name);
    // Show what will be stored: the normalised form of values typed half-width.
    let normalised = match spec.name {
        "name_kana" => Kana::parse(v).ok().map(|k| k.to_string()),
        "email" => Email::parse(v).ok().map(|e| e.to_string()),
        "phone" => Phone::parse(v).ok().map(|p| p.to_string()),
        "postal_code" => PostalCode::parse(v).ok().map(|p| p.to_string()),
        _ => None,
    };
    if let Some(n) = normalised {
        return n;
    }
    match &spec.widget {
        // Dates as every page and mail writes them (2026年12月10日（木）10:00), not the
        // browser's ISO value; what cannot be read stays as typed.
        Widget::Input {
            kind: "datetime-local",
            ..
        } => NaiveDateTime::parse_from_str(v.trim(), "%Y-%m-%dT%H:%M").map_or_else(
            |_| v.replace('T', " "),
            |t| format!("{}{}", date_ja(t.date()), t.format("%H:%M")),
        ),
        Widget::Input { kind: "date", .. } => NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d")
            .map_or_else(|_| v.trim().to_owned(), date_ja),
        Widget::Input { .. } | Widget::TextArea { .. } => v.trim().to_owned(),
        Widget::Select(o) | Widget::Radios(o) => pick(o, v),
        Widget::Checkboxes(o) => values
            .all(spec.name)
            .iter()
            .map(|v| pick(o, v))
            .collect::<Vec<_>>()
            .join("、"),
        Widget::Consent => "同意する".into(),
        Widget::OptIn(_) => if values.checked(spec.name) {
            "受け取る"
        } else {
            "受け取らない"
        }
        .into(),
    }
}

/// Draws the confirm page: what was entered, 送信する and 修正する.
/// Every posted value rides along in hidden fields, so 修正する restores them all.
pub fn render_confirm(def: &FormDef, values: &FormData, csrf: &str, token: &str) -> Markup {
    let rows: Vec<(&str, String)> = def
        .specs()
        .filter(|s| !matches!(s.name, "email_confirm" | "consent"))
        .map(|s| (s.label, display(s, values)))
        .collect();
    let carried = values
        .pairs()
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "csrf_token" | "form_token" | "action"));
    html! {
        (kujira_web::layout::steps(1))
        h1 { "入力内容の確認" }
        p { "以下の内容で送信します。よろしければ「送信する」を押してください。" }
        (fields::confirm_list(&rows))
        form method="post" action=(format!("{}/submit", def.base)) {
            (fields::form_guards(csrf, token))
            @for (k, v) in carried {
                (fields::hidden(k, v))
            }
            div.actions {
                button.button type="submit" { "送信する" }
                button.button.secondary type="submit" formaction=(format!("{}/confirm", def.base)) name="action" value="edit" { "修正する" }
            }
        }
    }
}
