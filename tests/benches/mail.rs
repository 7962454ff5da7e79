//! The outbox's mail rate against a local SMTP server (mailin-embedded), as a ratio
//! against a baseline measured in the same run on the same server: lettre's SMTP
//! transport (the very `AsyncSmtpTransport`, pool and timeouts the mailer uses)
//! sending one prebuilt message over and over, with nothing else to do.
//!
//! The outbox does per mail what the baseline does not: claim the delivery (lease
//! and token), read the person's stream for their state, read and decrypt the facts
//! the mail is rendered from, render it, build the MIME message, and record the
//! outcome behind the claim's fence.
//!
//! Run with `cargo bench -p kujira-tests --bench mail`. `BENCH_MAILS` sets the mails
//! per phase (default 2000). Phases alternate baseline, outbox, baseline, outbox,
//! baseline; each rate is the mean of its phases.

use std::sync::Arc;
use std::time::Instant;

use kujira_config::{Config, SystemClock};
use kujira_domain::mail::{MailContent, MailFacts, MailQueued, RenderError, RenderMail};
use kujira_eventlog::{ExpectedVersion, Metadata, NewEvent, StreamName};
use kujira_pgembed::testing::TestDb;
use kujira_projector::Projector;
use kujira_scheduler::{
    MailOutboxProjection, Mailer, Sender, Transport, UnsubscribeLinks, build_message,
};
use mailin_embedded::{Handler, Server, SslConfig};
use uuid::Uuid;

#[derive(Clone)]
struct Accept;

impl Handler for Accept {}

fn smtp_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut server = Server::new(Accept);
    server
        .with_name("smtp.bench")
        .with_ssl(SslConfig::None)
        .unwrap()
        .with_num_threads(8)
        .with_tcp_listener(listener);
    std::thread::spawn(move || {
        let _ = server.serve();
    });
    port
}

#[derive(serde::Serialize)]
#[serde(tag = "type", content = "data")]
enum NoteEvent {
    Noted {
        person_id: Uuid,
        personal: serde_json::Value,
    },
    MailQueued(MailQueued),
}

/// Renders an auto-reply-sized mail from the `Noted` fact.
#[derive(Debug)]
struct Templates;

const TEXT: &str =
    "柏崎市への移住相談を受け付けました。担当の移住コンシェルジュから3営業日以内にご連絡します。\n";

impl RenderMail for Templates {
    fn templates(&self) -> &[&'static str] {
        &["bench"]
    }

    fn render(&self, mail: &MailQueued, facts: &MailFacts<'_>) -> Result<MailContent, RenderError> {
        let (_, fact) = facts
            .stream
            .iter()
            .find(|(t, _)| t == "Noted")
            .ok_or_else(|| RenderError::NoFacts(mail.key.clone()))?;
        let p = &fact["personal"];
        Ok(content(
            p["name"].as_str().unwrap_or_default(),
            p["email"].as_str().unwrap_or_default(),
        ))
    }
}

fn content(name: &str, email: &str) -> MailContent {
    MailContent {
        to: vec![format!("{name} <{email}>")],
        subject: "【くじらと。】移住相談を受け付けました（受付番号 2026-0001）".into(),
        text: format!("{name} 様\n\n{}", TEXT.repeat(12)),
        html: Some(format!("<p>{name} 様</p><p>{}</p>", TEXT.repeat(12))),
        attachments: vec![],
        unsubscribe_url: None,
    }
}

