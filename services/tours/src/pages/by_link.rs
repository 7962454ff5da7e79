//! The pages a party reaches from its mails, by the personal token of its sign-up:
//! the sign-up itself (its status, and the cancel button) and the feedback form
//! after the tour.

use super::*;

/// Longest feedback comment.
const COMMENTS_MAX: usize = 2000;

// ---------------------------------------------------------------------------
// GET /signups/{token}, POST /signups/{token}/cancel
// ---------------------------------------------------------------------------

/// The tour and sign-up a personal token stands for, or a 404 page.
async fn by_token(s: &ToursState, token: &str) -> Result<(Uuid, TourState, Uuid), PageError> {
    let kit = s.kit();
    let (tour_id, sign_up_id) =
        token::verify(s.config().secret.expose(), token).ok_or_else(|| not_found(kit))?;
    let state = s
        .tours()
        .load(tour_id)
        .await
        .map_err(|e| internal(kit, &e))?
        .ok_or_else(|| not_found(kit))?;
    if state.sign_up(sign_up_id).is_none() {
        return Err(not_found(kit));
    }
    Ok((tour_id, state, sign_up_id))
}

fn status_ja(state: &TourState, su: &SignUp) -> String {
    if state.status == TourStatus::Cancelled {
        return "ツアー中止".into();
    }
    match su.status {
        SignUpStatus::Confirmed if su.promoted_at.is_some() => {
            "参加確定（キャンセル待ちから繰り上げ）".into()
        }
        SignUpStatus::Confirmed => "参加確定".into(),
        SignUpStatus::Waitlisted => format!(
            "キャンセル待ち（{}番目）",
            state.waitlist_position(su.id).unwrap_or(0)
        ),
        SignUpStatus::Cancelled => "キャンセル済み".into(),
        SignUpStatus::Received => "受付中".into(),
    }
}

pub async fn sign_up(
    State(s): State<ToursState>,
    Path(token): Path<String>,
    jar: CookieJar,
) -> PageResult {
    let (tour_id, state, sign_up_id) = by_token(&s, &token).await?;
    let kit = s.kit();
    let now = kit.now();
    let (Some(d), Some(su)) = (&state.details, state.sign_up(sign_up_id)) else {
        return Err(not_found(kit));
    };
    let cancellable = matches!(
        su.status,
        SignUpStatus::Confirmed | SignUpStatus::Waitlisted
    ) && state.status != TourStatus::Cancelled
        && now < d.starts_at;
    let (jar, csrf) = kit.csrf().issue(jar);
    let p = su.personal.known();
    let erased = kujira_domain::personal::ERASED_JA.to_owned();
    let rows: Vec<(&str, String)> = vec![
        ("状況", status_ja(&state, su)),
        (
            "代表者",
            p.map_or(erased.clone(), |p| format!("{} 様", p.name)),
        ),
        (
            "参加人数",
            format!("大人{}名・子ども{}名", su.party.adults, su.party.children),
        ),
        (
            "来場方法",
            su.transport
                .map(|t| t.label_ja().to_owned())
                .unwrap_or_default(),
        ),
        (
            "配慮事項",
            p.map_or(erased, |p| {
                p.needs
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            }),
        ),
    ];
    let action = if su.status == SignUpStatus::Waitlisted {
        "キャンセル待ちをやめる"
    } else {
        "参加をキャンセルする"
    };
    let body = html! {
        h1 { "お申し込み内容の確認" }
        h2 { (d.title) }
        (tour_markup(kit, d, &state, now))
        h2 { "お申し込みの内容" }
        (fields::confirm_list(&rows))
        @if cancellable {
            h2 { "キャンセル" }
            p { "ご都合が悪くなった場合は、下のボタンからキャンセルしてください。キャンセル待ちの方に順番にご案内します。キャンセルは取り消せません。" }
            form method="post" action=(format!("/signups/{token}/cancel")) {
                (fields::hidden(kujira_web::CSRF_FIELD, &csrf))
                div.actions { button.button.secondary type="submit" { (action) } }
            }
        } @else if su.status != SignUpStatus::Cancelled && state.status != TourStatus::Cancelled {
            p { "ツアー開始後のキャンセルやご変更は、窓口までお電話でご連絡ください。" }
        }
        @if su.is_confirmed() && now >= d.starts_at && su.feedback.is_none() {
            p { a href=(format!("/signups/{token}/feedback")) { "ツアーのアンケートに回答する" } }
        }
        p { "ご不明な点は " (kit.words().desk_name) "（電話 " (kit.words().desk_phone) "）までお問い合わせください。" }
        p { a href=(format!("/tours/{tour_id}")) { "ツアーのページへ" } }
    };
    Ok(private(
        (jar, html_page(kit, "お申し込み内容の確認", body)).into_response(),
    ))
}

pub async fn cancel(
    State(s): State<ToursState>,
    Path(token): Path<String>,
    jar: CookieJar,
    form: FormData,
) -> PageResult {
    let kit = s.kit();
    kit.check_csrf(&jar, &form)?;
    let (tour_id, _, sign_up_id) = by_token(&s, &token).await?;
    let command = TourCommand::CancelSignUp {
        sign_up_id,
        by: CancelledBy::Party,
        at: kit.now(),
    };
    match s
        .tours()
        .execute(tour_id, command, &Actor::new("applicant"))
        .await
    {
        // Cancelling twice (a double click) shows the cancelled booking, as the first did.
        Ok(_) | Err(CommandError::Refused(TourError::SignUpAlreadyCancelled)) => {}
        Err(CommandError::Refused(e)) => {
            return Err(kit.error_page(
                StatusCode::CONFLICT,
                "キャンセルできませんでした",
                format!(
                    "{} お手数ですが、窓口までお電話でご連絡ください。",
                    e.message_ja()
                ),
            ));
        }
        Err(e) => return Err(internal(kit, &e)),
    }
    Ok(private(
        Redirect::to(&format!("/signups/{token}")).into_response(),
    ))
}

