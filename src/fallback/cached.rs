//! The cached fallback: a failed call answered with the last good answer
//! to the same request (see the module docs).

use std::{
    any::Any,
    fmt,
    future::Future,
    hash::Hash,
    marker::PhantomData,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};

use pin_project_lite::pin_project;
use quick_cache::{
    DefaultHashBuilder, OptionsBuilder, Weighter,
    sync::{Cache, DefaultLifecycle},
};
use tower::{BoxError, Layer, Service};

use super::{
    AnyFailure, FallbackWhen,
    layer::{Failed, FallbackTo},
};
use crate::{
    classify::{Classify, ErrorsAsFailures, Outcome},
    clock::{Clock, Instant, TokioClock},
    error::{
        ConfigError,
        check::{self, MAX_MEMORY},
    },
    observe::{EventKind, Observer, ObserverBuilder},
};

/// The kind of layer, and the name of one not given its own.
const LAYER: &str = "cached_fallback";

/// The key a request is remembered by; see [`CachedLayer::builder`].
///
/// ```
/// use palisade::fallback::{CacheKey, KeyFn};
/// let by_id = KeyFn::new(|id: &u64| Some(*id));
/// assert_eq!(by_id.key(&7), Some(7));
/// ```
pub trait CacheKey<Req>: Keys {
    /// `request`'s key, or `None`: the request is neither remembered nor
    /// answered from the cache.
    fn key(&self, request: &Req) -> Option<Self::Of>;
}

/// A closure `Fn(&Req) -> Option<K>` as a [`CacheKey`]; made by
/// [`CachedLayer::builder`].
///
/// ```
/// use palisade::fallback::{CacheKey, KeyFn};
/// let by_path = KeyFn::new(|path: &String| (!path.is_empty()).then(|| path.clone()));
/// assert_eq!(by_path.key(&String::new()), None);
/// ```
pub struct KeyFn<F, K> {
    f: F,
    key: PhantomData<fn() -> K>,
}

impl<F, K> KeyFn<F, K> {
    /// The closure `f` as a key.
    ///
    /// ```
    /// let _ = palisade::fallback::KeyFn::new(|name: &&str| Some(name.len()));
    /// ```
    pub fn new<Req>(f: F) -> Self
    where
        F: Fn(&Req) -> Option<K>,
    {
        KeyFn {
            f,
            key: PhantomData,
        }
    }
}

impl<F: Clone, K> Clone for KeyFn<F, K> {
    fn clone(&self) -> Self {
        KeyFn {
            f: self.f.clone(),
            key: PhantomData,
        }
    }
}

impl<F, K> fmt::Debug for KeyFn<F, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyFn").finish_non_exhaustive()
    }
}

impl<Req, F, K> CacheKey<Req> for KeyFn<F, K>
where
    F: Fn(&Req) -> Option<K>,
    K: Hash + Eq + Send + Sync + 'static,
{
    fn key(&self, request: &Req) -> Option<K> {
        (self.f)(request)
    }
}

/// How a cached fallback keeps responses of type `Res` and answers from
/// what it kept: [`Clones`] for any `Clone` response,
/// [`HttpResponses`](super::http::HttpResponses) for HTTP.
///
/// ```
/// use std::time::Duration;
/// use palisade::fallback::{Clones, Remember};
/// let clones = Clones::new();
/// let answer: u32 = Remember::<u32>::serve(&clones, &7, Duration::from_secs(3));
/// assert_eq!(answer, 7);
/// ```
pub trait Remember<Res> {
    /// The layer's response: a response of the wrapped service, or one made
    /// from what was kept.
    type Response;
    /// What is kept of a response.
    type Kept: Send + Sync + 'static;

    /// A successful `response` to a request with a key: the response to
    /// return, `keeper` given what to keep of it now, later (at the end of
    /// its body) or never (it is not worth keeping).
    fn keep<K>(&self, response: Res, keeper: Keeper<K, Self::Kept>) -> Self::Response
    where
        K: Hash + Eq + Send + Sync + 'static;

    /// A response not kept (a failure, or a request without a key), as the
    /// layer returns it.
    fn pass(&self, response: Res) -> Self::Response;

    /// The answer made from `kept`, its response `age` old.
    fn serve(&self, kept: &Self::Kept, age: Duration) -> Self::Response;
}

