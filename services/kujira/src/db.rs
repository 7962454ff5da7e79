use anyhow::Context;
use kujira_config::Config;
use kujira_pgembed::{Cluster, ClusterOptions};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

/// The database kujira runs on, and the private cluster behind it if there is one.
pub struct Database {
    pub pool: PgPool,
    cluster: Option<Cluster>,
}

impl Database {
    /// Connects to `DATABASE_URL`, or starts (or joins) the private cluster under
    /// `KUJIRA_DATA_DIR/pg`.
    pub async fn open(config: &Config) -> anyhow::Result<Self> {
        let pool_options = PgPoolOptions::new()
            .max_connections(32)
            .acquire_timeout(std::time::Duration::from_secs(10));
        if let Some(url) = &config.database_url {
            let pool = pool_options
                .connect(url)
                .await
                .context("DATABASE_URL: cannot connect")?;
            return Ok(Self {
                pool,
                cluster: None,
            });
        }
        let opts = ClusterOptions {
            pgdata: config.data_dir.join("pg"),
            os_user: config.pg_user.clone(),
            durable: true,
        };
        let cluster = tokio::task::spawn_blocking(move || Cluster::start(&opts))
            .await
            .context("the cluster start-up task failed")??;
        let db = Self::on_cluster(cluster, pool_options).await;
        if db.is_err() {
            tracing::warn!("could not open the database on the private cluster");
        }
        db
    }

    async fn on_cluster(cluster: Cluster, pool_options: PgPoolOptions) -> anyhow::Result<Self> {
        cluster.ensure_database("kujira").await?;
        let pool = pool_options
            .connect_with(cluster.connect_options("kujira"))
            .await
            .context("cannot connect to the private PostgreSQL cluster")?;
        Ok(Self {
            pool,
            cluster: Some(cluster),
        })
    }

    /// Applies every service's migrations, in version order, moves the event log's
    /// clock past a restore from another cluster (before anything appends), then
    /// creates the session store's own table (tower-sessions creates it itself).
    pub async fn migrate(&self) -> anyhow::Result<()> {
        migrator()?
            .run(&self.pool)
            .await
            .context("cannot apply the database migrations")?;
        if let Some(r) = kujira_eventlog::rebase_if_restored(&self.pool)
            .await
            .context("cannot check the event log's transaction-id clock")?
        {
            tracing::warn!(
                stored_max = r.stored_max,
                cluster_next = r.cluster_next,
                old_offset = r.old_offset,
                new_offset = r.new_offset,
                "this database was restored from another PostgreSQL cluster; the event log's \
                 clock was moved past its transaction ids so that readers carry on"
            );
        }
        kujira_desk::setup(&self.pool)
            .await
            .context("cannot create the desk's session table")
    }

    /// The personal event store: the log behind the vault, unlocked with the
    /// configured master key (a wrong or missing key stops here, with a message that
    /// says what to do).
    pub async fn store(&self, config: &Config) -> anyhow::Result<kujira_store::Store> {
        let vault = kujira_store::Vault::unlock(self.pool.clone(), &config.master_key)
            .await
            .context("cannot open the vault of personal data")?;
        Ok(kujira_store::Store::new(
            kujira_eventlog::EventStore::new(self.pool.clone()),
            vault,
        ))
    }

    /// Closes the pool and stops the private cluster if this process started it.
    pub async fn close(self) -> anyhow::Result<()> {
        self.pool.close().await;
        if let Some(cluster) = self.cluster {
            tokio::task::spawn_blocking(move || cluster.stop())
                .await
                .context("the cluster shutdown task failed")??;
        }
        Ok(())
    }
}

/// All migrations of all services. Two with one version are an error.
pub fn migrator() -> anyhow::Result<sqlx::migrate::Migrator> {
    kujira_pgembed::combine(&[
        &kujira_eventlog::MIGRATOR,
        &kujira_store::MIGRATOR,
        &kujira_intake::MIGRATOR,
        &kujira_tours::MIGRATOR,
        &kujira_scheduler::MIGRATOR,
        &kujira_desk::MIGRATOR,
        &kujira_privacy::MIGRATOR,
    ])
}

#[cfg(test)]
mod tests {
    /// Every crate's migrations are composed: each `migrations/*.sql` file in the
    /// workspace is in the binary's migrator, so that a new crate cannot be
    /// forgotten here.
    #[test]
    fn the_binary_applies_every_crates_migrations() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut on_disk = Vec::new();
        for group in ["shared", "services"] {
            for krate in std::fs::read_dir(root.join(group)).unwrap().flatten() {
                let dir = krate.path().join("migrations");
                for file in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                    let name = file.file_name().to_string_lossy().into_owned();
                    if let Some(version) =
                        name.strip_suffix(".sql").and_then(|n| n.split('_').next())
                    {
                        on_disk.push(version.parse::<i64>().unwrap());
                    }
                }
            }
        }
        on_disk.sort_unstable();
        let composed: Vec<i64> = super::migrator()
            .unwrap()
            .iter()
            .map(|m| m.version)
            .collect();
        assert_eq!(composed, on_disk);
    }
}
