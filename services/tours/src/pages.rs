//! The public tour pages: the catalogue, a tour with its sign-up form
//! (入力 → 確認 → 完了), the personal sign-up page with its cancel button, and the
//! feedback form.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use chrono::{DateTime, Utc};
use kujira_domain::funnel::{FunnelEvent, FunnelForm, SpamReason};
use kujira_domain::tour::form::{self, CHILDREN_AGES_MAX, NEEDS_MAX, SignUpInput};
use kujira_domain::tour::{
    CancelledBy, SignUp, SignUpStatus, TourCommand, TourDetails, TourError, TourState, TourStatus,
    Transport,
};
use kujira_domain::values::{FieldErrors, FreeText, Prefecture, Source, ValueError, optional};
use kujira_web::fields::{self, Field, InputOpts};
use kujira_web::{ClientIp, FORM_TOKEN_FIELD, FormData, Kit, PageError, layout};
use maud::{Markup, html};
use uuid::Uuid;

use crate::ToursState;
use crate::catalogue;
use crate::mail::{fee_ja, ja_datetime, ja_span};
use crate::service::{self, Actor, CommandError};
use crate::token;

mod by_link;
pub use by_link::{cancel, feedback_form, feedback_submit, sign_up};

type PageResult = Result<Response, PageError>;

fn form_name(tour_id: Uuid) -> String {
    format!("tour_signup:{tour_id}")
}

fn not_found(kit: &Kit) -> PageError {
    kit.error_page(
        StatusCode::NOT_FOUND,
        "ページが見つかりません",
        "お探しのツアーまたはお申し込みは見つかりませんでした。メールに記載のリンクをもう一度ご確認ください。",
    )
}

fn internal(kit: &Kit, e: &dyn std::fmt::Display) -> PageError {
    kit.internal_error(e)
}

fn html_page(kit: &Kit, title: &str, body: Markup) -> Html<String> {
    Html(kit.page(title, body).into_string())
}

