use anyhow::bail;

/// The words that make kujira one city's service rather than another's.
/// Defaults are Kashiwazaki City's (柏崎市) and its site くじらと。.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CityWords {
    /// `KUJIRA_CITY_NAME`
    pub city_name: String,
    /// `KUJIRA_SITE_NAME`
    pub site_name: String,
    /// `KUJIRA_DESK_NAME`: who answers (shown in mail signatures and on pages).
    pub desk_name: String,
    /// `KUJIRA_DESK_PHONE`
    pub desk_phone: String,
    /// `KUJIRA_DESK_EMAIL`
    pub desk_email: String,
    /// `KUJIRA_DESK_HOURS`
    pub desk_hours: String,
    /// `KUJIRA_PRIVACY_PURPOSE`: the purpose of use shown above every submit button (APPI art. 62).
    pub privacy_purpose: String,
    /// `KUJIRA_PRIVACY_POLICY_URL`: the city's full policy, linked beside the purpose.
    pub privacy_policy_url: Option<String>,
    /// `KUJIRA_MOVER_DEFINITION`: who counts as a 移住者 in the KGI. There is no
    /// national definition (each municipality decides), so it is the city's words,
    /// shown where a concierge records a move and where the KGI is reported, so that
    /// staff who rotate every April count alike.
    pub mover_definition: String,
}

impl CityWords {
    pub(crate) fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let city_name = get("KUJIRA_CITY_NAME").unwrap_or_else(|| "柏崎市".into());
        let words = Self {
            site_name: get("KUJIRA_SITE_NAME").unwrap_or_else(|| "くじらと。".into()),
            desk_name: get("KUJIRA_DESK_NAME")
                .unwrap_or_else(|| format!("{city_name} 移住・定住相談窓口")),
            desk_phone: get("KUJIRA_DESK_PHONE").unwrap_or_else(|| "0257-21-2334".into()),
            desk_email: get("KUJIRA_DESK_EMAIL").unwrap_or_else(|| "iju@example.jp".into()),
            desk_hours: get("KUJIRA_DESK_HOURS")
                .unwrap_or_else(|| "平日 8:30〜17:15（土日祝・年末年始を除く）".into()),
            privacy_purpose: get("KUJIRA_PRIVACY_PURPOSE").unwrap_or_else(|| {
                format!(
                    "ご入力いただいた個人情報は、{city_name}への移住・定住に関するご相談への対応、\
                     体験ツアーの運営、およびご案内の送付のためにのみ利用し、\
                     法令に基づく場合を除き、ご本人の同意なく第三者に提供することはありません。"
                )
            }),
            privacy_policy_url: get("KUJIRA_PRIVACY_POLICY_URL"),
            mover_definition: get("KUJIRA_MOVER_DEFINITION").unwrap_or_else(|| {
                format!(
                    "{city_name}の外から{city_name}に住民票を移した方で、{city_name}の移住相談・\
                     体験ツアーなどの移住支援を利用した世帯（転入日は住民票の異動日）。"
                )
            }),
            city_name,
        };
        if let Some(u) = &words.privacy_policy_url
            && !(u.starts_with("https://") || u.starts_with("http://") || u.starts_with('/'))
        {
            bail!("KUJIRA_PRIVACY_POLICY_URL must be an http(s) URL or a path");
        }
        Ok(words)
    }
}
