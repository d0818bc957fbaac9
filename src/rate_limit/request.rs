//! What the layer reads from a request: which limit it counts against (its
//! key) and how much of it it takes (its cost).

use std::hash::Hash;

/// Picks the key whose limit a request counts against: a client address, an
/// API key, a tenant… Closures `Fn(&Req) -> Option<K>` are key extractors;
/// `None` means the request has no key (see
/// [`MissingKey`](super::MissingKey)).
///
/// # Examples
///
/// ```
/// use palisade::rate_limit::KeyExtractor;
///
/// struct ApiKey;
///
/// impl KeyExtractor<(String, u32)> for ApiKey {
///     type Key = String;
///
///     fn extract(&self, request: &(String, u32)) -> Option<String> {
///         Some(request.0.clone())
///     }
/// }
///
/// assert_eq!(ApiKey.extract(&("k1".to_string(), 7)), Some("k1".to_string()));
/// ```
pub trait KeyExtractor<Req> {
    /// The key.
    type Key: Hash;

    /// The key of `request`, if it has one.
    fn extract(&self, request: &Req) -> Option<Self::Key>;

    /// Why a request can have no key — a set-up step that is missing, say —
    /// for the refusal, the event and the log line of a limiter that
    /// refuses requests without a key ([`MissingKey::Reject`](super::MissingKey::Reject)).
    /// Default: nothing to say.
    ///
    /// ```
    /// use palisade::rate_limit::KeyExtractor;
    /// let key = |request: &String| request.split_once(':').map(|(tenant, _)| tenant.to_owned());
    /// assert_eq!(KeyExtractor::<String>::missing_hint(&key), None);
    /// ```
    fn missing_hint(&self) -> Option<&'static str> {
        None
    }
}

impl<Req, K, F> KeyExtractor<Req> for F
where
    F: Fn(&Req) -> Option<K>,
    K: Hash,
{
    type Key = K;

    fn extract(&self, request: &Req) -> Option<K> {
        self(request)
    }
}

/// No key: every request counts against the one limit all share. The
/// default. It is its own key, the same for every request, and writes as
/// nothing.
///
/// ```
/// use palisade::rate_limit::{KeyExtractor, NoKey};
/// assert_eq!(NoKey.extract(&"any request"), Some(NoKey));
/// assert_eq!(NoKey.to_string(), "");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct NoKey;

impl<Req> KeyExtractor<Req> for NoKey {
    type Key = NoKey;

    fn extract(&self, _: &Req) -> Option<NoKey> {
        Some(NoKey)
    }
}

impl std::fmt::Display for NoKey {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        Ok(())
    }
}

/// How many units of the limit a request takes: tokens of a bucket, or
/// requests of a window. Closures `Fn(&Req) -> u32` are costs. A request of
/// cost 0 always passes and takes nothing.
///
/// # Examples
///
/// ```
/// use palisade::rate_limit::Cost;
///
/// // A batch of n items costs n.
/// let cost = |batch: &Vec<u64>| batch.len() as u32;
/// assert_eq!(cost.cost(&vec![1, 2, 3]), 3);
/// ```
pub trait Cost<Req> {
    /// The cost of `request`.
    fn cost(&self, request: &Req) -> u32;
}

impl<Req, F> Cost<Req> for F
where
    F: Fn(&Req) -> u32,
{
    fn cost(&self, request: &Req) -> u32 {
        self(request)
    }
}

/// Every request costs 1. The default.
///
/// ```
/// use palisade::rate_limit::{Cost, UnitCost};
/// assert_eq!(UnitCost.cost(&"any request"), 1);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct UnitCost;

impl<Req> Cost<Req> for UnitCost {
    fn cost(&self, _: &Req) -> u32 {
        1
    }
}
