//! The Redis-backed rate limiter as a [`Service`].

use std::{
    fmt::{self, Display},
    task::{Context, Poll},
};

use redis::aio::ConnectionLike;
use tower::{BoxError, Service};

use super::{
    backend::{Ask, Limit},
    future::{Asked, ResponseFuture},
    layer::{Numbers, RedisShared},
};
use crate::{
    clock::Clock,
    deferred::take_ready,
    observe::EventKind,
    rate_limit::{Cost, KeyExtractor, core::Denied},
    sync::Arc,
};

/// The service of a [`RedisRateLimitLayer`](super::RedisRateLimitLayer):
/// asks Redis, then calls the service it wraps or refuses.
///
/// # Clone
///
/// A call waits for Redis before it reaches the wrapped service, so its
/// response future holds the service made ready for it, and a clone takes
/// its place (as tower's `Buffer` does): the wrapped service must be
/// `Clone`.
///
/// ```no_run
/// use palisade::rate_limit::{Rate, RateLimitLayer};
/// use tower::{Layer, service_fn};
///
/// # async fn run(connection: redis::aio::ConnectionManager) {
/// let layer = RateLimitLayer::builder()
///     .token_bucket(Rate::per_second(10), 10)
///     .redis(connection)
///     .build()
///     .unwrap();
/// let _service = layer.layer(service_fn(|x: u8| async move { Ok::<_, std::io::Error>(x) }));
/// # }
/// ```
pub struct RedisRateLimit<S, X, W, C: Clock, R> {
    inner: S,
    shared: Arc<RedisShared<X, W, C, R>>,
    /// The limit's numbers as this service last read them.
    numbers: Numbers,
}

impl<S, X, W, C: Clock, R> RedisRateLimit<S, X, W, C, R> {
    pub(super) fn new(inner: S, shared: Arc<RedisShared<X, W, C, R>>) -> Self {
        let numbers = shared.numbers();
        RedisRateLimit {
            inner,
            shared,
            numbers,
        }
    }

    /// The wrapped service.
    ///
    /// ```no_run
    /// # use palisade::rate_limit::RateLimitLayer;
    /// # use tower::Layer;
    /// # async fn run(connection: redis::aio::ConnectionManager) {
    /// let service = RateLimitLayer::builder().redis(connection).build().unwrap().layer(7);
    /// assert_eq!(*service.get_ref(), 7);
    /// # }
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

/// The Redis key of a limit: the layer's prefix, then a digest of the key
/// in braces — a Redis Cluster hash tag, so that a limit's keys share a
/// slot. Digested so that a client cannot choose long keys or break the
/// tag; `Some` marks a client's key, `None` the limit shared by requests
/// without one, so the two can never meet.
fn redis_key<K: Display>(prefix: &str, key: Option<&K>) -> String {
    let text = match key {
        Some(key) => format!("k:{key}"),
        None => "shared".to_owned(),
    };
    let digest = sha1_smol::Sha1::from(text.as_bytes()).digest().to_string();
    format!("{prefix}{{{}}}", &digest[..32])
}

impl<S, X, W, C, R, Req> Service<Req> for RedisRateLimit<S, X, W, C, R>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    X: KeyExtractor<Req>,
    X::Key: Display,
    W: Cost<Req>,
    C: Clock,
    R: ConnectionLike + Clone + Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, Req, X, W, C, R>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let shared = &self.shared;
        let key = match shared.local.key_of(&request) {
            Ok(Some(key)) if shared.keyed => key,
            Ok(Some(_)) => None,
            Ok(None) => return ResponseFuture::called(self.inner.call(request)),
            Err(refused) => return ResponseFuture::rejected(refused),
        };
        let cost = shared.local.cost_of(&request);
        if !shared.is_current(self.numbers.generation) {
            self.numbers = shared.numbers();
        }
        let (limit, generation) = (self.numbers.limit, self.numbers.generation);
        if cost > limit.capacity() {
            return ResponseFuture::rejected(shared.unsatisfiable(cost, limit));
        }
        let now = shared.local.clock.now();
        // The key's identity in this instance's memory of it.
        let id = shared.denials.id(key.as_ref());
        // Spent from this instance's lease, when it holds one.
        if shared.leases.spend(id, cost, now.as_nanos()) {
            return ResponseFuture::called(self.inner.call(request));
        }
        // Refused here while what Redis last said of the key refuses.
        if let Limit::Bucket { interval, capacity } = limit {
            let (push, tolerance) = (cost * interval * 1_000, capacity * interval * 1_000);
            if let Some(wait) = shared.denials.refused(id, now.as_nanos(), push, tolerance) {
                if wait > shared.max_wait * 1_000 {
                    let observer = shared.local.observer();
                    if observer.is_active() {
                        observer.emit(now, EventKind::DenialCacheHit);
                    }
                    let refused = shared.local.refusal(now, cost, Denied::Wait(wait));
                    return ResponseFuture::rejected(refused);
                }
            }
        }
        let ask = Ask {
            key: redis_key(&shared.prefix, key.as_ref()),
            limit,
            cost,
            batch: shared.batch.max(cost),
            max_wait: shared.max_wait,
            now: shared.layer_time.then(|| now.as_nanos() / 1_000),
        };
        let mut guard = shared.guard.clone();
        let decision = Box::pin(async move {
            // (A `match`, not `?`: the conversion `?` makes confuses the
            // compiler's proof that the future is `Send` in generic code.)
            match std::future::poll_fn(|cx| guard.poll_ready(cx)).await {
                Ok(()) => guard.call(ask).await,
                Err(error) => Err(error),
            }
        });
        let ready = take_ready(&mut self.inner);
        let asked = Asked {
            cost,
            id,
            sent: now.as_nanos(),
            generation,
        };
        ResponseFuture::deciding(decision, ready, request, asked, Arc::clone(shared))
    }
}

impl<S: Clone, X, W, C: Clock, R> Clone for RedisRateLimit<S, X, W, C, R> {
    fn clone(&self) -> Self {
        RedisRateLimit {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
            numbers: self.numbers,
        }
    }
}

impl<S: fmt::Debug, X, W, C: Clock, R> fmt::Debug for RedisRateLimit<S, X, W, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRateLimit")
            .field("inner", &self.inner)
            .field("name", self.shared.local.observer().name())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::redis_key;

    #[test]
    fn keys_are_digests_in_a_hash_tag_and_never_meet_the_shared_key() {
        let key = redis_key("palisade:api:", Some(&"}{ long and hostile"));
        assert!(key.starts_with("palisade:api:{"), "{key}");
        assert!(key.ends_with('}'));
        assert_eq!(key.len(), "palisade:api:{}".len() + 32);
        assert_ne!(redis_key::<&str>("p:", None), redis_key("p:", Some(&"")));
        assert_eq!(redis_key("p:", Some(&7u64)), redis_key("p:", Some(&"7")));
    }
}