/// Marks an answer served from the cache with its age; see
/// [`Clones::marking`].
///
/// ```
/// use std::time::Duration;
/// use palisade::fallback::Mark;
/// let mut answer = (String::from("sunny"), None);
/// let mark = |answer: &mut (String, Option<Duration>), age| answer.1 = Some(age);
/// mark.mark(&mut answer, Duration::from_secs(5));
/// assert_eq!(answer.1, Some(Duration::from_secs(5)));
/// ```
pub trait Mark<Res> {
    /// Marks `answer`, made from a response `age` old.
    fn mark(&self, answer: &mut Res, age: Duration);
}

/// No mark: the answer is the kept response as it was.
impl<Res> Mark<Res> for () {
    fn mark(&self, _: &mut Res, _: Duration) {}
}

impl<Res, F: Fn(&mut Res, Duration)> Mark<Res> for F {
    fn mark(&self, answer: &mut Res, age: Duration) {
        self(answer, age)
    }
}

/// Keeps a copy of each successful response (`Res: Clone`) and answers
/// with a copy of it, marked by an optional [`Mark`]. An entry weighs the
/// response's size (`size_of::<Res>()`): what it owns on the heap is not
/// counted, so bound such responses by `max_entries`.
///
/// ```
/// use palisade::fallback::{CachedLayer, Clones};
/// let _ = CachedLayer::builder(|id: &u32| Some(*id))
///     .responses(Clones::marking(|answer: &mut (u32, bool), _age: std::time::Duration| answer.1 = true));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Clones<M = ()> {
    mark: M,
}

impl Clones {
    /// Answers with the kept copy as it was.
    ///
    /// ```
    /// let _ = palisade::fallback::Clones::new();
    /// ```
    pub fn new() -> Self {
        Clones { mark: () }
    }

    /// Answers with the kept copy, marked by `mark` with its age.
    ///
    /// ```
    /// let _ = palisade::fallback::Clones::marking(|answer: &mut String, _age: std::time::Duration| {
    ///     answer.push_str(" (cached)")
    /// });
    /// ```
    pub fn marking<M>(mark: M) -> Clones<M> {
        Clones { mark }
    }
}

impl<Res, M> Remember<Res> for Clones<M>
where
    Res: Clone + Send + Sync + 'static,
    M: Mark<Res>,
{
    type Response = Res;
    type Kept = Res;

    fn keep<K>(&self, response: Res, keeper: Keeper<K, Res>) -> Res
    where
        K: Hash + Eq + Send + Sync + 'static,
    {
        keeper.keep(response.clone(), size_of::<Res>() as u64);
        response
    }

    fn pass(&self, response: Res) -> Res {
        response
    }

    fn serve(&self, kept: &Res, age: Duration) -> Res {
        let mut answer = kept.clone();
        self.mark.mark(&mut answer, age);
        answer
    }
}

/// Added to an answer served from the cache (for HTTP, in the response's
/// extensions): how old the response it was made from is.
///
/// ```
/// use std::time::Duration;
/// let answer = palisade::fallback::CachedAnswer::new(Duration::from_secs(90));
/// assert_eq!(answer.age.as_secs(), 90);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CachedAnswer {
    /// The time since the response arrived, on the layer's clock.
    pub age: Duration,
}

impl CachedAnswer {
    /// An answer `age` old.
    ///
    /// ```
    /// let _ = palisade::fallback::CachedAnswer::new(std::time::Duration::ZERO);
    /// ```
    pub fn new(age: Duration) -> Self {
        CachedAnswer { age }
    }
}

/// One entry: when its response arrived, what it weighs, what was kept.
#[derive(Clone)]
struct Entry {
    at: Instant,
    weight: u64,
    kept: Arc<dyn Any + Send + Sync>,
}

/// An entry weighs what was kept of it, at least the layer's floor.
#[derive(Clone, Copy)]
struct EntryWeight;

impl<K> Weighter<K, Entry> for EntryWeight {
    fn weight(&self, _: &K, entry: &Entry) -> u64 {
        entry.weight
    }
}

/// The layer's cache.
struct Table<K> {
    entries: Cache<K, Entry, EntryWeight>,
    /// With `max_bytes`, the least an entry weighs: `max_bytes /
    /// max_entries`, so that at most `max_entries` fit. Without, every
    /// entry weighs 1.
    floor: Option<u64>,
}

