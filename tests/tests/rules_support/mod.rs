//! Shared by the rules tests: a database with the outbox and the rules'
//! projection, cases and tours written through the one command path (their persons'
//! data sealed), two concierges, a `FixedClock`, and the tests' SMTP server
//! (`mail_support`).

#![allow(dead_code)]

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use kujira_config::{Config, FixedClock, RuleName};
use kujira_domain::casework::CaseCommand;
use kujira_domain::inquiry::{
    CaseOpening, Channel, Consultation, ConsultationCommand, TourRequest, TourRequestPersonal,
    TourRequestSubmitted,
};
use kujira_domain::personal::Personal;
use kujira_domain::tour::form::SignUpInput;
use kujira_domain::tour::{Tour, TourCommand, TourDetails, TourKind};
use kujira_domain::values::{Email, Kana, PersonName, Phone, Prefecture, TourInterest};
use kujira_eventlog::StreamName;
use kujira_pgembed::testing::TestDb;
use kujira_projector::Projector;
use kujira_scheduler::rules::{Concierge, FixedStaff, RuleMailTemplates};
use kujira_scheduler::{
    DeliveryReport, MailOutboxProjection, Mailer, RuleReport, Rules, RulesProjection, Sender,
    Transport, UnsubscribeLinks,
};
use kujira_store::{CommandContext, Store};
use sqlx::Row;
use uuid::Uuid;

#[allow(unused_imports)]
pub use crate::mail_support::{SmtpServer, address_of, master_key};

/// A time in Tokyo, `2026-12-01T10:00`.
pub fn jst(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("{s}:00+09:00"))
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .with_timezone(&Utc)
}

pub fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// The applicants' name in every test: it must never appear in staff mail.
pub const APPLICANT_NAME: &str = "柏崎 太郎";

pub struct World {
    pub db: TestDb,
    pub store: Store,
    pub config: Arc<Config>,
    pub clock: FixedClock,
    /// The outbox and the rules' projection.
    pub projector: Projector,
    pub concierges: Vec<Concierge>,
    _dir: tempfile::TempDir,
}

/// A case as the tests know it.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    pub id: Uuid,
    pub person: Uuid,
}

impl World {
    pub async fn new() -> Self {
        Self::with(|_| None).await
    }

