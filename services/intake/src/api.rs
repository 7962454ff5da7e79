//! `POST /api/v1/inquiries` and its OpenAPI description.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use kujira_domain::inquiry::{
    Channel, ConsultationCommand, InquirySubmitted, MESSAGE_MAX, validate_inquiry,
};
use kujira_domain::values::{
    AgeGroup, ConsultationMethod, FieldErrors, Gender, Household, MoveTiming, Prefecture, Segment,
    Source, Topic, ValueError,
};
use kujira_web::{ApiError, ClientIp, JsonObject};
use serde::Serialize;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    ArrayBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type,
};
use utoipa::{OpenApi, PartialSchema, ToSchema};
use uuid::Uuid;

use crate::cases::{self, Submission};
use crate::{IntakeState, forms, mail};

/// The header that makes a retried request safe.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// 201 answer: the case id (for `/desk/cases/<id>`) and its 連番.
#[derive(Debug, Serialize, ToSchema)]
pub struct InquiryCreated {
    /// The case id.
    pub id: Uuid,
    /// The reference number (受付番号) staff and applicants quote, e.g. `2026-0042`.
    #[schema(example = "2026-0042")]
    pub reference: String,
}

/// 4xx answer: one Japanese message per field at fault (`body`, `request` and
/// `Idempotency-Key` for problems that are not a field's).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    #[schema(example = json!({"email": "メールアドレスの形式で入力してください（例：taro@example.jp）。"}))]
    pub errors: BTreeMap<String, String>,
}

/// The inquiry body: the HTML form's field names. Its schema is built from the
/// domain's own lists of choices, so the document cannot drift from the validation.
#[derive(Debug)]
pub struct InquiryRequest;

fn string(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
}

fn choice<T: Copy>(description: &str, all: &[T], wire: fn(T) -> &'static str) -> Schema {
    string(description)
        .enum_values(Some(all.iter().map(|c| wire(*c))))
        .build()
        .into()
}

impl PartialSchema for InquiryRequest {
    fn schema() -> RefOr<Schema> {
        let date = |n: u8| {
            Schema::from(
                string(&format!(
                    "第{n}希望の日時。RFC 3339（オフセット付き）または `YYYY-MM-DDTHH:MM`（KUJIRA_TIMEZONE の現地時刻）。\
                     未来で、かつ KUJIRA_INQUIRY_LEAD_DAYS 日以降（既定 3 日）。"
                ))
                .examples(["2026-12-01T10:00:00+09:00"])
                .build(),
            )
        };
        let props: Vec<(&str, Schema)> = vec![
            (
                "name",
                string("お名前（50文字以内）")
                    .max_length(Some(50))
                    .build()
                    .into(),
            ),
            (
                "name_kana",
                string("フリガナ（カタカナ。全角・半角とも可、NFKC で正規化）")
                    .max_length(Some(50))
                    .build()
                    .into(),
            ),
            (
                "email",
                string("メールアドレス")
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email)))
                    .build()
                    .into(),
            ),
            (
                "email_confirm",
                string("確認用メールアドレス（送る場合は email と一致すること）")
                    .build()
                    .into(),
            ),
            ("phone", string("電話番号").build().into()),
            (
                "postal_code",
                string("郵便番号（7桁、ハイフン任意）").build().into(),
            ),
            (
                "prefecture",
                choice(
                    "都道府県",
                    &Prefecture::all().collect::<Vec<_>>(),
                    Prefecture::name,
                ),
            ),
            ("city", string("市区町村").build().into()),
            ("age_group", choice("年代", AgeGroup::ALL, AgeGroup::as_str)),
            ("gender", choice("性別", Gender::ALL, Gender::as_str)),
            (
                "segment",
                choice("U/I/J ターン", Segment::ALL, Segment::as_str),
            ),
            ("hometown", string("出身地").build().into()),
            (
                "household",
                choice("同居予定の家族", Household::ALL, Household::as_str),
            ),
            ("children_ages", string("子どもの年齢・学年").build().into()),
            (
                "move_timing",
                choice("移住希望時期", MoveTiming::ALL, MoveTiming::as_str),
            ),
            (
                "topics",
                ArrayBuilder::new()
                    .items(RefOr::T(choice(
                        "相談したい内容",
                        Topic::ALL,
                        Topic::as_str,
                    )))
                    .min_items(Some(1))
                    .description(Some("相談したい内容（1つ以上）"))
                    .build()
                    .into(),
            ),
            (
                "method",
                choice(
                    "希望相談方法",
                    ConsultationMethod::ALL,
                    ConsultationMethod::as_str,
                ),
            ),
            ("preferred_date_1", date(1)),
            ("preferred_date_2", date(2)),
            ("preferred_date_3", date(3)),
            (
                "message",
                string("相談内容（2,000文字以内）")
                    .max_length(Some(MESSAGE_MAX))
                    .build()
                    .into(),
            ),
            (
                "source",
                choice("知ったきっかけ", Source::ALL, Source::as_str),
            ),
            (
                "consent",
                ObjectBuilder::new()
                    .schema_type(Type::Boolean)
                    .description(Some("個人情報の取り扱いへの同意。true であること。"))
                    .build()
                    .into(),
            ),
            (
                "newsletter",
                ObjectBuilder::new()
                    .schema_type(Type::Boolean)
                    .description(Some("お知らせメールの受け取り（任意）"))
                    .build()
                    .into(),
            ),
        ];
        let mut object = ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some("移住相談。HTML フォームと同じ項目名。"));
        for (name, schema) in props {
            object = object.property(name, schema);
        }
        for required in [
            "name",
            "name_kana",
            "email",
            "prefecture",
            "segment",
            "topics",
            "method",
            "consent",
        ] {
            object = object.required(required);
        }
        RefOr::T(object.build().into())
    }
}

