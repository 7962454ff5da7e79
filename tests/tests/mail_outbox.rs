//! The mail outbox end to end: `MailRequested` events → the outbox projection → the
//! mailer → a real SMTP server (mailin-embedded, speaking SMTP on a local port) or
//! `.eml` files. Time is a `FixedClock`: retries come due because the test moves the
//! clock, never because it sleeps.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use kujira_config::{Clock, Config, FixedClock};
use kujira_domain::mail::{Attachment, MailContent, MailRequested};
use kujira_eventlog::{Checkpoint, EventStore, ExpectedVersion, Metadata, NewEvent, StreamName};
use kujira_pgembed::testing::TestDb;
use kujira_projector::Projector;
use kujira_scheduler::{
    DeliveryStatus, MailOutboxProjection, Mailer, Sender, Transport, delivery, eml_file_name,
    message_id, outbox_status, outbox_status_at, requeue_failed,
};
use mail_parser::{MessageParser, MimeHeaders};
use mailin_embedded::{Handler, Response, Server, SslConfig, response};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The test's own event enum: services put a `MailRequested` variant in theirs.
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
enum CaseEvent {
    MailRequested(MailRequested),
}

const SUBJECT: &str = "【くじらと。】移住相談を受け付けました（受付番号 2026-0001）";
const TEXT: &str = "山田 太郎 様\n\n柏崎市への移住相談を受け付けました。\n担当の移住コンシェルジュから3営業日以内にご連絡します。";
const HTML: &str = "<p>山田 太郎 様</p><p>柏崎市への移住相談を受け付けました。</p>";

fn t0() -> DateTime<Utc> {
    "2026-12-01T00:00:00Z".parse().unwrap()
}

fn mail(key: &str, to: &str) -> MailRequested {
    MailRequested {
        key: key.to_owned(),
        template: "inquiry_received".into(),
        personal: MailContent {
            to: vec![format!("山田 太郎 <{to}>")],
            subject: SUBJECT.into(),
            text: TEXT.into(),
            html: Some(HTML.into()),
            attachments: vec![],
            unsubscribe_url: None,
        }
        .into(),
    }
}

/// The master key every process of a test shares.
fn master_key() -> kujira_config::MasterKeySetting {
    Config::for_tests(std::path::Path::new("/nonexistent")).master_key
}

/// One test's world: a database, its event store, the outbox projection.
struct World {
    db: TestDb,
    store: kujira_store::Store,
    projector: Projector,
    clock: FixedClock,
}

impl World {
    async fn new() -> Self {
        let db = TestDb::new(&[
            &kujira_eventlog::MIGRATOR,
            &kujira_store::MIGRATOR,
            &kujira_scheduler::MIGRATOR,
        ])
        .await;
        let store = kujira_store::Store::open(db.pool.clone(), &master_key())
            .await
            .unwrap();
        let projector = Projector::new(store.events().clone()).with(MailOutboxProjection::new());
        Self {
            db,
            store,
            projector,
            clock: FixedClock::new(t0()),
        }
    }

    /// Appends the request as a service would, and lets the projection see it.
    async fn request(&self, mail: MailRequested) {
        let stream = StreamName::new("consultation", Uuid::new_v4());
        let event = NewEvent::encode(
            Uuid::new_v4(),
            &CaseEvent::MailRequested(mail),
            Metadata::new("test", Uuid::new_v4()),
        )
        .unwrap();
        // Written as legacy mail was: rendered, in the event, before sealing existed.
        let appended = self
            .store
            .events()
            .append(&stream, ExpectedVersion::NoStream, vec![event])
            .await
            .unwrap();
        self.project_through(appended.last_position).await;
    }

