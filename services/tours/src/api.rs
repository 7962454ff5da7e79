//! The tour JSON API: `GET /api/v1/tours` and `POST /api/v1/tours/{id}/signups`.

use std::sync::LazyLock;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use kujira_domain::tour::form::{CHILDREN_AGES_MAX, NEEDS_MAX, SignUpInput};
use kujira_domain::tour::{
    ADULTS_MAX, CHILDREN_MAX, Party, TourCommand, TourError, TourEvent, Transport,
};
use kujira_domain::values::{Email, FieldErrors, Kana, PersonName, Prefecture, Source};
use kujira_web::contract::{BodySchema, field};
use kujira_web::idempotency::{self, IdempotencyKey, IdempotencyKeyHeader};
use kujira_web::{ApiError, ClientIp, ErrorBody, JsonObject};
use serde::Serialize;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;
use utoipa::{PartialSchema, ToSchema};
use uuid::Uuid;

use crate::ToursState;
use crate::catalogue::{self, TourSummary};
use crate::service::{self, Actor, CommandError};

/// A sign-up, as `POST /api/v1/tours/{id}/signups` takes it: the HTML form's field
/// names. The schema is published in the OpenAPI document and enforced by
/// [`sign_up`].
#[derive(Debug)]
pub struct SignUpRequest;

fn request_schema() -> Schema {
    let props: Vec<(&str, Schema)> = vec![
        (
            "name",
            field::line(
                "氏名（前後の空白を除いて1〜50文字、制御文字不可）",
                PersonName::MAX,
                "柏崎 太郎",
            ),
        ),
        (
            "name_kana",
            field::kana(
                "フリガナ（全角カタカナ。語の区切りは半角または全角スペース）",
                Kana::MAX,
                "カシワザキ タロウ",
            ),
        ),
        (
            "email",
            field::email("メールアドレス（半角）", "taro@example.jp"),
        ),
        (
            "phone",
            field::phone(
                "当日連絡がつく電話番号（数字10〜15桁。ハイフン・空白・括弧、先頭の + 可）",
                true,
                "090-1234-5678",
            ),
        ),
        (
            "prefecture",
            field::choice(
                "お住まいの都道府県",
                Prefecture::all().map(Prefecture::name),
                true,
            ),
        ),
        (
            "adults",
            field::count("参加する大人の人数", 1, ADULTS_MAX, true, 2),
        ),
        (
            "children",
            field::count(
                "参加する子どもの人数（省略は 0）",
                0,
                CHILDREN_MAX,
                false,
                1,
            ),
        ),
        (
            "children_ages",
            field::optional_line("お子さまの年齢・学年（200文字以内）", CHILDREN_AGES_MAX),
        ),
        (
            "transport",
            field::choice(
                "来場方法: car（自家用車）、train（駅で送迎）",
                [Transport::Car, Transport::Train].map(Transport::as_str),
                false,
            ),
        ),
        (
            "needs",
            field::optional_text(
                "食物アレルギー・配慮が必要なこと（1,000文字以内、改行可）",
                NEEDS_MAX,
            ),
        ),
        (
            "source",
            field::choice(
                "このツアーを知ったきっかけ",
                Source::ALL.iter().map(|s| s.as_str()),
                false,
            ),
        ),
        ("consent", field::consent()),
    ];
    field::object(
        "ツアーのお申し込み。HTML フォームと同じ項目名（確認用メールアドレスはありません）。\
         任意の項目は省略するか null にできます（文章の項目は空文字も可）。ほかの項目は受け付けません。",
        props,
        &[
            "name",
            "name_kana",
            "email",
            "phone",
            "prefecture",
            "adults",
            "consent",
        ],
    )
}

impl PartialSchema for SignUpRequest {
    fn schema() -> RefOr<Schema> {
        RefOr::T(request_schema())
    }
}

impl ToSchema for SignUpRequest {}

/// The compiled schema the handler enforces: the very one the document shows.
static CONTRACT: LazyLock<BodySchema> = LazyLock::new(|| BodySchema::new(&request_schema()));

/// The answer to an accepted sign-up.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignUpCreated {
    pub id: Uuid,
    /// `confirmed`, or `waitlisted` when the tour is full.
    #[schema(example = "confirmed", pattern = "^(confirmed|waitlisted)$")]
    pub status: String,
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list_tours, sign_up),
    components(schemas(TourSummary, SignUpRequest, SignUpCreated, ErrorBody)),
    tags((name = "tours", description = "おためし移住体験ツアー"))
)]
pub struct ApiDoc;

