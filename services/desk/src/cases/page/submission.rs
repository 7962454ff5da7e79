//! The case page's 受付時の内容: what the person submitted, as the staff member may
//! see it.

use super::*;

pub(super) fn submission_section(
    staff: &Staff,
    l: &Loaded,
    erased: bool,
    tz: chrono_tz::Tz,
) -> Markup {
    let personal = |v: Option<String>| Shown::of(staff, v.as_deref(), erased);
    html! {
        section.panel aria-labelledby="inquiry-heading" {
            h2 id="inquiry-heading" { "受付時の内容" }
            dl.facts {
                @match &l.submission {
                    Submission::Inquiry(s) => {
                        @let i = &s.inquiry;
                        @let p = i.personal.known();
                        (dl_row("セグメント", html! { (i.segment.label_ja()) }))
                        (dl_row("都道府県", html! { (i.prefecture.name()) }))
                        (dl_row("市区町村", html! { (personal(p.and_then(|p| p.city.as_ref().map(|x| x.to_string()))).page_text()) }))
                        (dl_row("年代", html! { (opt_label(i.age_group, |a| a.label_ja())) }))
                        (dl_row("性別", html! { (opt_label(i.gender, |g| g.label_ja())) }))
                        (dl_row("出身地", html! { (personal(p.and_then(|p| p.hometown.as_ref().map(|x| x.to_string()))).page_text()) }))
                        (dl_row("同居予定の家族", html! { (opt_label(i.household, Household::label_ja)) }))
                        (dl_row("子どもの年齢・学年", html! { (personal(p.and_then(|p| p.children_ages.as_ref().map(|x| x.to_string()))).page_text()) }))
                        (dl_row("移住の希望時期", html! { (opt_label(i.move_timing, MoveTiming::label_ja)) }))
                        (dl_row("相談したい内容", html! { (i.topics.iter().map(|t| t.label_ja()).collect::<Vec<_>>().join("、")) }))
                        (dl_row("希望する相談方法", html! { (i.method.label_ja()) }))
                        (dl_row("希望日時", html! {
                            @if i.preferred_dates.is_empty() { "指定なし" }
                            @for (n, d) in i.preferred_dates.iter().enumerate() {
                                "第" (n + 1) "希望：" (layout::datetime_ja(Some(*d), tz)) br;
                            }
                        }))
                        (dl_row("相談内容・質問", html! { span.pre { (personal(p.and_then(|p| p.message.as_ref().map(|x| x.to_string()))).page_text()) } }))
                        (dl_row("きっかけ", html! { (opt_label(i.source, |s| s.label_ja())) }))
                        (dl_row("お知らせメール", html! { (if i.newsletter { "希望する" } else { "希望しない" }) }))
                    }
                    Submission::TourRequest(s) => {
                        @let r = &s.request;
                        @let p = r.personal.known();
                        (dl_row("都道府県", html! { (r.prefecture.name()) }))
                        (dl_row("希望日", html! {
                            @for (n, d) in r.preferred_dates.iter().enumerate() {
                                "第" (n + 1) "希望：" (d.format("%Y-%m-%d")) br;
                            }
                        }))
                        (dl_row("見学したいもの", html! { (r.interests.iter().map(|t| TourInterest::label_ja(*t)).collect::<Vec<_>>().join("、")) }))
                        (dl_row("人数", html! { "大人" (r.adults) "人・子ども" (r.children) "人" }))
                        (dl_row("子どもの年齢・学年", html! { (personal(p.and_then(|p| p.children_ages.as_ref().map(|x| x.to_string()))).page_text()) }))
                        (dl_row("要望・質問", html! { span.pre { (personal(p.and_then(|p| p.message.as_ref().map(|x| x.to_string()))).page_text()) } }))
                        (dl_row("きっかけ", html! { (opt_label(r.source, |s| s.label_ja())) }))
                    }
                }
            }
        }
    }
}
