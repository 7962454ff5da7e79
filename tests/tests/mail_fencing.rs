//! Exactly once per key, on the sending side: two mail workers at once against an
//! SMTP server that answers slowly (its DATA step held by the test), with the clock
//! moved past the lease in between; and an SMTP outage.

mod mail_support;

use chrono::Duration;
use kujira_domain::person::PersonEvent;
use kujira_scheduler::DeliveryStatus;
use mail_support::*;
use mailin_embedded::{Response, response};

/// The lease the mailer takes (the default policy): 10 minutes.
fn lease() -> Duration {
    kujira_scheduler::RetryPolicy::default().lease
}

#[tokio::test]
async fn a_slow_batch_leases_each_mail_from_the_clock_at_its_claim() {
    let w = World::new().await;
    let smtp = SmtpServer::started();
    let p = w.person().await;
    w.receipt(p, "k/1").await;
    w.receipt(p, "k/2").await;
    let mut first = smtp.hold_next_data();
    let mut second = smtp.hold_next_data();

    // Worker A takes k/1 at t0; the server sits on its DATA step.
    let a = w.mailer(smtp.port);
    let a = tokio::spawn(async move { a.deliver_due().await });
    first.reached("worker A's first message").await;

    // Time passes beyond A's first lease before the server answers; A then goes on
    // to k/2 in the same batch, and is held again.
    w.clock.advance(lease() + Duration::minutes(1));
    first.release(response::OK);
    second.reached("worker A's second message").await;
    let held = w.delivery("k/2").await;
    assert_eq!(
        held.next_attempt_at,
        Some(t0() + lease() + Duration::minutes(1) + lease()),
        "k/2's lease runs from the time it was claimed, not from the start of the batch"
    );
    assert!(held.claim.is_some());

    // Worker B, meanwhile, finds nothing due: k/1 is sent, k/2 is A's.
    let b = w.mailer(smtp.port);
    let rb = b.deliver_due().await.unwrap();
    assert_eq!(rb.attempted(), 0, "{rb:?}");

    second.release(response::OK);
    let ra = tokio::time::timeout(DEADLINE, a)
        .await
        .expect("worker A finishes")
        .unwrap()
        .unwrap();
    assert_eq!(ra.sent, vec!["k/1".to_owned(), "k/2".to_owned()]);
    assert_eq!(smtp.received().len(), 2, "each key delivered once");
    for key in ["k/1", "k/2"] {
        let d = w.delivery(key).await;
        assert_eq!(
            (d.status, d.attempts, d.claim),
            (DeliveryStatus::Sent, 1, None)
        );
    }
}

