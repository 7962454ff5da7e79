//! Shared by the case tests: the desk on a fresh database with intake's reference
//! sequence, the case projections, cases opened the way the public form opens them,
//! and logins per role.

#![allow(dead_code)]

use std::sync::Arc;

use chrono::{DateTime, Utc};
use kujira_desk::Role;
use kujira_domain::decider::Decider;
use kujira_domain::inquiry::{
    Channel, ConsultationCommand, InquiryInput, InquirySubmitted, validate_inquiry,
};
use kujira_domain::person::{Person, PersonCommand, PersonContext};
use kujira_eventlog::StreamName;
use kujira_intake::Submission;
use kujira_projector::Projector;
use kujira_store::CommandContext;
use uuid::Uuid;

use crate::support::{App, Browser, PASSWORD};

pub const ADMIN: &str = "admin@example.jp";
pub const CONCIERGE: &str = "concierge@example.jp";
pub const CONCIERGE2: &str = "concierge2@example.jp";
pub const VIEWER: &str = "viewer@example.jp";

pub struct World {
    pub app: App,
    pub projector: Projector,
    pub admin: Uuid,
    pub concierge: Uuid,
    pub concierge2: Uuid,
    pub viewer: Uuid,
}

/// What a test inquiry holds.
#[derive(Debug, Clone)]
pub struct Applicant {
    pub name: String,
    pub kana: String,
    pub email: String,
    pub phone: String,
    pub message: String,
    pub segment: String,
    pub source: String,
}

impl Applicant {
    pub fn new(name: &str, kana: &str, email: &str) -> Self {
        Self {
            name: name.into(),
            kana: kana.into(),
            email: email.into(),
            phone: "090-1234-5678".into(),
            message: "仕事と住まいについて相談したいです。".into(),
            segment: "i_turn".into(),
            source: "site".into(),
        }
    }

    pub fn input(&self) -> InquiryInput {
        InquiryInput {
            name: self.name.clone(),
            name_kana: self.kana.clone(),
            email: self.email.clone(),
            phone: self.phone.clone(),
            prefecture: "東京都".into(),
            age_group: "30s".into(),
            gender: "female".into(),
            segment: self.segment.clone(),
            topics: vec!["work".into(), "housing".into()],
            method: "online".into(),
            message: self.message.clone(),
            source: self.source.clone(),
            consent: true,
            ..InquiryInput::default()
        }
    }
}

impl World {
    pub async fn new() -> Self {
        Self::on(App::new().await, |_| Vec::new()).await
    }

    /// With the tables of more crates and more projections beside the case
    /// projections (`more` gets the app, for projections that need its store).
    pub async fn with(
        migrators: &[&'static sqlx::migrate::Migrator],
        more: impl FnOnce(&App) -> Vec<Arc<dyn kujira_projector::Projection>>,
    ) -> Self {
        Self::on(App::with_migrators(migrators).await, more).await
    }

    async fn on(
        app: App,
        more: impl FnOnce(&App) -> Vec<Arc<dyn kujira_projector::Projection>>,
    ) -> Self {
        // Intake's reference sequence (the desk's test database has the desk's,
        // the log's and the vault's migrations).
        sqlx::raw_sql(include_str!(
            "../../../intake/migrations/20261124000100_consultation_reference.sql"
        ))
        .execute(&app.db.pool)
        .await
        .unwrap();
        let (persons, cases) = kujira_desk::case_projections(&app.store, app.config.timezone);
        let mut projector = Projector::new(app.store.events().clone())
            .with(persons)
            .with(cases);
        for p in more(&app) {
            projector = projector.with_shared(p);
        }
        let admin = app.user(ADMIN, Role::Admin).await.user_id;
        let concierge = app.user(CONCIERGE, Role::Concierge).await.user_id;
        let concierge2 = app.user(CONCIERGE2, Role::Concierge).await.user_id;
        let viewer = app.user(VIEWER, Role::Viewer).await.user_id;
        Self {
            app,
            projector,
            admin,
            concierge,
            concierge2,
            viewer,
        }
    }

    /// Lets the projections read everything appended so far.
    pub async fn sync(&self) {
        self.projector.catch_up().await.unwrap();
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.app.clock_now()
    }

    /// Opens a case the way the public form does; returns (case id, reference).
    pub async fn inquiry(&self, a: &Applicant) -> (Uuid, String) {
        let intake = self.app.state.intake();
        let inquiry = validate_inquiry(&a.input(), &intake.date_rules()).expect("a valid inquiry");
        let case_id = Uuid::now_v7();
        let opened = kujira_intake::open_case(
            intake,
            Submission::by_applicant(case_id, Channel::Form, case_id),
            &inquiry.personal.known().unwrap().email.clone(),
            |opening| ConsultationCommand::SubmitInquiry {
                mails: kujira_intake::mail::inquiry_queue(&opening),
                submission: InquirySubmitted {
                    opening,
                    inquiry: inquiry.clone(),
                },
            },
        )
        .await
        .unwrap();
        (opened.case_id, opened.reference)
    }

    pub async fn person_of(&self, case_id: Uuid) -> Uuid {
        sqlx::query_scalar("SELECT (data->>'person_id')::uuid FROM events WHERE stream_name = $1 AND stream_version = 1")
            .bind(format!("consultation-{case_id}"))
            .fetch_one(&self.app.db.pool)
            .await
            .unwrap()
    }

    /// A command on a person's stream, as the privacy service would run it.
    pub async fn on_person(&self, person_id: Uuid, command: PersonCommand) {
        let at = self.now();
        kujira_store::execute::<Person>(
            &self.app.store,
            &StreamName::new("person", person_id),
            &CommandContext::new("cli"),
            None,
            |s| Person::decide(s, &(PersonContext { person_id, at }, command.clone())),
        )
        .await
        .unwrap();
    }

    /// Erases a person the way the privacy service does: destroy the key, then
    /// record the erasure.
    pub async fn erase(&self, person_id: Uuid) {
        self.app.store.vault().destroy(person_id).await.unwrap();
        self.on_person(person_id, PersonCommand::Erase { rule: None })
            .await;
    }

    pub async fn browser(&self, email: &str) -> Browser<'_> {
        let mut b = self.app.browser();
        b.login(email, PASSWORD).await;
        b
    }