fn mails_per_phase() -> usize {
    std::env::var("BENCH_MAILS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000)
}

/// Queues `n` mails, each about a person of its own, and projects them.
async fn queue(store: &kujira_store::Store, projector: &Projector, phase: usize, n: usize) {
    for i in 0..n {
        let person = store.vault().new_person().await.unwrap();
        let stream = StreamName::new("note", Uuid::new_v4());
        let mail = MailQueued::to_applicant(format!("bench/{phase}/{i}"), "bench", person);
        let meta = Metadata::new("bench", Uuid::new_v4());
        let events = vec![
            NewEvent::encode(
                Uuid::new_v4(),
                &NoteEvent::Noted {
                    person_id: person,
                    personal: serde_json::json!({
                        "name": "柏崎 花子",
                        "email": format!("p{i}@example.com"),
                    }),
                },
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
        store
            .append(&stream, ExpectedVersion::NoStream, events)
            .await
            .unwrap();
    }
    projector.catch_up().await.unwrap();
}

/// Mails/s of `workers` senders handing one prebuilt message to `transport`.
async fn baseline(transport: &Transport, n: usize, workers: usize) -> f64 {
    let sender = Sender::new("くじらと。", "kujira@example.jp").unwrap();
    let message = Arc::new(
        build_message(
            &sender,
            "bench/baseline",
            &content("柏崎 花子", "p@example.com"),
            chrono::Utc::now(),
        )
        .unwrap(),
    );
    let started = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let transport = transport.clone();
            let message = message.clone();
            tokio::spawn(async move {
                for _ in (w..n).step_by(workers) {
                    transport.send("bench/baseline", &message).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// Mails/s of `workers` mailers working through `n` queued mails.
async fn outbox(mailer: &Mailer, n: usize, workers: usize) -> f64 {
    let started = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let mailer = mailer.clone();
            tokio::spawn(async move {
                let mut sent = 0;
                loop {
                    let r = mailer.deliver_due().await.unwrap();
                    assert!(r.failed.is_empty() && r.deferred.is_empty(), "{r:?}");
                    sent += r.sent.len();
                    if r.attempted() == 0 {
                        return sent;
                    }
                }
            })
        })
        .collect();
    let mut sent = 0;
    for t in tasks {
        sent += t.await.unwrap();
    }
    assert_eq!(sent, n, "every queued mail is sent once");
    n as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let db = TestDb::durable(&[
            &kujira_eventlog::MIGRATOR,
            &kujira_store::MIGRATOR,
            &kujira_scheduler::MIGRATOR,
        ])
        .await;
        let master = Config::for_tests(std::path::Path::new("/nonexistent")).master_key;
        let store = kujira_store::Store::open(db.pool.clone(), &master)
            .await
            .unwrap();
        let projector = Projector::new(store.events().clone()).with(MailOutboxProjection::new());
        let port = smtp_server();
        let url = format!("smtp://127.0.0.1:{port}");
        let config = Config::for_tests(std::path::Path::new("/nonexistent"));
        let n = mails_per_phase();
        let eml = tempfile::tempdir().unwrap();
        let transports = [
            ("SMTP (lettre → mailin)", Transport::smtp(&url).unwrap()),
            (".eml files (fsync each)", Transport::file(eml.path())),
        ];
        println!("mail outbox vs the bare transport, {n} mails per phase");
        let mut phase = 0;
        for (name, transport) in transports {
            let mailer = Mailer::new(
                store.clone(),
                transport.clone(),
                Sender::from_config(&config).unwrap(),
                Arc::new(SystemClock),
            )
            .with_unsubscribe(UnsubscribeLinks::from_config(&config))
            .with_renderer(Arc::new(Templates));
            for workers in [1, 4] {
                let mut base = Vec::new();
                let mut ours = Vec::new();
                base.push(baseline(&transport, n, workers).await);
                for _ in 0..2 {
                    phase += 1;
                    queue(&store, &projector, phase, n).await;
                    ours.push(outbox(&mailer, n, workers).await);
                    base.push(baseline(&transport, n, workers).await);
                }
                let b = base.iter().sum::<f64>() / base.len() as f64;
                let o = ours.iter().sum::<f64>() / ours.len() as f64;
                println!(
                    "{name}, {workers} worker(s): transport alone {b:.0} mails/s, outbox {o:.0} mails/s, ratio {:.2}  (baseline phases {:?}, outbox phases {:?})",
                    o / b,
                    base.iter().map(|r| r.round()).collect::<Vec<_>>(),
                    ours.iter().map(|r| r.round()).collect::<Vec<_>>(),
                );
            }
        }
    });
}
