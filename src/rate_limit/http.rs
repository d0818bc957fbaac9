//! HTTP helpers for the rate limiter (feature `http`): a client-address key
//! that a client cannot forge, and the `429 Too Many Requests` answer.
//!
//! # The client's address
//!
//! [`ClientIp`] keys requests by the address of the client. By default that is
//! the **peer** of the connection, read from the request's extensions: a
//! [`SocketAddr`] (insert one per connection when serving with hyper), or
//! axum 0.8's `ConnectInfo<SocketAddr>` (feature `axum`; serve with
//! `into_make_service_with_connect_info::<SocketAddr>()`), or wherever
//! [`ClientIp::peer_from`] says (tonic's `TcpConnectInfo`, another axum
//! major's `ConnectInfo`). No peer address:
//! no key (see [`MissingKey`](super::MissingKey)) — with the default
//! [`MissingKey::Reject`](super::MissingKey::Reject), a
//! [`KeyMissing`](crate::error::KeyMissing) refusal, an event and a log
//! line that name the missing set-up step.
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
//! client wrote. At most 64 hops are read.
//!
//! # One key per network, not per address
//!
//! One host commonly owns a whole IPv6 `/64` (the usual end-user
//! allocation) and can send every request from a new address of it. So the
//! key is the client's **network**: the address with all but its first
//! [`ipv6_prefix`](ClientIp::ipv6_prefix) bits cleared (default 64) for
//! IPv6, and its first [`ipv4_prefix`](ClientIp::ipv4_prefix) bits (default
//! 32, the address itself) for IPv4. The key is that network's first
//! address: `2001:db8:1:2::` for every client in `2001:db8:1:2::/64`.
//!
//! IPv6 addresses that carry an IPv4 address count as that IPv4 address —
//! IPv4-mapped (`::ffff:192.0.2.1`), NAT64 (`64:ff9b::192.0.2.1`, the
//! well-known prefix of RFC 6052) and the deprecated IPv4-compatible form
//! (`::192.0.2.1`; `::` and `::1` keep their meaning) — so that one IPv4
//! client has one key whichever way it reaches the server. Trusted proxies
//! are matched against the address after this mapping (name a proxy reached
//! through NAT64 by its IPv4 address) and before the prefix is applied.
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
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Duration,
};

use http::{HeaderName, HeaderValue, Request, Response, StatusCode, header};
use ipnet::{IpNet, Ipv4Net};

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

/// A prefix length checked to lie in `1..=bits`.
fn prefix(field: &'static str, bits: u8, max: u8) -> Result<u8, ConfigError> {
    if bits == 0 || bits > max {
        return Err(ConfigError::new(
            LAYER,
            field,
            format!("must be in 1..={max}, got {bits}"),
        ));
    }
    Ok(bits)
}

/// The address that identifies a client: an IPv6 address that carries an
/// IPv4 address (IPv4-mapped, NAT64's well-known prefix `64:ff9b::/96`,
/// IPv4-compatible) is that IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else { return ip };
    let bits = u128::from(v6);
    let low = bits as u32;
    const NAT64: u128 = 0x0064_ff9b_u128 << 96;
    if bits >> 32 == 0xffff || bits >> 32 == NAT64 >> 32 || (bits >> 32 == 0 && low > 1) {
        IpAddr::V4(Ipv4Addr::from(low))
    } else {
        ip
    }
}

/// A trusted proxy's network, from an address (`10.0.0.7`, matched as
/// clients are: after the mapping of IPv4 over IPv6) or a network
/// (`10.0.0.0/8`; one written in the IPv4-mapped form, `::ffff:10.0.0.0/104`,
/// is that IPv4 network).
fn trusted_network(text: &str) -> Result<IpNet, String> {
    let net = match text.parse::<IpNet>() {
        Ok(net) => net,
        Err(_) if text.contains('/') => {
            return Err(format!(
                "must be networks such as 10.0.0.0/8 (a prefix length within the address's bits), got {text:?}"
            ));
        }
        Err(_) => IpNet::from(canonical(text.parse::<IpAddr>().map_err(|_| {
            format!("must be addresses or networks such as 10.0.0.0/8, got {text:?}")
        })?)),
    };
    Ok(match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => {
                IpNet::from(Ipv4Net::new(v4, v6.prefix_len() - 96).expect("a prefix of at most 32"))
            }
            None => net,
        },
        _ => net,
    })
}

/// Keys an HTTP request by its client's IP address — by its network: an
/// IPv6 client by its `/64` ([`ipv6_prefix`](ClientIp::ipv6_prefix)), an
/// IPv4 client by its address ([`ipv4_prefix`](ClientIp::ipv4_prefix)), an
/// IPv4 client reached over IPv6 (mapped, NAT64) by its IPv4 address; see
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
#[derive(Clone, Debug)]
pub struct ClientIp {
    peer: fn(&http::Extensions) -> Option<SocketAddr>,
    trusted: Vec<IpNet>,
    forwarding: Forwarding,
    ipv4_prefix: u8,
    ipv6_prefix: u8,
}

impl Default for ClientIp {
    fn default() -> ClientIp {
        ClientIp {
            peer: peer_address,
            trusted: Vec::new(),
            forwarding: Forwarding::default(),
            ipv4_prefix: 32,
            ipv6_prefix: 64,
        }
    }
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

