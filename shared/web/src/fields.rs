//! Form field rendering, following the デジタル庁 design system and JIS X 8341-3 AA:
//! a real `<label>` (or `<legend>` for a group), a ※必須 / ※任意 badge, help text,
//! then the error, tied to the field with `aria-describedby`, and `aria-invalid` on it.
//!
//! Ids are fixed so the error summary can link to them: the field (or a group's
//! first option) is `f-<name>`, its help `f-<name>-help`, its error `f-<name>-error`.
//!
//! Values are always interpolated by maud, so markup typed into a field comes back
//! as text.

use kujira_config::CityWords;
use kujira_domain::values::FieldErrors;
use maud::{Markup, html};

use crate::security::{CSRF_FIELD, FORM_TOKEN_FIELD};

/// The name of the honeypot field: a visually hidden input people never fill.
pub const HONEYPOT_FIELD: &str = "website";

/// What every field shows besides its control.
#[derive(Debug, Clone, Copy)]
pub struct Field<'a> {
    pub name: &'a str,
    pub label: &'a str,
    pub required: bool,
    pub help: Option<&'a str>,
    /// The error message to show (see [`error_for`]).
    pub error: Option<&'a str>,
}

impl<'a> Field<'a> {
    pub fn new(name: &'a str, label: &'a str, required: bool) -> Self {
        Self {
            name,
            label,
            required,
            help: None,
            error: None,
        }
    }

    pub fn help(mut self, help: &'a str) -> Self {
        self.help = Some(help);
        self
    }

    pub fn error(mut self, error: Option<&'a str>) -> Self {
        self.error = error;
        self
    }

    pub fn id(&self) -> String {
        format!("f-{}", self.name)
    }

    fn described_by(&self) -> Option<String> {
        let mut ids = Vec::new();
        if self.help.is_some() {
            ids.push(format!("f-{}-help", self.name));
        }
        if self.error.is_some() {
            ids.push(format!("f-{}-error", self.name));
        }
        (!ids.is_empty()).then(|| ids.join(" "))
    }

    fn invalid(&self) -> Option<&'static str> {
        self.error.map(|_| "true")
    }
}

/// Optional attributes of an `<input>`.
#[derive(Debug, Clone, Copy, Default)]
pub struct InputOpts<'a> {
    pub autocomplete: Option<&'a str>,
    pub inputmode: Option<&'a str>,
    pub maxlength: Option<usize>,
    pub placeholder: Option<&'a str>,
    pub min: Option<&'a str>,
    pub max: Option<&'a str>,
}

/// The error message of `name`, as shown (`None` when it has none).
pub fn error_for(errors: &FieldErrors, name: &str) -> Option<String> {
    errors.get(name).map(|e| e.message_ja())
}

fn badge(required: bool) -> Markup {
    html! {
        @if required { span.badge.req { "※必須" } } @else { span.badge.opt { "※任意" } }
    }
}

fn help_and_error(f: &Field) -> Markup {
    html! {
        @if let Some(help) = f.help { p.help id=(format!("f-{}-help", f.name)) { (help) } }
        @if let Some(err) = f.error { p.error-text id=(format!("f-{}-error", f.name)) { "エラー：" (err) } }
    }
}

/// A one-line input; `kind` is the `type` (`text`, `email`, `tel`, `date`, `datetime-local`, ...).
pub fn input(f: &Field, kind: &str, value: &str, opts: InputOpts) -> Markup {
    html! {
        div.field {
            label for=(f.id()) { (f.label) (badge(f.required)) }
            (help_and_error(f))
            input type=(kind) id=(f.id()) name=(f.name) value=(value)
                autocomplete=[opts.autocomplete] inputmode=[opts.inputmode]
                maxlength=[opts.maxlength] placeholder=[opts.placeholder]
                min=[opts.min] max=[opts.max]
                aria-required=[f.required.then_some("true")]
                aria-invalid=[f.invalid()] aria-describedby=[f.described_by()];
        }
    }
}

/// A multi-line text area.
pub fn textarea(f: &Field, value: &str, maxlength: Option<usize>) -> Markup {
    html! {
        div.field {
            label for=(f.id()) { (f.label) (badge(f.required)) }
            (help_and_error(f))
            textarea id=(f.id()) name=(f.name) rows="6" maxlength=[maxlength]
                aria-required=[f.required.then_some("true")]
                aria-invalid=[f.invalid()] aria-describedby=[f.described_by()] { (value) }
        }
    }
}

/// A drop-down; `options` are `(value, label)`; a blank 選択してください comes first.
pub fn select(f: &Field, options: &[(&str, &str)], selected: &str) -> Markup {
    html! {
        div.field {
            label for=(f.id()) { (f.label) (badge(f.required)) }
            (help_and_error(f))
            select id=(f.id()) name=(f.name)
                aria-required=[f.required.then_some("true")]
                aria-invalid=[f.invalid()] aria-describedby=[f.described_by()] {
                option value="" { "選択してください" }
                @for (value, label) in options {
                    option value=(value) selected[*value == selected] { (label) }
                }
            }
        }
    }
}

