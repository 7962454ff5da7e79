//! The tour JSON API: `GET /api/v1/tours` and `POST /api/v1/tours/{id}/signups`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use kujira_domain::tour::form::SignUpInput;
use kujira_domain::tour::{SignUpStatus, TourCommand, TourError};
use kujira_domain::values::{FieldErrors, ValueError};
use kujira_web::{ApiError, ClientIp, JsonObject};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::ToursState;
use crate::catalogue::{self, TourSummary};
use crate::service::{self, Actor, CommandError};

/// Field names the sign-up API takes (the same names as the HTML form).
const FIELDS: &[&str] = &[
    "name",
    "name_kana",
    "email",
    "phone",
    "prefecture",
    "adults",
    "children",
    "children_ages",
    "transport",
    "needs",
    "source",
    "consent",
];

/// A sign-up, as `POST /api/v1/tours/{id}/signups` takes it.
#[allow(dead_code)] // Only describes the body for OpenAPI; the handler reads it field by field.
#[derive(ToSchema)]
pub struct SignUpRequest {
    /// 氏名
    #[schema(example = "柏崎 太郎")]
    name: String,
    /// フリガナ (katakana; half-width is accepted)
    #[schema(example = "カシワザキ タロウ")]
    name_kana: String,
    #[schema(example = "taro@example.jp")]
    email: String,
    #[schema(example = "090-1234-5678")]
    phone: String,
    /// One of the 47 prefectures, written in full.
    #[schema(example = "東京都")]
    prefecture: String,
    /// 1–10
    #[schema(minimum = 1, maximum = 10, example = 2)]
    adults: u8,
    /// 0–10
    #[schema(minimum = 0, maximum = 10, example = 1)]
    children: Option<u8>,
    #[schema(example = "5歳")]
    children_ages: Option<String>,
    /// `car`, or `train` (a pickup at the station).
    #[schema(example = "train")]
    transport: Option<String>,
    /// Allergies, accessibility; up to 1,000 characters.
    needs: Option<String>,
    /// `site`, `instagram`, `fair`, `search`, `referral`, `other`
    source: Option<String>,
    /// Must be true.
    consent: bool,
}

/// The answer to an accepted sign-up.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignUpCreated {
    pub id: Uuid,
    /// `confirmed` or `waitlisted`.
    #[schema(example = "confirmed")]
    pub status: String,
}

/// `{"errors": {"<field>": "<message>"}}`
#[allow(dead_code)] // Describes ApiError for OpenAPI.
#[derive(ToSchema)]
pub struct ErrorBody {
    errors: BTreeMap<String, String>,
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
/// An `Idempotency-Key` header makes a retry return the first answer.
#[utoipa::path(
    post,
    path = "/api/v1/tours/{id}/signups",
    tag = "tours",
    params(
        ("id" = Uuid, Path, description = "The tour's id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key sign up once")
    ),
    request_body = SignUpRequest,
    responses(
        (status = 201, description = "Signed up", body = SignUpCreated),
        (status = 404, description = "No such tour", body = ErrorBody),
        (status = 409, description = "The Idempotency-Key was used for another sign-up", body = ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = ErrorBody),
        (status = 422, description = "Invalid fields, or the tour takes no sign-ups (deadline, cancelled, started)", body = ErrorBody),
        (status = 429, description = "Too many submissions from this address", body = ErrorBody)
    )
)]
pub async fn sign_up(
    State(s): State<ToursState>,
    Path(id): Path<String>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: JsonObject,
) -> Result<Response, ApiError> {
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "tour",
            TourError::NotScheduled.message_ja(),
        )
    };
    let tour_id = Uuid::parse_str(&id).map_err(|_| not_found())?;
    let mut errors = FieldErrors::new();
    let unknown: Vec<String> = body
        .unknown_fields(FIELDS)
        .into_iter()
        .map(str::to_owned)
        .collect();
    let input = SignUpInput {
        name: body.text("name", &mut errors),
        name_kana: body.text("name_kana", &mut errors),
        email: body.text("email", &mut errors),
        email_confirm: None,
        phone: body.text("phone", &mut errors),
        prefecture: body.text("prefecture", &mut errors),
        adults: body.number("adults", &mut errors),
        children: body.number("children", &mut errors),
        children_ages: body.text("children_ages", &mut errors),
        transport: body.text("transport", &mut errors),
        needs: body.text("needs", &mut errors),
        source: body.text("source", &mut errors),
        consent: body.flag("consent", &mut errors),
    };
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 200);
    let sign_up_id = key.map_or_else(Uuid::now_v7, |k| service::sign_up_id_for(tour_id, "api", k));
    let validated = input.validate(sign_up_id);
    if let Err(more) = &validated {
        for (f, e) in more.iter() {
            errors.add(f, e.clone());
        }
    }
    let new = match validated {
        Ok(new) if errors.is_empty() && unknown.is_empty() => new,
        _ => {
            let mut refused = ApiError::fields(&errors);
            for name in unknown {
                refused
                    .errors
                    .insert(name, ValueError::UnknownField.message_ja());
            }
            return Err(refused);
        }
    };
    s.kit().check_rate_api(ip)?;
    let tours = s.tours();
    let command = TourCommand::SignUp {
        sign_up: new.clone(),
        at: tours.now(),
    };
    let done = match tours
        .execute(tour_id, command, &Actor::new("applicant"))
        .await
    {
        Ok(done) => done,
        Err(CommandError::Refused(TourError::NotScheduled | TourError::NotPublished)) => {
            return Err(not_found());
        }
        Err(CommandError::Refused(e)) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "tour",
                e.message_ja(),
            ));
        }
        Err(e) => return Err(ApiError::internal(&e)),
    };
    let Some(signed) = done.state.sign_up(sign_up_id) else {
        return Err(ApiError::internal(
            &"the sign-up is missing after it was recorded",
        ));
    };
    // A retry with the same key must be the same request, not a second party.
    if done.recorded.is_empty()
        && (signed.personal.known().map(|p| &p.email) != Some(&new.personal.email)
            || signed.party != new.party)
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "Idempotency-Key",
            "この Idempotency-Key は別のお申し込みに使われています。",
        ));
    }
    let status = match signed.status {
        SignUpStatus::Waitlisted => "waitlisted",
        SignUpStatus::Cancelled => "cancelled",
        _ => "confirmed",
    };
    Ok((
        StatusCode::CREATED,
        Json(SignUpCreated {
            id: sign_up_id,
            status: status.into(),
        }),
    )
        .into_response())
}
