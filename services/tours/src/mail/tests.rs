use super::*;
use kujira_domain::decider::Decider;
use kujira_domain::tour::form::SignUpInput;
use kujira_domain::tour::{Tour, TourCommand, TourKind};

fn config() -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir().unwrap();
    let c = Config::for_tests(dir.path());
    (dir, c)
}

fn at() -> DateTime<Utc> {
    "2026-12-01T00:00:00Z".parse().unwrap()
}

/// A tour's stream as the service writes it: facts, then the mails they queue.
struct Sim {
    id: Uuid,
    config: Config,
    history: Vec<TourEvent>,
}

/// A queued mail, rendered as the mailer renders it at send time.
struct Rendered {
    key: String,
    template: String,
    personal: MailContent,
}

impl Sim {
    fn state(&self) -> TourState {
        Tour::replay(&self.history)
    }

    /// Decides `cmd`, queues its mails, and renders them from the stream.
    fn apply(&mut self, cmd: TourCommand) -> Vec<Rendered> {
        let state = self.state();
        let decided = Tour::decide(&state, &cmd).unwrap();
        let after = decided.iter().fold(state, Tour::evolve);
        let queued = mails_for(self.id, &after, &decided);
        self.history.extend(decided);
        let templates = TourMailTemplates::new(std::sync::Arc::new(self.config.clone()));
        let mut out = Vec::new();
        for m in queued {
            self.history.push(TourEvent::MailQueued(m.clone()));
            let facts: Vec<(String, serde_json::Value)> = self
                .history
                .iter()
                .map(|e| {
                    let v = serde_json::to_value(e).unwrap();
                    (v["type"].as_str().unwrap().to_owned(), v["data"].clone())
                })
                .collect();
            let personal = templates
                .render(
                    &m,
                    &MailFacts {
                        stream: &facts,
                        person: &[],
                    },
                )
                .unwrap();
            out.push(Rendered {
                key: m.key,
                template: m.template,
                personal,
            });
        }
        out
    }

    fn sign_up(&mut self, n: u128) -> Vec<Rendered> {
        let input = SignUpInput {
            name: "柏崎 太郎".into(),
            name_kana: "カシワザキ タロウ".into(),
            email: format!("taro{n}@example.jp"),
            phone: "090-1234-5678".into(),
            prefecture: "東京都".into(),
            adults: "2".into(),
            needs: "卵アレルギー\nベビーカー".into(),
            consent: true,
            ..SignUpInput::default()
        };
        let sign_up = input
            .validate(Uuid::from_u128(100 + n))
            .unwrap()
            .for_person(Uuid::from_u128(500 + n));
        self.apply(TourCommand::SignUp { sign_up, at: at() })
    }
}

fn tour(capacity: u32) -> Sim {
    let (_dir, config) = config();
    let id = Uuid::from_u128(7);
    let details = TourDetails {
        title: "冬の柏崎 1泊2日".into(),
        kind: TourKind::Overnight,
        starts_at: "2026-12-31T00:00:00Z".parse().unwrap(),
        ends_at: "2027-01-01T06:00:00Z".parse().unwrap(),
        meeting_place: "JR柏崎駅".into(),
        capacity_parties: capacity,
        max_people: None,
        fee_yen: 12000,
        deadline: None,
        description: "雪国の暮らしを体験します。".into(),
        audience: String::new(),
    };
    let mut sim = Sim {
        id,
        config,
        history: vec![],
    };
    sim.apply(TourCommand::Schedule {
        tour_id: id,
        details,
        publish: true,
        at: at(),
    });
    sim
}

#[test]
fn dates_read_the_japanese_way_in_the_city_time_zone() {
    let tz = chrono_tz::Asia::Tokyo;
    let start = "2026-12-31T00:00:00Z".parse().unwrap();
    assert_eq!(ja_datetime(tz, start), "2026年12月31日（木）09:00");
    let same_day = "2026-12-31T07:30:00Z".parse().unwrap();
    assert_eq!(
        ja_span(tz, start, same_day),
        "2026年12月31日（木）09:00〜16:30"
    );
    assert_eq!(fee_ja(0), "無料");
    assert_eq!(fee_ja(12000), "12,000円");
    assert_eq!(fee_ja(1_234_567), "1,234,567円");
}