#[tokio::test]
async fn an_overtaken_worker_s_late_answer_is_dropped_and_the_lease_holder_s_outcome_stands() {
    let w = World::new().await;
    let smtp = SmtpServer::started();
    let p = w.person().await;
    w.follow_up(p, "k/slow").await;
    let mut a_gate = smtp.hold_next_data();
    let mut b_gate = smtp.hold_next_data();

    // Worker A claims the mail; the server holds A's DATA step.
    let a = w.mailer(smtp.port);
    let a = tokio::spawn(async move { a.deliver_due().await });
    a_gate.reached("worker A's message").await;
    let a_claim = w.delivery("k/slow").await.claim.expect("A's claim");

    // A's lease runs out while the server still sits on it: worker B takes the mail
    // over with a claim of its own, and is held too.
    w.clock.advance(lease() + Duration::minutes(1));
    let b = w.mailer(smtp.port);
    let b = tokio::spawn(async move { b.deliver_due().await });
    b_gate.reached("worker B's message").await;
    let b_row = w.delivery("k/slow").await;
    let b_claim = b_row.claim.expect("B's claim");
    assert_ne!(a_claim, b_claim);
    assert_eq!(b_row.attempts, 2);

    // The server finally answers A, with a permanent rejection: A's outcome comes
    // too late and must change nothing (neither "failed" nor a bounce).
    a_gate.release(Response::custom(
        554,
        "5.1.1 transaction failed after timeout".into(),
    ));
    let ra = tokio::time::timeout(DEADLINE, a)
        .await
        .expect("worker A finishes")
        .unwrap()
        .unwrap();
    assert_eq!(ra.overtaken, vec!["k/slow".to_owned()], "{ra:?}");
    assert!(ra.failed.is_empty() && ra.sent.is_empty());
    let mid = w.delivery("k/slow").await;
    assert_eq!(
        (
            mid.status,
            mid.claim,
            mid.last_error.as_deref(),
            mid.next_attempt_at
        ),
        (
            DeliveryStatus::Pending,
            Some(b_claim),
            None,
            b_row.next_attempt_at
        ),
        "B's lease is untouched by A's late answer"
    );
    assert!(
        w.person_events(p).await.is_empty(),
        "the overtaken worker records no bounce"
    );

    // B's send goes through: the key is delivered once and recorded once, by B.
    b_gate.release(response::OK);
    let rb = tokio::time::timeout(DEADLINE, b)
        .await
        .expect("worker B finishes")
        .unwrap()
        .unwrap();
    assert_eq!(rb.sent, vec!["k/slow".to_owned()]);
    assert_eq!(smtp.received().len(), 1, "delivered once");
    let d = w.delivery("k/slow").await;
    assert_eq!(
        (d.status, d.attempts, d.claim, d.sent_at),
        (
            DeliveryStatus::Sent,
            2,
            None,
            Some(t0() + lease() + Duration::minutes(1))
        )
    );
    assert!(
        !w.person_events(p)
            .await
            .iter()
            .any(|e| matches!(e, PersonEvent::AddressBounced(_)))
    );
}

/// Renders like [`NoteTemplates`], but so slowly that the clock moves by `by`.
#[derive(Debug)]
struct SlowTemplates {
    clock: kujira_config::FixedClock,
    by: Duration,
}

impl kujira_domain::mail::RenderMail for SlowTemplates {
    fn templates(&self) -> &[&'static str] {
        NoteTemplates.templates()
    }

    fn render(
        &self,
        mail: &kujira_domain::mail::MailQueued,
        facts: &kujira_domain::mail::MailFacts<'_>,
    ) -> Result<kujira_domain::mail::MailContent, kujira_domain::mail::RenderError> {
        self.clock.advance(self.by);
        NoteTemplates.render(mail, facts)
    }
}

#[tokio::test]
async fn a_worker_whose_lease_ran_out_before_the_send_does_not_send() {
    let w = World::new().await;
    let smtp = SmtpServer::started();
    let p = w.person().await;
    w.receipt(p, "k/late").await;

    // Rendering takes longer than the lease: by then another worker may hold the
    // mail, so this one backs out instead of handing it to the server.
    let slow = kujira_scheduler::Mailer::new(
        w.store.clone(),
        kujira_scheduler::Transport::smtp(&format!("smtp://127.0.0.1:{}", smtp.port)).unwrap(),
        kujira_scheduler::Sender::from_config(&w.config).unwrap(),
        std::sync::Arc::new(w.clock.clone()),
    )
    .with_renderer(std::sync::Arc::new(SlowTemplates {
        clock: w.clock.clone(),
        by: lease() + Duration::seconds(1),
    }));
    let r = slow.deliver_due().await.unwrap();
    assert_eq!(r.deferred, vec!["k/late".to_owned()]);
    assert!(smtp.received().is_empty(), "nothing was handed over");
    let d = w.delivery("k/late").await;
    assert_eq!(
        (d.status, d.claim, d.next_attempt_at),
        (DeliveryStatus::Pending, None, Some(w.clock_now())),
        "released, due again at once"
    );

    // A worker that renders in time sends it, once.
    let r = w.mailer(smtp.port).deliver_due().await.unwrap();
    assert_eq!(r.sent, vec!["k/late".to_owned()]);
    assert_eq!(smtp.received().len(), 1);
}

