//! The generator's consultation cases: how each opens (form, API, desk, order-made
//! tour request), the work on it over months and years through the consultation
//! decider, its mails, and the funnel journeys around the form.

use super::*;

impl Generator {
    pub(super) fn case(&mut self) {
        self.cases += 1;
        let opened_at = self.between(self.start, self.anchor - chrono::Duration::hours(2));
        // 8% are a person's second case (the same address finds the same person).
        let returning = !self.case_list.is_empty() && self.rng.random_bool(0.08);
        let person = if returning {
            let i = self.rng.random_range(0..self.case_list.len());
            self.case_list[i].person
        } else {
            self.new_person()
        };
        let roll: f64 = self.rng.random();
        let channel = if roll < 0.62 {
            Channel::Form
        } else if roll < 0.72 {
            Channel::Api
        } else {
            Channel::Desk
        };
        let tour_request = channel == Channel::Form && self.rng.random_bool(0.06);
        let case_id = self.uuid();
        let stream = self.stream("consultation", case_id);
        let desk_staff = self.concierge();
        let desk_source = (channel == Channel::Desk).then(|| {
            *pick(
                &mut self.rng,
                &[
                    ContactChannel::Counter,
                    ContactChannel::Counter,
                    ContactChannel::Phone,
                    ContactChannel::Phone,
                    ContactChannel::Fair,
                ],
            )
        });
        let opening = kujira_domain::inquiry::CaseOpening {
            case_id,
            person_id: placeholder(person),
            reference: self.reference(opened_at),
            channel,
            submitted_at: opened_at,
            privacy_purpose: "移住相談への回答、移住に関する情報提供のため".into(),
            desk_source,
        };
        let rules = DateRules {
            now: opened_at,
            timezone: self.tz,
            lead_days: 3,
        };
        let spec = &self.persons[person];
        let (name, kana, email, phone, prefecture) = (
            spec.name.clone(),
            spec.kana.clone(),
            spec.email.clone(),
            spec.phone.clone(),
            spec.prefecture,
        );
        let household_roll: f64 = self.rng.random();
        let household = if household_roll < 0.5 {
            "single"
        } else if household_roll < 0.8 {
            "couple"
        } else if household_roll < 0.97 {
            "with_children"
        } else {
            "other"
        };
        let message = pick(&mut self.rng, MESSAGES).to_string();
        let command = if tour_request {
            let day = (opened_at + chrono::Duration::days(self.rng.random_range(10..40)))
                .with_timezone(&self.tz)
                .date_naive();
            let input = TourRequestInput {
                name,
                name_kana: kana,
                email,
                phone,
                prefecture: prefecture.into(),
                preferred_date_1: day.format("%Y-%m-%d").to_string(),
                interests: vec!["housing".into(), "migrants".into()],
                adults: if household == "single" { "1" } else { "2" }.into(),
                children: if household == "with_children" {
                    "1"
                } else {
                    "0"
                }
                .into(),
                message,
                source: pick(&mut self.rng, SOURCES).to_string(),
                consent: true,
                ..TourRequestInput::default()
            };
            let request = validate_tour_request(&input, &rules)
                .unwrap_or_else(|e| panic!("a generated tour request is invalid: {e:?}"));
            ConsultationCommand::SubmitTourRequest {
                mails: kujira_intake::mail::tour_request_queue(&opening),
                submission: TourRequestSubmitted { opening, request },
            }
        } else {
            let preferred = if self.rng.random_bool(0.3) {
                (opened_at + chrono::Duration::days(self.rng.random_range(7..30)))
                    .with_timezone(&self.tz)
                    .date_naive()
                    .and_hms_opt(10, 0, 0)
                    .map(|d| d.format("%Y-%m-%dT%H:%M").to_string())
                    .unwrap_or_default()
            } else {
                String::new()
            };
            let topics: Vec<String> = (0..self.rng.random_range(1..=3))
                .map(|_| pick(&mut self.rng, TOPICS).to_string())
                .collect();
            let input = InquiryInput {
                name,
                name_kana: kana,
                email,
                phone,
                postal_code: if self.rng.random_bool(0.6) {
                    format!(
                        "{:03}-{:04}",
                        self.rng.random_range(100..999),
                        self.rng.random_range(0..10_000)
                    )
                } else {
                    String::new()
                },
                prefecture: prefecture.into(),
                age_group: pick(&mut self.rng, AGES).to_string(),
                gender: pick(
                    &mut self.rng,
                    &["female", "male", "female", "male", "no_answer"],
                )
                .to_string(),
                segment: pick(&mut self.rng, SEGMENTS).to_string(),
                household: household.into(),
                children_ages: if household == "with_children" {
                    "小学2年生と4歳".into()
                } else {
                    String::new()
                },
                move_timing: pick(&mut self.rng, TIMINGS).to_string(),
                topics,
                method: pick(&mut self.rng, METHODS).to_string(),
                preferred_date_1: preferred,
                message,
                source: pick(&mut self.rng, SOURCES).to_string(),
                consent: true,
                newsletter: self.rng.random_bool(0.4),
                ..InquiryInput::default()
            };
            let inquiry = validate_inquiry(&input, &rules)
                .unwrap_or_else(|e| panic!("a generated inquiry is invalid: {e:?}"));
            ConsultationCommand::SubmitInquiry {
                mails: kujira_intake::mail::inquiry_queue(&opening),
                submission: InquirySubmitted { opening, inquiry },
            }
        };
        let actor = match channel {
            Channel::Desk => Actor::Staff(desk_staff),
            _ => Actor::Applicant,
        };

        // The form's journey, and journeys that were abandoned.
        if channel == Channel::Form {
            let form = if tour_request {
                FunnelForm::TourRequest
            } else {
                FunnelForm::Inquiry
            };
            let viewed = opened_at - self.days(0.003, 0.02);
            let confirmed = opened_at - self.days(0.0005, 0.002);
            self.journey(form, &[viewed, confirmed], Some((opened_at, case_id)));
            if self.rng.random_bool(0.35) {
                let at = self.between(self.start, self.anchor);
                self.journey(form, &[at], None);
            }
            if self.rng.random_bool(0.1) {
                let at = self.between(self.start, self.anchor);
                self.journey(form, &[at, at + chrono::Duration::minutes(4)], None);
            }
        }

        let mut case = CaseRun {
            stream,
            case_id,
            person,
            state: ConsultationState::default(),
            clock_mails: Vec::new(),
            moved_at: None,
        };
        self.apply(&mut case, opened_at, actor, &command);
        let case_index = self.case_list.len();
        self.case_list.push(CaseSummary {
            person,
            case_id,
            opened_at,
            closed_or_merged_at: None,
        });
        self.persons[person].cases.push(case_index);

        // The case's work, planned as (time, staff, command), then applied in order
        // through the decider: what it refuses (work on a closed case) never happens.
        let staff = self.concierge();
        let mut plan: Vec<(DateTime<Utc>, CaseCommand)> = Vec::new();
        if self.rng.random_bool(0.95) {
            let at = opened_at + self.days(0.02, 2.0);
            plan.push((
                at,
                CaseCommand::Assign {
                    concierge: Some(staff),
                },
            ));
        }
        let mut t = if channel == Channel::Desk {
            opened_at + chrono::Duration::minutes(5)
        } else {
            opened_at + self.days(0.1, 6.0)
        };
        let first_contact = channel == Channel::Desk || self.rng.random_bool(0.9);
        if first_contact {
            let ch = desk_source.unwrap_or_else(|| {
                *pick(
                    &mut self.rng,
                    &[
                        ContactChannel::Email,
                        ContactChannel::Phone,
                        ContactChannel::Email,
                    ],
                )
            });
            plan.push((t, self.contact(t, ch)));
            if self.rng.random_bool(0.7) {
                let due = (t + self.days(7.0, 60.0))
                    .with_timezone(&self.tz)
                    .date_naive();
                plan.push((
                    t + chrono::Duration::minutes(1),
                    CaseCommand::SetNextAction { due: Some(due) },
                ));
            }
        }
        if first_contact && self.rng.random_bool(0.2) {
            let at = t + self.days(0.5, 5.0);
            let starts = at + self.days(3.0, 20.0);
            let starts = self.next_ten(starts);
            plan.push((
                at,
                CaseCommand::ScheduleConsultation {
                    consultation_id: self.uuid(),
                    starts_at: starts,
                    minutes: 60,
                    method: ConsultationMethod::parse(pick::<&str>(&mut self.rng, METHODS))
                        .unwrap_or(ConsultationMethod::Online),
                    place: FreeText::parse_line("市役所 2階 移住相談窓口", 100).ok(),
                    note: None,
                },
            ));
        }
        // Follow-up contacts: none for half the cases (one answer, then silence), a
        // few for most of the rest, many for the active ones.
        let r: f64 = self.rng.random();
        let extra = if r < 0.5 {
            0
        } else if r < 0.85 {
            self.rng.random_range(1..=2)
        } else {
            self.rng.random_range(2..=5)
        };
        let mut last = t;
        for _ in 0..extra {
            last += self.days(5.0, 120.0);
            let ch = *pick(&mut self.rng, CONTACT_CHANNELS);
            plan.push((last, self.contact(last, ch)));
        }
        // The pipeline.
        let outcome: f64 = self.rng.random();
        if first_contact && outcome < 0.55 {
            t += self.days(7.0, 150.0);
            plan.push((
                t,
                CaseCommand::ChangePhase {
                    to: Stage::Considering,
                },
            ));
            if self.rng.random_bool(0.6) {
                let ch = *pick(&mut self.rng, CONTACT_CHANNELS);
                plan.push((t, self.contact(t, ch)));
            }
            if outcome < 0.22 {
                t += self.days(30.0, 365.0);
                plan.push((t, CaseCommand::ChangePhase { to: Stage::Decided }));
                let due = (t + self.days(14.0, 90.0))
                    .with_timezone(&self.tz)
                    .date_naive();
                plan.push((
                    t + chrono::Duration::minutes(2),
                    CaseCommand::SetNextAction { due: Some(due) },
                ));
                if outcome < 0.12 {
                    t += self.days(30.0, 240.0);
                    let move_in = (t - self.days(0.0, 30.0))
                        .with_timezone(&self.tz)
                        .date_naive();
                    let (adults, children) = self.household();
                    plan.push((
                        t,
                        CaseCommand::RecordMove(Move {
                            move_in,
                            adults,
                            children,
                            applies_for_support: self.rng.random_bool(0.3),
                        }),
                    ));
                }
            }
        }
        // Cases that went nowhere are closed, once they have been quiet for a while.
        if outcome >= 0.12 && self.rng.random_bool(0.45) {
            let at = t.max(last) + self.days(60.0, 400.0);
            let reason = *pick(
                &mut self.rng,
                &[
                    CloseReason::GaveUp,
                    CloseReason::GaveUp,
                    CloseReason::NoResponse,
                    CloseReason::NoResponse,
                    CloseReason::MovedElsewhere,
                    CloseReason::Other,
                ],
            );
            plan.push((
                at,
                CaseCommand::Close {
                    reason,
                    note: FreeText::parse_multiline(
                        "本人より連絡あり。今回は見送りとのこと。",
                        2000,
                    )
                    .ok(),
                },
            ));
        }
        // A returning person's desk case is sometimes a duplicate of their earlier one.
        if returning && channel == Channel::Desk && self.rng.random_bool(0.3) {
            let earlier = self.persons[person].cases[0];
            let at = opened_at + self.days(0.5, 3.0);
            let e = &self.case_list[earlier];
            if e.case_id != case_id && e.closed_or_merged_at.is_none_or(|c| c > at) {
                plan.push((
                    at,
                    CaseCommand::MergeInto {
                        into: e.case_id,
                        into_person: placeholder(e.person),
                    },
                ));
            }
        }
        plan.sort_by_key(|(at, _)| *at);
        for (at, command) in plan {
            if at >= self.anchor {
                break;
            }
            self.mails_due(&mut case, at);
            let merged = matches!(command, CaseCommand::MergeInto { .. });
            let closed = matches!(command, CaseCommand::Close { .. });
            let actor = Actor::Staff(staff);
            if self.apply(
                &mut case,
                at,
                actor,
                &ConsultationCommand::Work { command, at },
            ) && (merged || closed)
            {
                self.case_list[case_index].closed_or_merged_at = Some(at);
            }
        }
        self.mails_due(&mut case, self.anchor);
    }