    /// Where the peer's address is read from, for servers that record it
    /// as a type of their own: another axum major's `ConnectInfo`, tonic's
    /// `TcpConnectInfo`, a type of yours. By default a `SocketAddr`, or
    /// axum 0.8's `ConnectInfo<SocketAddr>` with feature `axum`; palisade
    /// names no server's type in its API, so a server's next major needs no
    /// new palisade.
    ///
    /// ```
    /// use std::net::SocketAddr;
    /// use palisade::rate_limit::{KeyExtractor, http::ClientIp};
    ///
    /// #[derive(Clone)]
    /// struct Connection { remote: SocketAddr }
    ///
    /// let key = ClientIp::peer().peer_from(|extensions| {
    ///     extensions.get::<Connection>().map(|connection| connection.remote)
    /// });
    /// let mut request = http::Request::new(());
    /// request.extensions_mut().insert(Connection { remote: ([192, 0, 2, 9], 443).into() });
    /// assert_eq!(key.extract(&request), Some([192, 0, 2, 9].into()));
    /// ```
    pub fn peer_from(mut self, read: fn(&http::Extensions) -> Option<SocketAddr>) -> ClientIp {
        self.peer = read;
        self
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
            .map(|proxy| trusted_network(proxy.as_ref().trim()))
            .collect::<Result<_, _>>()
            .map_err(|rule| ConfigError::new(LAYER, "trusted_proxies", rule))?;
        Ok(ClientIp {
            trusted,
            ..ClientIp::default()
        })
    }

    /// How many leading bits of an IPv6 client's address make its key:
    /// every client in one `/bits` network shares a limit. Default 64, the
    /// network one end user is usually given; 128 keys each address on its
    /// own, which lets one host spread its requests over 2⁶⁴ keys.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] on the field `ipv6_prefix` when `bits` is not in
    /// `1..=128`.
    ///
    /// ```
    /// use std::{net::SocketAddr, net::IpAddr};
    /// use palisade::rate_limit::{KeyExtractor, http::ClientIp};
    ///
    /// let key = ClientIp::peer().ipv6_prefix(56)?;
    /// let mut request = http::Request::new(());
    /// request.extensions_mut().insert("[2001:db8:1:2ff::9]:443".parse::<SocketAddr>().unwrap());
    /// assert_eq!(key.extract(&request), Some("2001:db8:1:200::".parse::<IpAddr>().unwrap()));
    /// assert_eq!(ClientIp::peer().ipv6_prefix(0).unwrap_err().field(), "ipv6_prefix");
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn ipv6_prefix(mut self, bits: u8) -> Result<ClientIp, ConfigError> {
        self.ipv6_prefix = prefix("ipv6_prefix", bits, 128)?;
        Ok(self)
    }

    /// How many leading bits of an IPv4 client's address make its key.
    /// Default 32: each address on its own (many users share one IPv4
    /// address behind a carrier's NAT; a shorter prefix would make them
    /// share more).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] on the field `ipv4_prefix` when `bits` is not in
    /// `1..=32`.
    ///
    /// ```
    /// use std::net::{IpAddr, SocketAddr};
    /// use palisade::rate_limit::{KeyExtractor, http::ClientIp};
    ///
    /// let key = ClientIp::peer().ipv4_prefix(24)?;
    /// let mut request = http::Request::new(());
    /// request.extensions_mut().insert(SocketAddr::from(([198, 51, 100, 77], 5000)));
    /// assert_eq!(key.extract(&request), Some(IpAddr::from([198, 51, 100, 0])));
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn ipv4_prefix(mut self, bits: u8) -> Result<ClientIp, ConfigError> {
        self.ipv4_prefix = prefix("ipv4_prefix", bits, 32)?;
        Ok(self)
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

    /// The key of the client at `ip`: its network's first address.
    fn network_of(&self, ip: IpAddr) -> IpAddr {
        let prefix = match ip {
            IpAddr::V4(_) => self.ipv4_prefix,
            IpAddr::V6(_) => self.ipv6_prefix,
        };
        // The prefixes were checked against the address sizes when set.
        IpNet::new(ip, prefix).map_or(ip, |network| network.network())
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|network| network.contains(&ip))
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
        return Some(canonical(ip));
    }
    if let Ok(socket) = text.parse::<SocketAddr>() {
        return Some(canonical(socket.ip()));
    }
    let bracketed = text.strip_prefix('[')?.strip_suffix(']')?;
    bracketed.parse::<IpAddr>().ok().map(canonical)
}

/// What a request without a peer address says of the server's set-up.
const NO_PEER: &str = "the request carries no peer address: serve the app with \
    `into_make_service_with_connect_info::<SocketAddr>()` (axum), or insert each connection's \
    `SocketAddr` into its requests' extensions (hyper)";

/// The peer's address recorded in the request's extensions: a
/// `SocketAddr`, or axum 0.8's `ConnectInfo<SocketAddr>` (feature `axum`).
fn peer_address(extensions: &http::Extensions) -> Option<SocketAddr> {
    let peer = extensions.get::<SocketAddr>().copied();
    #[cfg(feature = "axum")]
    let peer = peer.or_else(|| {
        extensions
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map(|info| info.0)
    });
    peer
}

impl<B> KeyExtractor<Request<B>> for ClientIp {
    type Key = IpAddr;

    fn extract(&self, request: &Request<B>) -> Option<IpAddr> {
        let peer = canonical((self.peer)(request.extensions())?.ip());
        Some(self.network_of(self.client(peer, request.headers())))
    }

    fn missing_hint(&self) -> Option<&'static str> {
        Some(NO_PEER)
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