    pub async fn audit_rows(&self, action: &str) -> Vec<(Uuid, Option<Uuid>, String)> {
        sqlx::query_as(
            "SELECT staff_id, person_id, detail FROM audit_log WHERE action = $1 ORDER BY id",
        )
        .bind(action)
        .fetch_all(&self.app.db.pool)
        .await
        .unwrap()
    }

    pub fn advance(&self, by: chrono::Duration) {
        self.app.clock.advance(by);
    }
}

/// The hidden field `name`'s value in the form whose action ends with `action`.
pub fn form_value(html: &str, action: &str, name: &str) -> String {
    let start = html
        .find(&format!("/{action}\""))
        .unwrap_or_else(|| panic!("no form for {action}"));
    let rest = &html[start..];
    let needle = format!("name=\"{name}\" value=\"");
    let i = rest
        .find(&needle)
        .unwrap_or_else(|| panic!("no {name} in {action}"))
        + needle.len();
    let j = rest[i..].find('"').unwrap() + i;
    rest[i..j].to_owned()
}

/// Posts the case page's form for `action` with `pairs`, taking the form's hidden
/// fields (token, versions) from `page`.
pub async fn post_action(
    b: &mut Browser<'_>,
    case_id: Uuid,
    page: &str,
    action: &str,
    pairs: &[(&str, &str)],
) -> crate::support::Resp {
    let token = form_value(page, action, "form_token");
    let version = form_value(page, action, "version");
    let person_version = form_value(page, action, "person_version");
    let mut all: Vec<(&str, &str)> = vec![
        ("form_token", token.as_str()),
        ("version", version.as_str()),
        ("person_version", person_version.as_str()),
    ];
    all.extend_from_slice(pairs);
    b.post_form(&format!("/desk/cases/{case_id}/{action}"), &all)
        .await
}

pub fn arc<T>(t: T) -> Arc<T> {
    Arc::new(t)
}

impl World {
    /// Runs case work directly through the one command path, as `actor`.
    pub async fn work(
        &self,
        case_id: Uuid,
        actor: &str,
        command: kujira_domain::casework::CaseCommand,
    ) {
        use kujira_domain::inquiry::Consultation;
        let at = self.now();
        kujira_store::execute::<Consultation>(
            &self.app.store,
            &StreamName::new("consultation", case_id),
            &CommandContext::new(actor),
            None,
            |s| {
                Consultation::decide(
                    s,
                    &ConsultationCommand::Work {
                        command: command.clone(),
                        at,
                    },
                )
            },
        )
        .await
        .unwrap();
    }

    pub async fn case_row(&self, case_id: Uuid) -> serde_json::Value {
        sqlx::query_scalar("SELECT to_jsonb(c) FROM desk_cases c WHERE case_id = $1")
            .bind(case_id)
            .fetch_one(&self.app.db.pool)
            .await
            .unwrap()
    }

    pub async fn person_row(&self, person_id: Uuid) -> serde_json::Value {
        sqlx::query_scalar("SELECT to_jsonb(p) FROM desk_persons p WHERE person_id = $1")
            .bind(person_id)
            .fetch_one(&self.app.db.pool)
            .await
            .unwrap()
    }
}
