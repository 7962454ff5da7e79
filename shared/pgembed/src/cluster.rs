use std::ffi::OsStr;
use std::fs::{self, File};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use sha2::{Digest, Sha256};
use sqlx::postgres::PgConnectOptions;

/// The role every private cluster is created with.
const SUPERUSER: &str = "kujira";
/// The socket lives in a private directory, so the standard port never clashes.
const PORT: u16 = 5432;
/// `sun_path` holds 108 bytes on Linux; leave room for `/.s.PGSQL.5432` and the NUL.
const MAX_SOCKET_DIR_LEN: usize = 90;
/// Where a root-run cluster goes when the requested directory is not reachable by
/// the unprivileged user (a checkout under `/root`, say).
const FALLBACK_ROOT: &str = "/var/lib/kujira";

const INSTALL_HINT: &str = "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found.\n\
     Install them, for example:\n\
       Debian/Ubuntu:  apt-get install postgresql\n\
       Fedora/RHEL:    dnf install postgresql-server\n\
       macOS:          brew install postgresql@16\n\
     or set KUJIRA_PG_BINDIR to the directory that holds them,\n\
     or set DATABASE_URL to use a PostgreSQL server you already run.";

#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// The cluster's data directory (`PGDATA`).
    pub pgdata: PathBuf,
    /// The OS user that runs the cluster when we are root.
    pub os_user: Option<String>,
    /// `false` turns fsync off: for throw-away test clusters only.
    pub durable: bool,
}

#[derive(Debug, Clone)]
struct RunAs {
    name: String,
    uid: u32,
    gid: u32,
}

/// A running private cluster.
#[derive(Debug)]
pub struct Cluster {
    pgdata: PathBuf,
    socket_dir: PathBuf,
    bindir: PathBuf,
    run_as: Option<RunAs>,
    started_here: bool,
}

impl Cluster {
    /// Starts the cluster at `opts.pgdata`, creating it on first use. When a server
    /// already runs on that directory (another `kujira` process), connects to it
    /// instead and leaves it running on [`Cluster::stop`].
    pub fn start(opts: &ClusterOptions) -> anyhow::Result<Self> {
        let bindir = find_bindir()?;
        let run_as = if nix::unistd::geteuid().is_root() {
            Some(resolve_user(opts.os_user.as_deref())?)
        } else {
            None
        };

        let parent = opts
            .pgdata
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        let parent = parent
            .canonicalize()
            .with_context(|| format!("cannot resolve {}", parent.display()))?;
        let requested = parent.join(opts.pgdata.file_name().unwrap_or(OsStr::new("pg")));

        // Serialise start-ups on one directory: parallel test binaries, or `serve`
        // and `migrate` started together.
        let lock_path = parent.join(format!(
            ".{}.lock",
            requested.file_name().unwrap_or_default().to_string_lossy()
        ));
        let lock = File::create(&lock_path)
            .with_context(|| format!("cannot create {}", lock_path.display()))?;
        lock.lock()
            .with_context(|| format!("cannot lock {}", lock_path.display()))?;

        let pgdata = placed_data_dir(&requested, run_as.as_ref())?;
        let mut cluster = Cluster {
            socket_dir: socket_dir_for(&pgdata),
            pgdata,
            bindir,
            run_as,
            started_here: false,
        };

        if !cluster.pgdata.join("PG_VERSION").exists() {
            cluster.init(opts.durable)?;
        }
        if let Some(dir) = cluster.running_socket_dir() {
            tracing::info!(pgdata = %cluster.pgdata.display(), "using the PostgreSQL already running here");
            cluster.socket_dir = dir;
            return Ok(cluster);
        }
        cluster.write_settings(opts.durable)?;
        cluster.pg_ctl_start()?;
        cluster.started_here = true;
        drop(lock);
        Ok(cluster)
    }

