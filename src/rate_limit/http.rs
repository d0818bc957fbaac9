//! HTTP helpers for the rate limiter (feature `http`): a client-address key
//! that a client cannot forge, and the `429 Too Many Requests` answer.
//!
//! # The client's address
//!
//! [`ClientIp`] keys requests by the address of the client. By default that is
//! the **peer** of the connection, read from the request's extensions: a
//! [`SocketAddr`] (insert one per connection when serving with hyper), or
//! axum's `ConnectInfo<SocketAddr>` (feature `axum`; serve with
//! `into_make_service_with_connect_info::<SocketAddr>()`). No peer address:
//! no key (see [`MissingKey`](super::MissingKey)).
//!
//! Behind a reverse proxy every peer is the proxy. Name the proxies with
//! [`ClientIp::trusting`] and the header they set with
//! [`ClientIp::header`]: the header is read **only when the peer is
//! trusted**, so a client that connects directly cannot choose its own key by
//! sending one. The hops of `X-Forwarded-For` or `Forwarded` are walked from
//! the nearest (rightmost) back, skipping trusted proxies; the first hop that
//! is not a trusted proxy is the client. A hop that cannot be read (garbage,
//! `unknown`, an obfuscated name) ends the walk: the key is then the last
//! trusted address, the proxy that passed the garbage on, never a value the
//! client wrote. At most 64 hops are read. IPv4-mapped IPv6 addresses count
//! as their IPv4 address.
//!
//! # The answer
//!
//! [`TooManyRequests`] turns a [`RateLimited`] refusal into `429 Too Many
//! Requests` with `Retry-After` in whole seconds, rounded **up** (never 0
//! while a wait remains), and optionally the IETF `RateLimit-Policy` and
//! `RateLimit` headers.
//!
//! # Examples
//!
//! ```
//! use std::net::{IpAddr, SocketAddr};
//! use palisade::rate_limit::{KeyExtractor, http::{ClientIp, Forwarding}};
//!
//! let key = ClientIp::trusting(["10.0.0.0/8"])?.header(Forwarding::XForwardedFor);
//!
//! let mut request = http::Request::new(());
//! request.extensions_mut().insert(SocketAddr::from(([10, 1, 2, 3], 40000)));
//! request.headers_mut().insert("x-forwarded-for", "203.0.113.9, 10.0.0.7".parse().unwrap());
//! assert_eq!(key.extract(&request), Some("203.0.113.9".parse::<IpAddr>().unwrap()));
//!
//! // The same header from a peer that is not a trusted proxy is ignored.
//! request.extensions_mut().insert(SocketAddr::from(([198, 51, 100, 4], 40000)));
//! assert_eq!(key.extract(&request), Some("198.51.100.4".parse::<IpAddr>().unwrap()));
//! # Ok::<(), palisade::error::ConfigError>(())
//! ```

use std::{
    net::{IpAddr, SocketAddr},
    str::FromStr,
    time::Duration,
};

use http::{HeaderName, HeaderValue, Request, Response, StatusCode, header};

use super::{KeyExtractor, RateLimitLayer, config::LAYER};
use crate::{
    clock::Clock,
    error::{ConfigError, RateLimited},
};

/// The most hops of a forwarding header read.
const MAX_HOPS: usize = 64;

/// Which header the trusted proxies set.
///
/// ```
/// use palisade::rate_limit::http::{ClientIp, Forwarding};
/// let _ = ClientIp::trusting(["127.0.0.1"]).unwrap().header(Forwarding::Forwarded);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Forwarding {
    /// `X-Forwarded-For: client, proxy1, proxy2` (the default).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for="[2001:db8::1]:4711"`.
    Forwarded,
    /// `X-Real-IP: client`, a single address set by the nearest proxy.
    XRealIp,
}

/// A network of trusted proxies: an address and a prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Network {
    address: IpAddr,
    prefix: u8,
}

impl Network {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.address, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Network {
    type Err = String;

    fn from_str(text: &str) -> Result<Network, String> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address = address
            .parse::<IpAddr>()
            .map_err(|_| format!("must be addresses or networks such as 10.0.0.0/8, got {text:?}"))?
            .to_canonical();
        let bits = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(prefix) => prefix
                .parse::<u8>()
                .ok()
                .filter(|&prefix| prefix <= bits)
                .ok_or_else(|| format!("has a prefix length out of 0..={bits} in {text:?}"))?,
        };
        Ok(Network { address, prefix })
    }
}

