use http::Response;
use tower_http::classify::{self as th, ClassifiedResponse, ClassifyResponse, GrpcFailureClass};

pub use tower_http::classify::GrpcCode;

use super::{Classify, DeferredOutcome, Outcome, trailers::PendingStatus};

/// The gRPC preset: a response whose `grpc-status` is one of a set of codes is
/// a failure, as is a transport error; everything else is a success.
///
/// The default set is the codes that speak of the server's health:
/// `UNAVAILABLE`, `DEADLINE_EXCEEDED`, `RESOURCE_EXHAUSTED`, `INTERNAL` and
/// `UNKNOWN`. Codes that speak of the request (`NOT_FOUND`,
/// `INVALID_ARGUMENT`, …) are successes for a breaker. A status number outside
/// the known codes is treated as `UNKNOWN`, as the gRPC spec asks.
///
/// The header parsing is tower-http's
/// [`GrpcErrorsAsFailures`](tower_http::classify::GrpcErrorsAsFailures): a
/// `grpc-status` that is missing, not text or not a number is not a failure.
/// This classifier sees the response *headers*, where `grpc-status` stands in
/// trailers-only responses (how servers answer an RPC that fails before
/// sending a message). When the status comes in the trailers at the end of
/// the body instead, the headers alone classify as a success — unless
/// [`from_trailers`](GrpcErrorsAsFailures::from_trailers) says to wait for
/// the trailers.
///
/// # Examples
///
/// ```
/// use http::Response;
/// use palisade::classify::{Classify, GrpcCode, GrpcErrorsAsFailures, Outcome};
///
/// fn reply(status: &str) -> Result<Response<()>, std::io::Error> {
///     Ok(Response::builder().header("grpc-status", status).body(()).unwrap())
/// }
///
/// let classifier = GrpcErrorsAsFailures::new();
/// assert_eq!(classifier.classify(&reply("0")), Outcome::Success);
/// assert_eq!(classifier.classify(&reply("14")), Outcome::Failure); // UNAVAILABLE
/// assert_eq!(classifier.classify(&reply("5")), Outcome::Success);  // NOT_FOUND
///
/// let custom = GrpcErrorsAsFailures::new()
///     .with_failure(GrpcCode::NotFound)
///     .without_failure(GrpcCode::Internal);
/// assert_eq!(custom.classify(&reply("5")), Outcome::Failure);
/// assert_eq!(custom.classify(&reply("13")), Outcome::Success);
/// ```
#[derive(Clone, Debug)]
pub struct GrpcErrorsAsFailures {
    /// Bit `n` set: status `n` is a failure.
    failures: u32,
    /// tower-http's classifier, told that every code outside `failures` is a
    /// success.
    inner: th::GrpcErrorsAsFailures,
    /// Wait for the trailers when the headers carry no status.
    trailers: bool,
}

/// Numeric values of the known gRPC status codes: 0 (`OK`) to 16
/// (`UNAUTHENTICATED`).
const KNOWN_CODES: std::ops::RangeInclusive<i32> = 0..=16;

impl GrpcErrorsAsFailures {
    /// The default set: `UNAVAILABLE`, `DEADLINE_EXCEEDED`,
    /// `RESOURCE_EXHAUSTED`, `INTERNAL`, `UNKNOWN`.
    ///
    /// ```
    /// let _ = palisade::classify::GrpcErrorsAsFailures::new();
    /// ```
    pub fn new() -> GrpcErrorsAsFailures {
        GrpcErrorsAsFailures::only([
            GrpcCode::Unavailable,
            GrpcCode::DeadlineExceeded,
            GrpcCode::ResourceExhausted,
            GrpcCode::Internal,
            GrpcCode::Unknown,
        ])
    }

    /// Exactly `codes` are failures. `OK` is always a success, even if listed.
    ///
    /// ```
    /// use palisade::classify::{GrpcCode, GrpcErrorsAsFailures};
    /// let _ = GrpcErrorsAsFailures::only([GrpcCode::Unavailable]);
    /// ```
    pub fn only(codes: impl IntoIterator<Item = GrpcCode>) -> GrpcErrorsAsFailures {
        GrpcErrorsAsFailures::from_bits(codes.into_iter().fold(0, |bits, code| bits | bit(code)))
    }

    /// Adds `code` to the failures.
    ///
    /// ```
    /// use palisade::classify::{GrpcCode, GrpcErrorsAsFailures};
    /// let _ = GrpcErrorsAsFailures::new().with_failure(GrpcCode::Aborted);
    /// ```
    pub fn with_failure(self, code: GrpcCode) -> GrpcErrorsAsFailures {
        self.with_bits(self.failures | bit(code))
    }