impl ToSchema for InquiryRequest {}

/// Field names the API accepts: the form's, without the CSRF and token guards.
fn known_fields() -> Vec<&'static str> {
    kujira_domain::inquiry::INQUIRY_FIELDS.to_vec()
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(raw) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            IDEMPOTENCY_KEY,
            "Idempotency-Key は 1〜255 文字の半角英数字・記号で指定してください。",
        )
    };
    let key = raw.to_str().map_err(|_| bad())?.trim();
    if key.is_empty() || key.len() > 255 || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(bad());
    }
    Ok(Some(key.to_owned()))
}

fn reused_key() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        IDEMPOTENCY_KEY,
        "この Idempotency-Key は別の内容の送信に使われています。新しいキーで送信してください。",
    )
}

/// Opens a consultation case from an inquiry.
#[utoipa::path(
    post,
    path = "/api/v1/inquiries",
    tag = "inquiries",
    request_body(content = InquiryRequest, content_type = "application/json"),
    params(
        ("Idempotency-Key" = Option<String>, Header,
         description = "同じキーと同じ本文の再送は、最初と同じ 201 の答えを返します。同じキーで本文が違えば 422。"),
    ),
    responses(
        (status = 201, description = "受け付けました", body = InquiryCreated),
        (status = 400, description = "JSON として読めない、UTF-8 でない、Idempotency-Key が不正", body = ErrorBody),
        (status = 413, description = "本文が 64 KiB を超えています", body = ErrorBody),
        (status = 415, description = "Content-Type が application/json ではありません", body = ErrorBody),
        (status = 422, description = "入力の誤り（項目ごとのメッセージ）", body = ErrorBody),
        (status = 429, description = "同じ IP からの送信が多すぎます", body = ErrorBody),
    )
)]
pub async fn create_inquiry(
    State(s): State<IntakeState>,
    ip: ClientIp,
    headers: HeaderMap,
    body: Result<JsonObject, ApiError>,
) -> Result<(StatusCode, Json<InquiryCreated>), ApiError> {
    s.kit().check_rate_api(ip.0)?;
    let body = body?;
    let key = idempotency_key(&headers)?;

    let (case_id, fingerprint) = match &key {
        Some(k) => {
            // Keys sorted so that the same body with its fields reordered is the same request.
            let sorted: BTreeMap<&String, &serde_json::Value> = body.0.iter().collect();
            let canonical = serde_json::to_vec(&sorted).map_err(|e| ApiError::internal(&e))?;
            (
                cases::derived_case_id("api-inquiry", k),
                Some(s.inner.fingerprint_signer.tag(&canonical)),
            )
        }
        None => (Uuid::now_v7(), None),
    };
    let created = |o: &cases::Opened| {
        (
            StatusCode::CREATED,
            Json(InquiryCreated {
                id: o.case_id,
                reference: o.reference.clone(),
            }),
        )
    };

    if key.is_some()
        && let Some(existing) = cases::find(&s, case_id)
            .await
            .map_err(|e| ApiError::internal(&e))?
    {
        return if existing.same_request(fingerprint.as_deref()) {
            Ok(created(&existing))
        } else {
            Err(reused_key())
        };
    }

    let mut type_errors = FieldErrors::new();
    let input = forms::inquiry_from_json(&body, &mut type_errors);
    let unknown = body.unknown_fields(&known_fields());
    let inquiry = match validate_inquiry(&input, &s.date_rules()) {
        Ok(inquiry) if type_errors.is_empty() && unknown.is_empty() => inquiry,
        validated => {
            let mut all = type_errors;
            if let Err(e) = validated {
                for (f, err) in e.iter() {
                    all.add(f, err.clone());
                }
            }
            let mut error = ApiError::fields(&all);
            for u in unknown {
                error
                    .errors
                    .insert(u.to_owned(), ValueError::UnknownField.message_ja());
            }
            return Err(error);
        }
    };

    let sub = Submission {
        case_id,
        channel: Channel::Api,
        correlation_id: case_id,
        fingerprint: fingerprint.clone(),
    };
    let email = inquiry
        .personal
        .known()
        .map(|p| p.email.clone())
        .ok_or_else(|| ApiError::internal(&"a validated inquiry has no personal part"))?;
    let opened = cases::open(&s, sub, &email, |opening| {
        ConsultationCommand::SubmitInquiry {
            mails: mail::inquiry_queue(&opening),
            submission: InquirySubmitted { opening, inquiry },
        }
    })
    .await
    .map_err(|e| ApiError::internal(&e))?;
    if !opened.same_request(fingerprint.as_deref()) {
        return Err(reused_key());
    }
    Ok(created(&opened))
}

#[derive(OpenApi)]
#[openapi(
    paths(create_inquiry),
    components(schemas(InquiryRequest, InquiryCreated, ErrorBody)),
    tags((name = "inquiries", description = "移住相談の受付"))
)]
struct IntakeApi;

/// The OpenAPI description of intake's public API (`POST /api/v1/inquiries`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    IntakeApi::openapi()
}
