//! Events as `tracing` events, with the target of the layer's module
//! (`palisade::circuit_breaker`, `palisade::rate_limit`, …).

use super::EventKind;
use crate::LayerName;

/// A `tracing` event at `$level` whose target is the module of the layer of
/// kind `$layer`: a callsite's target is a constant, so one per module.
macro_rules! event {
    ($layer:expr, $level:ident, $($fields:tt)*) => {
        match $layer {
            "circuit_breaker" => tracing::$level!(target: "palisade::circuit_breaker", $($fields)*),
            "rate_limit" => tracing::$level!(target: "palisade::rate_limit", $($fields)*),
            "retry" => tracing::$level!(target: "palisade::retry", $($fields)*),
            "bulkhead" => tracing::$level!(target: "palisade::bulkhead", $($fields)*),
            "timeout" => tracing::$level!(target: "palisade::timeout", $($fields)*),
            "fallback" => tracing::$level!(target: "palisade::fallback", $($fields)*),
            "chaos" => tracing::$level!(target: "palisade::chaos", $($fields)*),
            "hedge" => tracing::$level!(target: "palisade::hedge", $($fields)*),
            _ => tracing::$level!(target: "palisade", $($fields)*),
        }
    };
}

pub(super) fn record(layer: &'static str, name: &LayerName, kind: &EventKind) {
    let name = name.as_str();
    match *kind {
        EventKind::Permitted => event!(layer, trace, layer, name, "call permitted"),
        EventKind::LetThrough => event!(layer, trace, layer, name, "call let through"),
        EventKind::Reconfigured { setting, old, new } => {
            event!(
                layer,
                info,
                layer,
                name,
                setting,
                old,
                new,
                "setting changed"
            )
        }
        EventKind::Finished { outcome, elapsed } => event!(
            layer,
            trace,
            layer,
            name,
            outcome = outcome.as_str(),
            ?elapsed,
            "call finished"
        ),
        EventKind::Rejected { kind, retry_after } => event!(
            layer,
            debug,
            layer,
            name,
            kind = kind.as_str(),
            ?retry_after,
            "call rejected"
        ),
        EventKind::Transition { from, to, reason } => event!(
            layer,
            info,
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
        } => event!(
            layer,
            trace,
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
        } => event!(
            layer,
            debug,
            layer,
            name,
            attempt,
            ?delay,
            reason,
            "retry scheduled"
        ),
        EventKind::RetriesExhausted { attempts } => {
            event!(layer, warn, layer, name, attempts, "retries exhausted")
        }
        EventKind::BudgetExhausted => {
            event!(layer, warn, layer, name, "retry budget exhausted")
        }
        EventKind::BodyNotBuffered { limit } => {
            event!(
                layer,
                debug,
                layer,
                name,
                limit,
                "request body over the limit: sent once"
            )
        }
        EventKind::Completed { attempts, success } => {
            event!(
                layer,
                trace,
                layer,
                name,
                attempts,
                success,
                "call completed"
            );
        }
        EventKind::TimedOut { after } => {
            event!(layer, debug, layer, name, ?after, "call timed out")
        }
        EventKind::CacheAnswered { reason, age } => {
            event!(
                layer,
                debug,
                layer,
                name,
                reason,
                ?age,
                "answered from the cache"
            )
        }
        EventKind::CacheMissed { reason, stale } => {
            event!(
                layer,
                debug,
                layer,
                name,
                reason,
                stale,
                "nothing in the cache"
            )
        }
        EventKind::FallbackUsed { reason } => {
            event!(layer, debug, layer, name, reason, "fallback used")
        }
        EventKind::StoreUnavailable { cause, answer } => {
            event!(
                layer,
                warn,
                layer,
                name,
                cause,
                answer,
                "decided without the store"
            )
        }
        EventKind::KeyMissing { hint } => event!(
            layer,
            warn,
            layer,
            name,
            hint = hint.unwrap_or("the key extractor found no key"),
            "request refused: no key"
        ),
        EventKind::DenialCacheHit => {
            event!(layer, trace, layer, name, "refused from the denial cache")
        }
        EventKind::Injected { fault } => event!(layer, debug, layer, name, fault, "injected"),
        EventKind::LimitChanged { limit } => {
            event!(layer, debug, layer, name, limit, "limit changed")
        }
        EventKind::Hedged { attempt } => event!(layer, debug, layer, name, attempt, "hedged"),
        EventKind::HedgeWon { attempt } => {
            event!(layer, debug, layer, name, attempt, "hedge answered")
        }
    }
}