    /// Runs the projector until it has applied the event at `position`.
    ///
    /// One `catch_up` is not enough when tests run in parallel: the log is read
    /// gap-safely, so a transaction still open in another test's database (xids are
    /// cluster-wide) can keep our fresh event unreadable for a moment.
    async fn project_through(&self, position: i64) {
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
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(30), applied)
            .await
            .expect("the outbox projection reaches the event");
    }

    fn smtp_mailer(&self, port: u16) -> Mailer {
        let transport = Transport::smtp(&format!("smtp://127.0.0.1:{port}")).unwrap();
        let sender = Sender::new("くじらと。", "kujira@example.jp").unwrap();
        Mailer::new(
            self.store.clone(),
            transport,
            sender,
            Arc::new(self.clock.clone()),
        )
    }

    async fn delivery(&self, key: &str) -> kujira_scheduler::MailDelivery {
        delivery(&self.db.pool, key)
            .await
            .unwrap()
            .expect("requested")
    }
}

// ---------------------------------------------------------------------------
// A real SMTP server on a local port.

#[derive(Debug, Clone)]
struct Received {
    to: Vec<String>,
    data: Vec<u8>,
}

#[derive(Default)]
struct ServerState {
    received: Mutex<Vec<Received>>,
    /// Answer 451 to MAIL FROM, as an overloaded or greylisting server does.
    busy: AtomicBool,
    /// Recipients answered with 550.
    unknown: Mutex<Vec<String>>,
    /// When set, the next RCPT signals the test and hangs until released.
    stall: Mutex<Option<Stall>>,
    /// How many messages were accepted, for tests that wait on running workers.
    accepted: tokio::sync::watch::Sender<usize>,
}

struct Stall {
    reached: tokio::sync::oneshot::Sender<()>,
    release: std::sync::mpsc::Receiver<()>,
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
        let stall = self.state.stall.lock().unwrap().take();
        if let Some(stall) = stall {
            let _ = stall.reached.send(());
            let _ = stall.release.recv_timeout(Duration::from_secs(30));
        }
        if self
            .state
            .unknown
            .lock()
            .unwrap()
            .iter()
            .any(|u| to.contains(u))
        {
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
        self.state.received.lock().unwrap().push(Received {
            to: std::mem::take(&mut self.to),
            data: std::mem::take(&mut self.data),
        });
        self.state.accepted.send_modify(|n| *n += 1);
        response::OK
    }
}

struct SmtpServer {
    port: u16,
    state: Arc<ServerState>,
    /// Bound but not listening: connections are refused, and no other test can take
    /// the port before [`Self::start`].
    socket: Mutex<Option<tokio::net::TcpSocket>>,
}

impl SmtpServer {
    /// A port on which nothing listens yet: connecting is refused until [`Self::start`].
    fn reserve() -> Self {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = socket.local_addr().unwrap().port();
        Self {
            port,
            state: Arc::default(),
            socket: Mutex::new(Some(socket)),
        }
    }

    fn started() -> Self {
        let s = Self::reserve();
        s.start();
        s
    }

    fn start(&self) {
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

    fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }
}

fn parse(raw: &[u8]) -> mail_parser::Message<'static> {
    MessageParser::default()
        .parse(raw)
        .expect("a parsable message")
        .into_owned()
}

fn crlf_to_lf(s: &str) -> String {
    s.replace("\r\n", "\n")
}

// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_requested_mail_reaches_the_smtp_server_once_as_utf8_text_and_html() {
    let w = World::new().await;
    let smtp = SmtpServer::started();
    let key = "inquiry-received/0001/applicant";
    w.request(mail(key, "taro@example.com")).await;
    let mailer = w.smtp_mailer(smtp.port);

    let report = mailer.deliver_due().await.unwrap();
    assert_eq!(report.sent, vec![key.to_owned()]);

    let received = smtp.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].to, vec!["taro@example.com".to_owned()]);
    let raw = &received[0].data;
    let headers = &raw[..raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap()];
    assert!(headers.is_ascii(), "headers must be 7-bit (RFC 2047)");

    let m = parse(raw);
    assert_eq!(m.subject(), Some(SUBJECT));
    assert_eq!(m.content_type().unwrap().subtype(), Some("alternative"));
    assert_eq!(
        m.body_text(0).map(|t| crlf_to_lf(&t)).as_deref(),
        Some(TEXT)
    );
    assert_eq!(m.body_html(0).as_deref(), Some(HTML));
    let from = m.from().unwrap().first().unwrap();
    assert_eq!(
        (from.name(), from.address()),
        (Some("くじらと。"), Some("kujira@example.jp"))
    );
    let expected_id = message_id(key, "example.jp");
    assert_eq!(m.message_id(), Some(expected_id.trim_matches(['<', '>'])));

    let d = w.delivery(key).await;
    assert_eq!(d.status, DeliveryStatus::Sent);
    assert_eq!(d.attempts, 1);
    assert_eq!(d.sent_at, Some(t0()));
    assert_eq!(d.message_id.as_deref(), Some(expected_id.as_str()));
    assert_eq!(d.template, "inquiry_received");

    // Nothing is due any more, and asking again sends nothing.
    w.clock.advance(chrono::Duration::days(1));
    assert_eq!(mailer.deliver_due().await.unwrap().attempted(), 0);
    assert_eq!(smtp.received().len(), 1);
}

#[tokio::test]
async fn an_attachment_travels_as_text_calendar_in_multipart_mixed() {
    let w = World::new().await;
    let smtp = SmtpServer::started();
    let mut m = mail("tour-confirmed/0001", "hanako@example.com");
    let ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nSUMMARY:柏崎 移住体験ツアー\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let mut content = m.personal.known().unwrap().clone();
    content.attachments.push(Attachment {
        filename: "tour.ics".into(),
        content_type: "text/calendar; charset=utf-8; method=PUBLISH".into(),
        content: ics.into(),
    });
    m.personal = content.into();
    w.request(m).await;
    w.smtp_mailer(smtp.port).deliver_due().await.unwrap();

    let received = smtp.received();
    assert_eq!(received.len(), 1);
    let parsed = parse(&received[0].data);
    assert_eq!(parsed.content_type().unwrap().subtype(), Some("mixed"));
    assert_eq!(parsed.body_html(0).as_deref(), Some(HTML));
    let a = parsed.attachment(0).expect("one attachment");
    assert_eq!(a.attachment_name(), Some("tour.ics"));
    let ct = a.content_type().unwrap();
    assert_eq!((ct.ctype(), ct.subtype()), ("text", Some("calendar")));
    assert_eq!(ct.attribute("method"), Some("PUBLISH"));
    assert_eq!(a.text_contents(), Some(ics));
}

#[tokio::test]
async fn an_smtp_outage_is_retried_with_backoff_and_the_mail_is_sent_exactly_once() {
    let w = World::new().await;
    let smtp = SmtpServer::reserve(); // nothing listens: connections are refused
    let key = "inquiry-received/0002/concierge";
    w.request(mail(key, "concierge@example.jp")).await;
    let mailer = w.smtp_mailer(smtp.port);

    let report = mailer.deliver_due().await.unwrap();
    assert_eq!(report.deferred, vec![key.to_owned()]);
    let d = w.delivery(key).await;
    assert_eq!(d.status, DeliveryStatus::Pending);
    assert_eq!(d.attempts, 1);
    assert_eq!(d.next_attempt_at, Some(t0() + chrono::Duration::minutes(1)));
    assert!(d.last_error.as_deref().is_some_and(|e| !e.is_empty()));

    let status = outbox_status_at(&w.db.pool, w.clock.now()).await.unwrap();
    assert_eq!(
        (status.pending, status.due, status.retrying, status.failed),
        (1, 0, 1, 0)
    );

    // Not due again before the backoff has passed.
    w.clock.advance(chrono::Duration::seconds(59));
    assert_eq!(mailer.deliver_due().await.unwrap().attempted(), 0);

    // Second failure: the wait doubles.
    w.clock.advance(chrono::Duration::seconds(1));
    assert_eq!(mailer.deliver_due().await.unwrap().deferred.len(), 1);
    let d = w.delivery(key).await;
    assert_eq!(d.attempts, 2);
    assert_eq!(d.next_attempt_at, Some(t0() + chrono::Duration::minutes(3)));

    // The server comes back; the mail goes out when its retry is due, once.
    smtp.start();
    assert_eq!(mailer.deliver_due().await.unwrap().attempted(), 0);
    w.clock.advance(chrono::Duration::minutes(2));
    assert_eq!(
        mailer.deliver_due().await.unwrap().sent,
        vec![key.to_owned()]
    );
    w.clock.advance(chrono::Duration::hours(2));
    assert_eq!(mailer.deliver_due().await.unwrap().attempted(), 0);

    assert_eq!(smtp.received().len(), 1);
    let d = w.delivery(key).await;
    assert_eq!(
        (d.status, d.attempts, d.last_error),
        (DeliveryStatus::Sent, 3, None)
    );
    let status = outbox_status_at(&w.db.pool, w.clock.now()).await.unwrap();
    assert_eq!((status.pending, status.failed), (0, 0));
}