#[test]
fn a_confirmation_carries_the_details_an_ics_and_the_personal_link() {
    let mut sim = tour(1);
    let (id, config) = (sim.id, sim.config.clone());
    let mails = sim.sign_up(1);
    assert_eq!(mails.len(), 2, "the party and the concierges");
    let party = &mails[0];
    assert_eq!(party.template, templates::CONFIRMED);
    assert_eq!(party.personal.to, ["taro1@example.jp"]);
    assert_eq!(
        party.key,
        format!("tour/{id}/sign-up/{}/confirmed", Uuid::from_u128(101))
    );
    let text = &party.personal.text;
    assert!(text.starts_with("柏崎 太郎 様"));
    assert!(text.contains("2026年12月31日（木）09:00 〜 2027年1月1日（金）15:00"));
    assert!(text.contains("12,000円"));
    assert!(text.contains("卵アレルギー\n　　ベビーカー"));
    assert!(text.contains(&config.words.desk_phone));
    let link = sign_up_link(&config, id, Uuid::from_u128(101));
    assert!(text.contains(&link));
    assert!(
        party
            .personal
            .html
            .as_ref()
            .unwrap()
            .contains(&format!("href=\"{link}\""))
    );
    let ics = &party.personal.attachments[0];
    assert!(ics.content_type.starts_with("text/calendar"));
    for line in [
        "BEGIN:VCALENDAR",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        "DTSTART:20261231T000000Z",
        "DTEND:20270101T060000Z",
        "LOCATION:JR柏崎駅",
    ] {
        assert!(ics.content.contains(line), "{line} in {}", ics.content);
    }
    let notice = &mails[1];
    assert_eq!(notice.personal.to, config.concierge_emails);
    assert!(notice.personal.text.contains("taro1@example.jp"));
    assert!(
        !notice.personal.subject.contains("柏崎 太郎"),
        "no name in subjects"
    );
    assert!(notice.personal.text.contains("1組 / 定員1組（2名）"));
}

#[test]
fn a_waitlisted_party_is_told_its_place() {
    let mut sim = tour(1);
    sim.sign_up(1);
    let mails = sim.sign_up(2);
    assert_eq!(mails[0].template, templates::WAITLISTED);
    assert!(mails[0].personal.text.contains("1 番目"));
    assert!(mails[0].personal.attachments.is_empty());
}

fn calendar_of(mail: &Rendered) -> &Attachment {
    mail.personal
        .attachments
        .iter()
        .find(|a| a.content_type.starts_with("text/calendar"))
        .unwrap_or_else(|| panic!("{} has no calendar entry", mail.key))
}

#[test]
fn cancelling_takes_the_tour_back_out_of_the_calendar() {
    let mut sim = tour(1);
    let published = calendar_of(&sim.sign_up(1)[0]).clone();
    let uid = published
        .content
        .lines()
        .find(|l| l.starts_with("UID:"))
        .unwrap()
        .to_owned();

    // The party cancels: the receipt withdraws the same entry.
    let mails = sim.apply(TourCommand::CancelSignUp {
        sign_up_id: Uuid::from_u128(101),
        by: kujira_domain::tour::CancelledBy::Party,
        at: at(),
    });
    let receipt = mails
        .iter()
        .find(|m| m.template == templates::CANCELLED)
        .unwrap();
    let cancel = calendar_of(receipt);
    assert!(cancel.content_type.ends_with("method=CANCEL"));
    for line in [
        "METHOD:CANCEL",
        "STATUS:CANCELLED",
        "SEQUENCE:1",
        uid.as_str(),
    ] {
        assert!(
            cancel.content.contains(line),
            "{line} in {}",
            cancel.content
        );
    }

    // The city cancels the tour: every party's notice withdraws it too.
    let mut sim = tour(1);
    sim.sign_up(2);
    let mails = sim.apply(TourCommand::Cancel {
        reason: Some("大雪のため".into()),
        at: at(),
    });
    let notice = mails
        .iter()
        .find(|m| m.template == templates::TOUR_CANCELLED)
        .unwrap();
    assert!(calendar_of(notice).content.contains("METHOD:CANCEL"));
    assert!(notice.personal.text.contains("大雪のため"));
}
