//! The generator's tours: sign-ups, waiting lists, cancellations, check-in and
//! feedback through the tour decider, with the tours' own mails.

use super::*;

impl Generator {
    pub(super) fn tour(&mut self) {
        self.tours += 1;
        let tour_id = self.uuid();
        let stream = self.stream(kujira_domain::tour::CATEGORY, tour_id);
        // Most tours are past; a few are coming up (their reminders are due soon).
        let day = if self.rng.random_bool(0.03) {
            self.between(
                self.anchor + chrono::Duration::days(1),
                self.anchor + chrono::Duration::days(60),
            )
        } else {
            self.between(
                self.start + chrono::Duration::days(60),
                self.anchor - chrono::Duration::days(2),
            )
        };
        let starts_at = self.next_ten(day) - chrono::Duration::hours(1);
        let overnight = self.rng.random_bool(0.2);
        let ends_at = starts_at + chrono::Duration::hours(if overnight { 30 } else { 7 });
        let capacity = self.rng.random_range(5..=12u32);
        let details = TourDetails {
            title: pick(&mut self.rng, TOUR_TITLES).to_string(),
            kind: if overnight {
                TourKind::Overnight
            } else {
                TourKind::DayTrip
            },
            starts_at,
            ends_at,
            meeting_place: "JR柏崎駅 改札前".into(),
            capacity_parties: capacity,
            max_people: Some(capacity * 4),
            fee_yen: if overnight { 5000 } else { 0 },
            deadline: Some(starts_at - chrono::Duration::days(7)),
            description: "先輩移住者の住まいや職場を訪ね、暮らしを体験するツアーです。".into(),
            audience: "柏崎市への移住を検討している方".into(),
        };
        // Scheduled a month or two ahead, and never after the end of the history.
        let scheduled_at =
            (starts_at - self.days(30.0, 60.0)).min(self.anchor - self.days(1.0, 20.0));
        let staff = self.concierge();
        let mut run = TourRun {
            stream,
            tour_id,
            state: TourState::default(),
        };
        let schedule = TourCommand::Schedule {
            tour_id,
            details,
            publish: true,
            at: scheduled_at,
        };
        if !self.tour_apply(&mut run, scheduled_at, Actor::Staff(staff), &schedule, None) {
            return;
        }
        // Sign-ups until the deadline, past the capacity now and then (a waiting list).
        let deadline = starts_at - chrono::Duration::days(7);
        let wanted = (f64::from(capacity) * self.rng.random_range(0.5..1.4)).round() as usize;
        let mut plan: Vec<(DateTime<Utc>, TourCommand, Option<usize>, Actor)> = Vec::new();
        let mut parties = Vec::new();
        for _ in 0..wanted {
            let at = self.between(scheduled_at + chrono::Duration::hours(1), deadline);
            // Half the parties are people who inquired before.
            let person = if !self.case_list.is_empty() && self.rng.random_bool(0.5) {
                let i = self.rng.random_range(0..self.case_list.len());
                self.case_list[i].person
            } else {
                self.new_person()
            };
            let (adults, children) = self.household();
            let p = &self.persons[person];
            let input = SignUpInput {
                name: p.name.clone(),
                name_kana: p.kana.clone(),
                email: p.email.clone(),
                email_confirm: None,
                phone: p.phone.clone(),
                prefecture: p.prefecture.into(),
                adults: adults.to_string(),
                children: children.to_string(),
                children_ages: if children > 0 {
                    "5歳".into()
                } else {
                    String::new()
                },
                transport: pick(&mut self.rng, &["car", "train"]).to_string(),
                needs: if self.rng.random_bool(0.1) {
                    "卵アレルギーがあります".into()
                } else {
                    String::new()
                },
                source: pick(&mut self.rng, SOURCES).to_string(),
                consent: true,
            };
            let sign_up_id = self.uuid();
            let sign_up = input
                .validate(sign_up_id)
                .unwrap_or_else(|e| panic!("a generated sign-up is invalid: {e:?}"))
                .for_person(placeholder(person));
            plan.push((
                at,
                TourCommand::SignUp { sign_up, at },
                Some(person),
                Actor::Applicant,
            ));
            parties.push((sign_up_id, person, at));
        }
        for (sign_up_id, _, at) in &parties {
            if self.rng.random_bool(0.1) {
                let when = self.between(*at, starts_at - chrono::Duration::hours(2));
                plan.push((
                    when,
                    TourCommand::CancelSignUp {
                        sign_up_id: *sign_up_id,
                        by: CancelledBy::Party,
                        at: when,
                    },
                    None,
                    Actor::Applicant,
                ));
            }
        }
        plan.sort_by_key(|(at, ..)| *at);
        for (at, command, person, actor) in plan {
            if at >= self.anchor {
                break;
            }
            self.tour_apply(&mut run, at, actor, &command, person);
        }
        // The rules' reminders (3 days before, 10:00) and, after the tour, check-in,
        // thank-yous and feedback.
        let reminder_at =
            self.next_ten(starts_at - chrono::Duration::days(3) - chrono::Duration::hours(1));
        if reminder_at < self.anchor {
            self.tour_mails(&mut run, reminder_at, true);
        }
        if ends_at < self.anchor {
            let confirmed: Vec<(Uuid, Uuid)> =
                run.state.confirmed().map(|s| (s.id, s.person_id)).collect();
            for (sign_up_id, _) in &confirmed {
                let at = starts_at + chrono::Duration::minutes(self.rng.random_range(0..30));
                let attended = self.rng.random_bool(0.9);
                self.tour_apply(
                    &mut run,
                    at,
                    Actor::Staff(staff),
                    &TourCommand::RecordAttendance {
                        sign_up_id: *sign_up_id,
                        attended,
                        at,
                    },
                    None,
                );
            }
            let thanks_at = self.next_ten(ends_at);
            if thanks_at < self.anchor {
                self.tour_mails(&mut run, thanks_at, false);
            }
            for (sign_up_id, _) in &confirmed {
                if self.rng.random_bool(0.5) {
                    let at = ends_at + self.days(1.0, 7.0);
                    if at < self.anchor {
                        let satisfaction = *pick(&mut self.rng, &[3u8, 4, 4, 5, 5, 5]);
                        self.tour_apply(
                            &mut run,
                            at,
                            Actor::Applicant,
                            &TourCommand::RecordFeedback {
                                sign_up_id: *sign_up_id,
                                satisfaction,
                                comments: FreeText::parse_multiline(
                                    "地元の方の話が聞けてよかったです。",
                                    1000,
                                )
                                .ok(),
                                at,
                            },
                            None,
                        );
                    }
                }
            }
        }
    }