/// Hands what to keep of one response to the cache, under its request's
/// key, dated when the response arrived; given to [`Remember::keep`].
///
/// ```
/// use std::time::Duration;
/// use palisade::fallback::{Clones, Keeper, Remember};
/// // Remember implementations call `keep`; the layer makes the keeper.
/// fn keep_twice<K: std::hash::Hash + Eq + Send + Sync + 'static>(keeper: Keeper<K, u32>) {
///     keeper.keep(2 * 21, 4);
/// }
/// # let _ = keep_twice::<u8>;
/// ```
pub struct Keeper<K, T> {
    table: Arc<Table<K>>,
    key: K,
    at: Instant,
    kept: PhantomData<fn(T)>,
}

impl<K: Hash + Eq + Send + Sync + 'static, T: Send + Sync + 'static> Keeper<K, T> {
    /// Keeps `kept`, which holds about `bytes` bytes, replacing what the key
    /// held.
    ///
    /// ```
    /// # use palisade::fallback::Keeper;
    /// fn keep(keeper: Keeper<String, Vec<u8>>, body: Vec<u8>) {
    ///     let bytes = body.len() as u64;
    ///     keeper.keep(body, bytes);
    /// }
    /// # let _ = keep;
    /// ```
    pub fn keep(self, kept: T, bytes: u64) {
        let entry = Entry {
            at: self.at,
            weight: self.table.floor.map_or(1, |floor| bytes.max(floor)),
            kept: Arc::new(kept),
        };
        self.table.entries.insert(self.key, entry);
    }
}

impl<K, T> fmt::Debug for Keeper<K, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keeper")
            .field("at", &self.at)
            .finish_non_exhaustive()
    }
}

/// Makes no answer: the failure goes through. The default of
/// [`CachedBuilder::otherwise`].
///
/// ```
/// use palisade::fallback::{Decline, Failed, FallbackTo};
/// let err: tower::BoxError = "down".into();
/// assert_eq!(FallbackTo::<u8>::fallback(&Decline, Failed::Error(&err)), None);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Decline;

impl<Res> FallbackTo<Res> for Decline {
    fn fallback(&self, _: Failed<'_, Res>) -> Option<Res> {
        None
    }
}

/// What the builder's type-changing settings make: the keys, how
/// responses are kept and answers made, which failures the cache answers,
/// the answer otherwise, and what fails.
struct Parts<X, R, P, F, K> {
    keys: X,
    responses: R,
    when: P,
    otherwise: F,
    classifier: K,
}

/// Everything a cached fallback's services and their futures share.
struct Shared<X: Keys, R, P, F, K, C> {
    parts: Parts<X, R, P, F, K>,
    clock: C,
    max_stale: Duration,
    table: Arc<Table<X::Of>>,
    observer: Observer,
    observed: bool,
}

/// A [`Layer`] that answers failed calls with the last good answer to the
/// same request; see [the module docs](super).
///
/// ```
/// use palisade::fallback::CachedLayer;
/// let layer = CachedLayer::builder(|id: &u32| Some(*id)).build().unwrap();
/// # let _: &CachedLayer<_, _, _, _, _, _> = &layer;
/// ```
pub struct CachedLayer<X, R, P, F, K, C>
where
    X: Keys,
{
    shared: Arc<Shared<X, R, P, F, K, C>>,
}

/// The key type of a [`CacheKey`], known before any request is seen.
///
/// ```
/// use palisade::fallback::{KeyFn, Keys};
/// fn key_type<X: Keys>(_: &X) -> &'static str { std::any::type_name::<X::Of>() }
/// assert_eq!(key_type(&KeyFn::new(|id: &u32| Some(*id))), "u32");
/// ```
pub trait Keys {
    /// The key.
    type Of: Hash + Eq + Send + Sync + 'static;
}

impl<F, K: Hash + Eq + Send + Sync + 'static> Keys for KeyFn<F, K> {
    type Of = K;
}

impl<X: Keys, R, P, F, K, C> Clone for CachedLayer<X, R, P, F, K, C> {
    fn clone(&self) -> Self {
        CachedLayer {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<X: Keys, R, P, F, K, C> fmt::Debug for CachedLayer<X, R, P, F, K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedLayer")
            .field("name", self.shared.observer.name())
            .field("max_stale", &self.shared.max_stale)
            .field("entries", &self.shared.table.entries.len())
            .finish_non_exhaustive()
    }
}

impl<X: Keys, R, P, F, K, C> CachedLayer<X, R, P, F, K, C> {
    /// How many answers the cache holds now (some may be too old to serve).
    ///
    /// ```
    /// use palisade::fallback::CachedLayer;
    /// let layer = CachedLayer::builder(|id: &u32| Some(*id)).build().unwrap();
    /// assert_eq!(layer.len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.shared.table.entries.len()
    }

