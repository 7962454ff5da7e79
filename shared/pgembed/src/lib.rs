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
///
/// Two different migrations with the same version are an error that names both:
/// sqlx records applied migrations by version alone, so one of them would silently
/// never run. The same migration passed twice (a crate's migrator given along with a
/// set that already holds it) is kept once.
pub fn combine(migrators: &[&Migrator]) -> anyhow::Result<Migrator> {
    let mut all: Vec<Migration> = migrators.iter().flat_map(|m| m.iter().cloned()).collect();
    all.sort_by_key(|m| m.version);
    let mut clashes = Vec::new();
    all.dedup_by(|later, kept| {
        if later.version != kept.version {
            return false;
        }
        let same = later.checksum == kept.checksum
            && later.description == kept.description
            && later.migration_type == kept.migration_type;
        if !same {
            clashes.push(format!(
                "{} is both {:?} and {:?}",
                kept.version, kept.description, later.description
            ));
        }
        true
    });
    if !clashes.is_empty() {
        anyhow::bail!(
            "two migrations share a version, so one of them would never run: {}; \
             give each its own version in its crate's range",
            clashes.join("; ")
        );
    }
    Ok(Migrator {
        migrations: Cow::Owned(all),
        ..Migrator::DEFAULT
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn migration(version: i64, description: &str, sql: &'static str) -> Migration {
        Migration::new(
            version,
            Cow::Owned(description.to_owned()),
            sqlx::migrate::MigrationType::Simple,
            Cow::Borrowed(sql),
            false,
        )
    }

    fn migrator(migrations: Vec<Migration>) -> Migrator {
        Migrator {
            migrations: Cow::Owned(migrations),
            ..Migrator::DEFAULT
        }
    }

    #[test]
    fn joins_in_version_order() {
        let a = migrator(vec![
            migration(3, "a3", "SELECT 3"),
            migration(1, "a1", "SELECT 1"),
        ]);
        let b = migrator(vec![migration(2, "b2", "SELECT 2")]);
        let all = combine(&[&a, &b]).unwrap();
        let versions: Vec<i64> = all.iter().map(|m| m.version).collect();
        assert_eq!(versions, [1, 2, 3]);
    }

    #[test]
    fn the_same_migration_twice_is_kept_once() {
        let a = migrator(vec![migration(1, "a1", "SELECT 1")]);
        let all = combine(&[&a, &a]).unwrap();
        assert_eq!(all.iter().count(), 1);
    }

    #[test]
    fn two_migrations_with_one_version_fail_loudly() {
        let a = migrator(vec![migration(7, "cases", "CREATE TABLE cases (id int)")]);
        let b = migrator(vec![migration(
            7,
            "rosters",
            "CREATE TABLE rosters (id int)",
        )]);
        let err = combine(&[&a, &b]).unwrap_err().to_string();
        assert!(err.contains("7 is both"), "{err}");
        assert!(err.contains("cases") && err.contains("rosters"), "{err}");
    }
}