#[tokio::test]
async fn a_temporary_4xx_reply_defers_the_mail_and_a_restarted_mailer_sends_it_once() {
    let w = World::new().await;
    let smtp = SmtpServer::started();
    w.request(mail("k/sent-before-restart", "a@example.com"))
        .await;
    let first = w.smtp_mailer(smtp.port);
    assert_eq!(first.deliver_due().await.unwrap().sent.len(), 1);

    smtp.state.busy.store(true, Ordering::SeqCst);
    w.request(mail("k/pending-at-restart", "b@example.com"))
        .await;
    let report = first.deliver_due().await.unwrap();
    assert_eq!(report.deferred, vec!["k/pending-at-restart".to_owned()]);
    let error = w.delivery("k/pending-at-restart").await.last_error.unwrap();
    assert!(error.contains("451"), "{error}");
    drop(first);

    // A new process: its own pool, event store, projector and mailer on the same database.
    let pool = sqlx::PgPool::connect_with(w.db.options.clone())
        .await
        .unwrap();
    let store = kujira_store::Store::open(pool.clone(), &master_key())
        .await
        .unwrap();
    Projector::new(store.events().clone())
        .with(MailOutboxProjection::new())
        .catch_up()
        .await
        .unwrap();
    let transport = Transport::smtp(&format!("smtp://127.0.0.1:{}", smtp.port)).unwrap();
    let sender = Sender::new("くじらと。", "kujira@example.jp").unwrap();
    let second = Mailer::new(store, transport, sender, Arc::new(w.clock.clone()));

    smtp.state.busy.store(false, Ordering::SeqCst);
    w.clock.advance(chrono::Duration::minutes(1));
    let report = second.deliver_due().await.unwrap();
    assert_eq!(report.sent, vec!["k/pending-at-restart".to_owned()]);
    assert_eq!(second.deliver_due().await.unwrap().attempted(), 0);

    let to: Vec<Vec<String>> = smtp.received().into_iter().map(|r| r.to).collect();
    assert_eq!(
        to,
        vec![
            vec!["a@example.com".to_owned()],
            vec!["b@example.com".to_owned()]
        ]
    );
}

