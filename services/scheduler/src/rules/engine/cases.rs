//! The case rules: nurture follow-ups while a case is gathering or considering,
//! the check-in after a move, and the note on the relocation support's window, each
//! re-checked on the case's own stream.

use super::*;

impl Rules {
    pub(super) async fn plan_nurture(
        &self,
        s: &Schedule,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Work> {
        // Due at the rule's first run after the offset: there was a run in
        // [clock + days, now] exactly when clock + days <= the last run.
        let Some(last) = s.last_run(now) else {
            return Ok(Work::Nothing);
        };
        let steps = &self.settings().nurture_days;
        // One person, one follow-up: a person with two open cases (the fair's and the
        // web's, not merged yet) gets one mail, not one per case, and none while a
        // follow-up of theirs is more recent than the shortest step.
        let gap = i64::from(steps.iter().copied().min().unwrap_or(30));
        let mut persons: HashSet<Uuid> = HashSet::new();
        let mut out = Vec::new();
        for (i, days) in steps.iter().enumerate() {
            let until = nurture_until(steps, i);
            let rows = sqlx::query(
                "SELECT case_id, person_id, nurture_from FROM rule_cases c \
                 WHERE phase IN ('gathering', 'considering') AND closed_at IS NULL \
                   AND merged_into IS NULL \
                   AND nurture_from <= $1 AND nurture_from > $2 \
                   AND NOT EXISTS (SELECT 1 FROM mail_deliveries d WHERE d.key = \
                       'case/' || c.case_id || '/nurture/' \
                       || floor(extract(epoch FROM c.nurture_from))::bigint || '/' || $3) \
                   AND NOT EXISTS (SELECT 1 FROM mail_deliveries d \
                       WHERE d.person_id = c.person_id AND d.template = $4 \
                         AND d.requested_at > $5) \
                   AND NOT EXISTS (SELECT 1 FROM rule_persons x \
                       WHERE x.person_id = c.person_id AND x.erased_at IS NOT NULL) \
                 ORDER BY c.nurture_from, c.case_id",
            )
            .bind(last - Duration::days(i64::from(*days)))
            .bind(now - Duration::days(until))
            .bind((i + 1).to_string())
            .bind(templates::NURTURE)
            .bind(now - Duration::days(gap))
            .fetch_all(self.pool())
            .await?;
            for r in rows {
                if !persons.insert(r.try_get("person_id")?) {
                    continue;
                }
                out.push(CaseCandidate {
                    case_id: r.try_get("case_id")?,
                    kind: CaseMailKind::Nurture {
                        step: i + 1,
                        days: *days,
                        clock: r.try_get("nurture_from")?,
                    },
                });
            }
        }
        Ok(Work::Cases(out))
    }

    pub(super) async fn plan_post_move(
        &self,
        s: &Schedule,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Work> {
        let Some(last) = s.last_run(now) else {
            return Ok(Work::Nothing);
        };
        let days = i64::from(self.settings().post_move_days);
        let rows = sqlx::query(
            "SELECT case_id, moved_at FROM rule_cases c \
             WHERE moved_at IS NOT NULL AND closed_at IS NULL AND merged_into IS NULL \
               AND moved_at <= $1 AND moved_at > $2 \
               AND NOT EXISTS (SELECT 1 FROM mail_deliveries d WHERE d.key = \
                   'case/' || c.case_id || '/post-move/' \
                   || floor(extract(epoch FROM c.moved_at))::bigint) \
               AND NOT EXISTS (SELECT 1 FROM rule_persons x \
                   WHERE x.person_id = c.person_id AND x.erased_at IS NOT NULL)",
        )
        .bind(last - Duration::days(days))
        .bind(now - Duration::days(days + LATE_LIMIT_DAYS))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(CaseCandidate {
                    case_id: r.try_get("case_id")?,
                    kind: CaseMailKind::PostMove {
                        moved_at: r.try_get("moved_at")?,
                    },
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()
            .map(Work::Cases)
    }

    pub(super) async fn plan_support(
        &self,
        s: &Schedule,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Work> {
        let Some(last) = s.last_run(now) else {
            return Ok(Work::Nothing);
        };
        let months = self.settings().support_window_months;
        let last_day = s.date(last);
        let today = s.date(now);
        let rows = sqlx::query(
            "SELECT case_id, person_id, reference, move_in, concierge FROM rule_cases c \
             WHERE applies_for_support AND moved_at IS NOT NULL AND closed_at IS NULL \
               AND merged_into IS NULL \
               AND move_in + make_interval(months => $1) <= $2 \
               AND move_in + interval '12 months' > $3 \
               AND NOT EXISTS (SELECT 1 FROM rule_persons x \
                   WHERE x.person_id = c.person_id AND x.erased_at IS NOT NULL)",
        )
        .bind(i32::try_from(months).unwrap_or(9))
        .bind(last_day)
        .bind(today)
        .fetch_all(self.pool())
        .await?;
        if rows.is_empty() {
            return Ok(Work::Support(Vec::new()));
        }
        let concierges = self.inner.staff.concierges().await?;
        let mut candidates = Vec::new();
        let mut keys_wanted = Vec::new();
        for r in rows {
            let case_id: Uuid = r.try_get("case_id")?;
            let move_in: NaiveDate = r.try_get("move_in")?;
            let holder: Option<Uuid> = r.try_get("concierge")?;
            // To its concierge; a case nobody holds goes to every concierge.
            let recipients: Vec<(Concierge, bool)> =
                match concierges.iter().find(|c| Some(c.user_id) == holder) {
                    Some(c) => vec![(c.clone(), true)],
                    None => concierges.iter().map(|c| (c.clone(), false)).collect(),
                };
            keys_wanted.extend(
                recipients
                    .iter()
                    .map(|(c, _)| keys::support_window(case_id, move_in, c.user_id)),
            );
            candidates.push(SupportCandidate {
                case_id,
                person_id: r.try_get("person_id")?,
                reference: r.try_get("reference")?,
                move_in,
                recipients,
            });
        }
        let known = self.known_keys(&keys_wanted).await?;
        for c in &mut candidates {
            let (case_id, move_in) = (c.case_id, c.move_in);
            c.recipients.retain(|(r, _)| {
                !known.contains(&keys::support_window(case_id, move_in, r.user_id))
            });
        }
        candidates.retain(|c| !c.recipients.is_empty());
        Ok(Work::Support(candidates))
    }

    pub(super) async fn queue_case(
        &self,
        rule: RuleName,
        c: &CaseCandidate,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Outcome> {
        let stream = StreamName::new(kujira_domain::inquiry::CATEGORY, c.case_id);
        let settings = self.settings();
        let mut outcome = Outcome::default();
        let done = kujira_store::execute::<Consultation>(
            self.store(),
            &stream,
            &self.context(rule),
            None,
            |state: &ConsultationState| {
                outcome = Outcome::default();
                let Some(open) = &state.opened else {
                    outcome.declined += 1;
                    return Ok(vec![]);
                };
                let work = &state.work;
                let (key, mail) = match c.kind {
                    CaseMailKind::Nurture { step, days, clock } => {
                        let key = keys::nurture(c.case_id, clock, step);
                        // The clock on the stream itself: a contact logged or a
                        // phase changed a moment ago wins over the projection.
                        let current = work.last_contact_at.max(work.last_phase_change_at);
                        let fits = matches!(open.stage, Stage::Gathering | Stage::Considering)
                            && current.map(|t| t.timestamp()) == Some(clock.timestamp())
                            && clock + Duration::days(i64::from(days)) <= now
                            && now
                                < clock
                                    + Duration::days(nurture_until(
                                        &settings.nurture_days,
                                        step - 1,
                                    ));
                        let mail = fits.then(|| {
                            MailQueued::to_applicant(
                                key.clone(),
                                templates::NURTURE,
                                open.person_id,
                            )
                            .follow_up()
                            .with_params(serde_json::json!({ "step": step, "days": days }))
                        });
                        (key, mail)
                    }
                    CaseMailKind::PostMove { moved_at } => {
                        let key = keys::post_move(c.case_id, moved_at);
                        let fits = open.stage == Stage::Moved
                            && work.last_phase_change_at.map(|t| t.timestamp())
                                == Some(moved_at.timestamp());
                        let mail = fits.then(|| {
                            MailQueued::to_applicant(
                                key.clone(),
                                templates::POST_MOVE,
                                open.person_id,
                            )
                            .follow_up()
                            .with_params(serde_json::json!({
                                "days": settings.post_move_days
                            }))
                        });
                        (key, mail)
                    }
                };
                if state.mail_keys.contains(&key) {
                    outcome.already += 1;
                    return Ok(vec![]);
                }
                let open_case = work.closed.is_none() && work.merged_into.is_none();
                match mail.filter(|_| open_case) {
                    Some(m) => {
                        outcome.queued.push(key);
                        Ok(vec![ConsultationEvent::MailQueued(m)])
                    }
                    None => {
                        outcome.declined += 1;
                        Ok(vec![])
                    }
                }
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("cannot queue on {stream}: {e}"))?;
        Ok(outcome.settled(done.replayed))
    }

    pub(super) async fn queue_support(
        &self,
        rule: RuleName,
        c: SupportCandidate,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Outcome> {
        // The case's own stream says whether the household still applies.
        let case_stream = StreamName::new(kujira_domain::inquiry::CATEGORY, c.case_id);
        let (case, _) = kujira_store::load::<Consultation>(self.store(), &case_stream, None)
            .await
            .with_context(|| format!("cannot load {case_stream}"))?;
        let still = case
            .opened
            .as_ref()
            .is_some_and(|o| o.stage == Stage::Moved)
            && case.work.closed.is_none()
            && case.work.merged_into.is_none()
            && case
                .work
                .moved
                .is_some_and(|m| m.applies_for_support && m.move_in == c.move_in);
        if !still {
            return Ok(Outcome {
                declined: c.recipients.len(),
                ..Outcome::default()
            });
        }
        let closes_on = c
            .move_in
            .checked_add_months(Months::new(12))
            .unwrap_or(c.move_in);
        let stream = StreamName::new(SUPPORT_WINDOW_CATEGORY, c.case_id);
        let mut outcome = Outcome::default();
        let done = kujira_store::execute::<StaffMail>(
            self.store(),
            &stream,
            &self.context(rule),
            None,
            |state| {
                outcome = Outcome::default();
                let mut events = Vec::new();
                for (recipient, assigned) in &c.recipients {
                    let key = keys::support_window(c.case_id, c.move_in, recipient.user_id);
                    if state.keys.contains(&key) {
                        outcome.already += 1;
                        continue;
                    }
                    events.push(StaffMailEvent::SupportWindowNoted(SupportWindowNoted {
                        key: key.clone(),
                        case_id: c.case_id,
                        person_id: c.person_id,
                        reference: c.reference.clone(),
                        move_in: c.move_in,
                        closes_on,
                        at: now,
                        recipient: recipient.clone(),
                        assigned: *assigned,
                    }));
                    events.push(StaffMailEvent::MailQueued(MailQueued::to_staff(
                        key.clone(),
                        templates::SUPPORT_WINDOW,
                        Some(c.person_id),
                    )));
                    outcome.queued.push(key);
                }
                Ok(events)
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("cannot queue on {stream}: {e}"))?;
        Ok(outcome.settled(done.replayed))
    }
}

/// Days after the clock until which step `i` (0-based) may still go: the next
/// step's offset, or the last one's plus the late limit.
fn nurture_until(steps: &[u32], i: usize) -> i64 {
    steps
        .get(i + 1)
        .map_or(i64::from(steps[i]) + LATE_LIMIT_DAYS, |next| {
            i64::from(*next)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nurture_step_may_go_until_the_next_one_is_due() {
        assert_eq!(nurture_until(&[30, 90], 0), 90);
        assert_eq!(nurture_until(&[30, 90], 1), 90 + LATE_LIMIT_DAYS);
    }
}