    pub(super) fn contact(&mut self, at: DateTime<Utc>, channel: ContactChannel) -> CaseCommand {
        CaseCommand::LogContact {
            contact_id: self.uuid(),
            channel,
            occurred_at: at - chrono::Duration::minutes(self.rng.random_range(0..90)),
            note: FreeText::parse_multiline(pick::<&str>(&mut self.rng, NOTES), 2000).ok(),
        }
    }

    /// A moving household: about 1.8 people on average.
    pub(super) fn household(&mut self) -> (u8, u8) {
        let r: f64 = self.rng.random();
        if r < 0.5 {
            (1, 0)
        } else if r < 0.82 {
            (2, 0)
        } else if r < 0.92 {
            (2, 1)
        } else {
            (2, 2)
        }
    }

    /// Decides `command` on the case at `at` and records what it decides; false
    /// when the decider refuses it.
    pub(super) fn apply(
        &mut self,
        case: &mut CaseRun,
        at: DateTime<Utc>,
        actor: Actor,
        command: &ConsultationCommand,
    ) -> bool {
        let Ok(events) = Consultation::decide(&case.state, command) else {
            return false;
        };
        let command_id = self.uuid();
        let stream = self.streams[case.stream as usize].as_str().to_owned();
        for (i, e) in events.into_iter().enumerate() {
            let id = Consultation::event_id(command_id, &stream, i, &e);
            case.state = Consultation::evolve(std::mem::take(&mut case.state), &e);
            if let ConsultationEvent::CasePhaseChanged(c) = &e
                && c.to == Stage::Moved
            {
                case.moved_at = Some(c.at);
            }
            // The consultation's invitation, queued with it as the desk does.
            let invitation = match &e {
                ConsultationEvent::ConsultationScheduled(s) => {
                    Some(kujira_desk::cases::mail::consultation_mail(
                        case.case_id,
                        placeholder(case.person),
                        s.consultation_id,
                    ))
                }
                _ => None,
            };
            self.push(at, case.stream, id, actor, Ev::Case(e));
            if let Some(m) = invitation {
                let id = m.event_id(&stream);
                let e = ConsultationEvent::MailQueued(m);
                case.state = Consultation::evolve(std::mem::take(&mut case.state), &e);
                self.push(at, case.stream, id, actor, Ev::Case(e));
            }
        }
        self.seen(case.person, at);
        true
    }

