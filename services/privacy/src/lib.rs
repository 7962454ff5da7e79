//! Personal data under APPI (個人情報保護法): erasure by crypto-shredding and its
//! records (消去記録), disclosure (開示) as JSON, retention, and the statistics for the
//! register of personal-information files.
//!
//! The encryption itself is `kujira_store`'s vault; this crate decides whom to erase
//! or export and carries erasures out. Its projections:
//! * [`PersonIndexProjection`] (`privacy.persons`): who the log holds data on, their
//!   last activity, the streams that hold their facts, the persons merges joined;
//! * [`ErasureProjection`] (`privacy.erasure`): carries out each `PersonErased`.

mod cli;
pub mod erasure;
pub mod export;
pub mod index;
pub mod retention;
pub mod stats;

pub use cli::{PrivacyCommand, run_cli};
pub use erasure::{ErasureProjection, ErasureRecord, Target};
pub use index::PersonIndexProjection;

/// The migrations of this crate (versions 20261201006000–20261201006999).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// What an operator or an admin gets told.
#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    #[error("{0:?} is neither a case id nor an email address")]
    BadTarget(String),
    #[error("no person is found for it (unknown, or already erased)")]
    NotFound,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl PrivacyError {
    pub fn message_ja(&self) -> &'static str {
        match self {
            Self::BadTarget(_) => "案件IDまたはメールアドレスを入力してください。",
            Self::NotFound => "該当する方が見つかりません（未登録か、すでに消去済みです）。",
            Self::Internal(_) => "処理できませんでした。時間をおいてもう一度お試しください。",
        }
    }
}
