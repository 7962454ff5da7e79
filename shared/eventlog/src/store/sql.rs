//! The append statements, one per shape (one event or many, a new stream or after
//! a known version, guarded or not), so that PostgreSQL plans each once.

use crate::types::Guard;

pub(super) const SINGLE_NEW: &str = "INSERT INTO events \
     (event_id, stream_name, stream_version, event_type, data, metadata) \
     VALUES ($3, $1, $2 + 1, $4, $5, $6) RETURNING position";
pub(super) const SINGLE_AFTER: &str = "INSERT INTO events \
     (event_id, stream_name, stream_version, event_type, data, metadata) \
     SELECT $3, $1, $2 + 1, $4, $5, $6 \
     WHERE EXISTS (SELECT 1 FROM events WHERE stream_name = $1 AND stream_version = $2) \
     RETURNING position";
pub(super) const MANY_NEW: &str = "INSERT INTO events \
     (event_id, stream_name, stream_version, event_type, data, metadata) \
     SELECT e.id, $1, $2 + e.ord, e.t, e.d, e.m \
     FROM unnest($3::uuid[], $4::text[], $5::jsonb[], $6::jsonb[]) \
          WITH ORDINALITY AS e(id, t, d, m, ord) \
     RETURNING position";
pub(super) const MANY_AFTER: &str = "INSERT INTO events \
     (event_id, stream_name, stream_version, event_type, data, metadata) \
     SELECT e.id, $1, $2 + e.ord, e.t, e.d, e.m \
     FROM unnest($3::uuid[], $4::text[], $5::jsonb[], $6::jsonb[]) \
          WITH ORDINALITY AS e(id, t, d, m, ord) \
     WHERE EXISTS (SELECT 1 FROM events WHERE stream_name = $1 AND stream_version = $2) \
     RETURNING position";

/// The statement of a guarded append to a new stream: the guard's CTEs, then the
/// insert of [`SINGLE_NEW`] or [`MANY_NEW`], only if `guard` returns a row.
///
/// Built once per guard and shape, and kept: guards are `'static` texts, so there
/// are as many statements as guards in the code (a fresh `String` per append cost
/// an allocation and a hash of the whole text in sqlx's statement cache).
pub(super) fn guarded_sql(single: bool, guard: &Guard) -> &'static str {
    type Built = std::collections::HashMap<(usize, usize, bool), &'static str>;
    static BUILT: std::sync::OnceLock<std::sync::Mutex<Built>> = std::sync::OnceLock::new();
    let key = (guard.ctes.as_ptr() as usize, guard.ctes.len(), single);
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    built
        .entry(key)
        .or_insert_with(|| Box::leak(build_guarded_sql(single, guard).into_boxed_str()))
}

fn build_guarded_sql(single: bool, guard: &Guard) -> String {
    let insert = if single {
        "SELECT $3, $1, $2 + 1, $4, $5, $6"
    } else {
        "SELECT e.id, $1, $2 + e.ord, e.t, e.d, e.m \
         FROM unnest($3::uuid[], $4::text[], $5::jsonb[], $6::jsonb[]) \
              WITH ORDINALITY AS e(id, t, d, m, ord)"
    };
    format!(
        "WITH {} INSERT INTO events \
           (event_id, stream_name, stream_version, event_type, data, metadata) \
         {insert} WHERE EXISTS (SELECT 1 FROM guard) RETURNING position",
        guard.ctes
    )
}
