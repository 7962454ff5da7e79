//! The value types' parsing, case by case.

use super::*;

#[test]
fn kana_accepts_half_width_and_full_width_spaces() {
    assert_eq!(
        Kana::parse("ｶｼﾜｻﾞｷ ﾀﾛｳ").unwrap().as_str(),
        "カシワザキ タロウ"
    );
    assert_eq!(
        Kana::parse(" カシワザキ　タロウ ").unwrap().as_str(),
        "カシワザキ タロウ"
    );
    assert_eq!(
        Kana::parse("ヤマダ  ハナコー").unwrap().as_str(),
        "ヤマダ ハナコー"
    );
}

#[test]
fn an_address_typed_twice_agrees_whatever_the_case_of_its_letters() {
    let mut e = FieldErrors::new();
    let got = e.check_email_pair("Hanako@Example.jp", Some("ｈａｎａｋｏ@example.JP"));
    assert_eq!(e, FieldErrors::new());
    assert_eq!(got.unwrap().as_str(), "Hanako@example.jp");
    let mut e = FieldErrors::new();
    e.check_email_pair("hanako@example.jp", Some("hanako2@example.jp"));
    assert_eq!(e.get("email_confirm"), Some(&ValueError::Mismatch));
    let mut e = FieldErrors::new();
    e.check_email_pair("hanako@example.jp", Some(""));
    assert_eq!(e.get("email_confirm"), Some(&ValueError::Required));
}

#[test]
fn kana_takes_hiragana_as_katakana() {
    assert_eq!(
        Kana::parse("かしわざき　はなこ").unwrap().as_str(),
        "カシワザキ ハナコ"
    );
    assert_eq!(
        Kana::parse("ゔぃーなす・ぁゖゝゞ").unwrap().as_str(),
        "ヴィーナス・ァヶヽヾ"
    );
    // Mixed with katakana and half-width katakana.
    assert_eq!(Kana::parse("やまだ ﾀﾛｳ").unwrap().as_str(), "ヤマダ タロウ");
}

#[test]
fn kana_refuses_kanji_latin_and_blank() {
    assert_eq!(Kana::parse("山田"), Err(ValueError::NotKatakana));
    assert_eq!(Kana::parse("やま田"), Err(ValueError::NotKatakana));
    assert_eq!(Kana::parse("Yamada"), Err(ValueError::NotKatakana));
    assert_eq!(Kana::parse("　 "), Err(ValueError::Required));
    assert_eq!(
        Kana::parse(&"ア".repeat(51)),
        Err(ValueError::TooLong { max: 50 })
    );
}

#[test]
fn email_is_normalised_and_checked() {
    assert_eq!(
        Email::parse(" ｔａｒｏ＠Example.JP ").unwrap().as_str(),
        "taro@example.jp"
    );
    for bad in [
        "taro",
        "taro@",
        "@example.jp",
        "taro@localhost",
        "ta ro@example.jp",
        "a@b..jp",
        "<script>@x.jp",
    ] {
        assert_eq!(Email::parse(bad), Err(ValueError::InvalidEmail), "{bad}");
    }
    assert_eq!(Email::parse(""), Err(ValueError::Required));
}

#[test]
fn phone_accepts_japanese_shapes() {
    assert_eq!(
        Phone::parse("０２５７－２１－２３３４").unwrap().as_str(),
        "0257-21-2334"
    );
    assert!(Phone::parse("090 1234 5678").is_ok());
    assert!(Phone::parse("+81-90-1234-5678").is_ok());
    assert_eq!(Phone::parse("12345"), Err(ValueError::InvalidPhone));
    assert_eq!(Phone::parse("03-1234-abcd"), Err(ValueError::InvalidPhone));
}

#[test]
fn postal_code_takes_seven_digits_with_optional_hyphen() {
    assert_eq!(PostalCode::parse("945-8511").unwrap().digits(), "9458511");
    assert_eq!(
        PostalCode::parse("９４５８５１１").unwrap().to_string(),
        "945-8511"
    );
    assert_eq!(PostalCode::parse("〒945-8511").unwrap().digits(), "9458511");
    for bad in ["94585", "9458-511", "945-85111", "abc-defg"] {
        assert_eq!(
            PostalCode::parse(bad),
            Err(ValueError::InvalidPostalCode),
            "{bad}"
        );
    }
}

#[test]
fn prefectures_are_the_47() {
    assert_eq!(Prefecture::all().count(), 47);
    assert_eq!(Prefecture::parse("新潟県").unwrap().code(), 15);
    assert_eq!(Prefecture::parse("東京都").unwrap().name(), "東京都");
    assert_eq!(
        Prefecture::parse("東京"),
        Err(ValueError::UnknownPrefecture)
    );
    let json = serde_json::to_string(&Prefecture::parse("北海道").unwrap()).unwrap();
    assert_eq!(json, "\"北海道\"");
    assert_eq!(serde_json::from_str::<Prefecture>(&json).unwrap().code(), 1);
}

#[test]
fn free_text_refuses_controls_and_length() {
    assert_eq!(
        FreeText::parse_line("a\nb", 10),
        Err(ValueError::ControlCharacter)
    );
    assert_eq!(
        FreeText::parse_line("a\u{0}b", 10),
        Err(ValueError::ControlCharacter)
    );
    assert_eq!(
        FreeText::parse_line("a\u{202E}b", 10),
        Err(ValueError::ControlCharacter)
    );
    assert_eq!(
        FreeText::parse_multiline("a\r\n\tb", 10).unwrap().as_str(),
        "a\n\tb"
    );
    assert_eq!(
        FreeText::parse_multiline("a\u{7}b", 10),
        Err(ValueError::ControlCharacter)
    );
    assert_eq!(
        FreeText::parse_multiline(&"あ".repeat(11), 10),
        Err(ValueError::TooLong { max: 10 })
    );
    assert!(FreeText::parse_multiline(&"あ".repeat(10), 10).is_ok());
    assert_eq!(
        PersonName::parse("柏崎\u{1b}太郎"),
        Err(ValueError::ControlCharacter)
    );
}

#[test]
fn choices_round_trip_their_wire_names() {
    assert_eq!(AgeGroup::parse("70s_plus"), Ok(AgeGroup::SeventiesPlus));
    assert_eq!(Topic::parse("snow_climate").unwrap().label_ja(), "雪・気候");
    assert_eq!(Gender::parse("nobody"), Err(ValueError::UnknownChoice));
    assert_eq!(
        serde_json::to_string(&Segment::UTurn).unwrap(),
        "\"u_turn\""
    );
    for m in ConsultationMethod::ALL {
        assert_eq!(ConsultationMethod::parse(m.as_str()), Ok(*m));
    }
}

#[test]
fn optional_maps_blank_to_none() {
    assert_eq!(optional("  ", Phone::parse), Ok(None));
    assert!(optional("0257-21-2334", Phone::parse).unwrap().is_some());
    assert_eq!(optional("1", Phone::parse), Err(ValueError::InvalidPhone));
}
