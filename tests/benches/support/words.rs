//! The generator's words: names, places, messages and the other values it draws
//! from.

use super::*;

pub(super) const FAMILY: &[(&str, &str, &str)] = &[
    ("佐藤", "サトウ", "sato"),
    ("鈴木", "スズキ", "suzuki"),
    ("高橋", "タカハシ", "takahashi"),
    ("田中", "タナカ", "tanaka"),
    ("伊藤", "イトウ", "ito"),
    ("渡辺", "ワタナベ", "watanabe"),
    ("山本", "ヤマモト", "yamamoto"),
    ("中村", "ナカムラ", "nakamura"),
    ("小林", "コバヤシ", "kobayashi"),
    ("加藤", "カトウ", "kato"),
    ("吉田", "ヨシダ", "yoshida"),
    ("山田", "ヤマダ", "yamada"),
    ("佐々木", "ササキ", "sasaki"),
    ("山口", "ヤマグチ", "yamaguchi"),
    ("松本", "マツモト", "matsumoto"),
    ("井上", "イノウエ", "inoue"),
    ("木村", "キムラ", "kimura"),
    ("林", "ハヤシ", "hayashi"),
    ("斎藤", "サイトウ", "saito"),
    ("清水", "シミズ", "shimizu"),
    ("柏崎", "カシワザキ", "kashiwazaki"),
    ("長谷川", "ハセガワ", "hasegawa"),
];

pub(super) const GIVEN: &[(&str, &str)] = &[
    ("太郎", "タロウ"),
    ("花子", "ハナコ"),
    ("健太", "ケンタ"),
    ("美咲", "ミサキ"),
    ("翔", "ショウ"),
    ("陽菜", "ヒナ"),
    ("大輔", "ダイスケ"),
    ("さくら", "サクラ"),
    ("拓也", "タクヤ"),
    ("愛", "アイ"),
    ("誠", "マコト"),
    ("由美", "ユミ"),
    ("直樹", "ナオキ"),
    ("恵", "メグミ"),
    ("亮", "リョウ"),
    ("真由美", "マユミ"),
];

pub(super) const PREFECTURES: &[&str] = &[
    "東京都",
    "東京都",
    "東京都",
    "神奈川県",
    "神奈川県",
    "埼玉県",
    "千葉県",
    "新潟県",
    "新潟県",
    "大阪府",
    "愛知県",
    "長野県",
    "群馬県",
    "宮城県",
    "北海道",
];

pub(super) const MESSAGES: &[&str] = &[
    "子どもが小学校に上がる前に移住を考えています。冬の雪の量と除雪について教えてください。",
    "リモートワークで今の仕事を続けながら移住したいです。空き家バンクの物件を見学できますか。",
    "定年後に海の近くで暮らしたいと考えています。病院や買い物の便について知りたいです。",
    "夫婦で就農を考えています。研修制度や農地の借り方について相談したいです。",
    "出身が柏崎で、Uターンを検討しています。地元企業の求人情報はどこで見られますか。",
    "移住支援金の条件と申請の時期について詳しく教えてください。",
    "保育園の空き状況と、子育て支援の制度について知りたいです。",
    "起業を考えています。空き店舗の活用や創業支援について相談させてください。",
    "まずは情報収集の段階です。住まいと仕事の両方について、一度オンラインで話を聞きたいです。",
    "おためし移住体験ツアーに参加したいのですが、家族で参加できる日程はありますか。",
    "車がなくても暮らせる地域はありますか。駅の近くの賃貸物件を探しています。",
    "冬の暮らしが心配です。実際に移住された方の話を聞ける機会はありますか。",
];

pub(super) const NOTES: &[&str] = &[
    "電話で状況を確認。次回は住まいの候補について連絡する。",
    "メールで空き家バンクの資料を送付。",
    "オンライン相談を実施。仕事探しについて説明した。",
    "窓口に来訪。市内を案内し、先輩移住者を紹介した。",
    "移住フェアのブースで相談を受けた。資料一式を渡した。",
    "返信なし。1か月後に再度連絡する。",
    "支援金の要件を説明。転入時期は未定とのこと。",
];

pub(super) const TOUR_TITLES: &[&str] = &[
    "親子で体験！柏崎の暮らし日帰りツアー",
    "海と里山の暮らし体験ツアー",
    "先輩移住者と話そう 冬の柏崎ツアー",
    "農業体験と空き家見学ツアー",
    "しごと体験・企業見学ツアー",
];

pub(super) const SOURCES: &[&str] = &[
    "site",
    "site",
    "instagram",
    "fair",
    "search",
    "referral",
    "other",
];
pub(super) const TOPICS: &[&str] = &[
    "work",
    "housing",
    "childcare_education",
    "farming",
    "business",
    "support_programs",
    "snow_climate",
    "daily_life",
];
pub(super) const AGES: &[&str] = &["20s", "30s", "30s", "40s", "40s", "50s", "60s", "70s_plus"];
pub(super) const SEGMENTS: &[&str] = &["u_turn", "i_turn", "i_turn", "j_turn", "undecided"];
pub(super) const TIMINGS: &[&str] = &[
    "within_6_months",
    "within_1_year",
    "within_3_years",
    "undecided",
];
pub(super) const METHODS: &[&str] = &["online", "visit", "phone", "email", "fair"];
pub(super) const CONTACT_CHANNELS: &[ContactChannel] = &[
    ContactChannel::Email,
    ContactChannel::Email,
    ContactChannel::Phone,
    ContactChannel::Phone,
    ContactChannel::Online,
    ContactChannel::Counter,
    ContactChannel::Line,
    ContactChannel::Fair,
];
