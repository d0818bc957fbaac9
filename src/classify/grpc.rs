use http::{HeaderValue, Response};

/// A gRPC status code, numbered as the gRPC protocol numbers them.
///
/// palisade's own type (tower-http has one too), so that palisade's public
/// API does not follow another crate's major versions. A number outside
/// `0..=16` is [`Unknown`](GrpcCode::Unknown), as the gRPC spec asks.
///
/// ```
/// use palisade::classify::GrpcCode;
/// assert_eq!(GrpcCode::from(14), GrpcCode::Unavailable);
/// assert_eq!(GrpcCode::Unavailable as i32, 14);
/// assert_eq!(GrpcCode::from(99), GrpcCode::Unknown);
/// assert_eq!(GrpcCode::DeadlineExceeded.to_string(), "DEADLINE_EXCEEDED");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum GrpcCode {
    /// `0`: not an error.
    Ok = 0,
    /// `1`: the operation was cancelled, typically by the caller.
    Cancelled = 1,
    /// `2`: an error with no better code, or a status number that is not one.
    Unknown = 2,
    /// `3`: the client sent an invalid argument.
    InvalidArgument = 3,
    /// `4`: the deadline passed before the operation completed.
    DeadlineExceeded = 4,
    /// `5`: an entity was not found.
    NotFound = 5,
    /// `6`: the entity the client tried to create already exists.
    AlreadyExists = 6,
    /// `7`: the caller may not do this.
    PermissionDenied = 7,
    /// `8`: a resource (a quota, a disk) is exhausted.
    ResourceExhausted = 8,
    /// `9`: the system is not in the state the operation needs.
    FailedPrecondition = 9,
    /// `10`: the operation was aborted, typically by a concurrency conflict.
    Aborted = 10,
    /// `11`: the operation went past the valid range.
    OutOfRange = 11,
    /// `12`: the operation is not implemented or supported.
    Unimplemented = 12,
    /// `13`: an internal invariant broke.
    Internal = 13,
    /// `14`: the service is unavailable for now; a retry may succeed.
    Unavailable = 14,
    /// `15`: data was lost or corrupted.
    DataLoss = 15,
    /// `16`: the request has no valid credentials.
    Unauthenticated = 16,
}

impl GrpcCode {
    /// Every code, in status-number order.
    const ALL: [GrpcCode; 17] = [
        GrpcCode::Ok,
        GrpcCode::Cancelled,
        GrpcCode::Unknown,
        GrpcCode::InvalidArgument,
        GrpcCode::DeadlineExceeded,
        GrpcCode::NotFound,
        GrpcCode::AlreadyExists,
        GrpcCode::PermissionDenied,
        GrpcCode::ResourceExhausted,
        GrpcCode::FailedPrecondition,
        GrpcCode::Aborted,
        GrpcCode::OutOfRange,
        GrpcCode::Unimplemented,
        GrpcCode::Internal,
        GrpcCode::Unavailable,
        GrpcCode::DataLoss,
        GrpcCode::Unauthenticated,
    ];

    /// The code's name as the gRPC spec writes it (`"UNAVAILABLE"`).
    ///
    /// ```
    /// assert_eq!(palisade::classify::GrpcCode::NotFound.as_str(), "NOT_FOUND");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            GrpcCode::Ok => "OK",
            GrpcCode::Cancelled => "CANCELLED",
            GrpcCode::Unknown => "UNKNOWN",
            GrpcCode::InvalidArgument => "INVALID_ARGUMENT",
            GrpcCode::DeadlineExceeded => "DEADLINE_EXCEEDED",
            GrpcCode::NotFound => "NOT_FOUND",
            GrpcCode::AlreadyExists => "ALREADY_EXISTS",
            GrpcCode::PermissionDenied => "PERMISSION_DENIED",
            GrpcCode::ResourceExhausted => "RESOURCE_EXHAUSTED",
            GrpcCode::FailedPrecondition => "FAILED_PRECONDITION",
            GrpcCode::Aborted => "ABORTED",
            GrpcCode::OutOfRange => "OUT_OF_RANGE",
            GrpcCode::Unimplemented => "UNIMPLEMENTED",
            GrpcCode::Internal => "INTERNAL",
            GrpcCode::Unavailable => "UNAVAILABLE",
            GrpcCode::DataLoss => "DATA_LOSS",
            GrpcCode::Unauthenticated => "UNAUTHENTICATED",
        }
    }
}

