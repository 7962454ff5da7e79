//! Runtime configuration: environment variables with sane defaults, an optional
//! TOML file, the generated secret, the city's own words, and the clock.
//!
//! Every value has a default so that `kujira serve` starts with no variable set.
//! An invalid value fails at start-up with a message that names the variable.

mod clock;
pub mod keyfile;
mod mail;
mod retention;
mod rules;
mod words;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, anyhow, bail};
use base64::Engine;

pub use clock::{Clock, FixedClock, SystemClock};
pub use mail::{QuietHours, parse_mailbox};
pub use retention::Retention;
pub use rules::{CronExpr, RuleName, RuleSchedule, RuleSettings};
pub use words::CityWords;

/// Everything kujira reads from its environment.
#[derive(Clone, Debug)]
pub struct Config {
    /// `DATABASE_URL`; when unset, a private cluster runs under `data_dir/pg`.
    pub database_url: Option<String>,
    /// `KUJIRA_ADDR`.
    pub addr: SocketAddr,
    /// `KUJIRA_DATA_DIR`: the embedded cluster, the secret, the `.eml` outbox.
    pub data_dir: PathBuf,
    /// `KUJIRA_PUBLIC_URL`: the base of links in emails, without a trailing slash.
    pub public_url: String,
    /// `KUJIRA_SMTP_URL`, e.g. `smtp://user:pass@host:587?tls=required`; when unset,
    /// mail is written as `.eml` files into `data_dir/outbox`.
    pub smtp_url: Option<String>,
    /// The address of `KUJIRA_MAIL_FROM` (without its display name).
    pub mail_from: String,
    /// The display name of `KUJIRA_MAIL_FROM` (`くじらと。 <noreply@city.example.jp>`);
    /// when absent, mail comes under the site's name.
    pub mail_from_name: Option<String>,
    /// `KUJIRA_MAIL_WORKERS` (default 4, at most 16): how many mails `serve` sends at
    /// once, and how many SMTP connections it keeps open for them.
    pub mail_workers: usize,
    /// `KUJIRA_QUIET_HOURS` (default `20:00-08:00`, in `timezone`); `None` when the
    /// variable is set empty: applicant follow-ups are then never held.
    pub quiet_hours: Option<QuietHours>,
    /// `KUJIRA_CONCIERGE_EMAILS`, comma-separated.
    pub concierge_emails: Vec<String>,
    /// `KUJIRA_TIMEZONE`.
    pub timezone: chrono_tz::Tz,
    /// `KUJIRA_SECRET`, or the one generated into `data_dir/secret`.
    pub secret: Secret,
    /// Where the master key that wraps every person's data key comes from.
    pub master_key: MasterKeySetting,
    /// `KUJIRA_SUBMISSIONS_PER_IP_PER_HOUR`; 0 turns the limit off.
    pub submissions_per_ip_per_hour: u32,
    /// `KUJIRA_INQUIRY_LEAD_DAYS`: how far ahead a preferred consultation date must be.
    pub inquiry_lead_days: u32,
    /// `KUJIRA_TRUSTED_PROXIES`: peers (addresses or CIDR ranges) whose
    /// `X-Forwarded-For` is believed, so that the per-IP limits see the real client
    /// behind a reverse proxy. Default: loopback only.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `KUJIRA_PG_USER`: the OS user that runs the embedded cluster when kujira runs as root.
    pub pg_user: Option<String>,
    /// `KUJIRA_PROJECTION_LAG_LIMIT`, in seconds: `/readyz` answers 503 while a
    /// projection's oldest unapplied event is older than this.
    pub projection_lag_limit: std::time::Duration,
    /// `KUJIRA_RETENTION`: personal data is erased this long after the person's last
    /// activity (`5y` by default; `off` keeps it until erased by hand).
    pub retention: Retention,
    /// The city's words (`KUJIRA_CITY_NAME`, `KUJIRA_SITE_NAME`, ...).
    pub words: CityWords,
    /// The scheduler's rules: `KUJIRA_RULE_<NAME>` (a cron expression or `off`) and
    /// their offsets.
    pub rules: RuleSettings,
}

