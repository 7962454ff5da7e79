//! A database restored with pg_dump/pg_restore into a NEW PostgreSQL cluster, whose
//! transaction ids are far behind the ones stored in its events and checkpoints:
//! after the rebase that `kujira` runs at start, readers neither stall nor skip,
//! and projections resume from their checkpoints.

use std::process::Command;

use kujira_eventlog::{Checkpoint, EventStore};
use kujira_pgembed::testing::{TestDb, target_dir};
use kujira_pgembed::{Cluster, ClusterOptions, find_bindir};
use kujira_projector::Projector;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection};

mod support;
use support::{Recorder, append};

/// Stops the second cluster and removes its files, also when the test fails.
struct Second {
    cluster: Cluster,
    root: std::path::PathBuf,
}

impl Drop for Second {
    fn drop(&mut self) {
        let _ = self.cluster.stop();
        if let Ok(target) = std::fs::read_link(self.root.join("pg")) {
            let _ = std::fs::remove_dir_all(target);
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Runs a client binary (pg_dump, pg_restore) against `options`.
fn client(program: &str, options: &PgConnectOptions, args: &[&str]) {
    let bin = find_bindir().unwrap().join(program);
    let mut cmd = Command::new(&bin);
    match options.get_socket() {
        Some(dir) => cmd.arg("--host").arg(dir),
        None => cmd.arg("--host").arg(options.get_host()),
    };
    cmd.arg("--port")
        .arg(options.get_port().to_string())
        .arg("--username")
        .arg(options.get_username())
        .args(args);
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    assert!(
        out.status.success(),
        "{program} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn next_xid(conn: &mut PgConnection) -> i64 {
    sqlx::query_scalar("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint")
        .fetch_one(conn)
        .await
        .unwrap()
}

/// Every event from the start, in the global order, as a fresh reader sees it.
async fn read_everything(store: &EventStore) -> Vec<i64> {
    let mut at = Checkpoint::START;
    let mut positions = Vec::new();
    loop {
        let b = store.read_batch(at, 7, None).await.unwrap();
        positions.extend(b.events.iter().map(|e| e.position));
        assert!(b.next >= at, "the checkpoint never goes back");
        at = b.next;
        if !b.full {
            return positions;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restored_into_a_new_cluster_carries_on() {
    // The second cluster, fresh: its transaction ids start in the hundreds.
    let root = target_dir().join(format!("kujira-restore-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let opts = ClusterOptions {
        pgdata: root.join("pg"),
        os_user: std::env::var("KUJIRA_PG_USER").ok(),
        durable: false,
    };
    let second = tokio::task::spawn_blocking(move || Cluster::start(&opts))
        .await
        .unwrap()
        .unwrap();
    let second = Second {
        cluster: second,
        root: root.clone(),
    };
    let mut admin = PgConnection::connect_with(&second.cluster.connect_options("postgres"))
        .await
        .unwrap();
    let second_xid = next_xid(&mut admin).await;

    // The source database, on the shared test cluster, well ahead of it.
    let db = TestDb::new(&[&kujira_eventlog::MIGRATOR]).await;
    let source_xid = next_xid(&mut db.pool.acquire().await.unwrap()).await;
    let burn = (second_xid + 20_000 - source_xid).max(0);
    if burn > 0 {
        // Subtransactions that write each take an xid.
        sqlx::raw_sql(&format!(
            "CREATE TEMP TABLE burn (i int); \
             DO $$ BEGIN FOR i IN 1..{burn} LOOP \
               BEGIN INSERT INTO burn VALUES (i); EXCEPTION WHEN others THEN NULL; END; \
             END LOOP; END $$;"
        ))
        .execute(&mut *db.pool.acquire().await.unwrap())
        .await
        .unwrap();
    }
    let store = EventStore::new(db.pool.clone());
    let seen = Recorder::new("seen", Some(&["Counted"]));
    seen.create(&db.pool).await;
    let mut old = Vec::new();
    for chunk in [1..=4, 5..=7, 8..=10] {
        old.extend(append(&store, "Counted", chunk).await);
    }
    append(&store, "Ignored", [0]).await;
    Projector::new(store.clone())
        .with(Recorder::new("seen", Some(&["Counted"])))
        .catch_up()
        .await
        .unwrap();
    // Appended, not yet projected when the dump is taken.
    let pending = append(&store, "Counted", 11..=15).await;
    old.extend(&pending);

    // pg_dump, then pg_restore into the second cluster.
    let dump = root.join("kujira.dump");
    let dump_arg = dump.to_str().unwrap();
    client(
        "pg_dump",
        &db.options,
        &["--format=custom", "--file", dump_arg, &db.name],
    );
    second.cluster.ensure_database("restored").await.unwrap();
    client(
        "pg_restore",
        &second.cluster.connect_options("postgres"),
        &[
            "--no-owner",
            "--exit-on-error",
            "--dbname",
            "restored",
            dump_arg,
        ],
    );

    let pool = PgPoolOptions::new()
        .max_connections(5)
        .connect_with(second.cluster.connect_options("restored"))
        .await
        .unwrap();
    let stored_max: i64 = sqlx::query_scalar("SELECT max(transaction_id) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    let here = next_xid(&mut pool.acquire().await.unwrap()).await;
    assert!(
        stored_max > here,
        "the scenario: stored ids ({stored_max}) are ahead of the new cluster's ({here})"
    );
    // Without the rebase, nothing restored is readable yet: readers would stall.
    let restored = EventStore::new(pool.clone());
    assert!(
        restored
            .read_batch(Checkpoint::START, 100, None)
            .await
            .unwrap()
            .events
            .len()
            < old.len()
    );

    // What `kujira migrate` and every start do.
    let rebase = kujira_eventlog::rebase_if_restored(&pool)
        .await
        .unwrap()
        .expect("the restore is detected");
    assert_eq!(rebase.stored_max, stored_max);
    assert!(rebase.new_offset > rebase.old_offset);
    assert_eq!(
        kujira_eventlog::rebase_if_restored(&pool).await.unwrap(),
        None,
        "once is enough"
    );

    let new = append(&restored, "Counted", 16..=20).await;
    let projector = Projector::new(restored.clone()).with(seen);
    assert_eq!(
        projector.catch_up().await.unwrap(),
        10,
        "the projection resumes from its checkpoint: the 5 pending restored events and the 5 new ones"
    );
    let mut counted = old.clone();
    counted.extend(&new);
    assert_eq!(
        Recorder::seen(&pool, "seen").await,
        counted,
        "old and new events, each applied exactly once"
    );
    let everything: Vec<i64> = sqlx::query_scalar("SELECT position FROM events ORDER BY position")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(
        read_everything(&restored).await,
        everything,
        "a fresh reader sees every event once, the restored ones before the new ones"
    );
    assert_eq!(restored.reader_lag().await.unwrap().events_held_back, 0);

    pool.close().await;
    admin.close().await.ok();
    tokio::task::spawn_blocking(move || drop(second))
        .await
        .unwrap();
}