    /// Whether the cache holds no answer.
    ///
    /// ```
    /// use palisade::fallback::CachedLayer;
    /// assert!(CachedLayer::builder(|id: &u32| Some(*id)).build().unwrap().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.shared.table.entries.is_empty()
    }

    /// What the held answers weigh: their bytes, each at least
    /// `max_bytes / max_entries` (or 1 without `max_bytes`); at most the
    /// bound the layer was built with.
    ///
    /// ```
    /// use palisade::fallback::CachedLayer;
    /// assert_eq!(CachedLayer::builder(|id: &u32| Some(*id)).build().unwrap().weight(), 0);
    /// ```
    pub fn weight(&self) -> u64 {
        self.shared.table.entries.weight()
    }

    /// Forgets every answer.
    ///
    /// ```
    /// use palisade::fallback::CachedLayer;
    /// CachedLayer::builder(|id: &u32| Some(*id)).build().unwrap().clear();
    /// ```
    pub fn clear(&self) {
        self.shared.table.entries.clear();
    }
}

impl CachedLayer<KeyFn<(), ()>, Clones, AnyFailure, Decline, ErrorsAsFailures, TokioClock> {
    /// A cached fallback keyed by `key` (`None`: not cached); see
    /// [`CachedBuilder`] for the defaults.
    ///
    /// ```
    /// use palisade::fallback::CachedLayer;
    /// let _ = CachedLayer::builder(|path: &String| Some(path.clone()));
    /// ```
    pub fn builder<Req, Key, G>(
        key: G,
    ) -> CachedBuilder<KeyFn<G, Key>, Clones, AnyFailure, Decline, ErrorsAsFailures, TokioClock>
    where
        G: Fn(&Req) -> Option<Key>,
        Key: Hash + Eq + Send + Sync + 'static,
    {
        CachedBuilder::new(KeyFn::new(key), Clones::new(), ErrorsAsFailures)
    }
}

/// Configures a [`CachedLayer`]. Defaults: at most 10 000 answers, no
/// bound in bytes, served up to 60 s old, for every failure
/// ([`AnyFailure`]), nothing otherwise ([`Decline`]).
///
/// ```
/// use std::time::Duration;
/// use palisade::fallback::CachedLayer;
/// let layer = CachedLayer::builder(|id: &u64| Some(*id))
///     .max_entries(50_000)
///     .max_bytes(64 << 20)
///     .max_stale(Duration::from_secs(300))
///     .build()
///     .unwrap();
/// # let _ = layer;
/// ```
pub struct CachedBuilder<X, R, P, F, K, C> {
    parts: Parts<X, R, P, F, K>,
    clock: C,
    max_entries: usize,
    max_bytes: Option<u64>,
    shards: Option<usize>,
    max_stale: Duration,
    observe: ObserverBuilder,
}

impl<X, R, K> CachedBuilder<X, R, AnyFailure, Decline, K, TokioClock> {
    /// A builder of the defaults with these keys, responses and classifier.
    pub(crate) fn new(keys: X, responses: R, classifier: K) -> Self {
        CachedBuilder {
            parts: Parts {
                keys,
                responses,
                when: AnyFailure,
                otherwise: Decline,
                classifier,
            },
            clock: TokioClock::new(),
            max_entries: 10_000,
            max_bytes: None,
            shards: None,
            max_stale: Duration::from_secs(60),
            observe: ObserverBuilder::new(),
        }
    }
}

impl<X, R, P, F, K, C: Clock> CachedBuilder<X, R, P, F, K, C> {
    crate::observe::name_and_listeners!(
        observe,
        "use palisade::fallback::CachedLayer;\nlet _ = CachedLayer::builder(|id: &u32| Some(*id))"
    );

    crate::observe::clock_setting!(
        "that dates the answers kept, and the events",
        "use palisade::fallback::CachedLayer;\nlet _ = CachedLayer::builder(|id: &u32| Some(*id))",
        CachedBuilder<X, R, P, F, K, C2> {
            parts, max_entries, max_bytes, shards, max_stale, observe
        }
    );

    /// The most answers kept (at least 1). Default 10 000.
    ///
    /// ```
    /// use palisade::fallback::CachedLayer;
    /// let _ = CachedLayer::builder(|id: &u32| Some(*id)).max_entries(1_000);
    /// ```
    pub fn max_entries(mut self, max_entries: usize) -> Self {
        self.max_entries = max_entries;
        self
    }

