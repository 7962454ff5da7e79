//! `kujira projections status|rebuild` and `/readyz` on the real binary, while
//! `kujira serve` runs in another process on the same data directory: a projection
//! that fails is named by `/readyz` (503) and by `status`; a rebuild swaps new
//! tables in under the running service; the mail outbox refuses to be rebuilt.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::{kujira, remove_data, start, stdout};

use kujira_pgembed::testing::target_dir;
use kujira_pgembed::{Cluster, ClusterOptions};
use sqlx::Connection;

/// Polls `/readyz` until `check` accepts it, for at most 30 s.
async fn readyz_until(
    client: &reqwest::Client,
    url: &str,
    what: &str,
    check: impl Fn(u16, &serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let res = client.get(format!("{url}/readyz")).send().await.unwrap();
        let status = res.status().as_u16();
        let body: serde_json::Value = res.json().await.unwrap();
        if check(status, &body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn add_tour(data: &Path, title: &str) -> String {
    let out = kujira(
        data,
        &[
            "tours",
            "add",
            "--title",
            title,
            "--kind",
            "day_trip",
            "--starts-at",
            "2099-02-14T09:00:00+09:00",
            "--ends-at",
            "2099-02-14T17:00:00+09:00",
            "--capacity-parties",
            "5",
            "--publish",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(&out).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn status_readyz_and_rebuild_while_serve_runs() {
    let data = target_dir().join(format!("kujira-projections-test-{}", std::process::id()));
    remove_data(&data);
    let client = reqwest::Client::new();
    let mut server = start(&data);
    let first = add_tour(&data, "親子で体験！柏崎の暮らし日帰りツアー");

    let body = readyz_until(&client, &server.url, "ready", |s, b| {
        s == 200 && b["projections"].to_string().contains("tours.catalogue")
    })
    .await;
    let names: Vec<&str> = body["projections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    // Every service registers its own; these two are the ones this test uses.
    assert!(
        names.contains(&"mail_outbox")
            && names.contains(&"tours.catalogue")
            && names.contains(&"scheduler.rules"),
        "{names:?}"
    );

    let out = kujira(&data, &["projections", "status"]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.starts_with("PROJECTION"), "{text}");
    assert!(
        text.contains("tours.catalogue") && text.contains("caught_up"),
        "{text}"
    );

    // An event the catalogue cannot decode (data that a bug wrote): the projection
    // stops on it, and says so, while the service keeps serving.
    let cluster = Cluster::start(&ClusterOptions {
        pgdata: data.join("pg"),
        os_user: None,
        durable: true,
    })
    .unwrap();
    let mut conn = sqlx::PgConnection::connect_with(&cluster.connect_options("kujira"))
        .await
        .unwrap();
    let bad: i64 = sqlx::query_scalar(
        "INSERT INTO events (event_id, stream_name, stream_version, event_type, data, metadata) \
         VALUES (gen_random_uuid(), 'tour-' || gen_random_uuid(), 1, 'TourPublished', \
                 '{\"at\": \"いつか\"}', \
                 '{\"actor\":\"test\",\"correlation_id\":\"00000000-0000-0000-0000-000000000000\",\"schema_version\":1}') \
         RETURNING position",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    // The rules read TourPublished too and may stop on it first: wait until the
    // catalogue has met it as well, not merely for the first 503.
    let body = readyz_until(&client, &server.url, "503 naming the catalogue", |s, b| {
        s == 503 && b["unready"].to_string().contains("tours.catalogue")
    })
    .await;
    let unready = body["unready"].to_string();
    assert!(
        unready.contains("tours.catalogue") && unready.contains(&format!("position {bad}")),
        "{body}"
    );
    assert!(
        !body.to_string().contains("いつか"),
        "no event data in /readyz: {body}"
    );
    let text = stdout(&kujira(&data, &["projections", "status"]));
    assert!(
        text.contains(&format!("failed on event TourPublished at position {bad}")),
        "{text}"
    );
    assert!(text.contains("error: "), "{text}");

    // Once the cause is gone (here: the bad event removed by hand), it carries on
    // by itself.
    sqlx::query("DELETE FROM events WHERE position = $1")
        .bind(bad)
        .execute(&mut conn)
        .await
        .unwrap();
    readyz_until(&client, &server.url, "ready again", |s, _| s == 200).await;

    // A rebuild under the running service.
    let out = kujira(&data, &["projections", "rebuild", "tours.catalogue"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout(&out).starts_with("rebuilt tours.catalogue (tour_catalogue): "),
        "{}",
        stdout(&out)
    );
    // The service reads the new table, and its projection keeps filling it.
    let second = add_tour(&data, "雪国の冬を体験する一泊ツアー");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let tours: serde_json::Value = client
            .get(format!("{}/api/v1/tours", server.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let ids = tours.to_string();
        if ids.contains(&first) && ids.contains(&second) {
            break;
        }
        assert!(Instant::now() < deadline, "{tours}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let out = kujira(&data, &["projections", "rebuild", "mail_outbox"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("projection mail_outbox cannot be rebuilt: its rows carry delivery state"),
        "{stderr}"
    );
    let out = kujira(&data, &["projections", "rebuild"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    assert!(
        text.contains("skipped mail_outbox: it cannot be rebuilt"),
        "{text}"
    );
    assert!(text.contains("rebuilt tours.catalogue"), "{text}");

    conn.close().await.ok();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(server.child.wait().unwrap().success());
    remove_data(&data);
}
