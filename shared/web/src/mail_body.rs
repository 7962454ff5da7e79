//! One layout for the mails the services render at send time (tour mails, the
//! scheduler's follow-ups and digest): a body written once as greeting, paragraphs,
//! labelled rows, lists and links, and turned into both alternatives, so that the
//! text and the HTML always say the same thing and every mail from the city looks
//! alike.

use kujira_config::Config;
use maud::{Markup, html};

/// A titled list of lines, each with an optional link.
pub type LinkedList = (String, Vec<(String, Option<String>)>);

/// A mail's body. Empty parts are left out.
#[derive(Debug, Default, Clone)]
pub struct MailBody {
    /// 「柏崎 太郎 様」: the first line.
    pub greeting: String,
    pub paragraphs: Vec<String>,
    /// Titled tables of label and value (a value may span lines).
    pub sections: Vec<(String, Vec<(String, String)>)>,
    pub lists: Vec<LinkedList>,
    /// Titled links, the URL shown in full (mail clients that hide links still
    /// show it).
    pub links: Vec<(String, String)>,
    pub closing: Vec<String>,
}

/// The city's signature under a mail to a resident: the site, the desk and how to
/// reach it.
pub fn signature(config: &Config) -> Vec<String> {
    let w = &config.words;
    vec![
        w.site_name.clone(),
        w.desk_name.clone(),
        format!("電話：{}（{}）", w.desk_phone, w.desk_hours),
        format!("メール：{}", w.desk_email),
        config.public_url.clone(),
    ]
}

const H2: &str = "font-size: 1.05em; border-left: 4px solid #1d6fa5; padding-left: .5em;";

impl MailBody {
    /// The plain-text alternative, `signature` under a rule.
    pub fn text(&self, signature: &[String]) -> String {
        let mut out = format!("{}\n\n", self.greeting);
        for p in &self.paragraphs {
            out.push_str(p);
            out.push_str("\n\n");
        }
        for (title, rows) in &self.sections {
            out.push_str(&format!("■{title}\n"));
            for (k, v) in rows {
                // Multi-line values (needs, notes) stay readable, indented under
                // their label.
                out.push_str(&format!("　{k}：{}\n", v.replace('\n', "\n　　")));
            }
            out.push('\n');
        }
        for (title, lines) in &self.lists {
            out.push_str(&format!("■{title}\n"));
            for (line, link) in lines {
                out.push_str(&format!("・{line}\n"));
                if let Some(url) = link {
                    out.push_str(&format!("　{url}\n"));
                }
            }
            out.push('\n');
        }
        for (label, url) in &self.links {
            out.push_str(&format!("■{label}\n{url}\n\n"));
        }
        for c in &self.closing {
            out.push_str(c);
            out.push_str("\n\n");
        }
        if !signature.is_empty() {
            out.push_str("――――――――――――――――\n");
            for l in signature {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }

    /// The HTML alternative: inline styles only (mail clients drop style sheets).
    pub fn html(&self, signature: &[String]) -> String {
        let markup: Markup = html! {
            (maud::DOCTYPE)
            html lang="ja" {
                head { meta charset="utf-8"; }
                body style="font-family: sans-serif; line-height: 1.7; color: #222;" {
                    p { (self.greeting) }
                    @for p in &self.paragraphs { p style="white-space: pre-wrap;" { (p) } }
                    @for (title, rows) in &self.sections {
                        h2 style=(H2) { (title) }
                        table style="border-collapse: collapse;" {
                            @for (k, v) in rows {
                                tr {
                                    th style="text-align: left; padding: .2em 1em .2em 0; vertical-align: top; white-space: nowrap;" scope="row" { (k) }
                                    td style="padding: .2em 0; white-space: pre-wrap;" { (v) }
                                }
                            }
                        }
                    }
                    @for (title, lines) in &self.lists {
                        h2 style=(H2) { (title) }
                        ul {
                            @for (line, link) in lines {
                                li {
                                    @if let Some(url) = link { a href=(url) { (line) } }
                                    @else { (line) }
                                }
                            }
                        }
                    }
                    @for (label, url) in &self.links {
                        h2 style=(H2) { (label) }
                        p { a href=(url) { (url) } }
                    }
                    @for c in &self.closing { p { (c) } }
                    @if !signature.is_empty() {
                        hr;
                        p { @for l in signature { (l) br; } }
                    }
                }
            }
        };
        markup.into_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_html_say_the_same_and_escape_what_they_show() {
        let body = MailBody {
            greeting: "柏崎 太郎 様".into(),
            paragraphs: vec!["一行目\n二行目".into()],
            sections: vec![(
                "ご予約".into(),
                vec![
                    ("日時".into(), "1月9日".into()),
                    ("配慮".into(), "a\nb".into()),
                ],
            )],
            lists: vec![(
                "案件".into(),
                vec![
                    ("<連番>".into(), Some("https://x/c".into())),
                    ("無し".into(), None),
                ],
            )],
            links: vec![("確認".into(), "https://x/s".into())],
            closing: vec!["よろしくお願いします。".into()],
        };
        let text = body.text(&["署名".into()]);
        assert!(text.starts_with(
            "柏崎 太郎 様\n\n一行目\n二行目\n\n■ご予約\n　日時：1月9日\n　配慮：a\n　　b\n"
        ));
        assert!(text.contains("・<連番>\n　https://x/c\n・無し\n"));
        assert!(
            text.contains(
                "■確認\nhttps://x/s\n\nよろしくお願いします。\n\n――――――――――――――――\n署名\n"
            )
        );
        let html = body.html(&["署名".into()]);
        assert!(html.contains("&lt;連番&gt;"), "{html}");
        assert!(!html.contains("<連番>"));
        for shown in [
            "柏崎 太郎 様",
            "1月9日",
            "https://x/s",
            "よろしくお願いします。",
            "署名",
        ] {
            assert!(html.contains(shown), "{shown} missing from the HTML");
        }
    }

    #[test]
    fn empty_parts_leave_nothing_behind() {
        let body = MailBody {
            greeting: "様".into(),
            ..Default::default()
        };
        assert_eq!(body.text(&[]), "様\n\n");
        assert!(!body.html(&[]).contains("<h2"));
    }
}