    pub(super) fn tour_apply(
        &mut self,
        run: &mut TourRun,
        at: DateTime<Utc>,
        actor: Actor,
        command: &TourCommand,
        person: Option<usize>,
    ) -> bool {
        let Ok(decided) = Tour::decide(&run.state, command) else {
            return false;
        };
        if decided.is_empty() {
            return true;
        }
        let after = decided.iter().fold(run.state.clone(), Tour::evolve);
        let mails = kujira_tours::mail::mails_for(run.tour_id, &after, &decided);
        run.state = after;
        let stream = self.streams[run.stream as usize].as_str().to_owned();
        let command_id = self.uuid();
        for (i, e) in decided
            .into_iter()
            .chain(mails.into_iter().map(TourEvent::MailQueued))
            .enumerate()
        {
            let id = Tour::event_id(command_id, &stream, i, &e);
            self.push(at, run.stream, id, actor, Ev::Tour(e));
        }
        if let Some(p) = person {
            self.seen(p, at);
        }
        true
    }

    /// The rules' reminders (before) or thank-yous (after) to the tour's parties.
    pub(super) fn tour_mails(&mut self, run: &mut TourRun, at: DateTime<Utc>, reminder: bool) {
        let parties: Vec<(Uuid, Uuid, Option<bool>)> = run
            .state
            .confirmed()
            .map(|s| (s.id, s.person_id, s.attended))
            .collect();
        let stream = self.streams[run.stream as usize].as_str().to_owned();
        for (sign_up_id, person_id, attended) in parties {
            if !reminder && attended == Some(false) {
                continue;
            }
            let (key, template) = if reminder {
                (
                    kujira_scheduler::rules::keys::tour_reminder(run.tour_id, sign_up_id),
                    kujira_scheduler::rules::templates::TOUR_REMINDER,
                )
            } else {
                (
                    kujira_scheduler::rules::keys::tour_thank_you(run.tour_id, sign_up_id),
                    kujira_scheduler::rules::templates::TOUR_THANK_YOU,
                )
            };
            let mail = MailQueued::to_applicant(key, template, person_id)
                .follow_up()
                .about(sign_up_id);
            let id = mail.event_id(&stream);
            let e = TourEvent::MailQueued(mail);
            run.state = Tour::evolve(std::mem::take(&mut run.state), &e);
            self.push(at, run.stream, id, Actor::Scheduler, Ev::Tour(e));
        }
    }