/// Keys an HTTP request by its client's IP address; see
/// [the module docs](self).
///
/// # Examples
///
/// ```
/// use std::{net::SocketAddr, time::Duration};
/// use palisade::rate_limit::{RateLimitLayer, http::ClientIp};
///
/// // 10 requests a second per client, by peer address.
/// let layer = RateLimitLayer::builder()
///     .sliding_window(10, Duration::from_secs(1), 10)
///     .key(ClientIp::peer())
///     .build()?;
/// # let _ = layer;
/// # Ok::<(), palisade::error::ConfigError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct ClientIp {
    trusted: Vec<Network>,
    forwarding: Forwarding,
}

impl ClientIp {
    /// The peer's address; no header is ever read.
    ///
    /// ```
    /// use std::net::SocketAddr;
    /// use palisade::rate_limit::{KeyExtractor, http::ClientIp};
    ///
    /// let mut request = http::Request::new(());
    /// request.extensions_mut().insert(SocketAddr::from(([192, 0, 2, 1], 5000)));
    /// request.headers_mut().insert("x-forwarded-for", "1.2.3.4".parse().unwrap());
    /// assert_eq!(ClientIp::peer().extract(&request), Some([192, 0, 2, 1].into()));
    /// ```
    pub fn peer() -> ClientIp {
        ClientIp::default()
    }

    /// The client behind the given proxies: addresses (`10.0.0.7`,
    /// `::1`) or networks (`10.0.0.0/8`, `fd00::/8`). The forwarding header
    /// is read only from a peer among them.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] on the field `trusted_proxies` naming an entry that
    /// is not an address or network.
    ///
    /// ```
    /// use palisade::rate_limit::http::ClientIp;
    /// assert!(ClientIp::trusting(["10.0.0.0/8", "::1"]).is_ok());
    /// let err = ClientIp::trusting(["10.0.0.0/33"]).unwrap_err();
    /// assert_eq!(err.field(), "trusted_proxies");
    /// ```
    pub fn trusting<I>(proxies: I) -> Result<ClientIp, ConfigError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let trusted = proxies
            .into_iter()
            .map(|proxy| proxy.as_ref().trim().parse::<Network>())
            .collect::<Result<_, _>>()
            .map_err(|rule| ConfigError::new(LAYER, "trusted_proxies", rule))?;
        Ok(ClientIp {
            trusted,
            forwarding: Forwarding::default(),
        })
    }

    /// The header the trusted proxies set. Default
    /// [`Forwarding::XForwardedFor`]. Name the one your proxies set (and
    /// overwrite): trusting a header they pass through untouched lets
    /// clients write it.
    ///
    /// ```
    /// use palisade::rate_limit::http::{ClientIp, Forwarding};
    /// let _ = ClientIp::trusting(["10.0.0.1"]).unwrap().header(Forwarding::XRealIp);
    /// ```
    pub fn header(mut self, forwarding: Forwarding) -> ClientIp {
        self.forwarding = forwarding;
        self
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|network| network.contains(ip))
    }

    /// The client's address, given the peer's and the request's headers.
    fn client(&self, peer: IpAddr, headers: &http::HeaderMap) -> IpAddr {
        let mut client = peer;
        if !self.trusts(client) {
            return client;
        }
        let name: HeaderName = match self.forwarding {
            Forwarding::XForwardedFor => HeaderName::from_static("x-forwarded-for"),
            Forwarding::Forwarded => header::FORWARDED,
            Forwarding::XRealIp => HeaderName::from_static("x-real-ip"),
        };
        // Hops, nearest first: later header lines were added by nearer
        // proxies, and so were later entries of a line.
        let hops = headers
            .get_all(name)
            .iter()
            .rev()
            .flat_map(|line| line.as_bytes().rsplit(|&byte| byte == b','))
            .take(MAX_HOPS);
        for hop in hops {
            let hop = std::str::from_utf8(hop).unwrap_or("\u{0}");
            let parsed = match self.forwarding {
                Forwarding::Forwarded => forwarded_for(hop),
                _ => parse_ip(hop.trim()),
            };
            let Some(hop) = parsed else { break };
            client = hop;
            if !self.trusts(hop) {
                break;
            }
            if self.forwarding == Forwarding::XRealIp {
                break;
            }
        }
        client
    }
}

/// The address of a `for=` parameter of one `Forwarded` element.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    let value = element.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("for")
            .then_some(value.trim())
    })?;
    let value = value
        .strip_prefix('"')
        .and_then(|value| value.strip_suffix('"'))
        .unwrap_or(value);
    parse_ip(value)
}

/// An address, with or without a port, IPv6 possibly in brackets.
fn parse_ip(text: &str) -> Option<IpAddr> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(socket) = text.parse::<SocketAddr>() {
        return Some(socket.ip().to_canonical());
    }
    let bracketed = text.strip_prefix('[')?.strip_suffix(']')?;
    bracketed.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

