//! The page frame every public page shares: Japanese, phone first, no JavaScript.

use kujira_config::CityWords;
use maud::{DOCTYPE, Markup, PreEscaped, html};

/// Inline so that a page is one request; small enough not to matter.
pub const CSS: &str = r#"
*,*::before,*::after{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;font-family:"Hiragino Sans","Noto Sans JP","Yu Gothic UI",Meiryo,sans-serif;font-size:16px;line-height:1.75;color:#1a1a1a;background:#f7f7f5}
a{color:#0045a5}
a:focus,button:focus,input:focus,select:focus,textarea:focus{outline:3px solid #f5a623;outline-offset:2px}
.site-header{background:#00387a;color:#fff;padding:.75rem 1rem}
.site-header a{color:#fff;text-decoration:none;font-weight:700;font-size:1.15rem}
.site-header .city{display:block;font-size:.8rem;opacity:.9}
main{max-width:44rem;margin:0 auto;padding:1rem}
h1{font-size:1.4rem;line-height:1.4;margin:.5rem 0 1rem}
h2{font-size:1.15rem;border-left:4px solid #00387a;padding-left:.5rem;margin:2rem 0 1rem}
.steps{display:flex;gap:.25rem;list-style:none;padding:0;margin:0 0 1rem;font-size:.85rem}
.steps li{flex:1;text-align:center;padding:.25rem;background:#e4e4e0;border-radius:4px}
.steps li[aria-current]{background:#00387a;color:#fff;font-weight:700}
.field{margin:0 0 1.5rem;border:0;padding:0}
.field>label,.field>legend{display:block;font-weight:700;margin-bottom:.25rem;padding:0}
.badge{display:inline-block;font-size:.75rem;font-weight:700;border-radius:3px;padding:0 .4rem;margin-left:.5rem;vertical-align:middle}
.badge.req{background:#c8102e;color:#fff}
.badge.opt{background:#6b6b6b;color:#fff}
.help{font-size:.875rem;color:#4a4a4a;margin:.1rem 0 .35rem}
.error-text{color:#c8102e;font-weight:700;margin:.25rem 0}
input[type=text],input[type=email],input[type=tel],input[type=number],input[type=date],input[type=datetime-local],select,textarea{width:100%;font-size:1rem;padding:.6rem;border:1px solid #767676;border-radius:4px;background:#fff}
textarea{min-height:8rem}
[aria-invalid=true]{border:2px solid #c8102e !important;background:#fff5f5}
.choice{display:flex;align-items:flex-start;gap:.5rem;padding:.35rem 0}
.choice input{width:1.4rem;height:1.4rem;margin:.2rem 0 0;flex:none}
.error-summary{border:3px solid #c8102e;background:#fff;padding:1rem;margin:0 0 1.5rem;border-radius:4px}
.error-summary h2{border:0;padding:0;margin:0 0 .5rem;color:#c8102e}
.privacy{background:#fff;border:1px solid #c9c9c5;padding:.75rem 1rem;font-size:.9rem;border-radius:4px}
.actions{display:flex;flex-direction:column;gap:.75rem;margin:2rem 0}
.button{display:block;width:100%;font-size:1.1rem;font-weight:700;padding:.9rem;border-radius:6px;border:2px solid #00387a;background:#00387a;color:#fff;text-align:center;cursor:pointer}
.button.secondary{background:#fff;color:#00387a}
dl.confirm{background:#fff;border:1px solid #c9c9c5;border-radius:4px;padding:.5rem 1rem;margin:0}
dl.confirm dt{font-weight:700;font-size:.9rem;margin-top:.5rem;color:#4a4a4a}
dl.confirm dd{margin:0 0 .5rem;white-space:pre-wrap;overflow-wrap:anywhere}
.reference{font-size:1.6rem;font-weight:700;letter-spacing:.1em}
.hp{position:absolute !important;left:-10000px;width:1px;height:1px;overflow:hidden}
.site-footer{font-size:.85rem;color:#4a4a4a;max-width:44rem;margin:2rem auto 0;padding:1rem;border-top:1px solid #c9c9c5}
@media (min-width:40rem){.actions{flex-direction:row-reverse}.button{width:auto;min-width:12rem}}
"#;

/// A whole page: `lang="ja"`, the site's name, the desk's contact in the footer.
pub fn page(words: &CityWords, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="ja" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " | " (words.site_name) }
                style { (PreEscaped(CSS)) }
            }
            body {
                header.site-header {
                    a href="/" { (words.site_name) }
                    span.city { (words.city_name) " 移住・定住ポータル" }
                }
                main id="main" { (body) }
                footer.site-footer {
                    p {
                        (words.desk_name) br;
                        "電話：" (words.desk_phone) "（" (words.desk_hours) "）" br;
                        "メール：" (words.desk_email)
                    }
                    @if let Some(url) = &words.privacy_policy_url {
                        p { a href=(url) { "個人情報の取り扱いについて" } }
                    }
                }
            }
        }
    }
}

/// The 入力 → 確認 → 完了 progress list; `current` is 0, 1 or 2.
pub fn steps(current: usize) -> Markup {
    html! {
        ol.steps aria-label="手続きの流れ" {
            @for (i, name) in ["入力", "確認", "完了"].iter().enumerate() {
                @if i == current {
                    li aria-current="step" { (i + 1) ". " (name) }
                } @else {
                    li { (i + 1) ". " (name) }
                }
            }
        }
    }
}
