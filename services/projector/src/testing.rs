//! Helpers for the tests of crates that write projections: the issue asks that "a
//! rebuilt projection equals the one built live, table for table", and these give
//! each table's full contents to compare.

use std::collections::BTreeMap;

use sqlx::PgPool;

use crate::{Projection, Rebuild};

/// Every row of `table` (resolved through the search path) as JSON, in a stable
/// order, so that two copies compare equal exactly when they hold the same rows.
pub async fn table_contents(pool: &PgPool, table: &str) -> anyhow::Result<Vec<serde_json::Value>> {
    let sql = format!(
        "SELECT to_jsonb(t) AS row FROM \"{}\" t ORDER BY 1",
        table.replace('"', "\"\"")
    );
    Ok(sqlx::query_scalar(&sql).fetch_all(pool).await?)
}

/// [`table_contents`] of every table a rebuildable projection declares.
pub async fn projection_contents(
    pool: &PgPool,
    projection: &dyn Projection,
) -> anyhow::Result<BTreeMap<String, Vec<serde_json::Value>>> {
    let Rebuild::Tables { tables, .. } = projection.rebuild() else {
        anyhow::bail!("projection {} declares no tables", projection.name());
    };
    let mut all = BTreeMap::new();
    for table in tables {
        all.insert((*table).to_owned(), table_contents(pool, table).await?);
    }
    Ok(all)
}