#[tokio::test]
async fn an_smtp_outage_loses_nothing_and_two_workers_deliver_each_mail_once() {
    let w = World::new().await;
    let smtp = SmtpServer::reserve();
    let p = w.person().await;
    let keys: Vec<String> = (0..6).map(|i| format!("k/outage/{i}")).collect();
    for k in &keys {
        w.receipt(p, k).await;
    }
    let (a, b) = (w.mailer(smtp.port), w.mailer(smtp.port));

    // The server is down: every attempt is deferred, none is lost or failed.
    let (ra, rb) = tokio::join!(a.deliver_due(), b.deliver_due());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra.deferred.len() + rb.deferred.len(), keys.len());
    assert!(ra.sent.is_empty() && rb.sent.is_empty() && ra.failed.is_empty());
    w.clock.advance(Duration::minutes(1));
    let (ra, rb) = tokio::join!(a.deliver_due(), b.deliver_due());
    assert_eq!(
        ra.unwrap().deferred.len() + rb.unwrap().deferred.len(),
        keys.len()
    );
    let status = kujira_scheduler::outbox_status_at(&w.db.pool, w.clock_now())
        .await
        .unwrap();
    assert_eq!((status.pending, status.failed, status.retrying), (6, 0, 6));

    // It comes back: once the retries are due, each mail goes exactly once.
    smtp.start();
    w.clock.advance(Duration::minutes(2));
    let (ra, rb) = tokio::join!(a.deliver_due(), b.deliver_due());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    let mut sent: Vec<String> = ra.sent.into_iter().chain(rb.sent).collect();
    sent.sort();
    assert_eq!(sent, keys);
    w.clock.advance(Duration::hours(3));
    let (ra, rb) = tokio::join!(a.deliver_due(), b.deliver_due());
    assert_eq!(ra.unwrap().attempted() + rb.unwrap().attempted(), 0);
    assert_eq!(smtp.received().len(), keys.len());
    for k in &keys {
        let d = w.delivery(k).await;
        assert_eq!((d.status, d.attempts), (DeliveryStatus::Sent, 3), "{k}");
    }
}

#[tokio::test]
async fn the_workers_of_serve_send_side_by_side_and_each_mail_once() {
    let w = World::new().await;
    let smtp = SmtpServer::started();
    let p = w.person().await;
    let keys: Vec<String> = (0..12).map(|i| format!("k/{i}")).collect();
    for key in &keys {
        w.receipt(p, key).await;
    }
    // The first message to reach the server is held there.
    let mut held = smtp.hold_next_data();

    let shutdown = tokio_util::sync::CancellationToken::new();
    let workers = tokio::spawn(w.mailer(smtp.port).run_workers(3, shutdown.clone()));
    held.reached("one worker's first message").await;

    // While that worker waits on the server, the others send everything else: one
    // slow message no longer holds up the rest of the queue.
    let mut accepted = smtp.state.accepted.subscribe();
    tokio::time::timeout(DEADLINE, accepted.wait_for(|n| *n >= keys.len() - 1))
        .await
        .expect("the other workers send the other 11 mails while one is held")
        .unwrap();
    held.release(response::OK);
    tokio::time::timeout(DEADLINE, accepted.wait_for(|n| *n >= keys.len()))
        .await
        .expect("the held mail is sent once released")
        .unwrap();

    shutdown.cancel();
    tokio::time::timeout(DEADLINE, workers)
        .await
        .expect("the workers stop on shutdown")
        .unwrap()
        .unwrap();
    assert_eq!(smtp.received().len(), keys.len(), "each mail sent once");
    for key in &keys {
        let d = w.delivery(key).await;
        assert_eq!(
            (d.status, d.attempts, d.claim),
            (DeliveryStatus::Sent, 1, None),
            "{key}: claimed by one worker only"
        );
    }
}