// ---------------------------------------------------------------------------
// GET/POST /signups/{token}/feedback
// ---------------------------------------------------------------------------

const SATISFACTION: [(&str, &str); 5] = [
    ("5", "5：とても満足"),
    ("4", "4：満足"),
    ("3", "3：ふつう"),
    ("2", "2：やや不満"),
    ("1", "1：不満"),
];

fn feedback_page(
    kit: &Kit,
    token: &str,
    title: &str,
    csrf: &str,
    values: (&str, &str),
    errors: &FieldErrors,
) -> Html<String> {
    let summary = fields::summary_items(errors, |f| match f {
        "satisfaction" => "満足度".into(),
        _ => "ご感想".into(),
    });
    let sat_err = fields::error_for(errors, "satisfaction");
    let com_err = fields::error_for(errors, "comments");
    let body = html! {
        h1 { "ツアーのアンケート" }
        p { "「" (title) "」にご参加いただき、ありがとうございました。今後のツアーづくりのため、ご感想をお聞かせください。いただいたご感想は、個人が特定されない形で市の報告に引用させていただくことがあります。" }
        (fields::error_summary(&summary))
        form method="post" action=(format!("/signups/{token}/feedback")) novalidate {
            (fields::hidden(kujira_web::CSRF_FIELD, csrf))
            (fields::radios(&Field::new("satisfaction", "ツアーの満足度", true).error(sat_err.as_deref()), &SATISFACTION, values.0))
            (fields::textarea(&Field::new("comments", "ご感想・ご意見", false).error(com_err.as_deref()).help("2,000文字まで"), values.1, Some(COMMENTS_MAX)))
            div.actions { button.button type="submit" { "回答する" } }
        }
    };
    html_page(kit, "ツアーのアンケート", body)
}

pub async fn feedback_form(
    State(s): State<ToursState>,
    Path(token): Path<String>,
    jar: CookieJar,
) -> PageResult {
    let (_, state, sign_up_id) = by_token(&s, &token).await?;
    let kit = s.kit();
    let (Some(d), Some(su)) = (&state.details, state.sign_up(sign_up_id)) else {
        return Err(not_found(kit));
    };
    if su.feedback.is_some() {
        let body = html! {
            h1 { "ご回答ありがとうございました" }
            p { "「" (d.title) "」のアンケートにご回答いただき、ありがとうございました。" }
            p { a href="/tours" { "ほかのツアーを見る" } }
        };
        return Ok(private(html_page(kit, "アンケート", body).into_response()));
    }
    let refusal = if state.status == TourStatus::Cancelled {
        Some(TourError::TourCancelled)
    } else if kit.now() < d.starts_at {
        Some(TourError::FeedbackNotOpen)
    } else if !su.is_confirmed() {
        Some(TourError::FeedbackNotAllowed)
    } else {
        None
    };
    if let Some(e) = refusal {
        return Err(kit.error_page(StatusCode::CONFLICT, "アンケート", e.message_ja()));
    }
    let (jar, csrf) = kit.csrf().issue(jar);
    Ok(private(
        (
            jar,
            feedback_page(kit, &token, &d.title, &csrf, ("", ""), &FieldErrors::new()),
        )
            .into_response(),
    ))
}

pub async fn feedback_submit(
    State(s): State<ToursState>,
    Path(token): Path<String>,
    jar: CookieJar,
    form: FormData,
) -> PageResult {
    let kit = s.kit();
    kit.check_csrf(&jar, &form)?;
    let (tour_id, state, sign_up_id) = by_token(&s, &token).await?;
    let mut errors = FieldErrors::new();
    let satisfaction = errors.check(
        "satisfaction",
        match form.get("satisfaction").trim() {
            "" => Err(ValueError::Required),
            v => v
                .parse::<u8>()
                .ok()
                .filter(|n| (1..=5).contains(n))
                .ok_or(ValueError::UnknownChoice),
        },
    );
    let comments = errors.check(
        "comments",
        optional(form.get("comments"), |c| {
            FreeText::parse_multiline(c, COMMENTS_MAX)
        }),
    );
    let (Some(satisfaction), Some(comments)) = (satisfaction, comments) else {
        let title = state.details.as_ref().map_or("", |d| d.title.as_str());
        let (jar, csrf) = kit.csrf().issue(jar);
        let page = feedback_page(
            kit,
            &token,
            title,
            &csrf,
            (form.get("satisfaction"), form.get("comments")),
            &errors,
        );
        return Ok(private(
            (StatusCode::UNPROCESSABLE_ENTITY, jar, page).into_response(),
        ));
    };
    let command = TourCommand::RecordFeedback {
        sign_up_id,
        satisfaction,
        comments,
        at: kit.now(),
    };
    match s
        .tours()
        .execute(tour_id, command, &Actor::new("applicant"))
        .await
    {
        Ok(_) | Err(CommandError::Refused(TourError::FeedbackAlreadyRecorded)) => {}
        Err(CommandError::Refused(e)) => {
            return Err(kit.error_page(StatusCode::CONFLICT, "アンケート", e.message_ja()));
        }
        Err(e) => return Err(internal(kit, &e)),
    }
    Ok(private(
        Redirect::to(&format!("/signups/{token}/feedback")).into_response(),
    ))
}
