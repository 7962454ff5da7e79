//! The one command path (`kujira_store::execute`) against a real PostgreSQL:
//! concurrent commands, retries and stale views.

mod support;

use kujira_domain::decider::Decider;
use kujira_eventlog::StreamName;
use kujira_store::{CommandContext, CommandError, execute};
use support::*;
use uuid::Uuid;

/// A counter: enough of an aggregate to exercise the command path.
#[derive(Debug)]
struct Counter;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", content = "data")]
enum CounterEvent {
    Added { n: u32 },
    Noted { note: String },
}

impl Decider for Counter {
    type State = u32;
    type Command = u32;
    type Event = CounterEvent;
    type Error = &'static str;
    fn decide(state: &u32, n: &u32) -> Result<Vec<CounterEvent>, &'static str> {
        if state + n > 100 {
            return Err("too much");
        }
        Ok(vec![CounterEvent::Added { n: *n }])
    }
    fn evolve(state: u32, e: &CounterEvent) -> u32 {
        match e {
            CounterEvent::Added { n } => state + n,
            CounterEvent::Noted { .. } => state,
        }
    }
}

impl kujira_domain::decider::Aggregate for Counter {
    fn significant(e: &CounterEvent) -> bool {
        matches!(e, CounterEvent::Added { .. })
    }
}

#[tokio::test]
async fn concurrent_commands_all_land_once_and_the_decider_sees_every_one() {
    let db = db().await;
    let store = store(&db).await;
    let stream = StreamName::new("counter", Uuid::now_v7());
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (store, stream) = (store.clone(), stream.clone());
        tasks.push(tokio::spawn(async move {
            // No shared cache: every task is its own "process".
            execute::<Counter>(&store, &stream, &CommandContext::new("t"), None, |s| {
                Counter::decide(s, &10)
            })
            .await
        }));
    }
    let mut ok = 0;
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(CommandError::Refused("too much")) => refused += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(
        (ok, refused),
        (10, 10),
        "the limit of 100 holds under races"
    );
    let (state, version) = kujira_store::load::<Counter>(&store, &stream, None)
        .await
        .unwrap();
    assert_eq!((state, version), (100, 10));
}

#[tokio::test]
async fn a_retried_command_replays_and_a_stale_view_is_refused() {
    let db = db().await;
    let store = store(&db).await;
    let stream = StreamName::new("counter", Uuid::now_v7());
    let ctx = CommandContext::new("staff:1").command_id(Uuid::now_v7());
    let first = execute::<Counter>(&store, &stream, &ctx, None, |s| Counter::decide(s, &5))
        .await
        .unwrap();
    assert_eq!((first.version, first.replayed), (1, false));
    // The same request again (a double click): nothing new.
    let again = execute::<Counter>(&store, &stream, &ctx, None, |_| {
        Ok(vec![CounterEvent::Added { n: 5 }])
    })
    .await
    .unwrap();
    assert_eq!((again.version, again.state), (1, 5));

    // Someone saw version 1; another change lands; their action is refused.
    execute::<Counter>(
        &store,
        &stream,
        &CommandContext::new("staff:2"),
        None,
        |s| Counter::decide(s, &1),
    )
    .await
    .unwrap();
    let stale = execute::<Counter>(
        &store,
        &stream,
        &CommandContext::new("staff:1").seen(1),
        None,
        |s| Counter::decide(s, &1),
    )
    .await;
    assert!(
        matches!(
            stale,
            Err(CommandError::Stale {
                seen: 1,
                current: 2
            })
        ),
        "{stale:?}"
    );
    // Bookkeeping appended meanwhile does not make a view stale.
    execute::<Counter>(
        &store,
        &stream,
        &CommandContext::new("system"),
        None,
        |_| {
            Ok(vec![CounterEvent::Noted {
                note: "mail".into(),
            }])
        },
    )
    .await
    .unwrap();
    let fine = execute::<Counter>(
        &store,
        &stream,
        &CommandContext::new("staff:1").seen(2),
        None,
        |s| Counter::decide(s, &1),
    )
    .await
    .unwrap();
    assert_eq!(fine.state, 7);

    // A staff double click: the same command with the same version seen comes
    // back after its first copy landed. That is a replay, not someone else's change.
    let click = CommandContext::new("staff:1")
        .command_id(Uuid::now_v7())
        .seen(fine.version);
    let once = execute::<Counter>(&store, &stream, &click, None, |s| Counter::decide(s, &1))
        .await
        .unwrap();
    let twice = execute::<Counter>(&store, &stream, &click, None, |s| Counter::decide(s, &1))
        .await
        .unwrap();
    assert!(!once.replayed && twice.replayed, "{twice:?}");
    assert_eq!((twice.state, twice.version), (8, once.version));
}
