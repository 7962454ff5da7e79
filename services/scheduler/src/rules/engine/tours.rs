//! The tour rules: the reminder before a tour (to parties confirmed by its
//! moment, or promoted after it) and the thank-you after it (to those who attended,
//! else to those confirmed), each re-checked on the tour's own stream.

use super::*;

impl Rules {
    pub(super) async fn plan_reminders(
        &self,
        s: &Schedule,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Work> {
        let days = i64::from(self.settings().tour_reminder_days_before);
        let tours = sqlx::query(
            "SELECT tour_id, starts_at FROM rule_tours \
             WHERE status = 'published' AND starts_at > $1 AND starts_at <= $2",
        )
        .bind(now)
        .bind(now + Duration::days(days + 2))
        .fetch_all(self.pool())
        .await?;
        let mut moments = HashMap::new();
        for t in &tours {
            let starts_at: DateTime<Utc> = t.try_get("starts_at")?;
            let day = s.date(starts_at) - Duration::days(days);
            // The reminder's moment: the rule's first run on that day (or after);
            // none at all when the rule would first run after the start.
            if let Some(m) = s.first_run_on_or_after(day)
                && m < starts_at
                && m <= now
            {
                moments.insert(t.try_get::<Uuid, _>("tour_id")?, m);
            }
        }
        let ids: Vec<Uuid> = moments.keys().copied().collect();
        let parties = sqlx::query(
            "SELECT p.tour_id, p.sign_up_id, p.received_at, p.promoted_at \
             FROM rule_tour_parties p \
             WHERE p.tour_id = ANY($1) AND p.status = 'confirmed' \
               AND NOT EXISTS (SELECT 1 FROM mail_deliveries d WHERE d.key = \
                   'tour/' || p.tour_id || '/sign-up/' || p.sign_up_id || '/reminder') \
               AND NOT EXISTS (SELECT 1 FROM rule_persons x \
                   WHERE x.person_id = p.person_id AND x.erased_at IS NOT NULL)",
        )
        .bind(&ids)
        .fetch_all(self.pool())
        .await?;
        let mut by_tour: BTreeMap<Uuid, Vec<TourCandidate>> = BTreeMap::new();
        for p in parties {
            let tour_id: Uuid = p.try_get("tour_id")?;
            let moment = moments[&tour_id];
            let received: DateTime<Utc> = p.try_get("received_at")?;
            let promoted: Option<DateTime<Utc>> = p.try_get("promoted_at")?;
            if reminder_due(moment, received, promoted, now) {
                by_tour.entry(tour_id).or_default().push(TourCandidate {
                    sign_up_id: p.try_get("sign_up_id")?,
                    kind: TourMailKind::Reminder { moment },
                });
            }
        }
        Ok(Work::Tours(by_tour))
    }

    pub(super) async fn plan_thank_yous(
        &self,
        s: &Schedule,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Work> {
        let days = i64::from(self.settings().tour_thank_you_days_after);
        let tours = sqlx::query(
            "SELECT tour_id, ends_at FROM rule_tours \
             WHERE status = 'published' AND ends_at <= $1 AND ends_at > $2",
        )
        .bind(now)
        .bind(now - Duration::days(days + THANK_YOU_LATE_DAYS + 2))
        .fetch_all(self.pool())
        .await?;
        let mut due = Vec::new();
        for t in &tours {
            let ends_at: DateTime<Utc> = t.try_get("ends_at")?;
            let day = s.date(ends_at) + Duration::days(days);
            let from = start_of_day(self.inner.config.timezone, day).max(ends_at);
            if let Some(m) = s.first_run_from(from)
                && m <= now
                && now < m + Duration::days(THANK_YOU_LATE_DAYS)
            {
                due.push(t.try_get::<Uuid, _>("tour_id")?);
            }
        }
        // With check-in data, those who came; without, every confirmed party.
        let parties = sqlx::query(
            "SELECT p.tour_id, p.sign_up_id FROM rule_tour_parties p \
             JOIN rule_tours t ON t.tour_id = p.tour_id \
             WHERE p.tour_id = ANY($1) \
               AND CASE WHEN t.attendance_recorded THEN p.attended IS TRUE \
                        ELSE p.status = 'confirmed' END \
               AND NOT EXISTS (SELECT 1 FROM mail_deliveries d WHERE d.key = \
                   'tour/' || p.tour_id || '/sign-up/' || p.sign_up_id || '/thank-you') \
               AND NOT EXISTS (SELECT 1 FROM rule_persons x \
                   WHERE x.person_id = p.person_id AND x.erased_at IS NOT NULL)",
        )
        .bind(&due)
        .fetch_all(self.pool())
        .await?;
        let mut by_tour: BTreeMap<Uuid, Vec<TourCandidate>> = BTreeMap::new();
        for p in parties {
            by_tour
                .entry(p.try_get("tour_id")?)
                .or_default()
                .push(TourCandidate {
                    sign_up_id: p.try_get("sign_up_id")?,
                    kind: TourMailKind::ThankYou,
                });
        }
        Ok(Work::Tours(by_tour))
    }

    pub(super) async fn queue_tour(
        &self,
        rule: RuleName,
        tour_id: Uuid,
        parties: &[TourCandidate],
        now: DateTime<Utc>,
    ) -> anyhow::Result<Outcome> {
        let stream = StreamName::new(kujira_domain::tour::CATEGORY, tour_id);
        let mut outcome = Outcome::default();
        let done = kujira_store::execute::<TourMails>(
            self.store(),
            &stream,
            &self.context(rule),
            None,
            |state: &TourMailState| {
                outcome = Outcome::default();
                let mut events = Vec::new();
                for c in parties {
                    let (key, template) = match c.kind {
                        TourMailKind::Reminder { .. } => (
                            keys::tour_reminder(tour_id, c.sign_up_id),
                            templates::TOUR_REMINDER,
                        ),
                        TourMailKind::ThankYou => (
                            keys::tour_thank_you(tour_id, c.sign_up_id),
                            templates::TOUR_THANK_YOU,
                        ),
                    };
                    if state.mail_keys.contains(&key) {
                        outcome.already += 1;
                        continue;
                    }
                    match tour_recipient(state, c, now) {
                        Some(person_id) => {
                            outcome.queued.push(key.clone());
                            events.push(TourEvent::MailQueued(
                                MailQueued::to_applicant(key, template, person_id)
                                    .follow_up()
                                    .about(c.sign_up_id),
                            ));
                        }
                        None => outcome.declined += 1,
                    }
                }
                Ok(events)
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("cannot queue on {stream}: {e}"))?;
        Ok(outcome.settled(done.replayed))
    }
}

/// Whether a confirmed party gets the reminder as of `now`: confirmed by the
/// reminder's moment (signed up, or promoted, by then), or promoted after it (a
/// reminder at promotion). A party that signed up after the moment already has its
/// confirmation, and gets no stale "in three days".
fn reminder_due(
    moment: DateTime<Utc>,
    received: DateTime<Utc>,
    promoted: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> bool {
    match promoted {
        Some(p) => p <= now && moment <= now,
        None => received <= moment && moment <= now,
    }
}

/// The person to send a tour mail to, if the tour's own stream still says so.
fn tour_recipient(state: &TourMailState, c: &TourCandidate, now: DateTime<Utc>) -> Option<Uuid> {
    let tour = &state.tour;
    let d = tour.details.as_ref()?;
    if tour.status != TourStatus::Published {
        return None;
    }
    let s = tour.sign_up(c.sign_up_id)?;
    match c.kind {
        TourMailKind::Reminder { moment } => {
            let fits = s.status == SignUpStatus::Confirmed
                && now < d.starts_at
                && reminder_due(moment, s.received_at, s.promoted_at, now);
            fits.then_some(s.person_id)
        }
        TourMailKind::ThankYou => {
            let checked_in = tour.sign_ups.iter().any(|x| x.attended.is_some());
            let fits = now >= d.ends_at
                && if checked_in {
                    s.attended == Some(true)
                } else {
                    s.status == SignUpStatus::Confirmed
                };
            fits.then_some(s.person_id)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_reminder_goes_to_parties_confirmed_by_its_moment_or_promoted_after() {
        let moment = t("2026-12-01T10:00:00+09:00");
        let now = t("2026-12-01T10:00:00+09:00");
        let just_before = t("2026-12-01T09:59:59+09:00");
        let just_after = t("2026-12-01T10:00:01+09:00");
        assert!(reminder_due(moment, just_before, None, now));
        assert!(reminder_due(moment, moment, None, now));
        let later = t("2026-12-01T15:00:00+09:00");
        assert!(!reminder_due(moment, just_after, None, later));
        // Promoted after the moment: at promotion, not before.
        assert!(reminder_due(moment, just_before, Some(later), later));
        assert!(!reminder_due(moment, just_before, Some(later), just_after));
        // Not before the moment, whatever happened.
        assert!(!reminder_due(moment, just_before, None, just_before));
    }
}
