//! KPI (placeholder while the module is written).
use axum::Router;
use crate::DeskState;

pub fn routes() -> Router<DeskState> {
    Router::new()
}

#[derive(Debug, Clone, Default)]
pub struct KpiProjection;
impl KpiProjection { pub fn new() -> Self { Self } }
#[async_trait::async_trait]
impl kujira_projector::Projection for KpiProjection {
    fn name(&self) -> &'static str { "desk.kpi" }
    async fn apply(&self, _tx: &mut sqlx::PgConnection, _e: &kujira_eventlog::RecordedEvent) -> anyhow::Result<()> { Ok(()) }
}