#[tokio::test]
async fn a_worker_that_dies_mid_send_loses_nothing_and_its_lease_runs_out() {
    let w = World::new().await;
    let smtp = SmtpServer::started();
    let key = "k/crash";
    w.request(mail(key, "c@example.com")).await;

    let (reached_tx, reached_rx) = tokio::sync::oneshot::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel();
    *smtp.state.stall.lock().unwrap() = Some(Stall {
        reached: reached_tx,
        release: release_rx,
    });
    let doomed = w.smtp_mailer(smtp.port);
    let task = tokio::spawn(async move { doomed.deliver_due().await });
    // The worker has claimed the mail and is talking to the server: kill it there.
    tokio::time::timeout(Duration::from_secs(30), reached_rx)
        .await
        .expect("the worker reaches the server")
        .unwrap();
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    release_tx.send(()).unwrap();

    let d = w.delivery(key).await;
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Pending, 1));

    // A new worker leaves the mail alone while the dead one's lease lasts...
    let next = w.smtp_mailer(smtp.port);
    w.clock.advance(chrono::Duration::minutes(9));
    assert_eq!(next.deliver_due().await.unwrap().attempted(), 0);
    // ...and sends it once the lease has run out.
    w.clock.advance(chrono::Duration::minutes(1));
    assert_eq!(next.deliver_due().await.unwrap().sent, vec![key.to_owned()]);
    assert_eq!(smtp.received().len(), 1);
    assert_eq!(w.delivery(key).await.attempts, 2);
}

#[tokio::test]
async fn a_permanent_rejection_is_kept_as_failed_and_can_be_requeued() {
    let w = World::new().await;
    let smtp = SmtpServer::started();
    smtp.state
        .unknown
        .lock()
        .unwrap()
        .push("nobody@example.com".into());
    let key = "k/rejected";
    w.request(mail(key, "nobody@example.com")).await;
    let mailer = w.smtp_mailer(smtp.port);

    assert_eq!(
        mailer.deliver_due().await.unwrap().failed,
        vec![key.to_owned()]
    );
    let d = w.delivery(key).await;
    assert_eq!(d.status, DeliveryStatus::Failed);
    assert_eq!(d.failed_at, Some(t0()));
    let error = d.last_error.unwrap();
    assert!(error.contains("550"), "{error}");
    assert!(
        !error.contains("nobody@example.com"),
        "addresses are redacted: {error}"
    );
    let status = outbox_status(&w.db.pool).await.unwrap();
    assert_eq!((status.pending, status.failed), (0, 1));

    // Failed is final: no retry however long we wait.
    w.clock.advance(chrono::Duration::days(3));
    assert_eq!(mailer.deliver_due().await.unwrap().attempted(), 0);
    assert!(smtp.received().is_empty());

    // Once the address is fixed on the server side, an operator puts it back.
    smtp.state.unknown.lock().unwrap().clear();
    assert!(requeue_failed(&w.db.pool, key).await.unwrap());
    assert!(!requeue_failed(&w.db.pool, key).await.unwrap());
    assert_eq!(
        mailer.deliver_due().await.unwrap().sent,
        vec![key.to_owned()]
    );
    assert_eq!(smtp.received().len(), 1);
}

#[tokio::test]
async fn a_key_requested_twice_is_sent_once_and_concurrent_workers_never_share_a_mail() {
    let w = World::new().await;
    let smtp = SmtpServer::started();
    w.request(mail("k/dup", "dup@example.com")).await;
    // A retried command appends the same request again on another stream.
    w.request(mail("k/dup", "dup@example.com")).await;
    for i in 0..10 {
        w.request(mail(&format!("k/batch/{i}"), &format!("p{i}@example.com")))
            .await;
    }
    let (a, b) = (w.smtp_mailer(smtp.port), w.smtp_mailer(smtp.port));
    let (ra, rb) = tokio::join!(a.deliver_due(), b.deliver_due());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    let mut sent: Vec<String> = ra.sent.iter().chain(&rb.sent).cloned().collect();
    sent.sort();
    let mut expected: Vec<String> = (0..10).map(|i| format!("k/batch/{i}")).collect();
    expected.push("k/dup".into());
    expected.sort();
    assert_eq!(sent, expected);

    let mut to: Vec<String> = smtp.received().into_iter().flat_map(|r| r.to).collect();
    to.sort();
    let mut expected_to: Vec<String> = (0..10).map(|i| format!("p{i}@example.com")).collect();
    expected_to.push("dup@example.com".into());
    expected_to.sort();
    assert_eq!(to, expected_to);
}

