//! The `Retry-After` header, read defensively: shared by the retry layer's
//! HTTP policy and the HTTP classifier's breaker pushback.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, header};

/// What [`retry::http::retry_after`](crate::retry::http::retry_after)
/// documents: delta-seconds, or an HTTP-date measured from the response's
/// `Date` (else this machine's clock); `None` when absent or not understood.
///
/// HTTP-dates are read by `httpdate`, in the three forms HTTP allows
/// (IMF-fixdate, RFC 850, asctime), strictly: the weekday must be the
/// date's, and a leap second (`:60`) or a year before 1970 is not a date.
pub(crate) fn parse(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse::<u64>().ok().map(Duration::from_secs);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let now = headers
        .get(header::DATE)
        .and_then(|date| httpdate::parse_http_date(date.to_str().ok()?.trim()).ok())
        .unwrap_or_else(SystemTime::now);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}