/// Pages that carry a personal token in their URL must not leak it to other sites.
fn private(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// A published tour, or a 404 page (drafts do not exist for the public).
async fn published_tour(s: &ToursState, id: &str) -> Result<(Uuid, TourState), PageError> {
    let kit = s.kit();
    let tour_id = Uuid::parse_str(id).map_err(|_| not_found(kit))?;
    let state = s
        .tours()
        .load(tour_id)
        .await
        .map_err(|e| internal(kit, &e))?
        .ok_or_else(|| not_found(kit))?;
    if state.status == TourStatus::Draft {
        return Err(not_found(kit));
    }
    Ok((tour_id, state))
}

/// Whether the tour takes sign-ups now, and if not, why.
fn closed_reason(state: &TourState, now: DateTime<Utc>) -> Option<TourError> {
    let d = state.details.as_ref()?;
    if state.status == TourStatus::Cancelled {
        Some(TourError::TourCancelled)
    } else if now >= d.starts_at {
        Some(TourError::TourStarted)
    } else if now >= d.sign_up_closes_at() {
        Some(TourError::DeadlinePassed)
    } else {
        None
    }
}

/// 残りN組 / 満席（キャンセル待ち受付中） / 受付終了
fn availability_ja(places_left: u32, open: bool) -> String {
    match (open, places_left) {
        (false, _) => "受付終了".into(),
        (true, 0) => "満席（キャンセル待ち受付中）".into(),
        (true, n) => format!("残り{n}組"),
    }
}

// ---------------------------------------------------------------------------
// GET /tours
// ---------------------------------------------------------------------------

pub async fn list(State(s): State<ToursState>) -> PageResult {
    let kit = s.kit();
    let now = kit.now();
    let tz = kit.timezone();
    let tours = catalogue::upcoming(s.store().pool(), now)
        .await
        .map_err(|e| internal(kit, &e))?;
    let body = html! {
        h1 { "おためし移住体験ツアー" }
        p { (kit.words().city_name) "での暮らしを体験できるツアーです。保育園や学校、住まい、先輩移住者との交流など、実際に見て、聞いて、確かめてください。" }
        @if tours.is_empty() {
            p { "現在、お申し込みを受け付けているツアーはありません。" }
        } @else {
            ul.tours {
                @for t in &tours {
                    li.tour {
                        h2 { a href=(format!("/tours/{}", t.id)) { (t.title) } }
                        dl.confirm {
                            dt { "日時" } dd { (ja_span(tz, t.starts_at, t.ends_at)) }
                            @if !t.meeting_place.is_empty() { dt { "集合場所" } dd { (t.meeting_place) } }
                            dt { "参加費" } dd { (fee_ja(t.fee_yen.max(0) as u32)) }
                            dt { "申込締切" } dd { (ja_datetime(tz, t.deadline)) }
                            dt { "空き状況" }
                            dd { strong { (availability_ja(t.places_left.max(0) as u32, t.is_open(now))) } }
                        }
                    }
                }
            }
        }
        p { "ご希望の日程がない場合は、" a href="/tours/request" { "オーダーメイドツアー" } "もご相談いただけます。" }
    };
    Ok(html_page(kit, "おためし移住体験ツアー", body).into_response())
}

// ---------------------------------------------------------------------------
// GET /tours/{id}
// ---------------------------------------------------------------------------

fn tour_markup(kit: &Kit, d: &TourDetails, state: &TourState, now: DateTime<Utc>) -> Markup {
    let tz = kit.timezone();
    let open = closed_reason(state, now).is_none();
    html! {
        dl.confirm {
            dt { "種類" } dd { (d.kind.label_ja()) }
            dt { "日時" } dd { (ja_span(tz, d.starts_at, d.ends_at)) }
            @if !d.meeting_place.is_empty() { dt { "集合場所" } dd { (d.meeting_place) } }
            dt { "参加費" } dd { (fee_ja(d.fee_yen)) }
            @if !d.audience.is_empty() { dt { "対象" } dd { (d.audience) } }
            dt { "定員" }
            dd {
                (d.capacity_parties) "組"
                @if let Some(m) = d.max_people { "（最大" (m) "名）" }
            }
            dt { "申込締切" } dd { (ja_datetime(tz, d.sign_up_closes_at())) }
            dt { "空き状況" } dd { strong { (availability_ja(state.places_left(), open)) } }
        }
        @if !d.description.is_empty() {
            h2 { "ツアーの内容" }
            p style="white-space: pre-wrap" { (d.description) }
        }
    }
}

pub async fn show(
    State(s): State<ToursState>,
    Path(id): Path<String>,
    jar: CookieJar,
    ClientIp(ip): ClientIp,
) -> PageResult {
    let (tour_id, state) = published_tour(&s, &id).await?;
    let kit = s.kit();
    let now = kit.now();
    let Some(d) = &state.details else {
        return Err(not_found(kit));
    };
    let closed = closed_reason(&state, now);
    let (jar, csrf) = kit.csrf().issue(jar);
    let form = if closed.is_none() {
        let token = kit.form_tokens().issue(&form_name(tour_id), now);
        if kit.funnel_allowed(ip) {
            kujira_web::funnel::record(
                s.store().events(),
                token.id,
                &FunnelEvent::FormViewed {
                    form: FunnelForm::TourSignup,
                    at: now,
                },
            )
            .await;
        }
        Some(sign_up_form(
            kit,
            tour_id,
            &state,
            &SignUpInput::default(),
            &FieldErrors::new(),
            &csrf,
            &token.token,
        ))
    } else {
        None
    };
    let body = html! {
        h1 { (d.title) }
        @if let Some(reason) = &closed {
            div.error-summary role="status" { p { strong { (reason.message_ja()) } } }
        }
        (tour_markup(kit, d, &state, now))
        @if let Some(form) = form { (form) }
    };
    Ok((jar, html_page(kit, &d.title, body)).into_response())
}

fn sign_up_form(
    kit: &Kit,
    tour_id: Uuid,
    state: &TourState,
    input: &SignUpInput,
    errors: &FieldErrors,
    csrf: &str,
    form_token: &str,
) -> Markup {
    let err = |name: &str| fields::error_for(errors, name);
    let e = |name: &'static str| {
        form::FIELDS
            .iter()
            .find(|(f, _, _)| *f == name)
            .map(|(f, l, r)| Field::new(f, l, *r))
            .unwrap_or_else(|| Field::new(name, name, false))
    };
    let (name, kana, email, confirm, phone, children_ages, needs) = (
        err("name"),
        err("name_kana"),
        err("email"),
        err("email_confirm"),
        err("phone"),
        err("children_ages"),
        err("needs"),
    );
    let (pref, adults, children, transport, source, consent) = (
        err("prefecture"),
        err("adults"),
        err("children"),
        err("transport"),
        err("source"),
        err("consent"),
    );
    let prefectures: Vec<(&str, &str)> = Prefecture::all().map(|p| (p.name(), p.name())).collect();
    let counts = |from: u8, to: u8| -> Vec<(String, String)> {
        (from..=to)
            .map(|n| (n.to_string(), format!("{n}名")))
            .collect()
    };
    let (adult_counts, child_counts) = (counts(1, 10), counts(0, 10));
    let (adult_opts, child_opts) = (refs(&adult_counts), refs(&child_counts));
    let transports: Vec<(&str, &str)> = [Transport::Car, Transport::Train]
        .iter()
        .map(|t| (t.as_str(), t.label_ja()))
        .collect();
    let sources: Vec<(&str, &str)> = Source::ALL
        .iter()
        .map(|s| (s.as_str(), s.label_ja()))
        .collect();
    let summary = fields::summary_items(errors, |f| form::label(f).to_owned());
    let full = state.places_left() == 0;
    html! {
        h2 id="signup" { "お申し込み" }
        (layout::steps(0))
        @if full {
            p { strong { "現在満席のため、キャンセル待ちでのお申し込みとなります。空きが出た場合は、お申し込み順にご案内します。" } }
        }
        p { "1組（ご家族・グループ）ごとにお申し込みください。1組の皆さまは必ず一緒にご参加いただけるよう、分けずにお受けします。" }
        (fields::error_summary(&summary))
        form method="post" action=(format!("/tours/{tour_id}/confirm")) novalidate {
            (fields::form_guards(csrf, form_token))
            (fields::honeypot())
            (fields::input(&e("name").error(name.as_deref()).help("代表者のお名前を入力してください。"), "text", &input.name,
                InputOpts { autocomplete: Some("name"), maxlength: Some(50), ..Default::default() }))
            (fields::input(&e("name_kana").error(kana.as_deref()).help("全角カタカナで入力してください（ひらがな・半角でも受け付けます）。例：カシワザキ タロウ"), "text", &input.name_kana,
                InputOpts { maxlength: Some(50), ..Default::default() }))
            (fields::input(&e("email").error(email.as_deref()).help("確認のメールと、キャンセル用のリンクをお送りします。"), "email", &input.email,
                InputOpts { autocomplete: Some("email"), inputmode: Some("email"), maxlength: Some(254), ..Default::default() }))
            (fields::input(&e("email_confirm").error(confirm.as_deref()), "email", input.email_confirm.as_deref().unwrap_or(""),
                InputOpts { autocomplete: Some("email"), inputmode: Some("email"), maxlength: Some(254), ..Default::default() }))
            (fields::input(&e("phone").error(phone.as_deref()).help("当日連絡のつく番号を入力してください（例：090-1234-5678）。"), "tel", &input.phone,
                InputOpts { autocomplete: Some("tel"), inputmode: Some("tel"), maxlength: Some(20), ..Default::default() }))
            (fields::select(&e("prefecture").error(pref.as_deref()), &prefectures, &input.prefecture))
            (fields::select(&e("adults").error(adults.as_deref()).help("代表者を含めた、中学生以上の人数です。"), &adult_opts, &input.adults))
            (fields::select(&e("children").error(children.as_deref()).help("小学生以下のお子さまの人数です。"), &child_opts, &input.children))
            (fields::input(&e("children_ages").error(children_ages.as_deref()).help("ツアー当日の年齢または学年（例：5歳、小学2年）。"), "text", &input.children_ages,
                InputOpts { maxlength: Some(CHILDREN_AGES_MAX), ..Default::default() }))
            (fields::radios(&e("transport").error(transport.as_deref()).help("電車でお越しの場合は、駅までお迎えにあがります。"), &transports, &input.transport))
            (fields::textarea(&e("needs").error(needs.as_deref()).help("食物アレルギー、ベビーカー・車いすの利用、チャイルドシートの要否など（1,000文字まで）。"), &input.needs, Some(NEEDS_MAX)))
            (fields::select(&e("source").error(source.as_deref()), &sources, &input.source))
            (fields::consent(kit.words(), "consent", input.consent, consent.as_deref()))
            div.actions {
                button.button type="submit" { "確認画面へ進む" }
            }
        }
    }
}