    /// The most bytes the answers kept may hold, on top of `max_entries`
    /// (each answer weighs its bytes, at least `max_bytes / max_entries`).
    /// Default: no bound but `max_entries`.
    ///
    /// ```
    /// use palisade::fallback::CachedLayer;
    /// let _ = CachedLayer::builder(|id: &u32| Some(*id)).max_bytes(16 << 20);
    /// ```
    pub fn max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = Some(max_bytes);
        self
    }

    /// How many independently locked shards the cache is split in, at
    /// most: a power of two (fewer are used if each would hold fewer than
    /// 32 answers). Each shard holds its share of `max_bytes`, and an answer
    /// heavier than that share is not kept: with `max_bytes`, pick few
    /// enough shards for your largest answer to fit in
    /// `max_bytes / shards`. Default: four per CPU.
    ///
    /// ```
    /// use palisade::fallback::CachedLayer;
    /// // Answers up to about 1 MiB kept in 8 MiB.
    /// let _ = CachedLayer::builder(|id: &u32| Some(*id)).max_bytes(8 << 20).shards(8);
    /// ```
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards);
        self
    }

    /// The oldest answer served: older, the failure is answered as if the
    /// cache held nothing. Default 60 s.
    ///
    /// ```
    /// use palisade::fallback::CachedLayer;
    /// let _ = CachedLayer::builder(|id: &u32| Some(*id)).max_stale(std::time::Duration::from_secs(3600));
    /// ```
    pub fn max_stale(mut self, max_stale: Duration) -> Self {
        self.max_stale = max_stale;
        self
    }

    /// How responses are kept and answers made: [`Clones`] by default;
    /// [`Clones::marking`] to mark an answer with its age.
    ///
    /// ```
    /// use palisade::fallback::{CachedLayer, Clones};
    /// let _ = CachedLayer::builder(|id: &u32| Some(*id))
    ///     .responses(Clones::marking(|answer: &mut String, age: std::time::Duration| {
    ///         answer.push_str(&format!(" ({}s old)", age.as_secs()))
    ///     }));
    /// ```
    pub fn responses<R2>(self, responses: R2) -> CachedBuilder<X, R2, P, F, K, C> {
        self.map_parts(|_, when, otherwise, classifier| (responses, when, otherwise, classifier))
    }

    /// Which failures the cache answers ([`FallbackWhen`]); the others go
    /// through, as does a failure it has nothing for. Default: every
    /// failure.
    ///
    /// ```
    /// use palisade::{error::RejectionKind, fallback::{CachedLayer, Failed}};
    /// let _ = CachedLayer::builder(|id: &u32| Some(*id))
    ///     .when(|failed: &Failed<'_, String>| {
    ///         failed.rejection().is_some_and(|r| r.kind() == RejectionKind::CircuitOpen)
    ///     });
    /// ```
    pub fn when<P2>(self, when: P2) -> CachedBuilder<X, R, P2, F, K, C> {
        self.map_parts(|responses, _, otherwise, classifier| {
            (responses, when, otherwise, classifier)
        })
    }

    /// The answer when the cache has nothing fresh enough for a failure it
    /// answers: a [`FallbackTo`] of the wrapped service's response, as
    /// [`FallbackLayer`](super::FallbackLayer)'s. Default [`Decline`]: the
    /// failure goes through.
    ///
    /// ```
    /// use palisade::fallback::{CachedLayer, Failed};
    /// let _ = CachedLayer::builder(|id: &u32| Some(*id))
    ///     .otherwise(|_: Failed<'_, String>| Some("unknown".to_string()));
    /// ```
    pub fn otherwise<F2>(self, otherwise: F2) -> CachedBuilder<X, R, P, F2, K, C> {
        self.map_parts(|responses, when, _, classifier| (responses, when, otherwise, classifier))
    }

    /// What counts as a failure — and so what is never kept: any
    /// [`Classify`]. Default: every error, no response
    /// ([`ErrorsAsFailures`]; for HTTP, `5xx` and errors).
    ///
    /// ```
    /// use palisade::{classify::Outcome, fallback::CachedLayer};
    /// let _ = CachedLayer::builder(|id: &u32| Some(*id))
    ///     .classifier(|result: &Result<String, tower::BoxError>| match result {
    ///         Ok(body) if body.is_empty() => Outcome::Failure,
    ///         Ok(_) => Outcome::Success,
    ///         Err(_) => Outcome::Failure,
    ///     });
    /// ```
    pub fn classifier<K2>(self, classifier: K2) -> CachedBuilder<X, R, P, F, K2, C> {
        self.map_parts(|responses, when, otherwise, _| (responses, when, otherwise, classifier))
    }

    /// The builder with its responses, predicate, fallback and classifier
    /// made by `f` from these.
    fn map_parts<R2, P2, F2, K2>(
        self,
        f: impl FnOnce(R, P, F, K) -> (R2, P2, F2, K2),
    ) -> CachedBuilder<X, R2, P2, F2, K2, C> {
        let Parts {
            keys,
            responses,
            when,
            otherwise,
            classifier,
        } = self.parts;
        let (responses, when, otherwise, classifier) = f(responses, when, otherwise, classifier);
        CachedBuilder {
            parts: Parts {
                keys,
                responses,
                when,
                otherwise,
                classifier,
            },
            clock: self.clock,
            max_entries: self.max_entries,
            max_bytes: self.max_bytes,
            shards: self.shards,
            max_stale: self.max_stale,
            observe: self.observe,
        }
    }

    /// Builds the layer, or says which setting is wrong: `max_entries` at
    /// least 1, `max_bytes` at least `max_entries` (an entry weighs at
    /// least a byte), both within 1 GiB of memory (an entry costs at least
    /// its key and its bookkeeping), `shards` a power of two at most
    /// `max_entries`, `max_stale` above zero and at most 100 years.
    ///
    /// ```
    /// use palisade::fallback::CachedLayer;
    /// let err = CachedLayer::builder(|id: &u32| Some(*id)).max_entries(0).build().unwrap_err();
    /// assert_eq!(err.field(), "max_entries");
    /// ```
    pub fn build(self) -> Result<CachedLayer<X, R, P, F, K, C>, ConfigError>
    where
        X: Keys,
    {
        check_entries::<X::Of>(self.max_entries)?;
        let entries = self.max_entries as u64;
        let (capacity, floor) = match self.max_bytes {
            None => (entries, None),
            Some(bytes) if bytes < entries => {
                return Err(ConfigError::new(
                    LAYER,
                    "max_bytes",
                    format!(
                        "must be at least max_entries ({entries}): an answer weighs at least a \
                         byte, got {bytes}"
                    ),
                ));
            }
            Some(bytes) if u128::from(bytes) > MAX_MEMORY => {
                return Err(ConfigError::new(
                    LAYER,
                    "max_bytes",
                    format!("must be at most {}, got {bytes}", check::bytes(MAX_MEMORY)),
                ));
            }
            Some(bytes) => (bytes, Some(bytes / entries)),
        };
        let mut options = OptionsBuilder::new();
        options
            .estimated_items_capacity(self.max_entries)
            .weight_capacity(capacity);
        if let Some(shards) = self.shards {
            if !shards.is_power_of_two() || shards > self.max_entries || shards > MAX_SHARDS {
                return Err(ConfigError::new(
                    LAYER,
                    "shards",
                    format!(
                        "must be a power of two, at most max_entries ({}) and at most \
                         {MAX_SHARDS}, got {shards}",
                        self.max_entries
                    ),
                ));
            }
            options.shards(shards);
        }
        let options = options.build().expect("the capacities are set");
        check::positive(LAYER, "max_stale", self.max_stale)?;
        check::at_most_longest(LAYER, "max_stale", self.max_stale)?;
        let observer = self.observe.build(LAYER);
        Ok(CachedLayer {
            shared: Arc::new(Shared {
                parts: self.parts,
                clock: self.clock,
                max_stale: self.max_stale,
                table: Arc::new(Table {
                    entries: Cache::with_options(
                        options,
                        EntryWeight,
                        DefaultHashBuilder::default(),
                        DefaultLifecycle::default(),
                    ),
                    floor,
                }),
                observed: observer.is_active(),
                observer,
            }),
        })
    }
}

