//! The tour sign-up form's fields and their rules, shared by the HTML form and the
//! JSON API so that both accept and refuse exactly the same input.

use uuid::Uuid;

use super::{ADULTS_MAX, CHILDREN_MAX, NewSignUp, Party, SignUpPersonal, Transport};
use crate::values::{
    FieldErrors, FreeText, Kana, PersonName, Phone, Prefecture, Source, ValueError, optional,
};

/// Longest `children_ages` text.
pub const CHILDREN_AGES_MAX: usize = 200;
/// Longest `needs` text.
pub const NEEDS_MAX: usize = 1000;

/// Every field of the form, in the order the page shows them, with its label and
/// whether it is required.
pub const FIELDS: &[(&str, &str, bool)] = &[
    ("name", "氏名", true),
    ("name_kana", "フリガナ", true),
    ("email", "メールアドレス", true),
    ("email_confirm", "メールアドレス（確認用）", true),
    ("phone", "電話番号（当日連絡がつく番号）", true),
    ("prefecture", "お住まいの都道府県", true),
    ("adults", "参加する大人の人数", true),
    ("children", "参加する子どもの人数", false),
    ("children_ages", "お子さまの年齢・学年", false),
    ("transport", "来場方法", false),
    ("needs", "食物アレルギー・配慮が必要なこと", false),
    ("source", "このツアーを知ったきっかけ", false),
    ("consent", "個人情報の取り扱いへの同意", true),
];

/// The label of a field, for messages and the error summary.
pub fn label(field: &str) -> &'static str {
    FIELDS
        .iter()
        .find(|(f, _, _)| *f == field)
        .map_or("入力項目", |(_, l, _)| l)
}

/// The raw input, exactly as typed. Every field is text so that nothing is lost
/// when the form is shown again with its errors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignUpInput {
    pub name: String,
    pub name_kana: String,
    pub email: String,
    /// Only the HTML form has it; when present it must match `email`.
    pub email_confirm: Option<String>,
    pub phone: String,
    pub prefecture: String,
    pub adults: String,
    pub children: String,
    pub children_ages: String,
    pub transport: String,
    pub needs: String,
    pub source: String,
    pub consent: bool,
}

impl SignUpInput {
    /// Checks every field and reports every fault at once, in the form's order.
    pub fn validate(&self, sign_up_id: Uuid) -> Result<NewSignUp, FieldErrors> {
        let mut e = FieldErrors::new();
        let name = e.check("name", PersonName::parse(&self.name));
        let name_kana = e.check("name_kana", Kana::parse(&self.name_kana));
        let email = e.check_email_pair(&self.email, self.email_confirm.as_deref());
        let phone = e.check("phone", Phone::parse(&self.phone));
        let prefecture = e.check("prefecture", Prefecture::parse(&self.prefecture));
        let adults = e.check("adults", count(&self.adults, 1, ADULTS_MAX, true));
        let children = e.check("children", count(&self.children, 0, CHILDREN_MAX, false));
        let children_ages = e.check(
            "children_ages",
            optional(&self.children_ages, |s| {
                FreeText::parse_line(s, CHILDREN_AGES_MAX)
            }),
        );
        let transport = e.check(
            "transport",
            optional(&self.transport, |s| {
                Transport::parse(s.trim()).ok_or(ValueError::UnknownChoice)
            }),
        );
        let needs = e.check(
            "needs",
            optional(&self.needs, |s| FreeText::parse_multiline(s, NEEDS_MAX)),
        );
        let source = e.check("source", optional(&self.source, Source::parse));
        if !self.consent {
            e.add("consent", ValueError::MustAgree);
        }

        match (
            name,
            name_kana,
            email,
            phone,
            prefecture,
            adults,
            children,
            children_ages,
            transport,
            needs,
            source,
        ) {
            (
                Some(name),
                Some(name_kana),
                Some(email),
                Some(phone),
                Some(prefecture),
                Some(adults),
                Some(children),
                Some(children_ages),
                Some(transport),
                Some(needs),
                Some(source),
            ) if e.is_empty() => Ok(NewSignUp {
                sign_up_id,
                // Known once the service has found or created the person by email.
                person_id: Uuid::nil(),
                party: Party { adults, children },
                prefecture,
                transport,
                source,
                personal: SignUpPersonal {
                    name,
                    name_kana,
                    email,
                    phone,
                    children_ages,
                    needs,
                },
            }),
            _ => Err(e),
        }
    }
}

fn count(input: &str, min: u8, max: u8, required: bool) -> Result<u8, ValueError> {
    let s: String = unicode_digits(input.trim());
    if s.is_empty() {
        return if required {
            Err(ValueError::Required)
        } else {
            Ok(min)
        };
    }
    s.parse::<u8>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or(ValueError::OutOfRange {
            min: i64::from(min),
            max: i64::from(max),
        })
}

/// Full-width digits (２) count as digits: people type them on phones.
fn unicode_digits(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32).unwrap_or(c),
            c => c,
        })
        .collect()
}