/// The key that signs cookies, CSRF tokens and links. Never printed.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// The master key: `KUJIRA_MASTER_KEY` (base64 of 32 bytes), or the file named by
/// `KUJIRA_MASTER_KEY_FILE`, or else `data_dir/master.key`, generated on the first
/// run (by the vault, which knows whether the database already holds keys).
#[derive(Clone)]
pub enum MasterKeySetting {
    /// From `KUJIRA_MASTER_KEY` or `KUJIRA_MASTER_KEY_FILE` (read at start-up).
    Given { bytes: Secret, origin: String },
    /// `data_dir/master.key`, which may not exist yet.
    DataDir(PathBuf),
}

impl std::fmt::Debug for MasterKeySetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Given { origin, .. } => write!(f, "MasterKeySetting::Given({origin})"),
            Self::DataDir(p) => f.debug_tuple("MasterKeySetting::DataDir").field(p).finish(),
        }
    }
}

/// More mail workers than this would only queue on the SMTP server's own limits
/// (most relays refuse more than a handful of connections from one sender).
pub const MAX_MAIL_WORKERS: usize = 16;

/// Length of the master key, in bytes (AES-256).
pub const MASTER_KEY_LEN: usize = 32;

fn master_key_setting(
    get: &impl Fn(&str) -> Option<String>,
    data_dir: &Path,
) -> anyhow::Result<MasterKeySetting> {
    match (get("KUJIRA_MASTER_KEY"), get("KUJIRA_MASTER_KEY_FILE")) {
        (Some(_), Some(_)) => {
            bail!("KUJIRA_MASTER_KEY and KUJIRA_MASTER_KEY_FILE are both set: set only one")
        }
        (Some(value), None) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(value.trim())
                .ok()
                .filter(|b| b.len() == MASTER_KEY_LEN)
                .ok_or_else(|| {
                    anyhow!(
                        "KUJIRA_MASTER_KEY must be {MASTER_KEY_LEN} bytes in base64 \
                         (make one with `openssl rand -base64 32`)"
                    )
                })?;
            Ok(MasterKeySetting::Given {
                bytes: Secret(bytes),
                origin: "KUJIRA_MASTER_KEY".into(),
            })
        }
        (None, Some(path)) => {
            let bytes = keyfile::read(Path::new(&path), MASTER_KEY_LEN)
                .context("KUJIRA_MASTER_KEY_FILE")?;
            if bytes.len() != MASTER_KEY_LEN {
                bail!("KUJIRA_MASTER_KEY_FILE: {path} must hold exactly {MASTER_KEY_LEN} bytes");
            }
            Ok(MasterKeySetting::Given {
                bytes: Secret(bytes),
                origin: format!("KUJIRA_MASTER_KEY_FILE ({path})"),
            })
        }
        (None, None) => Ok(MasterKeySetting::DataDir(data_dir.join("master.key"))),
    }
}

