//! Generating the log: persons and their keys through the vault, the planned facts
//! sealed and appended in the order they happened by four writers, and the
//! history's mail marked as sent.

use super::*;

/// Marks every pending delivery as sent when it was requested: the generated
/// history's mails went out long ago, and a service started on this database must
/// not spend the benchmark sending them.
pub async fn mark_history_sent(pool: &sqlx::PgPool) -> anyhow::Result<u64> {
    Ok(sqlx::query(
        "UPDATE mail_deliveries SET status = 'sent', sent_at = requested_at, attempts = 1, \
         last_attempt_at = requested_at, next_attempt_at = NULL, message_id = 'bench' \
         WHERE status = 'pending'",
    )
    .execute(pool)
    .await?
    .rows_affected())
}

pub(super) async fn generate(
    store: &Store,
    config: &Arc<Config>,
    target: u64,
    min_cases: u64,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let tz = config.timezone;
    let now = Utc::now();
    let anchor = now
        .with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(now);

    // Staff: an admin and the concierges, through the desk's own accounts.
    let desk = kujira_desk::DeskState::new(config.clone(), store.clone(), Arc::new(SystemClock));
    let meta = Metadata::new("cli", Uuid::now_v7());
    let new = |email: &str, name: &str, role: &str| {
        kujira_desk::users::NewUser::parse(email, name, role, PASSWORD)
            .map_err(|e| anyhow::anyhow!("bad bench account {email}: {e:?}"))
    };
    desk.users()
        .add(new(ADMIN, "管理 花子", "admin")?, &meta)
        .await?;
    let mut concierges = Vec::new();
    for i in 1..=CONCIERGES {
        let (family, _, _) = FAMILY[i % FAMILY.len()];
        let user = desk
            .users()
            .add(
                new(
                    &format!("concierge{i}@example.jp"),
                    &format!("{family} 担当{i}"),
                    "concierge",
                )?,
                &meta,
            )
            .await?;
        concierges.push(user.user_id);
    }
    desk.users()
        .add(new("viewer@example.jp", "市 職員", "viewer")?, &meta)
        .await?;

    // One tour for every hundred cases (1,000 for the default log).
    let tours = (target / 1000).max(min_cases / 100).max(10) as usize;
    let mut g = Generator::new(anchor, tz, concierges, target);
    for _ in 0..tours {
        g.tour();
    }
    while g.emitted() < target || (g.cases as u64) < min_cases {
        g.case();
    }
    g.person_facts();
    eprintln!(
        "  planned {} events: {} cases, {} tours, {} persons ({:.1} s)",
        g.emitted(),
        g.cases,
        g.tours,
        g.persons.len(),
        started.elapsed().as_secs_f64()
    );

    // Every person's key first, as intake and tours create them (by email).
    let vault = store.vault().clone();
    let emails: Vec<(usize, String)> = g
        .persons
        .iter()
        .enumerate()
        .map(|(i, p)| (i, p.email.clone()))
        .collect();
    let ids: Vec<(usize, Uuid)> = futures::stream::iter(emails)
        .map(|(i, email)| {
            let vault = vault.clone();
            async move {
                let email = Email::parse(&email).map_err(|e| anyhow::anyhow!("{email}: {e:?}"))?;
                let found = vault.person_for_email(&email).await?;
                anyhow::Ok((i, found.person_id))
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let mut person_ids = vec![Uuid::nil(); g.persons.len()];
    for (i, id) in ids {
        person_ids[i] = id;
    }
    eprintln!(
        "  created {} person keys ({:.1} s)",
        person_ids.len(),
        started.elapsed().as_secs_f64()
    );

    // Append, by time, four writers at once.
    let Planned {
        items,
        mut streams,
        person_streams,
        cases,
        tours,
        persons,
    } = g.finish();
    for (stream, person) in person_streams {
        streams[stream as usize] =
            StreamName::new(kujira_domain::person::CATEGORY, person_ids[person]);
    }
    let streams = Arc::new(streams);
    let person_ids = Arc::new(person_ids);
    let mut shards: Vec<Vec<Item>> = (0..WRITERS).map(|_| Vec::new()).collect();
    for item in items {
        shards[item.stream as usize % WRITERS].push(item);
    }
    let mut writers = tokio::task::JoinSet::new();
    for mut shard in shards {
        shard.sort_by_key(|i| i.at);
        let (store, streams, person_ids) = (store.clone(), streams.clone(), person_ids.clone());
        writers.spawn(async move { write(&store, &streams, &person_ids, shard).await });
    }
    let mut events = 0u64;
    while let Some(r) = writers.join_next().await {
        events += r??;
    }
    let generated_secs = started.elapsed().as_secs_f64();
    eprintln!("  appended {events} events ({generated_secs:.1} s)");

    // What the live service would hold: every projection caught up, the history's
    // mail sent, the rules run. (Each year's 連番 sequence starts after that year's
    // highest reference in the log when intake first needs it.)
    let caught = Instant::now();
    let projector = kujira::serve::projector(config, store);
    let applied = projector.catch_up().await?;
    let caught_up_secs = caught.elapsed().as_secs_f64();
    eprintln!("  every projection caught up: {applied} applications in {caught_up_secs:.1} s");
    let sent = mark_history_sent(store.pool()).await?;
    let rules = kujira::serve::rules(config, store);
    let ran = Instant::now();
    let reports = rules.run_all(anchor).await?;
    let queued: usize = reports.iter().map(|r| r.queued.len()).sum();
    projector.catch_up().await?;
    let sent_after = mark_history_sent(store.pool()).await?;
    eprintln!(
        "  {sent} history mails marked sent; the rules as of {anchor} queued {queued} more \
         in {:.1} s (marked sent: {sent_after})",
        ran.elapsed().as_secs_f64()
    );
    sqlx::raw_sql(
        "CREATE TABLE bench_seed (anchor timestamptz NOT NULL, events bigint NOT NULL, \
         cases bigint NOT NULL, tours bigint NOT NULL, persons bigint NOT NULL, \
         generated_secs float8 NOT NULL, caught_up_secs float8 NOT NULL)",
    )
    .execute(store.pool())
    .await?;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(store.pool())
        .await?;
    sqlx::query("INSERT INTO bench_seed VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(anchor)
        .bind(total)
        .bind(cases as i64)
        .bind(tours as i64)
        .bind(persons as i64)
        .bind(generated_secs)
        .bind(caught_up_secs)
        .execute(store.pool())
        .await?;
    // Two statements: several in one string run in one transaction, which VACUUM
    // refuses.
    for sql in ["VACUUM FULL events", "VACUUM ANALYZE"] {
        sqlx::raw_sql(sql).execute(store.pool()).await?;
    }
    Ok(())
}

/// Appends one writer's events in order, `TX_EVENTS` to a commit, each stream's
/// consecutive events in one append.
async fn write(
    store: &Store,
    streams: &[StreamName],
    person_ids: &[Uuid],
    items: Vec<Item>,
) -> anyhow::Result<u64> {
    let mut versions: HashMap<u32, u64> = HashMap::new();
    let mut items = items.into_iter().peekable();
    let mut total = 0u64;
    while items.peek().is_some() {
        let mut tx = store.events().begin().await?;
        let mut n = 0;
        // When each event happened, for its `recorded_at` (see below).
        let mut recorded: (Vec<String>, Vec<i64>, Vec<DateTime<Utc>>) = Default::default();
        while n < TX_EVENTS {
            let Some(first) = items.next() else { break };
            let stream = first.stream;
            let mut group = vec![first];
            while let Some(next) = items.peek()
                && next.stream == stream
            {
                group.extend(items.next());
            }
            let mut events = Vec::with_capacity(group.len());
            let v = versions.entry(stream).or_insert(0);
            for (i, item) in group.into_iter().enumerate() {
                recorded
                    .0
                    .push(streams[stream as usize].as_str().to_owned());
                recorded.1.push((*v + i as u64 + 1) as i64);
                recorded.2.push(item.at);
                let mut e = item.encode(person_ids)?;
                store.vault().seal(e.id, &mut e.data).await?;
                events.push(e);
            }
            let expected = if *v == 0 {
                ExpectedVersion::NoStream
            } else {
                ExpectedVersion::Exact(*v)
            };
            let count = events.len();
            tx.append(&streams[stream as usize], expected, events)
                .await
                .with_context(|| format!("cannot append to {}", streams[stream as usize]))?;
            *v += count as u64;
            n += count;
        }
        // A live log records each fact when it happens: give the generated ones their
        // own moment, so that what reads `recorded_at` (the outbox's request times,
        // and so the mails sent per month; the persons' last activity for retention)
        // sees years of history, not one afternoon. The dead row versions this
        // leaves are removed by the `VACUUM FULL` at the end.
        sqlx::query(
            "UPDATE events e SET recorded_at = u.at \
             FROM unnest($1::text[], $2::bigint[], $3::timestamptz[]) AS u(s, v, at) \
             WHERE e.stream_name = u.s AND e.stream_version = u.v",
        )
        .bind(&recorded.0)
        .bind(&recorded.1)
        .bind(&recorded.2)
        .execute(tx.conn())
        .await
        .context("cannot date the generated events")?;
        tx.commit().await?;
        total += n as u64;
    }
    Ok(total)
}