/// `max_entries` must be at least 1, and their bookkeeping (keys of type
/// `K`) within [`MAX_MEMORY`].
fn check_entries<K>(max_entries: usize) -> Result<(), ConfigError> {
    if max_entries == 0 {
        return Err(ConfigError::new(
            LAYER,
            "max_entries",
            "must be at least 1, got 0",
        ));
    }
    let per_entry = (size_of::<K>() + size_of::<Entry>() + ENTRY_OVERHEAD) as u128;
    let memory = per_entry.saturating_mul(max_entries as u128);
    if memory > MAX_MEMORY {
        return Err(ConfigError::new(
            LAYER,
            "max_entries",
            format!(
                "{max_entries} answers would take {} of memory before their contents, more \
                 than {}",
                check::bytes(memory),
                check::bytes(MAX_MEMORY)
            ),
        ));
    }
    Ok(())
}

/// The most shards a cache is split in.
const MAX_SHARDS: usize = 1 << 16;

/// What an entry costs besides its key and its [`Entry`]: the cache's own
/// bookkeeping (its slot and table index) and the kept value's reference
/// count — counted in the memory bound of `max_entries`.
const ENTRY_OVERHEAD: usize = 64;

impl<X, R, P, F, K, C> fmt::Debug for CachedBuilder<X, R, P, F, K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedBuilder")
            .field("max_entries", &self.max_entries)
            .field("max_bytes", &self.max_bytes)
            .field("max_stale", &self.max_stale)
            .field("observe", &self.observe)
            .finish_non_exhaustive()
    }
}

