//! `POST /api/v1/inquiries` and its OpenAPI description.

use std::sync::LazyLock;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use kujira_domain::inquiry::{
    Channel, ConsultationCommand, InquirySubmitted, LINE_MAX, MESSAGE_MAX, validate_inquiry,
};
use kujira_domain::values::{
    AgeGroup, ConsultationMethod, FieldErrors, Gender, Household, Kana, MoveTiming, PersonName,
    Prefecture, Segment, Source, Topic,
};
use kujira_web::contract::{BodySchema, field};
use kujira_web::idempotency::{self, IdempotencyKey, IdempotencyKeyHeader};
use kujira_web::{ApiError, ClientIp, ErrorBody, JsonObject};
use serde::Serialize;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;
use utoipa::{OpenApi, PartialSchema, ToSchema};
use uuid::Uuid;

use crate::cases::{self, Submission};
use crate::{IntakeState, forms, mail};

/// The header that makes a retried request safe.
pub const IDEMPOTENCY_KEY: &str = idempotency::HEADER;

/// 201 answer: the case id (for `/desk/cases/<id>`) and its 連番.
#[derive(Debug, Serialize, ToSchema)]
pub struct InquiryCreated {
    /// The case id.
    pub id: Uuid,
    /// The reference number (受付番号) staff and applicants quote, e.g. `2026-0042`.
    #[schema(example = "2026-0042", pattern = "^[0-9]{4}-[0-9]{4,}$")]
    pub reference: String,
}

/// The inquiry body: the HTML form's field names. Its schema is built from the
/// domain's own lists of choices and limits, published in the OpenAPI document and
/// enforced by [`create_inquiry`], so the document and the API cannot drift apart.
#[derive(Debug)]
pub struct InquiryRequest;

const DATE_RULES: &str = "未来の日時で、本日から KUJIRA_INQUIRY_LEAD_DAYS 日以降（既定 3 日、\
    KUJIRA_TIMEZONE の暦日で数える）であること。第1〜第3希望で同じ日時は指定できません。\
    KUJIRA_TIMEZONE に夏時間があれば、その切り替えで存在しない現地時刻も指定できません。\
    これらはスキーマで表せないため、違反は 422 になります。";

fn request_schema() -> Schema {
    let date = |n: u8| {
        field::optional_datetime(
            &format!(
                "第{n}希望の日時。`YYYY-MM-DDTHH:MM`（KUJIRA_TIMEZONE の現地時刻、秒は任意）または \
                 RFC 3339（秒とオフセット付き、例 `2026-12-01T10:00:00+09:00`）。{DATE_RULES}"
            ),
            &format!("2026-12-0{n}T10:00:00+09:00"),
        )
    };
    let props: Vec<(&str, Schema)> = vec![
        (
            "name",
            field::line(
                "お名前（前後の空白を除いて1〜50文字、制御文字不可）",
                PersonName::MAX,
                "柏崎 花子",
            ),
        ),
        (
            "name_kana",
            field::kana(
                "フリガナ（全角カタカナ。語の区切りは半角または全角スペース）",
                Kana::MAX,
                "カシワザキ ハナコ",
            ),
        ),
        (
            "email",
            field::email("メールアドレス（半角）", "hanako@example.jp"),
        ),
        (
            "phone",
            field::phone(
                "電話番号（数字10〜15桁。ハイフン・空白・括弧、先頭の + 可）",
                false,
                "0257-21-2334",
            ),
        ),
        (
            "postal_code",
            field::postal_code("郵便番号（7桁、ハイフン任意）"),
        ),
        (
            "prefecture",
            field::choice("都道府県", Prefecture::all().map(Prefecture::name), true),
        ),
        (
            "city",
            field::optional_line("市区町村（100文字以内）", LINE_MAX),
        ),
        (
            "age_group",
            field::choice("年代", AgeGroup::ALL.iter().map(|c| c.as_str()), false),
        ),
        (
            "gender",
            field::choice("性別", Gender::ALL.iter().map(|c| c.as_str()), false),
        ),
        (
            "segment",
            field::choice(
                "U/I/J ターン",
                Segment::ALL.iter().map(|c| c.as_str()),
                true,
            ),
        ),
        (
            "hometown",
            field::optional_line("出身地（100文字以内）", LINE_MAX),
        ),
        (
            "household",
            field::choice(
                "同居予定の家族",
                Household::ALL.iter().map(|c| c.as_str()),
                false,
            ),
        ),
        (
            "children_ages",
            field::optional_line("子どもの年齢・学年（100文字以内）", LINE_MAX),
        ),
        (
            "move_timing",
            field::choice(
                "移住希望時期",
                MoveTiming::ALL.iter().map(|c| c.as_str()),
                false,
            ),
        ),
        (
            "topics",
            field::choices(
                "相談したい内容（1つ以上、重複なし）",
                Topic::ALL.iter().map(|c| c.as_str()),
            ),
        ),
        (
            "method",
            field::choice(
                "希望相談方法",
                ConsultationMethod::ALL.iter().map(|c| c.as_str()),
                true,
            ),
        ),
        ("preferred_date_1", date(1)),
        ("preferred_date_2", date(2)),
        ("preferred_date_3", date(3)),
        (
            "message",
            field::optional_text("相談内容（2,000文字以内、改行可）", MESSAGE_MAX),
        ),
        (
            "source",
            field::choice(
                "知ったきっかけ",
                Source::ALL.iter().map(|c| c.as_str()),
                false,
            ),
        ),
        ("consent", field::consent()),
        (
            "newsletter",
            field::flag("お知らせメールの受け取り（任意）"),
        ),
    ];
    field::object(
        "移住相談。HTML フォームと同じ項目名（確認用メールアドレスはありません）。\
         任意の項目は省略するか null にできます（文章の項目は空文字も可）。ほかの項目は受け付けません。",
        props,
        &[
            "name",
            "name_kana",
            "email",
            "prefecture",
            "segment",
            "topics",
            "method",
            "consent",
        ],
    )
}