    /// The follow-ups the rules would have queued on the case before `until`: the
    /// nurture mails at 30 and 90 days without contact or phase change, and the
    /// check-in 90 days after a move.
    pub(super) fn mails_due(&mut self, case: &mut CaseRun, until: DateTime<Utc>) {
        let Some(open) = case.state.opened.clone() else {
            return;
        };
        let work = &case.state.work;
        if work.closed.is_some() || work.merged_into.is_some() {
            return;
        }
        let mut due = Vec::new();
        if matches!(open.stage, Stage::Gathering | Stage::Considering)
            && let Some(clock) = work.last_contact_at.max(work.last_phase_change_at)
        {
            for (step, days) in [(1usize, 30i64), (2, 90)] {
                let key = kujira_scheduler::rules::keys::nurture(case.case_id, clock, step);
                let at = self.next_ten(clock + chrono::Duration::days(days));
                if at < until && !case.clock_mails.contains(&key) {
                    let mail = MailQueued::to_applicant(
                        key.clone(),
                        kujira_scheduler::rules::templates::NURTURE,
                        placeholder(case.person),
                    )
                    .follow_up()
                    .with_params(serde_json::json!({ "step": step, "days": days }));
                    due.push((at, key, mail));
                }
            }
        }
        if let Some(moved_at) = case.moved_at
            && open.stage == Stage::Moved
        {
            let key = kujira_scheduler::rules::keys::post_move(case.case_id, moved_at);
            let at = self.next_ten(moved_at + chrono::Duration::days(90));
            if at < until && !case.clock_mails.contains(&key) {
                let mail = MailQueued::to_applicant(
                    key.clone(),
                    kujira_scheduler::rules::templates::POST_MOVE,
                    placeholder(case.person),
                )
                .follow_up()
                .with_params(serde_json::json!({ "days": 90 }));
                due.push((at, key, mail));
            }
        }
        let stream = self.streams[case.stream as usize].as_str().to_owned();
        for (at, key, mail) in due {
            case.clock_mails.push(key);
            let id = mail.event_id(&stream);
            let e = ConsultationEvent::MailQueued(mail);
            case.state = Consultation::evolve(std::mem::take(&mut case.state), &e);
            self.push(at, case.stream, id, Actor::Scheduler, Ev::Case(e));
        }
    }

    pub(super) fn journey(
        &mut self,
        form: FunnelForm,
        views: &[DateTime<Utc>],
        submitted: Option<(DateTime<Utc>, Uuid)>,
    ) {
        let journey = self.uuid();
        let stream = self.stream(kujira_domain::funnel::CATEGORY, journey);
        for (i, at) in views.iter().enumerate() {
            let e = if i == 0 {
                FunnelEvent::FormViewed { form, at: *at }
            } else {
                FunnelEvent::ConfirmViewed { form, at: *at }
            };
            let id = self.uuid();
            self.push(*at, stream, id, Actor::Applicant, Ev::Funnel(e));
        }
        if let Some((at, case_id)) = submitted {
            let id = self.uuid();
            self.push(
                at,
                stream,
                id,
                Actor::Applicant,
                Ev::Funnel(FunnelEvent::Submitted { form, at, case_id }),
            );
        }
    }
}