    /// Connection options for one database of this cluster.
    pub fn connect_options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(&self.socket_dir)
            .port(PORT)
            .username(SUPERUSER)
            .database(database)
    }

    pub fn pgdata(&self) -> &Path {
        &self.pgdata
    }

    /// Whether this process started the server (and so should stop it).
    pub fn started_here(&self) -> bool {
        self.started_here
    }

    /// Stops the server if this process started it.
    pub fn stop(&self) -> anyhow::Result<()> {
        if !self.started_here {
            return Ok(());
        }
        let out = self.run(
            "pg_ctl",
            [
                "-D".as_ref(),
                self.pgdata.as_os_str(),
                "-m".as_ref(),
                "fast".as_ref(),
                "-w".as_ref(),
                "stop".as_ref(),
            ],
        )?;
        if !out.status.success() {
            bail!(
                "pg_ctl stop failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// Creates `database` unless it exists.
    pub async fn ensure_database(&self, database: &str) -> anyhow::Result<()> {
        ensure_database(&self.connect_options("postgres"), database).await
    }

    fn init(&self, durable: bool) -> anyhow::Result<()> {
        tracing::info!(pgdata = %self.pgdata.display(), "creating a private PostgreSQL cluster");
        fs::create_dir_all(&self.pgdata)
            .with_context(|| format!("cannot create {}", self.pgdata.display()))?;
        fs::set_permissions(&self.pgdata, fs::Permissions::from_mode(0o700))?;
        self.chown(&self.pgdata)?;
        let mut args: Vec<&OsStr> = vec![
            "-D".as_ref(),
            self.pgdata.as_os_str(),
            "-U".as_ref(),
            SUPERUSER.as_ref(),
            "--auth=trust".as_ref(),
            "--encoding=UTF8".as_ref(),
            "--no-locale".as_ref(),
            "--no-instructions".as_ref(),
        ];
        if !durable {
            args.push("--no-sync".as_ref());
        }
        let out = self.run("initdb", args)?;
        if !out.status.success() {
            bail!(
                "initdb failed for {}:\n{}{}",
                self.pgdata.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let conf = self.pgdata.join("postgresql.conf");
        let mut text = fs::read_to_string(&conf).context("cannot read postgresql.conf")?;
        text.push_str("\n# Written by kujira on every start.\ninclude_if_exists = 'kujira.conf'\n");
        fs::write(&conf, text).context("cannot write postgresql.conf")?;
        Ok(())
    }

    fn write_settings(&self, durable: bool) -> anyhow::Result<()> {
        if !self.socket_dir.exists() {
            fs::create_dir_all(&self.socket_dir)?;
            fs::set_permissions(&self.socket_dir, fs::Permissions::from_mode(0o700))?;
            self.chown(&self.socket_dir)?;
        }
        let socket = self.socket_dir.to_string_lossy().replace('\'', "''");
        let mut text = format!(
            "listen_addresses = ''\n\
             unix_socket_directories = '{socket}'\n\
             unix_socket_permissions = 0700\n\
             port = {PORT}\n\
             max_connections = 300\n\
             logging_collector = off\n"
        );
        if !durable {
            text.push_str("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n");
        }
        let path = self.pgdata.join("kujira.conf");
        fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        self.chown(&path)
    }

    fn pg_ctl_start(&self) -> anyhow::Result<()> {
        let log = self.pgdata.join("server.log");
        let out = self.run(
            "pg_ctl",
            [
                "-D".as_ref(),
                self.pgdata.as_os_str(),
                "-l".as_ref(),
                log.as_os_str(),
                "-w".as_ref(),
                "-t".as_ref(),
                "120".as_ref(),
                "start".as_ref(),
            ],
        )?;
        if !out.status.success() {
            let tail = fs::read_to_string(&log)
                .map(|t| {
                    let lines: Vec<&str> = t.lines().collect();
                    lines[lines.len().saturating_sub(15)..].join("\n")
                })
                .unwrap_or_default();
            bail!(
                "PostgreSQL did not start ({}):\n{}\n{tail}",
                self.pgdata.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        tracing::info!(pgdata = %self.pgdata.display(), socket = %self.socket_dir.display(), "PostgreSQL started");
        Ok(())
    }

    /// The socket directory of a server already running on this data directory.
    fn running_socket_dir(&self) -> Option<PathBuf> {
        let pid_file = fs::read_to_string(self.pgdata.join("postmaster.pid")).ok()?;
        let mut lines = pid_file.lines();
        let pid: i32 = lines.next()?.trim().parse().ok()?;
        let alive = match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
            Ok(()) | Err(nix::errno::Errno::EPERM) => true,
            Err(_) => false,
        };
        if !alive {
            return None;
        }
        // Line 5 of postmaster.pid is the first socket directory.
        let dir = PathBuf::from(lines.nth(3)?.trim());
        dir.join(format!(".s.PGSQL.{PORT}")).exists().then_some(dir)
    }

    fn run<I, S>(&self, program: &str, args: I) -> anyhow::Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let bin = self.bindir.join(program);
        let mut cmd = match &self.run_as {
            Some(user) => match runuser() {
                Some(runuser) => {
                    let mut c = Command::new(runuser);
                    c.args(["-u", &user.name, "--"]).arg(&bin);
                    c
                }
                None => {
                    let mut c = Command::new(&bin);
                    c.uid(user.uid).gid(user.gid);
                    c
                }
            },
            None => Command::new(&bin),
        };
        cmd.args(args)
            .current_dir("/")
            .env("LC_ALL", "C")
            .env_remove("PGDATA");
        cmd.output()
            .with_context(|| format!("cannot run {}", bin.display()))
    }

    fn chown(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(user) = &self.run_as {
            std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
                .with_context(|| format!("cannot hand {} to {}", path.display(), user.name))?;
        }
        Ok(())
    }
}

/// Creates `database` on the server behind `admin` unless it exists.
pub(crate) async fn ensure_database(
    admin: &PgConnectOptions,
    database: &str,
) -> anyhow::Result<()> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect_with(admin)
        .await
        .context("cannot connect to the PostgreSQL server")?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(database)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        let sql = format!("CREATE DATABASE {}", quote_ident(database));
        match sqlx::query(&sql).execute(&mut conn).await {
            Ok(_) => {}
            // Someone else created it at the same moment.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
            Err(e) => return Err(e).with_context(|| format!("cannot create database {database}")),
        }
    }
    conn.close().await.ok();
    Ok(())
}

pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Finds the directory holding `initdb`, `pg_ctl` and `postgres`.
pub fn find_bindir() -> anyhow::Result<PathBuf> {
    let complete = |d: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|b| d.join(b).is_file())
    };
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(d) = std::env::var_os("KUJIRA_PG_BINDIR") {
        let d = PathBuf::from(d);
        if complete(&d) {
            return Ok(d);
        }
        bail!(
            "KUJIRA_PG_BINDIR={} does not hold initdb, pg_ctl and postgres",
            d.display()
        );
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path));
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        candidates.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    }
    // Debian and Ubuntu install every major version side by side: prefer the newest.
    for root in [
        "/usr/lib/postgresql",
        "/usr/local/pgsql",
        "/opt/homebrew/opt",
    ] {
        let mut versions: Vec<(u32, PathBuf)> = fs::read_dir(root)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let digits: String = name.chars().filter(char::is_ascii_digit).collect();
                Some((digits.parse().ok()?, e.path().join("bin")))
            })
            .collect();
        versions.sort_by_key(|v| std::cmp::Reverse(v.0));
        candidates.extend(versions.into_iter().map(|(_, p)| p));
    }
    candidates.extend(
        ["/usr/pgsql/bin", "/usr/local/bin", "/usr/bin"]
            .iter()
            .map(PathBuf::from),
    );
    for dir in candidates {
        if complete(&dir) {
            // A PATH entry may be a directory of symlinks (Debian's wrappers): resolve
            // `postgres` to find the real server directory.
            let real = fs::canonicalize(dir.join("postgres"))
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
                .filter(|d| complete(d))
                .unwrap_or(dir);
            return Ok(real);
        }
    }
    Err(anyhow!(INSTALL_HINT))
}