fn refs(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
}

fn input_from(form: &FormData) -> SignUpInput {
    SignUpInput {
        name: form.get("name").to_owned(),
        name_kana: form.get("name_kana").to_owned(),
        email: form.get("email").to_owned(),
        email_confirm: Some(form.get("email_confirm").to_owned()),
        phone: form.get("phone").to_owned(),
        prefecture: form.get("prefecture").to_owned(),
        adults: form.get("adults").to_owned(),
        children: form.get("children").to_owned(),
        children_ages: form.get("children_ages").to_owned(),
        transport: form.get("transport").to_owned(),
        needs: form.get("needs").to_owned(),
        source: form.get("source").to_owned(),
        consent: form.checked("consent"),
    }
}

/// The form again, every value kept, with its errors (422) or without (修正する).
fn form_again(
    s: &ToursState,
    tour_id: Uuid,
    state: &TourState,
    input: &SignUpInput,
    errors: &FieldErrors,
    jar: CookieJar,
    form_token: &str,
) -> Response {
    let kit = s.kit();
    let (jar, csrf) = kit.csrf().issue(jar);
    let title = state.details.as_ref().map_or("", |d| d.title.as_str());
    let body = html! {
        h1 { (title) }
        (sign_up_form(kit, tour_id, state, input, errors, &csrf, form_token))
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    (
        status,
        jar,
        html_page(kit, &format!("入力内容の修正：{title}"), body),
    )
        .into_response()
}

/// A tour that no longer takes sign-ups, explained (409: the request was fine, the tour is not).
fn closed_page(kit: &Kit, reason: &TourError) -> PageError {
    let status = match reason {
        TourError::NotScheduled | TourError::NotPublished => StatusCode::NOT_FOUND,
        TourError::PartyTooLarge | TourError::InvalidParty(_) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::CONFLICT,
    };
    kit.error_page(
        status,
        "お申し込みを受け付けられませんでした",
        reason.message_ja(),
    )
}

// ---------------------------------------------------------------------------
// POST /tours/{id}/confirm
// ---------------------------------------------------------------------------

pub async fn confirm(
    State(s): State<ToursState>,
    Path(id): Path<String>,
    jar: CookieJar,
    ClientIp(ip): ClientIp,
    form: FormData,
) -> PageResult {
    let kit = s.kit();
    kit.check_csrf(&jar, &form)?;
    let (tour_id, state) = published_tour(&s, &id).await?;
    let token = kit.check_form_token(&form_name(tour_id), &form)?;
    let now = kit.now();
    if let Some(reason) = closed_reason(&state, now) {
        return Err(closed_page(kit, &reason));
    }
    let input = input_from(&form);
    if !form.get("edit").is_empty() {
        return Ok(form_again(
            &s,
            tour_id,
            &state,
            &input,
            &FieldErrors::new(),
            jar,
            &token.token,
        ));
    }
    let new = match input.validate(Uuid::nil()) {
        Ok(new) => new,
        Err(errors) => {
            return Ok(form_again(
                &s,
                tour_id,
                &state,
                &input,
                &errors,
                jar,
                &token.token,
            ));
        }
    };
    if kit.funnel_allowed(ip) {
        kujira_web::funnel::record(
            s.store().events(),
            token.id,
            &FunnelEvent::ConfirmViewed {
                form: FunnelForm::TourSignup,
                at: now,
            },
        )
        .await;
    }
    let Some(d) = &state.details else {
        return Err(not_found(kit));
    };
    let (jar, csrf) = kit.csrf().issue(jar);
    let p = &new.personal;
    let rows: Vec<(&str, String)> = vec![
        (form::label("name"), p.name.to_string()),
        (form::label("name_kana"), p.name_kana.to_string()),
        (form::label("email"), p.email.to_string()),
        (form::label("phone"), p.phone.to_string()),
        (form::label("prefecture"), new.prefecture.to_string()),
        (form::label("adults"), format!("{}名", new.party.adults)),
        (form::label("children"), format!("{}名", new.party.children)),
        (
            form::label("children_ages"),
            p.children_ages
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        ),
        (
            form::label("transport"),
            new.transport
                .map(|t| t.label_ja().to_owned())
                .unwrap_or_default(),
        ),
        (
            form::label("needs"),
            p.needs
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        ),
        (
            form::label("source"),
            new.source
                .map(|s| s.label_ja().to_owned())
                .unwrap_or_default(),
        ),
        (form::label("consent"), "同意する".to_owned()),
    ];
    let will_wait = !state.fits(new.party);
    let body = html! {
        h1 { "入力内容の確認" }
        (layout::steps(1))
        p { "「" (d.title) "」（" (ja_span(kit.timezone(), d.starts_at, d.ends_at)) "）へのお申し込みです。内容をご確認のうえ、「送信する」を押してください。" }
        @if will_wait {
            p { strong { "現在、定員に達しているため、キャンセル待ちでの受付となります。" } }
        }
        (fields::confirm_list(&rows))
        form method="post" action=(format!("/tours/{tour_id}/submit")) {
            (fields::form_guards(&csrf, &token.token))
            @for (name, value) in form.pairs() {
                @if is_carried(name) { (fields::hidden(name, value)) }
            }
            div.actions {
                button.button type="submit" { "送信する" }
                button.button.secondary type="submit" name="edit" value="1"
                    formaction=(format!("/tours/{tour_id}/confirm")) { "修正する" }
            }
        }
    };
    Ok((jar, html_page(kit, "入力内容の確認", body)).into_response())
}

/// The fields the confirm page carries on to the submit (the guards are re-issued).
fn is_carried(name: &str) -> bool {
    name != FORM_TOKEN_FIELD
        && name != kujira_web::CSRF_FIELD
        && name != "edit"
        && (form::FIELDS.iter().any(|(f, _, _)| *f == name) || name == fields::HONEYPOT_FIELD)
}

// ---------------------------------------------------------------------------
// POST /tours/{id}/submit
// ---------------------------------------------------------------------------

pub async fn submit(
    State(s): State<ToursState>,
    Path(id): Path<String>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    form: FormData,
) -> PageResult {
    let kit = s.kit();
    kit.check_csrf(&jar, &form)?;
    let (tour_id, state) = published_tour(&s, &id).await?;
    let token = kit.check_form_token(&form_name(tour_id), &form)?;
    kit.check_rate_page(ip)?;
    let now = kit.now();
    if !form.get(fields::HONEYPOT_FIELD).is_empty() {
        // Looks accepted, goes nowhere: a bot learns nothing.
        kujira_web::funnel::record(
            s.store().events(),
            token.id,
            &FunnelEvent::SpamFlagged {
                form: FunnelForm::TourSignup,
                at: now,
                reason: SpamReason::Honeypot,
            },
        )
        .await;
        tracing::info!(%tour_id, "tour sign-up flagged as spam (honeypot)");
        let decoy = token::sign(s.config().secret.expose(), tour_id, Uuid::new_v4());
        return Ok(Redirect::to(&format!("/tours/{tour_id}/complete?s={decoy}")).into_response());
    }
    let input = input_from(&form);
    let sign_up_id = service::sign_up_id_for(tour_id, "form", &token.id.to_string());
    let new = match input.validate(sign_up_id) {
        Ok(new) => new,
        Err(errors) => {
            return Ok(form_again(
                &s,
                tour_id,
                &state,
                &input,
                &errors,
                jar,
                &token.token,
            ));
        }
    };
    let command = TourCommand::SignUp {
        sign_up: new,
        at: now,
    };
    match s
        .tours()
        .execute(tour_id, command, &Actor::new("applicant"))
        .await
    {
        Ok(_) => {}
        Err(CommandError::Refused(e)) => return Err(closed_page(kit, &e)),
        Err(e) => return Err(internal(kit, &e)),
    }
    kujira_web::funnel::record(
        s.store().events(),
        token.id,
        &FunnelEvent::Submitted {
            form: FunnelForm::TourSignup,
            at: now,
            case_id: sign_up_id,
        },
    )
    .await;
    let link = token::sign(s.config().secret.expose(), tour_id, sign_up_id);
    Ok(Redirect::to(&format!("/tours/{tour_id}/complete?s={link}")).into_response())
}

// ---------------------------------------------------------------------------
// GET /tours/{id}/complete
// ---------------------------------------------------------------------------

pub async fn complete(
    State(s): State<ToursState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let kit = s.kit();
    let (tour_id, state) = published_tour(&s, &id).await?;
    let found = q
        .get("s")
        .and_then(|t| token::verify(s.config().secret.expose(), t))
        .filter(|(t, _)| *t == tour_id)
        .and_then(|(_, sid)| {
            state
                .sign_up(sid)
                .map(|su| (su, q.get("s").cloned().unwrap_or_default()))
        });
    let title = state.details.as_ref().map_or("", |d| d.title.as_str());
    let body = html! {
        h1 { "お申し込みを受け付けました" }
        (layout::steps(2))
        @if let Some((su, link)) = &found {
            @match su.status {
                SignUpStatus::Waitlisted => {
                    p.reference { "キャンセル待ち " (state.waitlist_position(su.id).unwrap_or(0)) " 番目" }
                    p { "「" (title) "」は定員に達しているため、キャンセル待ちとして受け付けました。空きが出た場合は、お申し込み順に繰り上げてメールでお知らせします。" }
                }
                SignUpStatus::Cancelled => {
                    p { "このお申し込みはキャンセルされています。" }
                }
                _ => {
                    p.reference { "参加確定" }
                    p { "「" (title) "」への参加が確定しました。当日お会いできることを楽しみにしています。" }
                }
            }
            p { "ご登録のメールアドレスに、確認のメールをお送りしました。メールが届かない場合は、お手数ですが窓口までご連絡ください。" }
            p { "お申し込みの確認やキャンセルは、メールに記載のリンク、または次のページからできます。" }
            p { a href=(format!("/signups/{link}")) { "お申し込み内容の確認・キャンセル" } }
        } @else {
            p { "「" (title) "」へのお申し込みを受け付けました。ご登録のメールアドレスに、確認のメールをお送りします。" }
        }
        p { "ご不明な点は " (kit.words().desk_name) "（電話 " (kit.words().desk_phone) "）までお問い合わせください。" }
        p { a href="/tours" { "ツアーの一覧へ戻る" } }
    };
    Ok(private(
        html_page(kit, "お申し込み完了", body).into_response(),
    ))
}
