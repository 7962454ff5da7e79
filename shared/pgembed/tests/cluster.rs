//! The private cluster's life cycle on the machine's real PostgreSQL binaries.

use kujira_pgembed::testing::target_dir;
use kujira_pgembed::{Cluster, ClusterOptions, find_bindir};
use sqlx::{Connection, PgConnection};

#[test]
fn finds_the_server_binaries() {
    let dir = find_bindir().expect("the PostgreSQL server binaries are installed");
    for bin in ["initdb", "pg_ctl", "postgres"] {
        assert!(dir.join(bin).is_file(), "{bin} in {}", dir.display());
    }
}

#[tokio::test]
async fn creates_reuses_joins_and_stops_a_private_cluster() {
    let root = target_dir().join(format!("kujira-cluster-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let opts = ClusterOptions {
        pgdata: root.join("pg"),
        os_user: None,
        durable: false,
    };

    // First start: initdb, then start.
    let first = tokio::task::spawn_blocking({
        let opts = opts.clone();
        move || Cluster::start(&opts)
    })
    .await
    .unwrap()
    .unwrap();
    assert!(first.started_here());
    first.ensure_database("app").await.unwrap();
    let mut c = PgConnection::connect_with(&first.connect_options("app"))
        .await
        .unwrap();
    sqlx::query("CREATE TABLE kept (v text)")
        .execute(&mut c)
        .await
        .unwrap();
    sqlx::query("INSERT INTO kept VALUES ('柏崎')")
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();

    // A second process on the same directory joins the running server.
    let second = tokio::task::spawn_blocking({
        let opts = opts.clone();
        move || Cluster::start(&opts)
    })
    .await
    .unwrap()
    .unwrap();
    assert!(
        !second.started_here(),
        "must join, not start a second server"
    );
    second.stop().unwrap(); // not ours: a no-op
    let c = PgConnection::connect_with(&first.connect_options("app"))
        .await
        .unwrap();
    c.close().await.unwrap();

    // Stop, then start again: the data is still there.
    first.stop().unwrap();
    assert!(
        PgConnection::connect_with(&first.connect_options("app"))
            .await
            .is_err()
    );
    let third = tokio::task::spawn_blocking({
        let opts = opts.clone();
        move || Cluster::start(&opts)
    })
    .await
    .unwrap()
    .unwrap();
    assert!(third.started_here());
    let mut c = PgConnection::connect_with(&third.connect_options("app"))
        .await
        .unwrap();
    let v: String = sqlx::query_scalar("SELECT v FROM kept")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(v, "柏崎");
    c.close().await.unwrap();
    third.stop().unwrap();
    // When running as root, the cluster may live in a linked directory.
    if let Ok(target) = std::fs::read_link(root.join("pg")) {
        let _ = std::fs::remove_dir_all(target);
    }
    let _ = std::fs::remove_dir_all(&root);
}