    pub(super) fn person_facts(&mut self) {
        for person in 0..self.persons.len() {
            let Some(last) = self.persons[person].last_at else {
                continue;
            };
            let roll: f64 = self.rng.random();
            let person_id = placeholder(person);
            let mut facts: Vec<(DateTime<Utc>, PersonEvent, Actor)> = Vec::new();
            if roll < 0.02 {
                let at = self.between(last, self.anchor);
                facts.push((
                    at,
                    PersonEvent::MailOptedOut(MailOptedOut {
                        person_id,
                        at,
                        via: OptOutVia::OneClick,
                    }),
                    Actor::Applicant,
                ));
            } else if roll < 0.03 {
                let at = self.between(last, self.anchor);
                facts.push((
                    at,
                    PersonEvent::AddressBounced(AddressBounced {
                        person_id,
                        at,
                        code: 550,
                        delivery_key: format!("bench/bounce/{person}"),
                    }),
                    Actor::Scheduler,
                ));
            } else if roll < 0.04 {
                let at = self.between(last, self.anchor);
                let p = &self.persons[person];
                let details = ContactDetails {
                    name: PersonName::parse(&p.name).expect("a generated name"),
                    name_kana: Kana::parse(&p.kana).expect("a generated kana"),
                    email: Email::parse(&p.email).expect("a generated address"),
                    phone: Phone::parse("025-123-4567").ok(),
                    postal_code: PostalCode::parse("945-0051").ok(),
                    address: FreeText::parse_line("東本町一丁目1番1号", 100).ok(),
                };
                facts.push((
                    at,
                    PersonEvent::PersonDetailsCorrected(PersonDetailsCorrected {
                        person_id,
                        at,
                        fields: vec!["phone".into(), "postal_code".into(), "address".into()],
                        personal: Personal::Known(details),
                    }),
                    Actor::Staff(self.concierges[0]),
                ));
            } else if roll < 0.043 && last < self.anchor - chrono::Duration::days(30) {
                let at = self.between(last + chrono::Duration::days(1), self.anchor);
                facts.push((
                    at,
                    PersonEvent::PersonErased(PersonErased {
                        person_id,
                        at,
                        rule: None,
                    }),
                    Actor::Cli,
                ));
            }
            if facts.is_empty() {
                continue;
            }
            let id = self.uuid();
            let stream = self.stream(kujira_domain::person::CATEGORY, id);
            // The stream is the person's: `person-<person id>`, fixed up below.
            self.person_streams.push((stream, person));
            for (at, e, actor) in facts {
                let id = self.uuid();
                self.push(at, stream, id, actor, Ev::Person(e));
            }
        }
    }
}