/// Published tours that have not started yet (and cancelled ones, so clients learn of it).
#[utoipa::path(
    get,
    path = "/api/v1/tours",
    tag = "tours",
    responses((status = 200, description = "Tours, soonest first", body = [TourSummary]))
)]
pub async fn list_tours(State(s): State<ToursState>) -> Result<Json<Vec<TourSummary>>, ApiError> {
    catalogue::public_list(s.store().pool(), s.tours().now())
        .await
        .map(Json)
        .map_err(|e| ApiError::internal(&e))
}

/// Signs a party up. Confirmed while places last, else waitlisted in order of arrival.
#[utoipa::path(
    post,
    path = "/api/v1/tours/{id}/signups",
    tag = "tours",
    params(
        ("id" = Uuid, Path, description = "ツアーの id（GET /api/v1/tours の id）"),
        IdempotencyKeyHeader,
    ),
    request_body(content = SignUpRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "受け付けました（confirmed または waitlisted）。Idempotency-Key 付きの再送には最初と同じ答え", body = SignUpCreated),
        (status = 400, description = "JSON として読めない、UTF-8 でない、または Idempotency-Key が規則に合わない", body = ErrorBody),
        (status = 404, description = "そのようなツアーはありません（公開前のツアーを含む）", body = ErrorBody),
        (status = 409, description = "ツアーが申込を受け付けていません: 締切後、中止、または開始後。または、同じメールアドレスの方がこのツアーにすでに申し込んでいる（参加確定またはキャンセル待ち。errors.tour）", body = ErrorBody),
        (status = 413, description = "本文が 64 KiB を超えています", body = ErrorBody),
        (status = 415, description = "Content-Type が application/json ではありません", body = ErrorBody),
        (status = 422, description = "入力の誤り（項目ごとのメッセージ）。スキーマに合わない本文のほか、参加人数（大人＋子ども）がツアーの max_people を超える場合（errors.tour。スキーマで表せない規則）、本文が JSON オブジェクトでない場合、同じ Idempotency-Key で別の本文を送った場合", body = ErrorBody),
        (status = 429, description = "同じネットワーク（IPv4 アドレス、IPv6 は /64）からの送信が多すぎます（KUJIRA_SUBMISSIONS_PER_IP_PER_HOUR）",
         body = ErrorBody,
         headers(("Retry-After" = u64, description = "再送できるまでの秒数"))),
    )
)]
pub async fn sign_up(
    State(s): State<ToursState>,
    Path(id): Path<String>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    mut body: JsonObject,
) -> Result<Response, ApiError> {
    let tour_id = Uuid::parse_str(&id).map_err(|_| not_found())?;
    let key = IdempotencyKey::from_headers(&headers)?;
    let fingerprint = key.as_ref().map(|_| s.fingerprints().of(&body));
    let sign_up_id = key.as_ref().map_or_else(Uuid::now_v7, |k| {
        service::sign_up_id_for(tour_id, "api", k.as_str())
    });
    let tours = s.tours();

    // A retry with a key that was used: the first answer, or 422 for another body.
    if let Some(fingerprint) = &fingerprint {
        let state = tours
            .load(tour_id)
            .await
            .map_err(|e| ApiError::internal(&e))?
            .ok_or_else(not_found)?;
        if state.sign_up(sign_up_id).is_some() {
            return replay(s.store(), tour_id, sign_up_id, fingerprint, &body).await;
        }
    }

    let mut violations = CONTRACT.violations(&mut body);
    let new = match read(&body).validate(sign_up_id) {
        Ok(new) if violations.is_empty() => new,
        validated => {
            if let Err(e) = validated {
                violations.merge_domain(&e);
            }
            violations.into_result()?;
            return Err(ApiError::internal(
                &"a sign-up was refused without a reason",
            ));
        }
    };
    s.kit().check_rate_api(ip)?;

    let mut actor = Actor::new("applicant");
    if let Some(f) = &fingerprint {
        actor = actor.with(idempotency::METADATA, f.as_str());
    }
    let command = TourCommand::SignUp {
        sign_up: new,
        at: tours.now(),
    };
    let done = match tours.execute(tour_id, command, &actor).await {
        Ok(done) => done,
        Err(CommandError::Refused(TourError::NotScheduled | TourError::NotPublished)) => {
            return Err(not_found());
        }
        Err(CommandError::Refused(e @ (TourError::PartyTooLarge | TourError::InvalidParty(_)))) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "tour",
                e.message_ja(),
            ));
        }
        Err(CommandError::Refused(e)) => {
            return Err(ApiError::new(StatusCode::CONFLICT, "tour", e.message_ja()));
        }
        Err(e) => return Err(ApiError::internal(&e)),
    };
    if done.recorded.is_empty() {
        // A twin request with the same key got there first.
        let Some(fingerprint) = &fingerprint else {
            return Err(ApiError::internal(&"a fresh sign-up id was already taken"));
        };
        return replay(s.store(), tour_id, sign_up_id, fingerprint, &body).await;
    }
    let status = done.recorded.iter().find_map(|e| match e {
        TourEvent::TourSignUpConfirmed(c) if c.sign_up_id == sign_up_id => Some("confirmed"),
        TourEvent::TourSignUpWaitlisted(w) if w.sign_up_id == sign_up_id => Some("waitlisted"),
        _ => None,
    });
    let Some(status) = status else {
        return Err(ApiError::internal(
            &"a sign-up was recorded without its standing",
        ));
    };
    Ok(created(sign_up_id, status))
}

fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "tour",
        TourError::NotScheduled.message_ja(),
    )
}

fn created(id: Uuid, status: &str) -> Response {
    (
        StatusCode::CREATED,
        Json(SignUpCreated {
            id,
            status: status.into(),
        }),
    )
        .into_response()
}

/// The body as the domain's form input. The schema has checked the JSON types; the
/// readers' own type errors add nothing.
fn read(body: &JsonObject) -> SignUpInput {
    let e = &mut FieldErrors::new();
    SignUpInput {
        name: body.text("name", e),
        name_kana: body.text("name_kana", e),
        email: body.text("email", e),
        email_confirm: None,
        phone: body.text("phone", e),
        prefecture: body.text("prefecture", e),
        adults: body.number("adults", e),
        children: body.number("children", e),
        children_ages: body.text("children_ages", e),
        transport: body.text("transport", e),
        needs: body.text("needs", e),
        source: body.text("source", e),
        consent: body.flag("consent", e),
    }
}

/// What the first request with a key recorded.
struct FirstAnswer {
    fingerprint: Option<String>,
    email: Option<Email>,
    party: Option<Party>,
    status: Option<&'static str>,
}

async fn first_answer(
    store: &kujira_store::Store,
    tour_id: Uuid,
    sign_up_id: Uuid,
) -> Result<FirstAnswer, ApiError> {
    const PAGE: i64 = 500;
    let stream = service::stream(tour_id);
    let mut first = FirstAnswer {
        fingerprint: None,
        email: None,
        party: None,
        status: None,
    };
    let mut from = 0;
    loop {
        let page = store
            .read_stream(&stream, from, PAGE)
            .await
            .map_err(|e| ApiError::internal(&e))?;
        for recorded in &page {
            from = recorded.stream_version;
            match recorded.decode::<TourEvent>() {
                Ok(TourEvent::TourSignUpReceived(r)) if r.sign_up_id == sign_up_id => {
                    first.fingerprint = recorded
                        .metadata
                        .extra
                        .get(idempotency::METADATA)
                        .and_then(|v| v.as_str())
                        .map(str::to_owned);
                    first.email = r.personal.known().map(|p| p.email.clone());
                    first.party = Some(Party {
                        adults: r.adults,
                        children: r.children,
                    });
                }
                Ok(TourEvent::TourSignUpConfirmed(c)) if c.sign_up_id == sign_up_id => {
                    first.status = Some("confirmed");
                }
                Ok(TourEvent::TourSignUpWaitlisted(w)) if w.sign_up_id == sign_up_id => {
                    first.status = Some("waitlisted");
                }
                Ok(_) => {}
                Err(e) => return Err(ApiError::internal(&e)),
            }
            if first.status.is_some() {
                return Ok(first);
            }
        }
        if (page.len() as i64) < PAGE {
            return Ok(first);
        }
    }
}

/// Answers a request whose key already made a sign-up: the first answer when the
/// body is the same, 422 when it is not.
async fn replay(
    store: &kujira_store::Store,
    tour_id: Uuid,
    sign_up_id: Uuid,
    fingerprint: &str,
    body: &JsonObject,
) -> Result<Response, ApiError> {
    let first = first_answer(store, tour_id, sign_up_id).await?;
    match &first.fingerprint {
        Some(recorded) => idempotency::check_replay(Some(recorded), fingerprint)?,
        // Sign-ups recorded before fingerprints were: the rule of the time (the same
        // address and party), so that a retry across the upgrade still replays.
        None => {
            let same = read(body).validate(sign_up_id).is_ok_and(|new| {
                Some(&new.personal.email) == first.email.as_ref() && Some(new.party) == first.party
            });
            if !same {
                return Err(idempotency::reused_key());
            }
        }
    }
    let Some(status) = first.status else {
        return Err(ApiError::internal(&"a sign-up without its standing"));
    };
    Ok(created(sign_up_id, status))
}