impl PartialSchema for InquiryRequest {
    fn schema() -> RefOr<Schema> {
        RefOr::T(request_schema())
    }
}

impl ToSchema for InquiryRequest {}

/// The compiled schema the handler enforces: the very one the document shows.
static CONTRACT: LazyLock<BodySchema> = LazyLock::new(|| BodySchema::new(&request_schema()));

/// Opens a consultation case from an inquiry.
#[utoipa::path(
    post,
    path = "/api/v1/inquiries",
    tag = "inquiries",
    request_body(content = InquiryRequest, content_type = "application/json"),
    params(IdempotencyKeyHeader),
    responses(
        (status = 201, description = "受け付けました。Idempotency-Key 付きの再送には最初と同じ答え", body = InquiryCreated),
        (status = 400, description = "JSON として読めない、UTF-8 でない、または Idempotency-Key が規則に合わない", body = ErrorBody),
        (status = 413, description = "本文が 64 KiB を超えています", body = ErrorBody),
        (status = 415, description = "Content-Type が application/json ではありません", body = ErrorBody),
        (status = 422, description = "入力の誤り（項目ごとのメッセージ）。スキーマに合わない本文のほか、希望日時の規則（過去・リードタイム内・重複）に反する本文、本文が JSON オブジェクトでない場合、同じ Idempotency-Key で別の本文を送った場合", body = ErrorBody),
        (status = 429, description = "同じネットワーク（IPv4 アドレス、IPv6 は /64）からの送信が多すぎます（KUJIRA_SUBMISSIONS_PER_IP_PER_HOUR）",
         body = ErrorBody,
         headers(("Retry-After" = u64, description = "再送できるまでの秒数"))),
    )
)]
pub async fn create_inquiry(
    State(s): State<IntakeState>,
    ip: ClientIp,
    headers: HeaderMap,
    body: Result<JsonObject, ApiError>,
) -> Result<(StatusCode, Json<InquiryCreated>), ApiError> {
    s.kit().check_rate_api(ip.0)?;
    let mut body = body?;
    let key = IdempotencyKey::from_headers(&headers)?;

    let (case_id, fingerprint) = match &key {
        Some(k) => (
            cases::derived_case_id("api-inquiry", k.as_str()),
            Some(s.inner.fingerprints.of(&body)),
        ),
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
            Err(idempotency::reused_key())
        };
    }

    let mut violations = CONTRACT.violations(&mut body);
    // The schema has checked the JSON types; the readers' own type errors add nothing.
    let input = forms::inquiry_from_json(&body, &mut FieldErrors::new());
    let inquiry = match validate_inquiry(&input, &s.date_rules()) {
        Ok(inquiry) if violations.is_empty() => inquiry,
        validated => {
            if let Err(e) = validated {
                violations.merge_domain(&e);
            }
            violations.into_result()?;
            return Err(ApiError::internal(
                &"an inquiry was refused without a reason",
            ));
        }
    };

    let sub = Submission {
        fingerprint: fingerprint.clone(),
        ..Submission::by_applicant(case_id, Channel::Api, case_id)
    };
    let email = inquiry
        .personal
        .known()
        .map(|p| p.email.clone())
        .ok_or_else(|| ApiError::internal(&"a validated inquiry has no personal part"))?;
    let opened = cases::open(&s, sub, &email, |opening| {
        ConsultationCommand::SubmitInquiry {
            mails: mail::inquiry_queue(&opening),
            submission: InquirySubmitted {
                opening,
                inquiry: inquiry.clone(),
            },
        }
    })
    .await
    .map_err(|e| ApiError::internal(&e))?;
    if !opened.same_request(fingerprint.as_deref()) {
        return Err(idempotency::reused_key());
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