    /// Removes `code` from the failures.
    ///
    /// ```
    /// use palisade::classify::{GrpcCode, GrpcErrorsAsFailures};
    /// let _ = GrpcErrorsAsFailures::new().without_failure(GrpcCode::Unknown);
    /// ```
    pub fn without_failure(self, code: GrpcCode) -> GrpcErrorsAsFailures {
        self.with_bits(self.failures & !bit(code))
    }

    /// When a response's headers carry no `grpc-status` (a call that sends
    /// messages), wait for the status in its trailers: a circuit breaker
    /// then counts the call when the body ends, by the trailers' status,
    /// with the same set of failure codes. This needs a
    /// [`GrpcTrailersLayer`](super::GrpcTrailersLayer) outside the breaker
    /// to read the body's end; see it for the rules (a body dropped before
    /// its end counts as ignored). A call whose outcome waits for its
    /// trailers costs one allocation for the pending report.
    ///
    /// ```
    /// use palisade::classify::{Classify, GrpcErrorsAsFailures};
    /// let classifier = GrpcErrorsAsFailures::new().from_trailers();
    /// let streaming = Ok::<_, ()>(http::Response::new(()));
    /// assert!(classifier.defers(&streaming));
    /// ```
    pub fn from_trailers(mut self) -> GrpcErrorsAsFailures {
        self.trailers = true;
        self
    }

    /// This classifier with the failure set `failures`.
    fn with_bits(&self, failures: u32) -> GrpcErrorsAsFailures {
        GrpcErrorsAsFailures {
            trailers: self.trailers,
            ..GrpcErrorsAsFailures::from_bits(failures)
        }
    }

    fn from_bits(failures: u32) -> GrpcErrorsAsFailures {
        let failures = failures & !bit(GrpcCode::Ok);
        let inner = KNOWN_CODES
            .map(GrpcCode::from)
            .filter(|&code| failures & bit(code) == 0)
            .fold(th::GrpcErrorsAsFailures::new(), |inner, code| {
                inner.with_success(code)
            });
        GrpcErrorsAsFailures {
            failures,
            inner,
            trailers: false,
        }
    }

    fn is_failure(&self, status: i32) -> bool {
        is_failure(self.failures, status)
    }
}

impl Default for GrpcErrorsAsFailures {
    fn default() -> GrpcErrorsAsFailures {
        GrpcErrorsAsFailures::new()
    }
}

impl<B, E> Classify<Response<B>, E> for GrpcErrorsAsFailures {
    fn classify(&self, result: &Result<Response<B>, E>) -> Outcome {
        let res = match result {
            Err(_) => return Outcome::Failure,
            Ok(res) => res,
        };
        match self.inner.clone().classify_response(res) {
            ClassifiedResponse::Ready(Err(GrpcFailureClass::Code(status)))
                if self.is_failure(status.get()) =>
            {
                Outcome::Failure
            }
            // A known code tower-http calls a failure is in `failures` by
            // construction; only an unknown number can reach here, and it
            // counts as UNKNOWN, which the set does not hold.
            ClassifiedResponse::Ready(_) => Outcome::Success,
            // No `grpc-status` in the headers: the status is in the trailers.
            ClassifiedResponse::RequiresEos(_) => Outcome::Success,
        }
    }

    fn defers(&self, result: &Result<Response<B>, E>) -> bool {
        self.trailers && matches!(result, Ok(res) if !res.headers().contains_key(GRPC_STATUS))
    }

    fn defer(&self, result: &mut Result<Response<B>, E>, outcome: DeferredOutcome) {
        if let Ok(res) = result {
            res.extensions_mut()
                .insert(PendingStatus::new(self.failures, outcome));
        }
    }
}

const GRPC_STATUS: &str = "grpc-status";

/// Whether `status` is in the failure set `failures` (an unknown number
/// counts as `UNKNOWN`).
pub(super) fn is_failure(failures: u32, status: i32) -> bool {
    let code = if KNOWN_CODES.contains(&status) {
        GrpcCode::from(status)
    } else {
        GrpcCode::Unknown
    };
    failures & bit(code) != 0
}

/// The bit of `code` in a failure set. `GrpcCode`'s variants are declared in
/// status-number order (a test checks it against tower-http's `From<i32>`).
fn bit(code: GrpcCode) -> u32 {
    1 << (code as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_code_discriminants_are_status_numbers() {
        for status in KNOWN_CODES {
            assert_eq!(GrpcCode::from(status) as i32, status);
        }
    }
}