/// The peer's address recorded in the request's extensions.
fn peer<B>(request: &Request<B>) -> Option<IpAddr> {
    let extensions = request.extensions();
    let peer = extensions.get::<SocketAddr>().copied();
    #[cfg(feature = "axum")]
    let peer = peer.or_else(|| {
        extensions
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map(|info| info.0)
    });
    peer.map(|peer| peer.ip().to_canonical())
}

impl<B> KeyExtractor<Request<B>> for ClientIp {
    type Key = IpAddr;

    fn extract(&self, request: &Request<B>) -> Option<IpAddr> {
        Some(self.client(peer(request)?, request.headers()))
    }
}

/// Whole seconds to wait, rounded up: never 0 while a wait remains.
///
/// ```
/// use std::time::Duration;
/// use palisade::rate_limit::http::retry_after_seconds;
///
/// assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
/// assert_eq!(retry_after_seconds(Duration::from_millis(2000)), 2);
/// assert_eq!(retry_after_seconds(Duration::from_millis(2001)), 3);
/// assert_eq!(retry_after_seconds(Duration::ZERO), 0);
/// ```
pub fn retry_after_seconds(wait: Duration) -> u64 {
    wait.as_secs()
        .saturating_add(u64::from(wait.subsec_nanos() > 0))
}

/// Turns a [`RateLimited`] refusal into `429 Too Many Requests`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use palisade::{error::RateLimited, rate_limit::{Rate, RateLimitLayer, http::TooManyRequests}};
///
/// let layer = RateLimitLayer::builder().name("api").token_bucket(Rate::per_second(10), 20).build()?;
/// let answer = TooManyRequests::new().policy_of(&layer);
///
/// let refused = RateLimited::new("api", Some(Duration::from_millis(1_200)));
/// let response: http::Response<String> = answer.response(&refused);
/// assert_eq!(response.status(), 429);
/// assert_eq!(response.headers()["retry-after"], "2");
/// assert_eq!(response.headers()["ratelimit-policy"], "\"api\";q=20;w=2");
/// assert_eq!(response.headers()["ratelimit"], "\"api\";r=0;t=2");
/// # Ok::<(), palisade::error::ConfigError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct TooManyRequests {
    policy: Option<HeaderValue>,
}

impl TooManyRequests {
    /// `429` with `Retry-After` only.
    ///
    /// ```
    /// let _ = palisade::rate_limit::http::TooManyRequests::new();
    /// ```
    pub fn new() -> TooManyRequests {
        TooManyRequests::default()
    }

    /// Adds the IETF `RateLimit-Policy` header stating `layer`'s quota and
    /// window (whole seconds, rounded up), and a `RateLimit` header with
    /// nothing remaining and the reset in `Retry-After`'s seconds. The
    /// policy is named after the layer; a name that is not printable ASCII
    /// is written as `default`.
    ///
    /// ```
    /// use palisade::rate_limit::{RateLimitLayer, http::TooManyRequests};
    /// let layer = RateLimitLayer::builder().build().unwrap();
    /// let _ = TooManyRequests::new().policy_of(&layer);
    /// ```
    pub fn policy_of<X, W, C: Clock>(mut self, layer: &RateLimitLayer<X, W, C>) -> TooManyRequests {
        let (quota, window) = layer.quota();
        let policy = format!(
            "{};q={quota};w={}",
            policy_name(layer.name()),
            retry_after_seconds(window).max(1)
        );
        self.policy = HeaderValue::try_from(policy).ok();
        self
    }

    /// The response for `refused`, with an empty body.
    ///
    /// ```
    /// use palisade::{error::RateLimited, rate_limit::http::TooManyRequests};
    /// let response: http::Response<()> = TooManyRequests::new().response(&RateLimited::new("api", None));
    /// assert_eq!(response.status(), 429);
    /// assert!(response.headers().get("retry-after").is_none());
    /// ```
    pub fn response<B: Default>(&self, refused: &RateLimited) -> Response<B> {
        let mut response = Response::new(B::default());
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        let headers = response.headers_mut();
        let reset = refused.retry_after().map(retry_after_seconds);
        if let Some(reset) = reset {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(reset));
        }
        if let Some(policy) = &self.policy {
            headers.insert(HeaderName::from_static("ratelimit-policy"), policy.clone());
            let name = policy_name(refused.name());
            let state = match reset {
                Some(reset) => format!("{name};r=0;t={reset}"),
                None => format!("{name};r=0"),
            };
            if let Ok(state) = HeaderValue::try_from(state) {
                headers.insert(HeaderName::from_static("ratelimit"), state);
            }
        }
        response
    }
}

/// A policy name as a structured-field string.
fn policy_name(name: &str) -> String {
    if name.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        "\"default\"".to_owned()
    }
}
