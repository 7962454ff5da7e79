//! Shared by the mail tests: a database with the outbox projection, persons with
//! sealed data, queued mail rendered from their facts, a `FixedClock`, and a real
//! SMTP server (mailin-embedded) whose DATA step can be held by the test.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use kujira_config::{Config, FixedClock};
use kujira_domain::mail::{Audience, MailContent, MailFacts, MailKind, MailQueued, RenderError};
use kujira_domain::person::{Person, PersonCommand, PersonContext, PersonEvent};
use kujira_eventlog::{Checkpoint, EventStore, ExpectedVersion, Metadata, NewEvent, StreamName};
use kujira_pgembed::testing::TestDb;
use kujira_projector::Projector;
use kujira_scheduler::{MailOutboxProjection, Mailer, Sender, Transport, UnsubscribeLinks};
use kujira_store::{CommandContext, Store};
use mailin_embedded::{Action, Handler, Response, Server, SslConfig, response};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Every wait in these tests ends by this deadline, with a message.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// 2026-12-01 10:00 in Tokyo: outside the default quiet hours.
pub fn t0() -> DateTime<Utc> {
    "2026-12-01T01:00:00Z".parse().unwrap()
}

pub fn tokyo(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// A service's stream in these tests: a fact about a person, then the mails it queues.
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum NoteEvent {
    Noted(Noted),
    MailQueued(MailQueued),
}

#[derive(Serialize, Deserialize)]
pub struct Noted {
    pub person_id: Uuid,
    pub personal: NotedPersonal,
}

#[derive(Serialize, Deserialize)]
pub struct NotedPersonal {
    pub name: String,
    pub email: String,
}

/// Templates of these tests. Subjects hold no personal data, as in the services.
pub const FOLLOW_UP: &str = "note_follow_up";
pub const RECEIPT: &str = "note_receipt";
pub const STAFF_NOTICE: &str = "note_staff";

/// Renders the tests' mails from the `Noted` fact (decrypted by the mailer).
#[derive(Debug)]
pub struct NoteTemplates;

impl kujira_domain::mail::RenderMail for NoteTemplates {
    fn templates(&self) -> &[&'static str] {
        &[FOLLOW_UP, RECEIPT, STAFF_NOTICE]
    }

    fn render(&self, mail: &MailQueued, facts: &MailFacts<'_>) -> Result<MailContent, RenderError> {
        let (_, fact) = facts
            .stream
            .iter()
            .find(|(t, _)| t == "Noted")
            .ok_or_else(|| RenderError::NoFacts(mail.key.clone()))?;
        let personal = &fact["personal"];
        if personal.is_null() {
            return Err(RenderError::Erased(mail.key.clone()));
        }
        let name = personal["name"].as_str().unwrap_or_default();
        let (to, subject) = match mail.template.as_str() {
            FOLLOW_UP => (
                personal["email"].as_str().unwrap_or_default().to_owned(),
                "【くじらと。】その後いかがですか",
            ),
            RECEIPT => (
                personal["email"].as_str().unwrap_or_default().to_owned(),
                "【くじらと。】お申し込みを受け付けました",
            ),
            _ => (
                "concierge@example.jp".to_owned(),
                "【くじらと。】フォローアップの時期です",
            ),
        };
        Ok(MailContent {
            to: vec![to],
            subject: subject.to_owned(),
            text: format!("{name} 様\n\nお元気ですか。"),
            html: Some(format!(
                "<!DOCTYPE html><html lang=\"ja\"><body><p>{name} 様</p></body></html>"
            )),
            attachments: vec![],
            unsubscribe_url: None,
        })
    }
}

/// The master key every process of a test shares.
pub fn master_key() -> kujira_config::MasterKeySetting {
    Config::for_tests(std::path::Path::new("/nonexistent")).master_key
}

/// One test's world.
pub struct World {
    pub db: TestDb,
    pub store: Store,
    pub projector: Projector,
    pub clock: FixedClock,
    pub config: Config,
    _dir: tempfile::TempDir,
}

impl World {
    pub async fn new() -> Self {
        let db = TestDb::new(&[
            &kujira_eventlog::MIGRATOR,
            &kujira_store::MIGRATOR,
            &kujira_scheduler::MIGRATOR,
        ])
        .await;
        let store = Store::open(db.pool.clone(), &master_key()).await.unwrap();
        let projector = Projector::new(store.events().clone()).with(MailOutboxProjection::new());
        let dir = tempfile::tempdir().unwrap();
        let config = Config::for_tests(dir.path());
        Self {
            db,
            store,
            projector,
            clock: FixedClock::new(t0()),
            config,
            _dir: dir,
        }
    }

    /// A new person, with a key in the vault.
    pub async fn person(&self) -> Uuid {
        self.store.vault().new_person().await.unwrap()
    }

    /// Appends `Noted` about `person` (sealed) and the mail it queues, on a new
    /// stream, and lets the outbox projection see it.
    pub async fn queue(&self, person: Uuid, mail: MailQueued) {
        let stream = StreamName::new("note", Uuid::new_v4());
        let meta = Metadata::new("test", Uuid::new_v4());
        let events = vec![
            NewEvent::encode(
                Uuid::new_v4(),
                &NoteEvent::Noted(Noted {
                    person_id: person,
                    personal: NotedPersonal {
                        name: "柏崎 花子".into(),
                        email: format!("{}@example.com", person.simple()),
                    },
                }),
                meta.clone(),
            )
            .unwrap(),
            NewEvent::encode(
                mail.event_id(stream.as_str()),
                &NoteEvent::MailQueued(mail),
                meta,
            )
            .unwrap(),
        ];
        let appended = self
            .store
            .append(&stream, ExpectedVersion::NoStream, events)
            .await
            .unwrap();
        self.project_through(appended.last_position).await;
    }

    /// An applicant follow-up about `person`.
    pub async fn follow_up(&self, person: Uuid, key: &str) {
        self.queue(
            person,
            MailQueued::to_applicant(key.into(), FOLLOW_UP, person).follow_up(),
        )
        .await;
    }

    /// A transactional mail to `person`.
    pub async fn receipt(&self, person: Uuid, key: &str) {
        self.queue(
            person,
            MailQueued::to_applicant(key.into(), RECEIPT, person),
        )
        .await;
    }

    /// A notice to staff about `person` (a follow-up of the desk's own).
    pub async fn staff_notice(&self, person: Uuid, key: &str, kind: MailKind) {
        let mut m = MailQueued::to_staff(key.into(), STAFF_NOTICE, Some(person));
        m.kind = kind;
        assert_eq!(m.audience, Audience::Staff);
        self.queue(person, m).await;
    }

    /// Runs a command on the person's stream, as the desk or the privacy service would.
    pub async fn on_person(&self, person: Uuid, command: PersonCommand) {
        let stream = StreamName::new(kujira_domain::person::CATEGORY, person);
        let at = self.clock_now();
        kujira_store::execute::<Person>(
            &self.store,
            &stream,
            &CommandContext::new("cli"),
            None,
            |state| {
                Person::decide_for(
                    PersonContext {
                        person_id: person,
                        at,
                    },
                    state,
                    &command,
                )
            },
        )
        .await
        .unwrap();
    }

    /// The facts on the person's stream.
    pub async fn person_events(&self, person: Uuid) -> Vec<PersonEvent> {
        let stream = StreamName::new(kujira_domain::person::CATEGORY, person);
        self.store.load::<PersonEvent>(&stream).await.unwrap().0
    }

    pub fn clock_now(&self) -> DateTime<Utc> {
        use kujira_config::Clock;
        self.clock.now()
    }

    /// Runs the projector until it has applied the event at `position` (another
    /// test's open transaction can hold a fresh event back for a moment).
    pub async fn project_through(&self, position: i64) {
        let txid: i64 = sqlx::query_scalar("SELECT transaction_id FROM events WHERE position = $1")
            .bind(position)
            .fetch_one(&self.db.pool)
            .await
            .unwrap();
        let target = Checkpoint {
            transaction_id: txid,
            position,
        };
        let applied = async {
            loop {
                self.projector.catch_up().await.unwrap();
                let at = EventStore::checkpoint(&self.db.pool, "mail_outbox")
                    .await
                    .unwrap();
                if at >= target {
                    return;
                }
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(DEADLINE, applied)
            .await
            .expect("the outbox projection reaches the event");
    }

    /// A mailer as `serve` builds it (quiet hours, unsubscribe links), sending to
    /// the SMTP server on `port`, on this world's clock.
    pub fn mailer(&self, port: u16) -> Mailer {
        let transport = Transport::smtp(&format!("smtp://127.0.0.1:{port}")).unwrap();
        let sender = Sender::from_config(&self.config).unwrap();
        Mailer::new(
            self.store.clone(),
            transport,
            sender,
            Arc::new(self.clock.clone()),
        )
        .with_quiet_hours(self.config.quiet_hours, self.config.timezone)
        .with_unsubscribe(UnsubscribeLinks::from_config(&self.config))
        .with_renderer(Arc::new(NoteTemplates))
    }

    pub async fn delivery(&self, key: &str) -> kujira_scheduler::MailDelivery {
        kujira_scheduler::delivery(&self.db.pool, key)
            .await
            .unwrap()
            .expect("requested")
    }
}

// ---------------------------------------------------------------------------
// A real SMTP server on a local port.

#[derive(Debug, Clone)]
pub struct Received {
    pub to: Vec<String>,
    pub data: Vec<u8>,
}

impl Received {
    pub fn parsed(&self) -> mail_parser::Message<'static> {
        mail_parser::MessageParser::default()
            .parse(&self.data)
            .expect("a parsable message")
            .into_owned()
    }

    pub fn raw(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }

    /// The raw value of a header (unfolded).
    pub fn header(&self, name: &str) -> Option<String> {
        let raw = self.raw();
        let head = raw.split("\r\n\r\n").next().unwrap_or_default().to_owned();
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        unfolded.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

/// A hold on the DATA step: the server tells the test it has the message, then
/// waits for the test to say what to answer.
pub struct Gate {
    reached: tokio::sync::oneshot::Sender<()>,
    release: std::sync::mpsc::Receiver<Response>,
}

/// The test's end of a [`Gate`].
pub struct GateHandle {
    reached: Option<tokio::sync::oneshot::Receiver<()>>,
    release: std::sync::mpsc::Sender<Response>,
}

impl GateHandle {
    /// Waits until a worker's message is held at the DATA step.
    pub async fn reached(&mut self, what: &str) {
        let rx = self.reached.take().expect("waited once");
        tokio::time::timeout(DEADLINE, rx)
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
            .expect("the server is alive");
    }

    /// Lets the held DATA step answer `response`.
    pub fn release(&self, response: Response) {
        self.release.send(response).expect("the server waits");
    }
}

#[derive(Default)]
pub struct ServerState {
    pub received: Mutex<Vec<Received>>,
    /// Answer 451 to MAIL FROM, as an overloaded or greylisting server does.
    pub busy: AtomicBool,
    /// Recipients answered with 550.
    pub unknown: Mutex<Vec<String>>,
    /// Held DATA steps, in the order messages arrive.
    gates: Mutex<VecDeque<Gate>>,
    /// How many messages were accepted.
    pub accepted: tokio::sync::watch::Sender<usize>,
}

#[derive(Clone)]
struct SmtpHandler {
    state: Arc<ServerState>,
    data: Vec<u8>,
    to: Vec<String>,
}

impl Handler for SmtpHandler {
    fn mail(&mut self, _ip: std::net::IpAddr, _domain: &str, _from: &str) -> Response {
        if self.state.busy.load(Ordering::SeqCst) {
            return Response::custom(451, "4.3.2 busy, try again later".into());
        }
        response::OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        let unknown = self.state.unknown.lock().unwrap();
        if unknown.iter().any(|u| to.contains(u.as_str())) {
            return Response::custom(550, format!("5.1.1 <{to}>: Recipient address rejected"));
        }
        response::OK
    }

    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.data.clear();
        self.to = to.to_vec();
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let gate = self.state.gates.lock().unwrap().pop_front();
        let mut answer = match gate {
            Some(gate) => {
                let _ = gate.reached.send(());
                gate.release
                    .recv_timeout(DEADLINE)
                    .unwrap_or_else(|_| Response::custom(451, "4.4.2 test gate timed out".into()))
            }
            None => response::OK,
        };
        if answer.is_error {
            // mailin stays in its DATA state after an error here, so the client's next
            // command would be read as message text; closing the connection keeps the
            // client from waiting on an answer that never comes.
            answer.action = Action::Close;
            return answer;
        }
        {
            self.state.received.lock().unwrap().push(Received {
                to: std::mem::take(&mut self.to),
                data: std::mem::take(&mut self.data),
            });
            self.state.accepted.send_modify(|n| *n += 1);
        }
        answer
    }
}

pub struct SmtpServer {
    pub port: u16,
    pub state: Arc<ServerState>,
    /// Bound but not listening: connections are refused until [`Self::start`].
    socket: Mutex<Option<tokio::net::TcpSocket>>,
}

impl SmtpServer {
    /// A port on which nothing listens yet: connecting is refused until [`Self::start`].
    pub fn reserve() -> Self {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = socket.local_addr().unwrap().port();
        Self {
            port,
            state: Arc::default(),
            socket: Mutex::new(Some(socket)),
        }
    }

    pub fn started() -> Self {
        let s = Self::reserve();
        s.start();
        s
    }

    pub fn start(&self) {
        let socket = self.socket.lock().unwrap().take().expect("started once");
        let listener = socket.listen(128).unwrap().into_std().unwrap();
        // mailin does blocking IO on it.
        listener.set_nonblocking(false).unwrap();
        let handler = SmtpHandler {
            state: self.state.clone(),
            data: Vec::new(),
            to: Vec::new(),
        };
        let mut server = Server::new(handler);
        server
            .with_name("smtp.test")
            .with_ssl(SslConfig::None)
            .unwrap()
            .with_num_threads(16)
            .with_tcp_listener(listener);
        // mailin has no stop: the thread ends with the test process.
        std::thread::spawn(move || {
            if let Err(e) = server.serve() {
                eprintln!("test SMTP server stopped: {e}");
            }
        });
    }

    /// Holds the DATA step of the next message to arrive (after those already held).
    pub fn hold_next_data(&self) -> GateHandle {
        let (reached_tx, reached_rx) = tokio::sync::oneshot::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel();
        self.state.gates.lock().unwrap().push_back(Gate {
            reached: reached_tx,
            release: release_rx,
        });
        GateHandle {
            reached: Some(reached_rx),
            release: release_tx,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// The messages accepted for `address`.
    pub fn received_by(&self, address: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.to.iter().any(|t| t == address))
            .collect()
    }
}

/// The address the tests' templates send a person's mail to.
pub fn address_of(person: Uuid) -> String {
    format!("{}@example.com", person.simple())
}