/// The optional TOML file (`KUJIRA_CONFIG`): the same keys as the variables, lower-case,
/// without the `KUJIRA_` prefix (`addr = "0.0.0.0:8080"`, `city_name = "..."`).
/// A variable that is set wins over the file.
type FileValues = std::collections::BTreeMap<String, toml::Value>;

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let file: FileValues = match lookup("KUJIRA_CONFIG") {
            Some(path) => {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("KUJIRA_CONFIG: cannot read {path}"))?;
                toml::from_str(&text)
                    .with_context(|| format!("KUJIRA_CONFIG: {path} is not valid TOML"))?
            }
            None => FileValues::new(),
        };
        let get = |var: &str| -> Option<String> {
            lookup(var).filter(|v| !v.trim().is_empty()).or_else(|| {
                let key = var.trim_start_matches("KUJIRA_").to_ascii_lowercase();
                file.get(&key).map(|v| match v {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
            })
        };

        let addr = parse_var(&get, "KUJIRA_ADDR", "127.0.0.1:8080")?;
        let data_dir = PathBuf::from(get("KUJIRA_DATA_DIR").unwrap_or_else(|| "data".into()));
        let public_url = get("KUJIRA_PUBLIC_URL")
            .unwrap_or_else(|| format!("http://{addr}"))
            .trim_end_matches('/')
            .to_owned();
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            bail!("KUJIRA_PUBLIC_URL must start with http:// or https:// (got {public_url:?})");
        }
        let smtp_url = get("KUJIRA_SMTP_URL");
        if let Some(u) = &smtp_url
            && !(u.starts_with("smtp://") || u.starts_with("smtps://"))
        {
            bail!("KUJIRA_SMTP_URL must start with smtp:// or smtps://");
        }
        let (mail_from_name, mail_from) =
            mail::mail_from(&get("KUJIRA_MAIL_FROM").unwrap_or_else(|| "kujira@localhost".into()))?;
        let mail_workers: usize = parse_var(&get, "KUJIRA_MAIL_WORKERS", "4")?;
        if !(1..=MAX_MAIL_WORKERS).contains(&mail_workers) {
            bail!(
                "KUJIRA_MAIL_WORKERS must be between 1 and {MAX_MAIL_WORKERS} (got {mail_workers})"
            );
        }
        // An empty variable means "off", so it is read as set, not as absent.
        let quiet_hours = match lookup("KUJIRA_QUIET_HOURS") {
            Some(v) => mail::quiet_hours(Some(&v))?,
            None => match file.get("quiet_hours") {
                Some(v) => mail::quiet_hours(Some(&mail::check_quiet_hours_type(v)?))?,
                None => mail::quiet_hours(None)?,
            },
        };
        let concierge_emails: Vec<String> = get("KUJIRA_CONCIERGE_EMAILS")
            .unwrap_or_else(|| "concierge@localhost".into())
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        for a in &concierge_emails {
            check_address("KUJIRA_CONCIERGE_EMAILS", a)?;
        }
        let timezone: chrono_tz::Tz = get("KUJIRA_TIMEZONE")
            .unwrap_or_else(|| "Asia/Tokyo".into())
            .parse()
            .map_err(|e| anyhow!("KUJIRA_TIMEZONE: {e}"))?;
        let submissions_per_ip_per_hour =
            parse_var(&get, "KUJIRA_SUBMISSIONS_PER_IP_PER_HOUR", "20")?;
        let inquiry_lead_days = parse_var(&get, "KUJIRA_INQUIRY_LEAD_DAYS", "3")?;
        let lag_limit: u64 = parse_var(&get, "KUJIRA_PROJECTION_LAG_LIMIT", "30")?;
        if lag_limit == 0 {
            bail!("KUJIRA_PROJECTION_LAG_LIMIT must be at least 1 (seconds)");
        }
        let secret = match get("KUJIRA_SECRET") {
            Some(s) if s.len() < 32 => {
                bail!("KUJIRA_SECRET must be at least 32 characters long")
            }
            Some(s) => Secret(s.into_bytes()),
            None => load_or_create_secret(&data_dir)?,
        };
        let master_key = master_key_setting(&get, &data_dir)?;
        let retention = match get("KUJIRA_RETENTION") {
            Some(v) => Retention::parse(&v).map_err(|e| anyhow!("KUJIRA_RETENTION: {e}"))?,
            None => Retention::DEFAULT,
        };
        let words = CityWords::from_lookup(&get)?;
        let rules = RuleSettings::from_lookup(&get, &words.city_name)?;
        let trusted_proxies = get("KUJIRA_TRUSTED_PROXIES")
            .unwrap_or_else(|| "127.0.0.1/8,::1/128".into())
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty() && *s != "none")
            .map(|s| {
                s.parse::<ipnet::IpNet>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        anyhow!("KUJIRA_TRUSTED_PROXIES: {s:?} is not an address or a CIDR range")
                    })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;

        Ok(Self {
            database_url: get("DATABASE_URL"),
            addr,
            data_dir,
            public_url,
            smtp_url,
            mail_from,
            mail_from_name,
            mail_workers,
            quiet_hours,
            concierge_emails,
            timezone,
            secret,
            master_key,
            submissions_per_ip_per_hour,
            inquiry_lead_days,
            trusted_proxies,
            pg_user: get("KUJIRA_PG_USER"),
            projection_lag_limit: std::time::Duration::from_secs(lag_limit),
            retention,
            words,
            rules,
        })
    }

    /// A configuration for tests: defaults, a fixed secret, the given data directory.
    pub fn for_tests(data_dir: &Path) -> Self {
        let dir = data_dir.to_string_lossy().into_owned();
        let mut cfg = Self::from_lookup(|k| match k {
            "KUJIRA_DATA_DIR" => Some(dir.clone()),
            "KUJIRA_SECRET" => Some("test-secret-test-secret-test-secret!".into()),
            // A fixed key, so that tests never write a key file or depend on one.
            "KUJIRA_MASTER_KEY" => Some("a3VqaXJhLXRlc3QtbWFzdGVyLWtleS0zMi1ieXRlcyE=".into()),
            "KUJIRA_PUBLIC_URL" => Some("https://kujira.example.jp".into()),
            "KUJIRA_MAIL_FROM" => Some("kujira@example.jp".into()),
            "KUJIRA_CONCIERGE_EMAILS" => Some("concierge@example.jp".into()),
            _ => None,
        })
        .expect("the test configuration is valid");
        cfg.database_url = None;
        cfg
    }

    /// Where `.eml` files go when no SMTP server is configured.
    pub fn outbox_dir(&self) -> PathBuf {
        self.data_dir.join("outbox")
    }
}

