//! The concierges' digest: what each concierge's lists hold this morning (new
//! cases, cases past their next action, cases without a first contact within three
//! business days) and the week's tours, compiled once per business day and mailed
//! to each active concierge.

use super::*;

impl Rules {
    pub(super) async fn plan_digest(
        &self,
        s: &Schedule,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Work> {
        let today = s.date(now);
        // Business days only, and only on the day itself: no digest for a past day.
        let Some(moment) = s.last_run(now).filter(|m| s.date(*m) == today) else {
            return Ok(Work::Nothing);
        };
        if !calendar::is_business_day(today) {
            return Ok(Work::Nothing);
        }
        let concierges = self.inner.staff.concierges().await?;
        if concierges.is_empty() {
            return Ok(Work::Nothing);
        }
        let previous = calendar::previous_business_day(today);
        let since = s
            .first_run_on_or_after(previous)
            .filter(|t| *t < moment)
            .unwrap_or_else(|| start_of_day(self.inner.config.timezone, previous));
        let wanted: Vec<String> = concierges
            .iter()
            .map(|c| keys::digest(today, c.user_id))
            .collect();
        let known = self.known_keys(&wanted).await?;
        let pending: Vec<&Concierge> = concierges
            .iter()
            .filter(|c| !known.contains(&keys::digest(today, c.user_id)))
            .collect();
        if pending.is_empty() {
            return Ok(Work::Nothing);
        }
        let lists = self.digest_lists(today, since, moment, now).await?;
        let tours = self.digest_tours(now).await?;
        let active: HashSet<Uuid> = concierges.iter().map(|c| c.user_id).collect();
        let digests = pending
            .into_iter()
            .map(|c| DigestCompiled {
                key: keys::digest(today, c.user_id),
                date: today,
                at: moment,
                since,
                recipient: c.clone(),
                sections: lists
                    .iter()
                    .map(|(item, rows)| section(*item, rows, c.user_id, &active))
                    .collect(),
                tours: tours.clone(),
            })
            .filter(|d| !d.is_empty())
            .collect();
        Ok(Work::Digest {
            date: today,
            digests,
        })
    }

    async fn digest_lists(
        &self,
        today: NaiveDate,
        since: DateTime<Utc>,
        moment: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<(DigestItem, Vec<ListRow>)>> {
        let settings = self.settings();
        let tz = self.inner.config.timezone;
        let pool = self.pool();
        let no_contact_cutoff = start_of_day(
            tz,
            calendar::sub_business_days(today, settings.digest_no_contact_business_days),
        );
        let idle_cutoff = now - Duration::days(i64::from(settings.digest_idle_days));
        // The nurture steps that came due in [since, moment): one range of the
        // clock per step. The day counts are numbers from the configuration.
        let follow_ups = settings
            .nurture_days
            .iter()
            .map(|d| {
                format!(
                    "(c.nurture_from >= $1 - interval '{d} days' \
                      AND c.nurture_from < $2 - interval '{d} days')"
                )
            })
            .collect::<Vec<_>>()
            .join(" OR ");
        let mut out = Vec::new();
        for item in DigestItem::ALL {
            let (filter, at, date, order, join) = match item {
                DigestItem::NewCases => (
                    "c.opened_at >= $1 AND c.opened_at < $2".to_owned(),
                    "c.opened_at",
                    "NULL::date",
                    "c.opened_at",
                    "",
                ),
                DigestItem::NoFirstContact => (
                    "c.last_contact_at IS NULL AND c.awaits_first_contact \
                     AND c.phase <> 'moved' AND c.opened_at < $1"
                        .to_owned(),
                    "c.opened_at",
                    "NULL::date",
                    "c.opened_at",
                    "",
                ),
                DigestItem::FollowUpsDue => (
                    format!("c.phase IN ('gathering', 'considering') AND ({follow_ups})"),
                    "c.nurture_from",
                    "NULL::date",
                    "c.nurture_from",
                    "",
                ),
                DigestItem::PastNextAction => (
                    "c.next_action < $1".to_owned(),
                    "NULL::timestamptz",
                    "c.next_action",
                    "c.next_action",
                    "",
                ),
                DigestItem::Idle => (
                    "c.phase <> 'moved' AND c.last_activity_at < $1".to_owned(),
                    "c.last_activity_at",
                    "NULL::date",
                    "c.last_activity_at",
                    "",
                ),
                DigestItem::Bouncing => (
                    "p.bouncing_since IS NOT NULL AND p.erased_at IS NULL".to_owned(),
                    "p.bouncing_since",
                    "NULL::date",
                    "p.bouncing_since",
                    "JOIN rule_persons p ON p.person_id = c.person_id",
                ),
            };
            let sql = list_sql(&filter, at, date, order, join);
            let q = sqlx::query_as::<_, ListRow>(&sql);
            let q = match item {
                DigestItem::NewCases | DigestItem::FollowUpsDue => q.bind(since).bind(moment),
                DigestItem::NoFirstContact => q.bind(no_contact_cutoff),
                DigestItem::PastNextAction => q.bind(today),
                DigestItem::Idle => q.bind(idle_cutoff),
                DigestItem::Bouncing => q,
            };
            let rows = q
                .fetch_all(pool)
                .await
                .with_context(|| format!("cannot list {item:?} for the digest"))?;
            out.push((item, rows));
        }
        Ok(out)
    }

    async fn digest_tours(&self, now: DateTime<Utc>) -> anyhow::Result<Vec<DigestTour>> {
        let days = i64::from(self.settings().digest_tours_days);
        let rows = sqlx::query(
            "SELECT tour_id, title, starts_at, ends_at, capacity_parties, max_people, \
               confirmed_parties, confirmed_people, waitlist_length FROM rule_tours \
             WHERE status = 'published' AND starts_at >= $1 AND starts_at < $2 \
             ORDER BY starts_at, tour_id",
        )
        .bind(now)
        .bind(now + Duration::days(days))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DigestTour {
                    tour_id: r.try_get("tour_id")?,
                    title: r.try_get("title")?,
                    starts_at: r.try_get("starts_at")?,
                    ends_at: r.try_get("ends_at")?,
                    capacity_parties: r.try_get("capacity_parties")?,
                    max_people: r.try_get("max_people")?,
                    confirmed_parties: r.try_get("confirmed_parties")?,
                    confirmed_people: r.try_get("confirmed_people")?,
                    waitlist_length: r.try_get("waitlist_length")?,
                })
            })
            .collect()
    }

    pub(super) async fn queue_digests(
        &self,
        rule: RuleName,
        date: NaiveDate,
        digests: Vec<DigestCompiled>,
    ) -> anyhow::Result<Outcome> {
        let stream = StreamName::new(DIGEST_CATEGORY, date);
        let mut outcome = Outcome::default();
        let done = kujira_store::execute::<StaffMail>(
            self.store(),
            &stream,
            &self.context(rule),
            None,
            |state| {
                outcome = Outcome::default();
                let mut events = Vec::new();
                for d in &digests {
                    if state.keys.contains(&d.key) {
                        outcome.already += 1;
                        continue;
                    }
                    outcome.queued.push(d.key.clone());
                    events.push(StaffMailEvent::DigestCompiled(d.clone()));
                    events.push(StaffMailEvent::MailQueued(MailQueued::to_staff(
                        d.key.clone(),
                        templates::DIGEST,
                        None,
                    )));
                }
                Ok(events)
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("cannot queue on {stream}: {e}"))?;
        Ok(outcome.settled(done.replayed))
    }
}