fn eml_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn without_smtp_mail_is_written_as_eml_files_and_a_resend_overwrites() {
    let w = World::new().await;
    let data = tempfile::tempdir().unwrap();
    let config = Config::for_tests(data.path());
    assert!(config.smtp_url.is_none());
    let mailer = Mailer::from_config(w.store.clone(), &config, Arc::new(w.clock.clone())).unwrap();
    let key = "inquiry-received/0003/applicant";
    w.request(mail(key, "jiro@example.com")).await;

    assert_eq!(
        mailer.deliver_due().await.unwrap().sent,
        vec![key.to_owned()]
    );
    let outbox = config.outbox_dir();
    assert_eq!(eml_files(&outbox), vec![eml_file_name(key)]);
    let first = std::fs::read(outbox.join(eml_file_name(key))).unwrap();
    let m = parse(&first);
    assert_eq!(m.subject(), Some(SUBJECT));
    assert_eq!(
        m.body_text(0).map(|t| crlf_to_lf(&t)).as_deref(),
        Some(TEXT)
    );
    assert_eq!(m.body_html(0).as_deref(), Some(HTML));
    assert_eq!(
        m.to().unwrap().first().unwrap().address(),
        Some("jiro@example.com")
    );
    assert_eq!(
        m.message_id(),
        Some(message_id(key, "example.jp").trim_matches(['<', '>']))
    );
    let from = m.from().unwrap().first().unwrap();
    assert_eq!(from.name(), Some(config.words.site_name.as_str()));

    // The same key requested again: still one file.
    w.request(mail(key, "jiro@example.com")).await;
    assert_eq!(mailer.deliver_due().await.unwrap().attempted(), 0);

    // A crash after writing but before recording "sent": the mail is written again,
    // over the same file, byte for byte.
    sqlx::query("UPDATE mail_deliveries SET status = 'pending', sent_at = NULL WHERE key = $1")
        .bind(key)
        .execute(&w.db.pool)
        .await
        .unwrap();
    w.clock.advance(chrono::Duration::hours(1));
    assert_eq!(
        mailer.deliver_due().await.unwrap().sent,
        vec![key.to_owned()]
    );
    assert_eq!(eml_files(&outbox), vec![eml_file_name(key)]);
    let again = std::fs::read(outbox.join(eml_file_name(key))).unwrap();
    assert!(again == first, "a re-send writes the same bytes");
}

#[tokio::test]
async fn the_run_loop_delivers_new_mail_and_stops_on_shutdown() {
    let w = World::new().await;
    let smtp = SmtpServer::started();
    let shutdown = CancellationToken::new();
    let projector = tokio::spawn(
        Projector::new(w.store.events().clone())
            .with(MailOutboxProjection::new())
            .run(shutdown.clone()),
    );
    let mailer = tokio::spawn(w.smtp_mailer(smtp.port).run(shutdown.clone()));

    // Appended only: the running projector and mailer must do the rest.
    let event = NewEvent::encode(
        Uuid::new_v4(),
        &CaseEvent::MailRequested(mail("k/run", "run@example.com")),
        Metadata::new("test", Uuid::new_v4()),
    )
    .unwrap();
    w.store
        .events()
        .append(
            &StreamName::new("consultation", Uuid::new_v4()),
            ExpectedVersion::NoStream,
            vec![event],
        )
        .await
        .unwrap();

    let mut accepted = smtp.state.accepted.subscribe();
    tokio::time::timeout(Duration::from_secs(60), accepted.wait_for(|n| *n >= 1))
        .await
        .expect("the running mailer sends the mail")
        .unwrap();

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), mailer)
        .await
        .expect("the mailer stops on shutdown")
        .unwrap()
        .unwrap();
    projector.await.unwrap().unwrap();
    // The mail in flight at shutdown was finished and recorded before the loop ended.
    assert_eq!(w.delivery("k/run").await.status, DeliveryStatus::Sent);
    assert_eq!(smtp.received().len(), 1);
}