impl<S, X: Keys, R, P, F, K, C> Layer<S> for CachedLayer<X, R, P, F, K, C> {
    type Service = Cached<S, X, R, P, F, K, C>;

    fn layer(&self, inner: S) -> Self::Service {
        Cached {
            inner,
            layer: self.clone(),
        }
    }
}

/// A service whose failed calls are answered with the last good answer to
/// the same request; made by [`CachedLayer`].
///
/// ```
/// use palisade::fallback::CachedLayer;
/// use tower::Layer;
/// let service = CachedLayer::builder(|id: &u32| Some(*id)).build().unwrap().layer("inner");
/// assert_eq!(*service.get_ref(), "inner");
/// ```
pub struct Cached<S, X: Keys, R, P, F, K, C> {
    inner: S,
    layer: CachedLayer<X, R, P, F, K, C>,
}

impl<S, X: Keys, R, P, F, K, C> Cached<S, X, R, P, F, K, C> {
    /// The wrapped service.
    ///
    /// ```
    /// use palisade::fallback::CachedLayer;
    /// use tower::Layer;
    /// let service = CachedLayer::builder(|id: &u32| Some(*id)).build().unwrap().layer(5u8);
    /// assert_eq!(*service.get_ref(), 5);
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, unwrapped.
    ///
    /// ```
    /// use palisade::fallback::CachedLayer;
    /// use tower::Layer;
    /// let service = CachedLayer::builder(|id: &u32| Some(*id)).build().unwrap().layer(5u8);
    /// assert_eq!(service.into_inner(), 5);
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The layer it was made by: its cache, [`len`](CachedLayer::len) and
    /// the rest.
    ///
    /// ```
    /// use palisade::fallback::CachedLayer;
    /// use tower::Layer;
    /// let service = CachedLayer::builder(|id: &u32| Some(*id)).build().unwrap().layer(5u8);
    /// assert!(service.layer().is_empty());
    /// ```
    pub fn layer(&self) -> &CachedLayer<X, R, P, F, K, C> {
        &self.layer
    }
}

impl<S: Clone, X: Keys, R, P, F, K, C> Clone for Cached<S, X, R, P, F, K, C> {
    fn clone(&self) -> Self {
        Cached {
            inner: self.inner.clone(),
            layer: self.layer.clone(),
        }
    }
}

impl<S: fmt::Debug, X: Keys, R, P, F, K, C> fmt::Debug for Cached<S, X, R, P, F, K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cached")
            .field("inner", &self.inner)
            .field("layer", &self.layer)
            .finish()
    }
}

impl<S, Req, X, R, P, F, K, C> Service<Req> for Cached<S, X, R, P, F, K, C>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    X: CacheKey<Req>,
    R: Remember<S::Response>,
    P: FallbackWhen<S::Response>,
    F: FallbackTo<S::Response>,
    K: Classify<S::Response, BoxError>,
    C: Clock,
{
    type Response = R::Response;
    type Error = BoxError;
    type Future = CachedFuture<S::Future, X, R, P, F, K, C>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // Readiness errors are the caller's to see: a service that cannot be
        // called is not a failed call.
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let key = self.layer.shared.parts.keys.key(&request);
        CachedFuture {
            inner: self.inner.call(request),
            key,
            shared: Arc::clone(&self.layer.shared),
        }
    }
}

