//! Recording a delivery's outcome behind the claim's fence (see the module docs of
//! [`super`]).

use anyhow::Context;

use super::{Claim, Mailer, Outcome};

impl Mailer {
    /// Records the outcome, only while the row still carries this worker's claim
    /// token: a worker overtaken after its lease ran out records nothing.
    pub(super) async fn settle(&self, claim: &Claim, outcome: Outcome) -> anyhow::Result<Settled> {
        let now = self.clock.now();
        let pool = self.store.pool();
        const FENCE: &str = "WHERE key = $1 AND claim = $2 AND status = 'pending'";
        let (result, settled) = match &outcome {
            Outcome::Sent {
                message_id,
                subject,
            } => (
                sqlx::query(&format!(
                    "UPDATE mail_deliveries SET status = 'sent', sent_at = $3, message_id = $4, \
                       subject = $5, next_attempt_at = NULL, last_error = NULL, claim = NULL \
                     {FENCE}"
                ))
                .bind(&claim.key)
                .bind(claim.token)
                .bind(now)
                .bind(message_id)
                .bind(subject)
                .execute(pool)
                .await
                .context("sent a mail but cannot record it; it will be sent again")?,
                Settled::Sent,
            ),
            Outcome::Cancelled(reason) => (
                sqlx::query(&format!(
                    "UPDATE mail_deliveries SET status = 'cancelled', cancel_reason = $3, \
                       cancelled_at = $4, next_attempt_at = NULL, claim = NULL \
                     {FENCE}"
                ))
                .bind(&claim.key)
                .bind(claim.token)
                .bind(reason.as_str())
                .bind(now)
                .execute(pool)
                .await
                .context("cannot record a cancelled mail")?,
                Settled::Cancelled,
            ),
            Outcome::Failed { error, subject, .. } => (
                sqlx::query(&format!(
                    "UPDATE mail_deliveries SET status = 'failed', failed_at = $3, last_error = $4, \
                       subject = coalesce($5, subject), next_attempt_at = NULL, claim = NULL \
                     {FENCE}"
                ))
                .bind(&claim.key)
                .bind(claim.token)
                .bind(now)
                .bind(error)
                .bind(subject)
                .execute(pool)
                .await
                .context("cannot record a rejected mail")?,
                Settled::Failed,
            ),
            Outcome::Deferred(error) => {
                let attempts = u32::try_from(claim.attempts).unwrap_or(1);
                (
                    sqlx::query(&format!(
                        "UPDATE mail_deliveries SET next_attempt_at = $3, last_error = $4, \
                           claim = NULL \
                         {FENCE}"
                    ))
                    .bind(&claim.key)
                    .bind(claim.token)
                    .bind(now + self.policy.backoff(attempts))
                    .bind(error)
                    .execute(pool)
                    .await
                    .context("cannot record a failed mail attempt")?,
                    Settled::Deferred,
                )
            }
            // Due again at once: nobody else took it, or the fence leaves it alone.
            Outcome::LeaseExpired => (
                sqlx::query(&format!(
                    "UPDATE mail_deliveries SET next_attempt_at = $3, \
                       last_error = 'the lease ran out before the mail was sent', claim = NULL \
                     {FENCE}"
                ))
                .bind(&claim.key)
                .bind(claim.token)
                .bind(now)
                .execute(pool)
                .await
                .context("cannot release a mail whose lease ran out")?,
                Settled::Deferred,
            ),
        };
        if result.rows_affected() == 0 {
            tracing::warn!(
                key = %claim.key,
                lease_until = %claim.lease_until,
                "another worker took this mail over after the lease ran out; \
                 this worker's outcome is dropped"
            );
            return Ok(Settled::Overtaken);
        }
        match &outcome {
            Outcome::Sent { message_id, .. } => {
                tracing::info!(key = %claim.key, %message_id, "mail sent");
            }
            Outcome::Cancelled(reason) => {
                tracing::info!(key = %claim.key, reason = reason.as_str(), "mail cancelled");
            }
            Outcome::Failed { error, bounce, .. } => {
                tracing::error!(key = %claim.key, %error, "mail rejected for good");
                if let (Some(code), Some(person_id), true) =
                    (bounce, claim.person_id, claim.to_applicant())
                {
                    // After the fenced outcome, so that only the lease holder marks
                    // the address. A crash in between loses the mark; the next mail
                    // to the address bounces again and makes it.
                    if let Err(e) =
                        crate::person::record_bounce(&self.store, person_id, *code, &claim.key, now)
                            .await
                    {
                        tracing::error!(key = %claim.key, error = %e, "cannot record the bounce");
                    }
                }
            }
            Outcome::Deferred(error) => {
                tracing::warn!(key = %claim.key, attempts = claim.attempts, %error, "mail deferred");
            }
            Outcome::LeaseExpired => {
                tracing::warn!(key = %claim.key, "the lease ran out before sending; released");
            }
        }
        Ok(settled)
    }
}

/// How a claimed delivery ended, for the batch's report.
pub(super) enum Settled {
    Sent,
    Deferred,
    Failed,
    Cancelled,
    Overtaken,
}