fn parse_var<T: FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    var: &str,
    default: &str,
) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    let raw = get(var).unwrap_or_else(|| default.to_owned());
    raw.trim()
        .parse()
        .map_err(|e| anyhow!("{var}: invalid value {raw:?}: {e}"))
}

fn check_address(var: &str, address: &str) -> anyhow::Result<()> {
    let ok = address.rsplit_once('@').is_some_and(|(l, d)| {
        !l.is_empty() && !d.is_empty() && !address.contains(char::is_whitespace)
    });
    if ok {
        Ok(())
    } else {
        bail!("{var}: {address:?} is not an email address")
    }
}

/// Generates the secret once, into the data directory, so that no variable is
/// required to start and signed links survive restarts.
fn load_or_create_secret(data_dir: &Path) -> anyhow::Result<Secret> {
    let path = data_dir.join("secret");
    let (bytes, created) = keyfile::load_or_generate(&path, 32)?;
    if created == keyfile::Created::Written {
        tracing::info!(path = %path.display(), "generated a new secret");
    }
    Ok(Secret(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults_need_no_variable_but_a_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let cfg = Config::from_lookup(lookup(&[("KUJIRA_DATA_DIR", d)])).unwrap();
        assert_eq!(cfg.addr.to_string(), "127.0.0.1:8080");
        assert_eq!(cfg.timezone, chrono_tz::Asia::Tokyo);
        assert_eq!(cfg.submissions_per_ip_per_hour, 20);
        assert_eq!(cfg.projection_lag_limit.as_secs(), 30);
        assert_eq!(cfg.mail_workers, 4);
        assert_eq!(cfg.words.city_name, "柏崎市");
        assert!(
            cfg.words
                .mover_definition
                .contains("柏崎市に住民票を移した")
        );
        assert!(
            cfg.trusted_proxies
                .iter()
                .any(|n| n.contains(&"127.0.0.1".parse::<std::net::IpAddr>().unwrap()))
        );
        // The secret is generated once and then reused.
        let again = Config::from_lookup(lookup(&[("KUJIRA_DATA_DIR", d)])).unwrap();
        assert_eq!(cfg.secret.expose(), again.secret.expose());
        assert_eq!(cfg.secret.expose().len(), 32);
    }

    #[test]
    fn invalid_values_name_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        for (var, value) in [
            ("KUJIRA_ADDR", "not-an-address"),
            ("KUJIRA_TIMEZONE", "Mars/Olympus"),
            ("KUJIRA_SUBMISSIONS_PER_IP_PER_HOUR", "-3"),
            ("KUJIRA_SECRET", "short"),
            ("KUJIRA_MAIL_FROM", "nobody"),
            ("KUJIRA_PUBLIC_URL", "ftp://x"),
            ("KUJIRA_TRUSTED_PROXIES", "10.0.0.0/8,not-an-ip"),
            ("KUJIRA_MASTER_KEY", "c2hvcnQ="),
            ("KUJIRA_RETENTION", "forever"),
            ("KUJIRA_MASTER_KEY_FILE", "/nonexistent/master.key"),
            ("KUJIRA_PROJECTION_LAG_LIMIT", "0"),
            ("KUJIRA_PROJECTION_LAG_LIMIT", "30s"),
            ("KUJIRA_QUIET_HOURS", "22:00"),
            ("KUJIRA_QUIET_HOURS", "20:00-26:00"),
            ("KUJIRA_MAIL_FROM", "くじらと。 <nobody>"),
            ("KUJIRA_MAIL_WORKERS", "0"),
            ("KUJIRA_MAIL_WORKERS", "17"),
            ("KUJIRA_MAIL_WORKERS", "many"),
        ] {
            let err = Config::from_lookup(lookup(&[("KUJIRA_DATA_DIR", d), (var, value)]))
                .expect_err(var);
            assert!(format!("{err:#}").contains(var), "{var}: {err:#}");
        }
    }

    #[test]
    fn the_sender_accepts_a_display_name_and_quiet_hours_can_be_turned_off() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let cfg = Config::from_lookup(lookup(&[
            ("KUJIRA_DATA_DIR", d),
            ("KUJIRA_MAIL_FROM", "くじらと。 <noreply@city.example.jp>"),
        ]))
        .unwrap();
        assert_eq!(cfg.mail_from, "noreply@city.example.jp");
        assert_eq!(cfg.mail_from_name.as_deref(), Some("くじらと。"));
        assert_eq!(cfg.quiet_hours, Some(QuietHours::default_window()));

        let cfg = Config::from_lookup(lookup(&[
            ("KUJIRA_DATA_DIR", d),
            ("KUJIRA_QUIET_HOURS", ""),
        ]))
        .unwrap();
        assert_eq!(cfg.quiet_hours, None);
        assert_eq!(cfg.mail_from, "kujira@localhost");
        assert_eq!(cfg.mail_from_name, None);

        let cfg = Config::from_lookup(lookup(&[
            ("KUJIRA_DATA_DIR", d),
            ("KUJIRA_QUIET_HOURS", "21:30-07:00"),
        ]))
        .unwrap();
        assert_eq!(cfg.quiet_hours.unwrap().to_string(), "21:30-07:00");

        // The file may turn them off too.
        let file = dir.path().join("kujira.toml");
        std::fs::write(&file, "quiet_hours = \"\"\n").unwrap();
        let cfg = Config::from_lookup(lookup(&[
            ("KUJIRA_DATA_DIR", d),
            ("KUJIRA_CONFIG", file.to_str().unwrap()),
        ]))
        .unwrap();
        assert_eq!(cfg.quiet_hours, None);
    }

    #[test]
    fn an_empty_secret_file_stops_the_start_up_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        // What a crash between create and write used to leave behind.
        std::fs::write(dir.path().join("secret"), "").unwrap();
        let err = Config::from_lookup(lookup(&[("KUJIRA_DATA_DIR", d)])).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("secret") && msg.contains(d), "{msg}");
    }

    #[test]
    fn the_master_key_comes_from_the_variable_the_file_or_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let cfg = Config::from_lookup(lookup(&[("KUJIRA_DATA_DIR", d)])).unwrap();
        assert!(
            matches!(&cfg.master_key, MasterKeySetting::DataDir(p) if p.ends_with("master.key"))
        );
        let key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
        let cfg = Config::from_lookup(lookup(&[
            ("KUJIRA_DATA_DIR", d),
            ("KUJIRA_MASTER_KEY", key),
        ]))
        .unwrap();
        assert!(
            matches!(&cfg.master_key, MasterKeySetting::Given { bytes, .. } if bytes.expose() == b"0123456789abcdef0123456789abcdef")
        );
        let file = dir.path().join("mk");
        std::fs::write(&file, key).unwrap();
        let f = file.to_str().unwrap();
        let cfg = Config::from_lookup(lookup(&[
            ("KUJIRA_DATA_DIR", d),
            ("KUJIRA_MASTER_KEY_FILE", f),
        ]))
        .unwrap();
        assert!(matches!(&cfg.master_key, MasterKeySetting::Given { .. }));
        // Never written as a side effect of reading the configuration.
        assert!(!dir.path().join("master.key").exists());
    }

    #[test]
    fn the_toml_file_is_read_and_variables_win() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let file = dir.path().join("kujira.toml");
        std::fs::write(
            &file,
            "addr = \"0.0.0.0:9000\"\ncity_name = \"長岡市\"\n\
             mover_definition = \"転入後1年以上住んでいる世帯\"\n",
        )
        .unwrap();
        let f = file.to_str().unwrap();
        let cfg =
            Config::from_lookup(lookup(&[("KUJIRA_DATA_DIR", d), ("KUJIRA_CONFIG", f)])).unwrap();
        assert_eq!(cfg.addr.port(), 9000);
        assert_eq!(cfg.words.city_name, "長岡市");
        assert_eq!(cfg.words.mover_definition, "転入後1年以上住んでいる世帯");
        let cfg = Config::from_lookup(lookup(&[
            ("KUJIRA_DATA_DIR", d),
            ("KUJIRA_CONFIG", f),
            ("KUJIRA_ADDR", "127.0.0.1:7000"),
        ]))
        .unwrap();
        assert_eq!(cfg.addr.port(), 7000);
    }
}