/// One case in a digest list, with the size of its concierge's list.
#[derive(Debug, Clone, sqlx::FromRow)]
struct ListRow {
    case_id: Uuid,
    reference: String,
    phase: String,
    concierge: Option<Uuid>,
    at: Option<DateTime<Utc>>,
    date: Option<NaiveDate>,
    total: i64,
}

/// The first few cases of each concierge (and of nobody) matching `filter`, with
/// the size of each list.
fn list_sql(filter: &str, at: &str, date: &str, order: &str, join: &str) -> String {
    format!(
        "SELECT case_id, reference, phase, concierge, at, date, total FROM ( \
           SELECT c.case_id, c.reference, c.phase, c.concierge, {at} AS at, {date} AS date, \
             row_number() OVER (PARTITION BY c.concierge ORDER BY {order}, c.case_id) AS n, \
             count(*) OVER (PARTITION BY c.concierge) AS total \
           FROM rule_cases c {join} \
           WHERE c.closed_at IS NULL AND c.merged_into IS NULL AND ({filter})) x \
         WHERE n <= {DIGEST_LIST_MAX} ORDER BY n"
    )
}

/// One concierge's share of a list: their cases, and those nobody active holds.
fn section(item: DigestItem, rows: &[ListRow], me: Uuid, active: &HashSet<Uuid>) -> DigestSection {
    let as_ref = |r: &ListRow| CaseRef {
        case_id: r.case_id,
        reference: r.reference.clone(),
        phase: r.phase.clone(),
        at: r.at,
        date: r.date,
    };
    let mut mine = Vec::new();
    let mut mine_total = 0;
    let mut unassigned = Vec::new();
    let mut unassigned_total = 0;
    // Totals are per concierge partition: count each partition once.
    let mut counted: HashSet<Option<Uuid>> = HashSet::new();
    for r in rows {
        let first = counted.insert(r.concierge);
        let total = if first {
            u32::try_from(r.total).unwrap_or(u32::MAX)
        } else {
            0
        };
        if r.concierge == Some(me) {
            mine.push(as_ref(r));
            mine_total += total;
        } else if r.concierge.is_none_or(|c| !active.contains(&c)) {
            unassigned.push(as_ref(r));
            unassigned_total += total;
        }
    }
    unassigned.truncate(usize::try_from(DIGEST_LIST_MAX).unwrap_or(30));
    DigestSection {
        item,
        mine,
        mine_total,
        unassigned,
        unassigned_total,
    }
}