    /// A world whose configuration reads `vars` first (`KUJIRA_RULE_...`).
    pub async fn with(vars: impl Fn(&str) -> Option<String>) -> Self {
        let db = TestDb::new(&[
            &kujira_eventlog::MIGRATOR,
            &kujira_store::MIGRATOR,
            &kujira_scheduler::MIGRATOR,
        ])
        .await;
        let store = Store::open(db.pool.clone(), &master_key()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_string_lossy().into_owned();
        let config = Config::from_lookup(|k| {
            vars(k).or_else(|| match k {
                "KUJIRA_DATA_DIR" => Some(d.clone()),
                "KUJIRA_SECRET" => Some("test-secret-test-secret-test-secret!".into()),
                "KUJIRA_PUBLIC_URL" => Some("https://kujira.example.jp".into()),
                "KUJIRA_MAIL_FROM" => Some("kujira@example.jp".into()),
                _ => None,
            })
        })
        .unwrap();
        let mut config = config;
        config.master_key = master_key();
        let projector = Projector::new(store.events().clone())
            .with(MailOutboxProjection::new())
            .with(RulesProjection::new());
        let concierges = vec![
            Concierge {
                user_id: Uuid::from_u128(0xa),
                email: "aoki@city.example.jp".into(),
                display_name: "青木".into(),
            },
            Concierge {
                user_id: Uuid::from_u128(0xb),
                email: "baba@city.example.jp".into(),
                display_name: "馬場".into(),
            },
        ];
        Self {
            db,
            store,
            config: Arc::new(config),
            clock: FixedClock::new(jst("2026-11-01T10:00")),
            projector,
            concierges,
            _dir: dir,
        }
    }

    pub fn a(&self) -> &Concierge {
        &self.concierges[0]
    }

    pub fn b(&self) -> &Concierge {
        &self.concierges[1]
    }

    /// The rules, with this world's concierges.
    pub fn rules(&self) -> Rules {
        self.rules_on(&self.store)
    }

    /// The rules over another store (another pool: another scheduler process).
    pub fn rules_on(&self, store: &Store) -> Rules {
        Rules::new(
            store.clone(),
            self.config.clone(),
            Arc::new(FixedStaff(self.concierges.clone())),
        )
    }

    pub async fn run(&self, rule: RuleName, now: DateTime<Utc>) -> RuleReport {
        self.rules().run(rule, now).await.unwrap()
    }

    /// Opens a case for a new person at `at` (an order-made tour request), assigned
    /// to `concierge`.
    pub async fn case(&self, at: DateTime<Utc>, concierge: Option<Uuid>) -> Case {
        let person = self.store.vault().new_person().await.unwrap();
        self.case_for(person, at, concierge, Channel::Form).await
    }

    /// Opens a case for `person` at `at`, as `case` does, through `channel` (a case
    /// the desk entered comes from a fair booth).
    pub async fn case_for(
        &self,
        person: Uuid,
        at: DateTime<Utc>,
        concierge: Option<Uuid>,
        channel: Channel,
    ) -> Case {
        let id = Uuid::new_v4();
        let n: u32 = rand_reference();
        let submission = TourRequestSubmitted {
            opening: CaseOpening {
                case_id: id,
                person_id: person,
                reference: format!("2026-{n:05}"),
                channel,
                submitted_at: at,
                privacy_purpose: "目的".into(),
                desk_source: (channel == Channel::Desk)
                    .then_some(kujira_domain::casework::ContactChannel::Fair),
            },
            request: TourRequest {
                preferred_dates: vec![],
                interests: vec![TourInterest::Schools],
                adults: 2,
                children: 1,
                prefecture: Prefecture::parse("東京都").unwrap(),
                source: None,
                newsletter: false,
                personal: Personal::Known(TourRequestPersonal {
                    name: PersonName::parse(APPLICANT_NAME).unwrap(),
                    name_kana: Kana::parse("カシワザキ タロウ").unwrap(),
                    email: Email::parse(&address_of(person)).unwrap(),
                    phone: Phone::parse("0257-21-2334").unwrap(),
                    children_ages: None,
                    message: None,
                }),
            },
        };
        let stream = StreamName::new(kujira_domain::inquiry::CATEGORY, id);
        let command = ConsultationCommand::SubmitTourRequest {
            submission,
            mails: vec![],
        };
        kujira_store::execute::<Consultation>(
            &self.store,
            &stream,
            &CommandContext::new("applicant"),
            None,
            |s| {
                use kujira_domain::decider::Decider;
                Consultation::decide(s, &command)
            },
        )
        .await
        .unwrap();
        let case = Case { id, person };
        if concierge.is_some() {
            self.work(case, CaseCommand::Assign { concierge }, at).await;
        }
        case
    }

    /// Case work by staff at `at`.
    pub async fn work(&self, case: Case, command: CaseCommand, at: DateTime<Utc>) {
        let stream = StreamName::new(kujira_domain::inquiry::CATEGORY, case.id);
        let command = ConsultationCommand::Work { command, at };
        kujira_store::execute::<Consultation>(
            &self.store,
            &stream,
            &CommandContext::new("staff:test"),
            None,
            |s| {
                use kujira_domain::decider::Decider;
                Consultation::decide(s, &command)
            },
        )
        .await
        .unwrap();
    }

    /// A phone call logged at `at`.
    pub async fn contact(&self, case: Case, at: DateTime<Utc>) {
        self.work(
            case,
            CaseCommand::LogContact {
                contact_id: Uuid::new_v4(),
                channel: kujira_domain::casework::ContactChannel::Phone,
                occurred_at: at,
                note: None,
            },
            at,
        )
        .await;
    }

    async fn on_tour(&self, tour: Uuid, command: TourCommand) {
        let stream = StreamName::new(kujira_domain::tour::CATEGORY, tour);
        kujira_store::execute::<Tour>(
            &self.store,
            &stream,
            &CommandContext::new("cli"),
            None,
            |s| {
                use kujira_domain::decider::Decider;
                Tour::decide(s, &command)
            },
        )
        .await
        .unwrap();
    }

    /// A published day trip from `starts` to `ends`, scheduled at `at`.
    pub async fn tour(
        &self,
        starts: DateTime<Utc>,
        ends: DateTime<Utc>,
        capacity: u32,
        at: DateTime<Utc>,
    ) -> Uuid {
        let id = Uuid::new_v4();
        self.on_tour(
            id,
            TourCommand::Schedule {
                tour_id: id,
                details: TourDetails {
                    title: "親子で体験！柏崎の暮らし日帰りツアー".into(),
                    kind: TourKind::DayTrip,
                    starts_at: starts,
                    ends_at: ends,
                    meeting_place: "JR柏崎駅 改札前".into(),
                    capacity_parties: capacity,
                    max_people: None,
                    fee_yen: 0,
                    deadline: None,
                    description: "海と里山の暮らしを体験します。".into(),
                    audience: String::new(),
                },
                publish: true,
                at,
            },
        )
        .await;
        id
    }

    /// A party of two adults signs up at `at`; returns the sign-up and its person.
    pub async fn sign_up(&self, tour: Uuid, at: DateTime<Utc>) -> (Uuid, Uuid) {
        let person = self.store.vault().new_person().await.unwrap();
        let sign_up_id = Uuid::new_v4();
        let input = SignUpInput {
            name: APPLICANT_NAME.into(),
            name_kana: "カシワザキ タロウ".into(),
            email: address_of(person),
            phone: "090-1234-5678".into(),
            prefecture: "東京都".into(),
            adults: "2".into(),
            consent: true,
            ..SignUpInput::default()
        };
        let sign_up = input.validate(sign_up_id).unwrap().for_person(person);
        self.on_tour(tour, TourCommand::SignUp { sign_up, at })
            .await;
        (sign_up_id, person)
    }

    /// Staff move the tour created by [`World::tour`] to `starts`–`ends`, at `at`.
    pub async fn move_tour(
        &self,
        tour: Uuid,
        starts: DateTime<Utc>,
        ends: DateTime<Utc>,
        capacity: u32,
        at: DateTime<Utc>,
    ) {
        self.on_tour(
            tour,
            TourCommand::ChangeDetails {
                details: TourDetails {
                    title: "親子で体験！柏崎の暮らし日帰りツアー".into(),
                    kind: TourKind::DayTrip,
                    starts_at: starts,
                    ends_at: ends,
                    meeting_place: "JR柏崎駅 改札前".into(),
                    capacity_parties: capacity,
                    max_people: None,
                    fee_yen: 0,
                    deadline: None,
                    description: "海と里山の暮らしを体験します。".into(),
                    audience: String::new(),
                },
                at,
            },
        )
        .await;
    }

    pub async fn cancel_sign_up(&self, tour: Uuid, sign_up: Uuid, at: DateTime<Utc>) {
        self.on_tour(
            tour,
            TourCommand::CancelSignUp {
                sign_up_id: sign_up,
                by: kujira_domain::tour::CancelledBy::Party,
                at,
            },
        )
        .await;
    }

    pub async fn attendance(&self, tour: Uuid, sign_up: Uuid, attended: bool, at: DateTime<Utc>) {
        self.on_tour(
            tour,
            TourCommand::RecordAttendance {
                sign_up_id: sign_up,
                attended,
                at,
            },
        )
        .await;
    }

    /// Every key the outbox holds, sorted.
    pub async fn outbox_keys(&self) -> Vec<String> {
        self.projector.catch_up().await.unwrap();
        sqlx::query("SELECT key FROM mail_deliveries ORDER BY key")
            .fetch_all(&self.db.pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get("key"))
            .collect()
    }

    /// The outbox keys of one template.
    pub async fn keys_of(&self, template: &str) -> Vec<String> {
        self.projector.catch_up().await.unwrap();
        sqlx::query("SELECT key FROM mail_deliveries WHERE template = $1 ORDER BY key")
            .bind(template)
            .fetch_all(&self.db.pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get("key"))
            .collect()
    }

    /// A mailer as `serve` builds it, on this world's clock, sending to `port`.
    pub fn mailer(&self, port: u16) -> Mailer {
        let transport = Transport::smtp(&format!("smtp://127.0.0.1:{port}")).unwrap();
        Mailer::new(
            self.store.clone(),
            transport,
            Sender::from_config(&self.config).unwrap(),
            Arc::new(self.clock.clone()),
        )
        .with_quiet_hours(self.config.quiet_hours, self.config.timezone)
        .with_unsubscribe(UnsubscribeLinks::from_config(&self.config))
        .with_renderer(Arc::new(RuleMailTemplates::new(self.config.clone())))
    }

    /// Lets the outbox see every mail queued, then sends what is due.
    pub async fn deliver(&self, mailer: &Mailer) -> DeliveryReport {
        self.projector.catch_up().await.unwrap();
        mailer.deliver_due().await.unwrap()
    }
}

fn rand_reference() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}

/// The text part of a received message.
pub fn text_of(m: &crate::mail_support::Received) -> String {
    m.parsed().body_text(0).unwrap_or_default().into_owned()
}

/// The subject of a received message.
pub fn subject_of(m: &crate::mail_support::Received) -> String {
    m.parsed().subject().unwrap_or_default().to_owned()
}
