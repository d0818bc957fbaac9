//! Events as `tracing` events, target `palisade`.

use tracing::{debug, info, trace, warn};

use super::EventKind;
use crate::LayerName;

pub(super) fn record(layer: &'static str, name: &LayerName, kind: &EventKind) {
    let name = name.as_str();
    match *kind {
        EventKind::Permitted => trace!(target: "palisade", layer, name, "call permitted"),
        EventKind::Finished { outcome, elapsed } => trace!(
            target: "palisade",
            layer,
            name,
            outcome = outcome.as_str(),
            ?elapsed,
            "call finished"
        ),
        EventKind::Rejected { kind, retry_after } => debug!(
            target: "palisade",
            layer,
            name,
            kind = kind.as_str(),
            ?retry_after,
            "call rejected"
        ),
        EventKind::Transition { from, to, reason } => info!(
            target: "palisade",
            layer,
            name,
            from,
            to,
            reason,
            "state transition"
        ),
        EventKind::Rates {
            failure_rate,
            slow_call_rate,
        } => trace!(
            target: "palisade",
            layer,
            name,
            failure_rate,
            slow_call_rate,
            "window rates"
        ),
        EventKind::RetryScheduled {
            attempt,
            delay,
            reason,
        } => debug!(
            target: "palisade",
            layer,
            name,
            attempt,
            ?delay,
            reason,
            "retry scheduled"
        ),
        EventKind::RetriesExhausted { attempts } => warn!(
            target: "palisade",
            layer,
            name,
            attempts,
            "retries exhausted"
        ),
        EventKind::BudgetExhausted => {
            warn!(target: "palisade", layer, name, "retry budget exhausted")
        }
        EventKind::BodyNotBuffered { limit } => {
            debug!(target: "palisade", layer, name, limit, "request body over the limit: sent once")
        }
        EventKind::Completed { attempts, success } => {
            trace!(target: "palisade", layer, name, attempts, success, "call completed");
        }
        EventKind::TimedOut { after } => {
            debug!(target: "palisade", layer, name, ?after, "call timed out")
        }
        EventKind::FallbackUsed { reason } => {
            debug!(target: "palisade", layer, name, reason, "fallback used")
        }
        EventKind::StoreUnavailable { cause, answer } => {
            warn!(target: "palisade", layer, name, cause, answer, "decided without the store")
        }
        EventKind::KeyMissing { hint } => warn!(
            target: "palisade",
            layer,
            name,
            hint = hint.unwrap_or("the key extractor found no key"),
            "request refused: no key"
        ),
        EventKind::DenialCacheHit => {
            trace!(target: "palisade", layer, name, "refused from the denial cache")
        }
    }
}