fn group(
    f: &Field,
    kind: &str,
    options: &[(&str, &str)],
    is_checked: impl Fn(&str) -> bool,
) -> Markup {
    html! {
        fieldset.field aria-describedby=[f.described_by()] aria-invalid=[f.invalid()] {
            legend { (f.label) (badge(f.required)) }
            (help_and_error(f))
            @for (i, (value, label)) in options.iter().enumerate() {
                @let id = if i == 0 { f.id() } else { format!("f-{}-{}", f.name, i) };
                div.choice {
                    input type=(kind) id=(id) name=(f.name) value=(value) checked[is_checked(value)]
                        aria-invalid=[f.invalid()];
                    label for=(id) { (label) }
                }
            }
        }
    }
}

/// Radio buttons in a `<fieldset>` with a `<legend>`.
pub fn radios(f: &Field, options: &[(&str, &str)], selected: &str) -> Markup {
    group(f, "radio", options, |v| v == selected)
}

/// Checkboxes in a `<fieldset>`; `selected` holds the ticked values.
pub fn checkboxes(f: &Field, options: &[(&str, &str)], selected: &[String]) -> Markup {
    group(f, "checkbox", options, |v| selected.iter().any(|s| s == v))
}

/// One checkbox with its own label (an opt-in).
pub fn checkbox(f: &Field, text: &str, checked: bool) -> Markup {
    html! {
        div.field {
            p { strong { (f.label) } (badge(f.required)) }
            (help_and_error(f))
            div.choice {
                input type="checkbox" id=(f.id()) name=(f.name) value="on" checked[checked]
                    aria-required=[f.required.then_some("true")]
                    aria-invalid=[f.invalid()] aria-describedby=[f.described_by()];
                label for=(f.id()) { (text) }
            }
        }
    }
}

/// The purpose of use (APPI art. 62), then the consent box, above the button.
pub fn consent(words: &CityWords, name: &str, checked: bool, error: Option<&str>) -> Markup {
    let f = Field::new(name, "個人情報の取り扱いへの同意", true).error(error);
    html! {
        section.privacy aria-labelledby="privacy-heading" {
            h2 id="privacy-heading" { "個人情報の取り扱いについて" }
            p id="privacy-purpose" { (words.privacy_purpose) }
            @if let Some(url) = &words.privacy_policy_url {
                p { a href=(url) { (words.city_name) "の個人情報保護方針" } }
            }
        }
        (checkbox(&f, "上記の個人情報の取り扱いに同意します", checked))
    }
}

/// The error summary at the top of a failed form: each item links to its field.
/// `items` are `(field name, text)`; the text should name the field.
pub fn error_summary(items: &[(String, String)]) -> Markup {
    html! {
        @if !items.is_empty() {
            div.error-summary role="alert" aria-labelledby="error-summary-title" tabindex="-1" {
                h2 id="error-summary-title" { "入力内容に" (items.len()) "件の誤りがあります" }
                ul {
                    @for (name, text) in items {
                        li { a href=(format!("#f-{name}")) { (text) } }
                    }
                }
            }
        }
    }
}

/// Summary items from `errors`, with each field's label from `label_of`.
pub fn summary_items(
    errors: &FieldErrors,
    label_of: impl Fn(&str) -> String,
) -> Vec<(String, String)> {
    errors
        .iter()
        .map(|(name, e)| {
            (
                name.to_owned(),
                format!("{}：{}", label_of(name), e.message_ja()),
            )
        })
        .collect()
}

/// A hidden input.
pub fn hidden(name: &str, value: &str) -> Markup {
    html! { input type="hidden" name=(name) value=(value); }
}

/// The CSRF and form-token hidden fields every public form carries.
pub fn form_guards(csrf_token: &str, form_token: &str) -> Markup {
    html! {
        (hidden(CSRF_FIELD, csrf_token))
        (hidden(FORM_TOKEN_FIELD, form_token))
    }
}

/// The honeypot: hidden from sight and from assistive technology, skipped by Tab.
pub fn honeypot() -> Markup {
    html! {
        div.hp aria-hidden="true" {
            label for="f-website" { "このフィールドには何も入力しないでください" }
            input type="text" id="f-website" name=(HONEYPOT_FIELD) value="" tabindex="-1" autocomplete="off";
        }
    }
}

/// The confirm page's list of what was entered. Optional fields left blank are
/// left out: half of the city's visitors leave on the confirm page, so it is kept
/// as short as the input allows.
pub fn confirm_list(rows: &[(&str, String)]) -> Markup {
    html! {
        dl.confirm {
            @for (label, value) in rows.iter().filter(|(_, v)| !v.trim().is_empty()) {
                dt { (label) }
                dd { (value) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_confirm_list_shows_what_was_entered_escaped_and_skips_blanks() {
        let rows = [
            ("お名前", "<b>柏崎</b> 太郎".to_owned()),
            ("電話番号", String::new()),
            ("郵便番号", "  ".to_owned()),
        ];
        let html = confirm_list(&rows).into_string();
        assert!(html.contains("お名前"));
        assert!(html.contains("&lt;b&gt;柏崎&lt;/b&gt; 太郎"), "{html}");
        assert!(
            !html.contains("電話番号"),
            "a blank row is left out: {html}"
        );
        assert!(!html.contains("郵便番号"), "{html}");
    }
}
