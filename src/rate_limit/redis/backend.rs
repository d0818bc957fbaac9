//! The one call a decision makes to Redis: the Lua script, by `EVALSHA`,
//! as a [`Service`], so that palisade's own timeout and circuit breaker can
//! guard it.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::LazyLock,
    task::{Context, Poll},
};

use redis::{Script, aio::ConnectionLike};
use tower::{BoxError, Service};

/// The scripts (see their files for their contracts).
static TOKEN_BUCKET: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("token_bucket.lua")));
static WINDOW: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("window.lua")));

/// A limit as Redis keeps it, in whole microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Limit {
    /// A token every `interval`, at most `capacity` at once.
    Bucket { interval: u64, capacity: u64 },
    /// At most `limit` in the last `counted` segments of `segment`.
    Window {
        limit: u64,
        segment: u64,
        counted: u64,
    },
}

impl Limit {
    /// The most one request may cost: the bucket's capacity, the window's
    /// limit.
    pub(crate) const fn capacity(&self) -> u64 {
        match *self {
            Limit::Bucket { capacity, .. } => capacity,
            Limit::Window { limit, .. } => limit,
        }
    }
}

/// One decision asked of Redis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Ask {
    /// The Redis key of the limit's state.
    pub(crate) key: String,
    pub(crate) limit: Limit,
    pub(crate) cost: u64,
    /// The most tokens of a bucket to take at once (a lease); the cost
    /// when not leasing.
    pub(crate) batch: u64,
    /// The longest wait that still admits, in microseconds.
    pub(crate) max_wait: u64,
    /// Now in microseconds on the layer's clock; `None`: the server's.
    pub(crate) now: Option<u64>,
}

/// What Redis decided. `ahead`: how far the bucket's TAT lies past the
/// decision's `now` afterwards, in microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Admitted, after `wait` microseconds, `taken` tokens taken (more than
    /// the cost for a lease).
    Admitted { wait: u64, ahead: u64, taken: u64 },
    /// Refused: enough tokens come after `wait` microseconds.
    Refused { wait: u64, ahead: u64 },
    /// The cost exceeds the capacity.
    Never,
}

/// Runs the script on a connection that multiplexes: every clone shares the
/// connection, so concurrent decisions are pipelined on it.
#[derive(Clone)]
pub(crate) struct Backend<R> {
    connection: R,
}

impl<R> Backend<R> {
    pub(crate) fn new(connection: R) -> Backend<R> {
        Backend { connection }
    }
}

impl<R> Service<Ask> for Backend<R>
where
    R: ConnectionLike + Clone + Send + 'static,
{
    type Response = Verdict;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Verdict, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, ask: Ask) -> Self::Future {
        let mut connection = self.connection.clone();
        Box::pin(async move {
            let now = ask.now.map_or_else(String::new, |now| now.to_string());
            let mut invocation = match ask.limit {
                Limit::Bucket { interval, capacity } => {
                    let mut invocation = TOKEN_BUCKET.key(&ask.key);
                    invocation.arg(interval).arg(capacity);
                    invocation
                }
                Limit::Window {
                    limit,
                    segment,
                    counted,
                } => {
                    let mut invocation = WINDOW.key(&ask.key);
                    invocation.arg(limit).arg(segment).arg(counted);
                    invocation
                }
            };
            invocation
                .arg(ask.cost)
                .arg(ask.max_wait)
                .arg(now)
                .arg(ask.batch);
            let (verdict, wait, ahead, taken): (i64, i64, i64, i64) =
                invocation.invoke_async(&mut connection).await?;
            let (wait, ahead, taken) =
                (wait.max(0) as u64, ahead.max(0) as u64, taken.max(0) as u64);
            Ok(match verdict {
                1 => Verdict::Admitted { wait, ahead, taken },
                0 => Verdict::Refused { wait, ahead },
                _ => Verdict::Never,
            })
        })
    }
}

impl<R> fmt::Debug for Backend<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backend").finish_non_exhaustive()
    }
}
