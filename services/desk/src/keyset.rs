//! Keyset paging of the desk's lists (the cases, the audit trail, the 消去記録):
//! newest first by a time and an id, a position written `micros_uuid` in the
//! `after` and `before` parameters of the lists' links.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

use crate::error::AppError;

/// A position in a list: the time and id of the row next to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub at: DateTime<Utc>,
    pub id: Uuid,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{}_{}", self.at.timestamp_micros(), self.id.simple())
    }

    pub fn decode(s: &str) -> Option<Self> {
        let (t, id) = s.trim().split_once('_')?;
        Some(Self {
            at: DateTime::from_timestamp_micros(t.parse().ok()?)?,
            id: Uuid::parse_str(id).ok()?,
        })
    }
}

/// Which page of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    First,
    After(Cursor),
    Before(Cursor),
}

impl Page {
    /// The page a list's `after` and `before` parameters name. A position that
    /// does not read (a link cut short or edited by hand) is a Japanese 400, not a
    /// silent first page that looks like the page asked for.
    pub fn from_params(after: &str, before: &str) -> Result<Self, AppError> {
        let read = |name: &str, raw: &str| -> Result<Option<Cursor>, AppError> {
            let raw = raw.trim();
            if raw.is_empty() {
                return Ok(None);
            }
            Cursor::decode(raw).map(Some).ok_or_else(|| {
                AppError::BadRequest(format!(
                    "ページの指定（{name}）が正しくありません。一覧の最初のページから開き直してください。"
                ))
            })
        };
        Ok(match (read("after", after)?, read("before", before)?) {
            (Some(c), _) => Self::After(c),
            (None, Some(c)) => Self::Before(c),
            (None, None) => Self::First,
        })
    }

    /// Appends the page's bound on the `(time, id)` columns to a `WHERE` clause.
    /// The plain bound on `time` lets an index on it start at the cursor; the row
    /// comparison then breaks ties within one microsecond.
    pub fn push_bound(&self, qb: &mut QueryBuilder<'_, Postgres>, time: &str, id: &str) {
        let (plain, row, c) = match self {
            Self::First => return,
            Self::After(c) => ("<=", "<", c),
            Self::Before(c) => (">=", ">", c),
        };
        qb.push(format!(" AND {time} {plain} ")).push_bind(c.at);
        qb.push(format!(" AND ({time}, {id}) {row} ("))
            .push_bind(c.at)
            .push(", ")
            .push_bind(c.id)
            .push(")");
    }

    /// Appends the order that fetches the page's rows nearest the cursor first,
    /// and a limit of `size + 1` (one more row says whether there is more).
    pub fn push_order(&self, qb: &mut QueryBuilder<'_, Postgres>, time: &str, id: &str, size: i64) {
        let dir = if matches!(self, Self::Before(_)) {
            "ASC"
        } else {
            "DESC"
        };
        qb.push(format!(" ORDER BY {time} {dir}, {id} {dir} LIMIT "))
            .push_bind(size + 1);
    }

    /// The rows fetched (in [`Page::push_order`]'s order) as the page shows them,
    /// newest first, with the positions of the next and the previous page.
    pub fn finish<T>(
        &self,
        mut rows: Vec<T>,
        size: i64,
        cursor: impl Fn(&T) -> Cursor,
    ) -> (Vec<T>, Option<Cursor>, Option<Cursor>) {
        let more = rows.len() as i64 > size;
        rows.truncate(size as usize);
        if matches!(self, Self::Before(_)) {
            rows.reverse();
        }
        let (first, last) = (rows.first().map(&cursor), rows.last().map(&cursor));
        let (next, prev) = match self {
            Self::First => (last.filter(|_| more), None),
            Self::After(_) => (last.filter(|_| more), first),
            Self::Before(_) => (last, first.filter(|_| more)),
        };
        (rows, next, prev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_and_nonsense_is_refused() {
        let c = Cursor {
            at: DateTime::from_timestamp_micros(1_764_000_000_123_456).unwrap(),
            id: Uuid::now_v7(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        for bad in ["nonsense", "x_y", "", "1_", "_0190"] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
        assert_eq!(Page::from_params(&c.encode(), "").unwrap(), Page::After(c));
        assert_eq!(
            Page::from_params(" ", &c.encode()).unwrap(),
            Page::Before(c)
        );
        assert_eq!(Page::from_params("", "").unwrap(), Page::First);
        assert!(Page::from_params("zzz", "").is_err());
        assert!(Page::from_params("", "zzz").is_err());
    }

    #[test]
    fn the_neighbours_of_a_page_are_where_rows_remain() {
        let c = |n: i64| Cursor {
            at: DateTime::from_timestamp_micros(n).unwrap(),
            id: Uuid::nil(),
        };
        let at = |n: &i64| c(*n);
        // First page of 2 with more: next after its last row, no previous.
        let (rows, next, prev) = Page::First.finish(vec![9, 8, 7], 2, at);
        assert_eq!((rows, next, prev), (vec![9, 8], Some(c(8)), None));
        // Going back from 5: fetched oldest first, shown newest first.
        let (rows, next, prev) = Page::Before(c(5)).finish(vec![6, 7, 8], 2, at);
        assert_eq!((rows, next, prev), (vec![7, 6], Some(c(6)), Some(c(7))));
        // The last page after 3: no next.
        let (rows, next, prev) = Page::After(c(3)).finish(vec![2], 2, at);
        assert_eq!((rows, next, prev), (vec![2], None, Some(c(2))));
    }
}