pin_project! {
    /// The response future of [`Cached`]: the wrapped future, whose success
    /// is kept and whose failure the cache may answer.
    ///
    /// # Cancellation
    ///
    /// Dropped before the wrapped future completes, it is dropped with it: nothing is
    /// kept, nothing answered, nothing counted.
    ///
    /// # Examples
    ///
    /// ```
    /// use palisade::fallback::CachedLayer;
    /// use tower::{Layer, Service, service_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let layer = CachedLayer::builder(|id: &u32| Some(*id)).build().unwrap();
    /// let mut service = layer.layer(service_fn(|id: u32| async move { Ok::<_, std::io::Error>(id * 2) }));
    /// let future /* : CachedFuture<..> */ = service.call(4);
    /// assert_eq!(future.await.unwrap(), 8);
    /// assert_eq!(layer.len(), 1);
    /// # }
    /// ```
    pub struct CachedFuture<Fut, X: Keys, R, P, F, K, C> {
        #[pin]
        inner: Fut,
        key: Option<X::Of>,
        shared: Arc<Shared<X, R, P, F, K, C>>,
    }
}

impl<Fut, X, R, P, F, K, C, Res, E> Future for CachedFuture<Fut, X, R, P, F, K, C>
where
    Fut: Future<Output = Result<Res, E>>,
    E: Into<BoxError>,
    X: Keys,
    R: Remember<Res>,
    P: FallbackWhen<Res>,
    F: FallbackTo<Res>,
    K: Classify<Res, BoxError>,
    C: Clock,
{
    type Output = Result<R::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx)).map_err(Into::into);
        let shared = &**this.shared;
        if shared.parts.classifier.classify(&result) != Outcome::Failure {
            return Poll::Ready(result.map(|response| match this.key.take() {
                Some(key) => {
                    let keeper = Keeper {
                        table: Arc::clone(&shared.table),
                        key,
                        at: shared.clock.now(),
                        kept: PhantomData,
                    };
                    shared.parts.responses.keep(response, keeper)
                }
                None => shared.parts.responses.pass(response),
            }));
        }
        let failed = match &result {
            Err(err) => Failed::Error(err),
            Ok(response) => Failed::Response(response),
        };
        if !shared.parts.when.when(&failed) {
            return Poll::Ready(result.map(|response| shared.parts.responses.pass(response)));
        }
        let reason = failed.reason();
        let now = shared.clock.now();
        if let Some(key) = this.key.as_ref() {
            match shared.lookup(key, now) {
                Lookup::Fresh(entry, age) => {
                    // (Another response type kept under this key is no
                    // answer: a layer shared by two services.)
                    if let Some(kept) = entry.kept.downcast_ref::<R::Kept>() {
                        if shared.observed {
                            shared
                                .observer
                                .emit(now, EventKind::CacheAnswered { reason, age });
                        }
                        return Poll::Ready(Ok(shared.parts.responses.serve(kept, age)));
                    }
                    shared.missed(now, reason, false);
                }
                Lookup::Stale => shared.missed(now, reason, true),
                Lookup::Nothing => shared.missed(now, reason, false),
            }
        } else {
            shared.missed(now, reason, false);
        }
        match shared.parts.otherwise.fallback(failed) {
            Some(answer) => {
                if shared.observed {
                    shared
                        .observer
                        .emit(now, EventKind::FallbackUsed { reason });
                }
                Poll::Ready(Ok(shared.parts.responses.pass(answer)))
            }
            None => Poll::Ready(result.map(|response| shared.parts.responses.pass(response))),
        }
    }
}

/// What the cache holds for a key.
enum Lookup {
    /// An answer, this old.
    Fresh(Entry, Duration),
    /// Only an answer too old to serve.
    Stale,
    Nothing,
}

impl<X: Keys, R, P, F, K, C> Shared<X, R, P, F, K, C> {
    /// What the cache holds for `key` at `now` (an entry too old to serve
    /// is forgotten).
    fn lookup(&self, key: &X::Of, now: Instant) -> Lookup {
        let Some(entry) = self.table.entries.get(key) else {
            return Lookup::Nothing;
        };
        let age = now.saturating_duration_since(entry.at);
        if age <= self.max_stale {
            return Lookup::Fresh(entry, age);
        }
        // Unless a newer answer replaced it meanwhile.
        self.table
            .entries
            .remove_if(key, |held| Arc::ptr_eq(&held.kept, &entry.kept));
        Lookup::Stale
    }

    /// The event of a failure the cache had nothing for (`stale`: only an
    /// answer too old).
    fn missed(&self, now: Instant, reason: &'static str, stale: bool) {
        if self.observed {
            self.observer
                .emit(now, EventKind::CacheMissed { reason, stale });
        }
    }
}

impl<Fut, X: Keys, R, P, F, K, C> fmt::Debug for CachedFuture<Fut, X, R, P, F, K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedFuture").finish_non_exhaustive()
    }
}