impl From<i32> for GrpcCode {
    fn from(number: i32) -> GrpcCode {
        usize::try_from(number)
            .ok()
            .and_then(|index| GrpcCode::ALL.get(index).copied())
            .unwrap_or(GrpcCode::Unknown)
    }
}

impl From<GrpcCode> for i32 {
    fn from(code: GrpcCode) -> i32 {
        code as i32
    }
}

impl std::fmt::Display for GrpcCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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
/// `grpc-status` is read by [`grpc_status`], the one reading of it in
/// palisade (headers and trailers alike): a value that is not a number is
/// `UNKNOWN`. A response whose headers carry no `grpc-status` is a success.
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
    /// Wait for the trailers when the headers carry no status.
    trailers: bool,
}

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
        GrpcErrorsAsFailures {
            failures: failures & !bit(GrpcCode::Ok),
            trailers: false,
        }
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
        // No `grpc-status` in the headers: the status is in the trailers.
        match res.headers().get(GRPC_STATUS) {
            Some(status) if is_failure(self.failures, grpc_status(status)) => Outcome::Failure,
            _ => Outcome::Success,
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

/// Whether `code` is in the failure set `failures`.
pub(super) fn is_failure(failures: u32, code: GrpcCode) -> bool {
    failures & bit(code) != 0
}

/// The status a `grpc-status` value carries, wherever it stands (the
/// headers of a trailers-only response, or the trailers).
///
/// The gRPC protocol writes it as decimal digits (`1*DIGIT`). Spaces and
/// tabs around them are HTTP's optional whitespace, not part of the value,
/// and are ignored; a value that is anything else — empty, signed, not
/// digits, not text — is `UNKNOWN`, as gRPC's own implementations read it
/// (tonic, grpc-java), and so is a number outside the known codes.
///
/// ```
/// use http::HeaderValue;
/// use palisade::classify::{GrpcCode, grpc_status};
///
/// let status = |value| grpc_status(&HeaderValue::from_static(value)) as i32;
/// assert_eq!(status("14"), GrpcCode::Unavailable as i32);
/// assert_eq!(status(" 14\t"), GrpcCode::Unavailable as i32);
/// assert_eq!(status("0"), GrpcCode::Ok as i32);
/// for unknown in ["+14", "1 4", "99", "", "fourteen"] {
///     assert_eq!(status(unknown), GrpcCode::Unknown as i32);
/// }
/// ```
pub fn grpc_status(value: &HeaderValue) -> GrpcCode {
    let ows = |byte: &u8| *byte == b' ' || *byte == b'\t';
    let bytes = value.as_bytes();
    let start = bytes.iter().position(|b| !ows(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !ows(b))
        .map_or(start, |end| end + 1);
    let digits = &bytes[start..end];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return GrpcCode::Unknown;
    }
    // Leading zeros are digits too; past them, more than two digits is no
    // known code.
    let significant = &digits[digits
        .iter()
        .position(|&b| b != b'0')
        .unwrap_or(digits.len())..];
    let number = match significant {
        [] => 0,
        [a] => i32::from(a - b'0'),
        [a, b] => i32::from(a - b'0') * 10 + i32::from(b - b'0'),
        _ => return GrpcCode::Unknown,
    };
    GrpcCode::from(number)
}

/// The bit of `code` in a failure set.
fn bit(code: GrpcCode) -> u32 {
    1 << (code as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_their_status_numbers_and_names() {
        for (number, code) in (0..).zip(GrpcCode::ALL) {
            assert_eq!(code as i32, number);
            assert_eq!(GrpcCode::from(number), code);
        }
        assert_eq!(GrpcCode::from(17), GrpcCode::Unknown);
        assert_eq!(GrpcCode::from(-1), GrpcCode::Unknown);
        assert_eq!(
            GrpcCode::ResourceExhausted.to_string(),
            "RESOURCE_EXHAUSTED"
        );
    }
}
