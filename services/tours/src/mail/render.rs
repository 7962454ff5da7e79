//! Each tour mail's words: the confirmation, the waiting list, the promotion, the
//! cancellation, the revised details and the staff notices, written once as a
//! [`MailBody`] and sent as text and HTML.

use super::*;

/// What a mail needs of the fact it is about.
pub(super) struct Fact {
    pub(super) at: DateTime<Utc>,
    pub(super) position: u32,
    pub(super) was: Standing,
}

impl Fact {
    pub(super) fn at(at: DateTime<Utc>) -> Self {
        Self {
            at,
            position: 0,
            was: Standing::Confirmed,
        }
    }
}

/// The personal part of a sign-up being rendered.
fn pd(s: &SignUp) -> &SignUpPersonal {
    s.personal
        .known()
        .expect("every sign-up passes `corrected`, which refuses erased ones, before rendering")
}

pub(super) struct Renderer<'a> {
    pub(super) config: &'a Config,
    pub(super) tour_id: Uuid,
    pub(super) tour: &'a TourState,
    pub(super) d: &'a TourDetails,
}

impl Renderer<'_> {
    fn key(&self, s: &SignUp, what: &str) -> String {
        format!("tour/{}/sign-up/{}/{what}", self.tour_id, s.id)
    }

    fn subject(&self, what: &str) -> String {
        format!(
            "【{}】{}：{}",
            self.config.words.site_name, what, self.d.title
        )
    }

    fn tour_rows(&self) -> Vec<(String, String)> {
        let tz = self.config.timezone;
        let mut rows = vec![
            ("ツアー".into(), self.d.title.clone()),
            ("種類".into(), self.d.kind.label_ja().into()),
            ("日時".into(), ja_span(tz, self.d.starts_at, self.d.ends_at)),
        ];
        if !self.d.meeting_place.is_empty() {
            rows.push(("集合場所".into(), self.d.meeting_place.clone()));
        }
        rows.push(("参加費".into(), fee_ja(self.d.fee_yen)));
        rows
    }

    fn party_rows(&self, s: &SignUp) -> Vec<(String, String)> {
        let mut rows = vec![
            ("代表者".into(), format!("{} 様", pd(s).name)),
            (
                "参加人数".into(),
                format!("大人{}名・子ども{}名", s.party.adults, s.party.children),
            ),
        ];
        if let Some(t) = s.transport {
            rows.push(("来場方法".into(), t.label_ja().into()));
        }
        if let Some(n) = &pd(s).needs {
            rows.push(("配慮事項".into(), n.to_string()));
        }
        rows
    }

    fn signature(&self) -> Vec<String> {
        kujira_web::mail_body::signature(self.config)
    }

    fn link(&self, s: &SignUp) -> (String, String) {
        (
            "お申し込みの確認・キャンセル".into(),
            sign_up_link(self.config, self.tour_id, s.id),
        )
    }

    fn to_party(
        &self,
        s: &SignUp,
        what: &str,
        template: &str,
        subject: String,
        body: MailBody,
        attachments: Vec<Attachment>,
    ) -> MailRequested {
        MailRequested {
            key: self.key(s, what),
            template: template.into(),
            personal: MailContent {
                to: vec![pd(s).email.to_string()],
                subject,
                text: body.text(&self.signature()),
                html: Some(body.html(&self.signature())),
                attachments,
                unsubscribe_url: None,
            }
            .into(),
        }
    }

    pub(super) fn confirmed(&self, s: &SignUp, at: DateTime<Utc>, promoted: bool) -> MailRequested {
        let mut paragraphs = if promoted {
            vec![
                format!(
                    "キャンセル待ちでお申し込みいただいていた「{}」に空きが出たため、参加が確定しました。",
                    self.d.title
                ),
                "ご都合が合わなくなった場合は、下のリンクからキャンセルの手続きをお願いします。"
                    .into(),
            ]
        } else {
            vec![
                format!(
                    "{}の「{}」にお申し込みいただき、ありがとうございます。参加が確定しましたのでお知らせします。",
                    self.config.words.city_name, self.d.title
                ),
                "ご都合が悪くなった場合は、下のリンクからキャンセルしてください。キャンセル待ちの方に順番にご案内します。".into(),
            ]
        };
        paragraphs.push("カレンダーに登録できるファイル（tour.ics）を添付しています。".into());
        let body = MailBody {
            greeting: format!("{} 様", pd(s).name),
            paragraphs,
            sections: vec![
                ("ツアーの内容".into(), self.tour_rows()),
                ("お申し込みの内容".into(), self.party_rows(s)),
            ],
            links: vec![self.link(s)],
            closing: vec!["当日お会いできることを楽しみにしています。".into()],
            lists: vec![],
        };
        let ics = Attachment {
            filename: "tour.ics".into(),
            content_type: IcsMethod::Publish.content_type(),
            content: ics_revised(
                self.config,
                self.tour_id,
                self.d,
                at,
                IcsMethod::Publish,
                self.tour.revision,
            ),
        };
        let (what, template, subject) = if promoted {
            (
                "promoted",
                templates::PROMOTED,
                self.subject("キャンセル待ちから参加確定になりました"),
            )
        } else {
            (
                "confirmed",
                templates::CONFIRMED,
                self.subject("ツアーへの参加が確定しました"),
            )
        };
        self.to_party(s, what, template, subject, body, vec![ics])
    }

    pub(super) fn waitlisted(&self, s: &SignUp, position: u32) -> MailRequested {
        let body = MailBody {
            greeting: format!("{} 様", pd(s).name),
            paragraphs: vec![
                format!(
                    "「{}」にお申し込みいただき、ありがとうございます。定員に達しているため、キャンセル待ちとして受け付けました。",
                    self.d.title
                ),
                format!("現在のキャンセル待ちの順番は {position} 番目です。"),
                "空きが出た場合は、お申し込み順に繰り上げて参加確定とし、メールでお知らせします。キャンセル待ちをやめる場合は、下のリンクから手続きできます。".into(),
            ],
            sections: vec![
                ("ツアーの内容".into(), self.tour_rows()),
                ("お申し込みの内容".into(), self.party_rows(s)),
            ],
            links: vec![self.link(s)],
            closing: vec![],
            lists: vec![],
        };
        self.to_party(
            s,
            "waitlisted",
            templates::WAITLISTED,
            self.subject("キャンセル待ちで受け付けました"),
            body,
            vec![],
        )
    }

    /// The entry that takes the tour out of the party's calendar again.
    fn ics_cancel(&self, at: DateTime<Utc>) -> Attachment {
        Attachment {
            filename: "tour.ics".into(),
            content_type: IcsMethod::Cancel.content_type(),
            content: ics_revised(
                self.config,
                self.tour_id,
                self.d,
                at,
                IcsMethod::Cancel,
                self.tour.revision,
            ),
        }
    }

    pub(super) fn cancelled(&self, s: &SignUp, was: Standing, at: DateTime<Utc>) -> MailRequested {
        let what = match was {
            Standing::Confirmed => "ツアーへのお申し込み",
            Standing::Waitlisted => "キャンセル待ち",
        };
        let body = MailBody {
            greeting: format!("{} 様", pd(s).name),
            paragraphs: vec![
                format!("「{}」の{what}のキャンセルを受け付けました。", self.d.title),
                "またの機会にぜひご参加ください。移住に関するご相談は、いつでも窓口で承っています。"
                    .into(),
            ],
            sections: vec![("キャンセルしたツアー".into(), self.tour_rows())],
            links: vec![],
            closing: vec![],
            lists: vec![],
        };
        // Only a confirmed party was sent the calendar entry to take back.
        let attachments = match was {
            Standing::Confirmed => vec![self.ics_cancel(at)],
            Standing::Waitlisted => vec![],
        };
        self.to_party(
            s,
            "cancelled",
            templates::CANCELLED,
            self.subject("キャンセルを受け付けました"),
            body,
            attachments,
        )
    }

    pub(super) fn tour_changed(
        &self,
        s: &SignUp,
        c: &kujira_domain::tour::TourDetailsChanged,
    ) -> MailRequested {
        let what: Vec<&str> = c
            .changed
            .iter()
            .filter_map(|f| match f.as_str() {
                "starts_at" | "ends_at" => Some("日時"),
                "meeting_place" => Some("集合場所"),
                "fee_yen" => Some("参加費"),
                _ => None,
            })
            .fold(Vec::new(), |mut v, w| {
                if !v.contains(&w) {
                    v.push(w);
                }
                v
            });
        let mut paragraphs = vec![
            format!(
                "お申し込みいただいている「{}」の{}が変更になりました。変更後の内容は次のとおりです。",
                self.d.title,
                what.join("・")
            ),
            "ご都合が合わなくなった場合は、下のリンクからキャンセルの手続きをお願いします。".into(),
        ];
        let confirmed = s.is_confirmed();
        if confirmed {
            paragraphs
                .push("カレンダーの予定を更新できるファイル（tour.ics）を添付しています。".into());
        }
        let body = MailBody {
            greeting: format!("{} 様", pd(s).name),
            paragraphs,
            sections: vec![
                ("変更後のツアーの内容".into(), self.tour_rows()),
                ("お申し込みの内容".into(), self.party_rows(s)),
            ],
            links: vec![self.link(s)],
            closing: vec!["ご不便をおかけしますが、よろしくお願いいたします。".into()],
            lists: vec![],
        };
        let attachments = if confirmed {
            vec![Attachment {
                filename: "tour.ics".into(),
                content_type: IcsMethod::Publish.content_type(),
                content: ics_revised(
                    self.config,
                    self.tour_id,
                    self.d,
                    c.at,
                    IcsMethod::Publish,
                    c.revision,
                ),
            }]
        } else {
            vec![]
        };
        MailRequested {
            key: format!("tour/{}/changed/{}/{}", self.tour_id, c.revision, s.id),
            template: templates::TOUR_CHANGED.into(),
            personal: MailContent {
                to: vec![pd(s).email.to_string()],
                subject: self.subject("ツアーの内容変更のお知らせ"),
                text: body.text(&self.signature()),
                html: Some(body.html(&self.signature())),
                attachments,
                unsubscribe_url: None,
            }
            .into(),
        }
    }

    pub(super) fn tour_cancelled(
        &self,
        s: &SignUp,
        reason: Option<&str>,
        at: DateTime<Utc>,
    ) -> MailRequested {
        let mut paragraphs = vec![format!(
            "お申し込みいただいていた「{}」は、誠に勝手ながら中止することになりました。楽しみにしていただいていたところ、申し訳ありません。",
            self.d.title
        )];
        if let Some(r) = reason {
            paragraphs.push(format!("中止の理由：{r}"));
        }
        paragraphs.push(
            "お手続きは必要ありません。次回のツアーやオーダーメイドツアーについては、窓口までお気軽にお問い合わせください。"
                .into(),
        );
        let body = MailBody {
            greeting: format!("{} 様", pd(s).name),
            paragraphs,
            sections: vec![("中止となったツアー".into(), self.tour_rows())],
            links: vec![],
            closing: vec![],
            lists: vec![],
        };
        MailRequested {
            key: format!("tour/{}/cancelled/{}", self.tour_id, s.id),
            template: templates::TOUR_CANCELLED.into(),
            personal: MailContent {
                to: vec![pd(s).email.to_string()],
                subject: self.subject("ツアー中止のお知らせ"),
                text: body.text(&self.signature()),
                html: Some(body.html(&self.signature())),
                // A CANCEL for an entry a waitlisted party never had is ignored by
                // calendar clients, so every party gets it.
                attachments: vec![self.ics_cancel(at)],
                unsubscribe_url: None,
            }
            .into(),
        }
    }

    pub(super) fn concierge(&self, s: &SignUp, what_ja: &str, what: &str) -> MailRequested {
        let p = pd(s);
        let mut person = vec![
            ("氏名".into(), format!("{}（{}）", p.name, p.name_kana)),
            ("メール".into(), p.email.to_string()),
            ("電話".into(), p.phone.to_string()),
            ("都道府県".into(), s.prefecture.to_string()),
            (
                "参加人数".into(),
                format!("大人{}名・子ども{}名", s.party.adults, s.party.children),
            ),
        ];
        if let Some(a) = &p.children_ages {
            person.push(("子どもの年齢".into(), a.to_string()));
        }
        if let Some(t) = s.transport {
            person.push(("来場方法".into(), t.label_ja().into()));
        }
        if let Some(n) = &p.needs {
            person.push(("配慮事項".into(), n.to_string()));
        }
        if let Some(src) = s.source {
            person.push(("知ったきっかけ".into(), src.label_ja().into()));
        }
        let capacity = self.d.capacity_parties;
        let counts = vec![
            (
                "参加確定".into(),
                format!(
                    "{}組 / 定員{}組（{}名）",
                    self.tour.confirmed_parties(),
                    capacity,
                    self.tour.confirmed_people()
                ),
            ),
            (
                "キャンセル待ち".into(),
                format!("{}組", self.tour.waitlist_length()),
            ),
        ];
        let body = MailBody {
            greeting: "移住コンシェルジュ各位".into(),
            paragraphs: vec![format!("「{}」に{what_ja}がありました。", self.d.title)],
            sections: vec![
                ("ツアー".into(), self.tour_rows()),
                ("お申し込み".into(), person),
                ("現在の状況".into(), counts),
            ],
            links: vec![(
                "ツアーの参加者一覧".into(),
                format!("{}/desk/tours/{}", self.config.public_url, self.tour_id),
            )],
            closing: vec![],
            lists: vec![],
        };
        MailRequested {
            key: format!("{}/concierge", self.key(s, what)),
            template: templates::CONCIERGE.into(),
            personal: MailContent {
                to: self.config.concierge_emails.clone(),
                // No name in the subject: subjects are kept as a record of what was sent.
                subject: format!(
                    "【ツアー{what_ja}】{}（大人{}名・子ども{}名）",
                    self.d.title, s.party.adults, s.party.children
                ),
                // Staff mail: no public signature, only where it comes from.
                text: body.text(&[format!("{} 自動送信", self.config.words.site_name)]),
                html: Some(body.html(&[format!("{} 自動送信", self.config.words.site_name)])),
                attachments: vec![],
                unsubscribe_url: None,
            }
            .into(),
        }
    }
}