// ---------------------------------------------------------------------------
// Mail queued without its text (`MailQueued`), rendered at send time.

/// A service's stream: a fact, then the mail it queues.
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
enum NoteEvent {
    Noted { name: String, email: String },
    MailQueued(kujira_domain::mail::MailQueued),
}

/// A service's templates: renders the `noted` mail from the `Noted` fact.
#[derive(Debug)]
struct NoteTemplates;

impl kujira_domain::mail::RenderMail for NoteTemplates {
    fn templates(&self) -> &[&'static str] {
        &["noted"]
    }

    fn render(
        &self,
        _mail: &kujira_domain::mail::MailQueued,
        facts: &kujira_domain::mail::MailFacts<'_>,
    ) -> Result<MailContent, kujira_domain::mail::RenderError> {
        let (_, fact) = facts
            .stream
            .iter()
            .find(|(t, _)| t == "Noted")
            .ok_or_else(|| kujira_domain::mail::RenderError::NoFacts("noted".into()))?;
        let name = fact["name"].as_str().unwrap_or_default();
        Ok(MailContent {
            to: vec![fact["email"].as_str().unwrap_or_default().to_owned()],
            subject: format!("【くじらと。】{name} 様、受け付けました"),
            text: format!("{name} 様\n\n受け付けました。"),
            html: Some(format!("<p>{name} 様</p>")),
            attachments: vec![],
            unsubscribe_url: None,
        })
    }
}

async fn queue_note(w: &World, key: &str) {
    let stream = StreamName::new("note", Uuid::new_v4());
    let meta = Metadata::new("test", Uuid::new_v4());
    let events = vec![
        NewEvent::encode(
            Uuid::new_v4(),
            &NoteEvent::Noted {
                name: "柏崎 花子".into(),
                email: "hanako@example.com".into(),
            },
            meta.clone(),
        )
        .unwrap(),
        NewEvent::encode(
            Uuid::new_v4(),
            &NoteEvent::MailQueued(kujira_domain::mail::MailQueued::to_staff(
                key.into(),
                "noted",
                None,
            )),
            meta,
        )
        .unwrap(),
    ];
    let appended = w
        .store
        .events()
        .append(&stream, ExpectedVersion::NoStream, events)
        .await
        .unwrap();
    w.project_through(appended.last_position).await;
}

#[tokio::test]
async fn a_queued_mail_is_rendered_from_its_stream_when_it_is_sent() {
    let w = World::new().await;
    let smtp = SmtpServer::started();
    let key = "note/1/applicant";
    queue_note(&w, key).await;

    // A worker without the renderer keeps the mail for later: nothing is lost.
    let without = w.smtp_mailer(smtp.port);
    let report = without.deliver_due().await.unwrap();
    assert_eq!(report.deferred, vec![key.to_owned()]);
    assert!(smtp.received().is_empty());
    assert_eq!(w.delivery(key).await.status, DeliveryStatus::Pending);

    // With it, once the retry is due, the mail is rendered and sent once.
    let with = w
        .smtp_mailer(smtp.port)
        .with_renderer(Arc::new(NoteTemplates));
    w.clock.advance(chrono::Duration::hours(2));
    let report = with.deliver_due().await.unwrap();
    assert_eq!(report.sent, vec![key.to_owned()]);
    let received = smtp.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].to, vec!["hanako@example.com".to_owned()]);
    let m = parse(&received[0].data);
    assert_eq!(
        m.subject(),
        Some("【くじらと。】柏崎 花子 様、受け付けました")
    );
    assert_eq!(
        m.body_text(0).map(|t| crlf_to_lf(&t)).as_deref(),
        Some("柏崎 花子 様\n\n受け付けました。")
    );
    assert_eq!(w.delivery(key).await.template, "noted");
    w.clock.advance(chrono::Duration::days(1));
    assert_eq!(with.deliver_due().await.unwrap().attempted(), 0);
}