fn runuser() -> Option<PathBuf> {
    ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

fn resolve_user(configured: Option<&str>) -> anyhow::Result<RunAs> {
    use nix::unistd::User;
    let lookup = |name: &str| -> anyhow::Result<Option<RunAs>> {
        Ok(User::from_name(name)?.map(|u| RunAs {
            name: u.name,
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
        }))
    };
    if let Some(name) = configured {
        return lookup(name)?
            .ok_or_else(|| anyhow!("KUJIRA_PG_USER={name}: no such OS user to run PostgreSQL as"));
    }
    if let Some(u) = lookup("postgres")? {
        return Ok(u);
    }
    let name = "kujira-pg";
    if let Some(u) = lookup(name)? {
        return Ok(u);
    }
    tracing::info!(
        user = name,
        "creating a system user to run PostgreSQL (initdb refuses root)"
    );
    let status = Command::new("useradd")
        .args([
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            name,
        ])
        .status()
        .context("cannot run useradd; set KUJIRA_PG_USER to an existing unprivileged user")?;
    if !status.success() {
        bail!("useradd {name} failed; set KUJIRA_PG_USER to an existing unprivileged user");
    }
    lookup(name)?.ok_or_else(|| anyhow!("user {name} was not created"))
}

/// Where the data directory really goes. When we run as root and the unprivileged
/// user cannot reach the requested path, the cluster lives under
/// [`FALLBACK_ROOT`] and the requested path becomes a symlink to it.
fn placed_data_dir(requested: &Path, run_as: Option<&RunAs>) -> anyhow::Result<PathBuf> {
    let Some(user) = run_as else {
        return Ok(requested.to_path_buf());
    };
    if let Ok(target) = fs::read_link(requested) {
        return Ok(target);
    }
    let parent = requested.parent().unwrap_or(Path::new("/"));
    if reachable_by(parent, user) {
        return Ok(requested.to_path_buf());
    }
    if requested.exists() {
        bail!(
            "{} exists but the user {} cannot reach it; move it, or set KUJIRA_DATA_DIR \
             to a directory that {} can reach",
            requested.display(),
            user.name,
            user.name
        );
    }
    let hash = hex16(requested.as_os_str().as_encoded_bytes());
    let target = Path::new(FALLBACK_ROOT).join(format!("pg-{hash}"));
    fs::create_dir_all(FALLBACK_ROOT).with_context(|| format!("cannot create {FALLBACK_ROOT}"))?;
    fs::set_permissions(FALLBACK_ROOT, fs::Permissions::from_mode(0o755))?;
    std::os::unix::fs::symlink(&target, requested).with_context(|| {
        format!(
            "cannot link {} to {}",
            requested.display(),
            target.display()
        )
    })?;
    tracing::info!(
        requested = %requested.display(),
        actual = %target.display(),
        user = %user.name,
        "the data directory is not reachable by the PostgreSQL user; the cluster lives in a linked directory"
    );
    Ok(target)
}

/// Whether `user` can traverse every directory from `/` down to `dir`.
fn reachable_by(dir: &Path, user: &RunAs) -> bool {
    dir.ancestors().all(|a| match fs::metadata(a) {
        Ok(m) => {
            let mode = m.mode();
            (m.uid() == user.uid && mode & 0o100 != 0)
                || (m.gid() == user.gid && mode & 0o010 != 0)
                || mode & 0o001 != 0
        }
        Err(_) => true, // Does not exist yet: we create it with default permissions.
    })
}

fn socket_dir_for(pgdata: &Path) -> PathBuf {
    if pgdata.as_os_str().len() <= MAX_SOCKET_DIR_LEN {
        pgdata.to_path_buf()
    } else {
        std::env::temp_dir().join(format!(
            "kujira-{}",
            hex16(pgdata.as_os_str().as_encoded_bytes())
        ))
    }
}

fn hex16(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Waits until a fresh server accepts connections (pg_ctl -w usually suffices).
pub(crate) async fn wait_ready(options: &PgConnectOptions) -> anyhow::Result<()> {
    use sqlx::Connection;
    let mut last = None;
    for _ in 0..100 {
        match sqlx::PgConnection::connect_with(options).await {
            Ok(c) => {
                c.close().await.ok();
                return Ok(());
            }
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(anyhow!("PostgreSQL does not accept connections: {last:?}"))
}
