//! A private PostgreSQL cluster for zero-setup runs and tests.
//!
//! `kujira serve` with no `DATABASE_URL` runs its own cluster under the data
//! directory, on a unix socket only, and the test harness ([`testing`]) runs one
//! under `target/`. Both use the PostgreSQL server binaries already on the machine
//! (PATH, `pg_config --bindir`, Debian's and Ubuntu's versioned directories).
//!
//! `initdb` and `postgres` refuse to run as root, so when kujira runs as root
//! (containers, CI) the cluster runs as an unprivileged OS user: `KUJIRA_PG_USER`,
//! else `postgres` where it exists, else a `kujira-pg` system user created on demand.

mod cluster;
pub mod testing;

pub use cluster::{Cluster, ClusterOptions, find_bindir};

use std::borrow::Cow;

use sqlx::migrate::{Migration, Migrator};

/// Joins the migrations of several crates into one migrator, ordered by version.
/// Every crate owns its own migrations, in its own version range.
pub fn combine(migrators: &[&Migrator]) -> Migrator {
    let mut all: Vec<Migration> = migrators.iter().flat_map(|m| m.iter().cloned()).collect();
    all.sort_by_key(|m| m.version);
    all.dedup_by_key(|m| m.version);
    Migrator {
        migrations: Cow::Owned(all),
        ..Migrator::DEFAULT
    }
}
