//! The rate limiter's HTTP helpers: a client-address key that a client cannot
//! forge, whatever headers it sends, and the 429 answer.

#![cfg(feature = "http")]

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use palisade::{
    error::RateLimited,
    rate_limit::{
        KeyExtractor, Rate, RateLimitLayer,
        http::{ClientIp, Forwarding, TooManyRequests, retry_after_seconds},
    },
};

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// A request from `peer` with the given headers.
fn request(peer: &str, headers: &[(&str, &[u8])]) -> http::Request<()> {
    let mut request = http::Request::new(());
    request
        .extensions_mut()
        .insert(SocketAddr::new(ip(peer), 40_000));
    for (name, value) in headers {
        request.headers_mut().append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            http::HeaderValue::from_bytes(value).unwrap(),
        );
    }
    request
}

/// Keys each IPv6 address on its own, so that the address read from a
/// header shows whole.
fn behind_proxies(forwarding: Forwarding) -> ClientIp {
    ClientIp::trusting(["10.0.0.0/8", "fd00::/8"])
        .unwrap()
        .header(forwarding)
        .ipv6_prefix(128)
        .unwrap()
}

#[test]
fn by_default_the_key_is_the_peer_and_headers_are_ignored() {
    let key = ClientIp::peer();
    let spoofed = request(
        "198.51.100.7",
        &[
            ("x-forwarded-for", b"1.1.1.1"),
            ("forwarded", b"for=1.1.1.1"),
            ("x-real-ip", b"1.1.1.1"),
        ],
    );
    assert_eq!(key.extract(&spoofed), Some(ip("198.51.100.7")));
}

#[test]
fn a_header_from_an_untrusted_peer_is_ignored() {
    for forwarding in [
        Forwarding::XForwardedFor,
        Forwarding::Forwarded,
        Forwarding::XRealIp,
    ] {
        let key = behind_proxies(forwarding);
        let spoofed = request(
            "198.51.100.7",
            &[
                ("x-forwarded-for", b"1.1.1.1"),
                ("forwarded", b"for=1.1.1.1"),
                ("x-real-ip", b"1.1.1.1"),
            ],
        );
        assert_eq!(
            key.extract(&spoofed),
            Some(ip("198.51.100.7")),
            "{forwarding:?}"
        );
    }
}

#[test]
fn x_forwarded_for_is_walked_from_the_nearest_hop_past_trusted_proxies() {
    let key = behind_proxies(Forwarding::XForwardedFor);
    // The client wrote "6.6.6.6" itself; the first proxy appended the real
    // client address, the second proxy appended the first proxy's.
    let chain = request(
        "10.0.0.2",
        &[("x-forwarded-for", b"6.6.6.6, 203.0.113.9, 10.0.0.1")],
    );
    assert_eq!(key.extract(&chain), Some(ip("203.0.113.9")));
    // Several header lines are one list, in order.
    let lines = request(
        "10.0.0.2",
        &[
            ("x-forwarded-for", b"6.6.6.6, 203.0.113.9"),
            ("x-forwarded-for", b"10.0.0.1"),
        ],
    );
    assert_eq!(key.extract(&lines), Some(ip("203.0.113.9")));
    // Only proxies: the farthest one is the best known.
    let proxies = request("10.0.0.2", &[("x-forwarded-for", b"10.9.9.9,10.0.0.1")]);
    assert_eq!(key.extract(&proxies), Some(ip("10.9.9.9")));
    // No header: the proxy itself.
    assert_eq!(key.extract(&request("10.0.0.2", &[])), Some(ip("10.0.0.2")));
    // IPv6 hops, with or without brackets and ports.
    let v6 = request("fd00::1", &[("x-forwarded-for", b"[2001:db8::7]:443")]);
    assert_eq!(key.extract(&v6), Some(ip("2001:db8::7")));
}

#[test]
fn a_hop_that_cannot_be_read_ends_the_walk_at_the_last_trusted_address() {
    let key = behind_proxies(Forwarding::XForwardedFor);
    for garbage in [
        &b"203.0.113.9, not-an-ip, 10.0.0.1"[..],
        b"203.0.113.9, unknown, 10.0.0.1",
        b"203.0.113.9,, 10.0.0.1",
        b"203.0.113.9, 999.1.1.1, 10.0.0.1",
        b"203.0.113.9, 1.2.3.4:99999, 10.0.0.1",
        "203.0.113.9, \u{1F600}, 10.0.0.1".as_bytes(),
        b"203.0.113.9, \xff\xfe, 10.0.0.1",
    ] {
        let hostile = request("10.0.0.2", &[("x-forwarded-for", garbage)]);
        assert_eq!(
            key.extract(&hostile),
            Some(ip("10.0.0.1")),
            "{:?}",
            String::from_utf8_lossy(garbage)
        );
    }
}

#[test]
fn a_huge_header_reads_a_bounded_number_of_hops() {
    let key = behind_proxies(Forwarding::XForwardedFor);
    let mut hops = String::from("203.0.113.9");
    for i in 0..100_000 {
        hops.push_str(&format!(", 10.{}.{}.{}", i % 256, (i / 256) % 256, i % 7));
    }
    let huge = request("10.0.0.2", &[("x-forwarded-for", hops.as_bytes())]);
    let client = key.extract(&huge).unwrap();
    assert!(
        client.to_string().starts_with("10."),
        "the client's own entry lies beyond the 64 hops read: {client}"
    );
}

#[test]
fn forwarded_elements_are_parsed_per_rfc_7239() {
    let key = behind_proxies(Forwarding::Forwarded);
    let cases: [(&[u8], &str); 5] = [
        (b"for=192.0.2.60;proto=http;by=203.0.113.43", "192.0.2.60"),
        (b"For=\"[2001:db8:cafe::17]:4711\"", "2001:db8:cafe::17"),
        (b"for=\"192.0.2.43:47011\"", "192.0.2.43"),
        (b"for=6.6.6.6, for=192.0.2.61, for=10.1.1.1", "192.0.2.61"),
        (b"for=192.0.2.61, for=_hidden, for=10.1.1.1", "10.1.1.1"),
    ];
    for (header, client) in cases {
        let forwarded = request("10.0.0.2", &[("forwarded", header)]);
        assert_eq!(
            key.extract(&forwarded),
            Some(ip(client)),
            "{:?}",
            String::from_utf8_lossy(header)
        );
    }
}

#[test]
fn x_real_ip_is_one_address_from_the_nearest_proxy() {
    let key = behind_proxies(Forwarding::XRealIp);
    let real = request("10.0.0.2", &[("x-real-ip", b"203.0.113.9")]);
    assert_eq!(key.extract(&real), Some(ip("203.0.113.9")));
    let garbage = request("10.0.0.2", &[("x-real-ip", b"me, please")]);
    assert_eq!(key.extract(&garbage), Some(ip("10.0.0.2")));
}

#[test]
fn ipv4_mapped_peers_count_as_ipv4() {
    let key = behind_proxies(Forwarding::XForwardedFor);
    let mapped = request("::ffff:10.0.0.2", &[("x-forwarded-for", b"203.0.113.9")]);
    assert_eq!(key.extract(&mapped), Some(ip("203.0.113.9")));
    assert_eq!(
        ClientIp::peer().extract(&request("::ffff:192.0.2.1", &[])),
        Some(ip("192.0.2.1"))
    );
}

#[test]
fn a_trusted_network_written_ipv4_mapped_is_that_ipv4_network() {
    let key = ClientIp::trusting(["::ffff:10.0.0.0/104"])
        .unwrap()
        .header(Forwarding::XForwardedFor);
    let forwarded = |peer| request(peer, &[("x-forwarded-for", b"203.0.113.9")]);
    // 10.0.0.0/8: its proxies are trusted, over IPv4 or mapped.
    for peer in ["10.200.0.1", "::ffff:10.0.0.2"] {
        assert_eq!(
            key.extract(&forwarded(peer)),
            Some(ip("203.0.113.9")),
            "{peer}"
        );
    }
    // Not a wider network.
    assert_eq!(key.extract(&forwarded("11.0.0.1")), Some(ip("11.0.0.1")));
    // A network wider than the mapped space stays an IPv6 network: it
    // holds no IPv4 client (they are matched as IPv4).
    let wide = ClientIp::trusting(["::ffff:0.0.0.0/80"])
        .unwrap()
        .header(Forwarding::XForwardedFor);
    assert_eq!(wide.extract(&forwarded("10.0.0.1")), Some(ip("10.0.0.1")));
}

#[test]
fn the_peer_address_is_read_where_the_server_keeps_it() {
    #[derive(Clone)]
    struct Connection(SocketAddr);

    let key = ClientIp::peer().peer_from(|extensions| {
        extensions
            .get::<Connection>()
            .map(|connection| connection.0)
    });
    let mut kept = http::Request::new(());
    kept.extensions_mut()
        .insert(Connection(SocketAddr::new(ip("192.0.2.9"), 443)));
    assert_eq!(key.extract(&kept), Some(ip("192.0.2.9")));
    // Not where the default looks any more.
    assert_eq!(key.extract(&request("192.0.2.1", &[])), None);
}

#[test]
fn no_peer_address_means_no_key() {
    let bare = http::Request::new(());
    assert_eq!(ClientIp::peer().extract(&bare), None);
}

#[test]
fn trusted_proxies_must_parse() {
    for bad in ["10.0.0.0/33", "fd00::/129", "ten.0.0.1", "10.0.0.0/x", ""] {
        let err = ClientIp::trusting([bad]).unwrap_err();
        assert_eq!(err.field(), "trusted_proxies", "{bad}");
        // A network is named as one.
        let network = bad.contains('/');
        assert_eq!(err.rule().contains("prefix length"), network, "{bad}");
    }
    assert!(ClientIp::trusting(["0.0.0.0/0", "::/0", " 10.0.0.1 "]).is_ok());
}

#[test]
fn retry_after_rounds_up_to_whole_seconds() {
    assert_eq!(retry_after_seconds(Duration::from_nanos(1)), 1);
    assert_eq!(retry_after_seconds(Duration::from_secs(2)), 2);
    assert_eq!(
        retry_after_seconds(Duration::from_secs(2) + Duration::from_nanos(1)),
        3
    );
    assert_eq!(retry_after_seconds(Duration::MAX), u64::MAX);
}

#[test]
fn the_429_answer_carries_retry_after_and_the_policy() {
    let layer = RateLimitLayer::builder()
        .name("api")
        .sliding_window(100, Duration::from_secs(60), 6)
        .build()
        .unwrap();
    let answer = TooManyRequests::new().policy_of(&layer);
    let refused = RateLimited::new("api", Some(Duration::from_millis(1)));
    let response: http::Response<String> = answer.response(&refused);
    assert_eq!(response.status(), http::StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(response.headers()["ratelimit-policy"], "\"api\";q=100;w=60");
    assert_eq!(response.headers()["ratelimit"], "\"api\";r=0;t=1");

    let plain: http::Response<()> = TooManyRequests::new().response(&refused);
    assert!(plain.headers().get("ratelimit-policy").is_none());

    // A token bucket's quota is its burst, over the time it takes to refill.
    let bucket = RateLimitLayer::builder()
        .name("api")
        .token_bucket(Rate::per_minute(30), 60)
        .build()
        .unwrap();
    assert_eq!(bucket.quota(), (60, Duration::from_secs(120)));
    let response: http::Response<()> = TooManyRequests::new().policy_of(&bucket).response(&refused);
    assert_eq!(response.headers()["ratelimit-policy"], "\"api\";q=60;w=120");
}

#[test]
fn a_policy_name_is_escaped_or_replaced() {
    let quoted = RateLimitLayer::builder()
        .name("a \"b\"")
        .token_bucket(Rate::per_second(1), 1)
        .build()
        .unwrap();
    let response: http::Response<()> = TooManyRequests::new()
        .policy_of(&quoted)
        .response(&RateLimited::new("a \"b\"", None));
    assert_eq!(
        response.headers()["ratelimit-policy"],
        "\"a \\\"b\\\"\";q=1;w=1"
    );
    assert_eq!(response.headers()["ratelimit"], "\"a \\\"b\\\"\";r=0");

    let unicode = RateLimitLayer::builder().name("límite").build().unwrap();
    let response: http::Response<()> = TooManyRequests::new()
        .policy_of(&unicode)
        .response(&RateLimited::new("límite", None));
    assert_eq!(
        response.headers()["ratelimit-policy"],
        "\"default\";q=100;w=1"
    );
}

#[tokio::test]
async fn a_missing_peer_address_names_the_set_up_step() {
    use std::sync::{Arc, Mutex};

    use palisade::{error::KeyMissing, observe::EventKind};
    use tower::{Layer, Service, ServiceExt};

    let hints = Arc::new(Mutex::new(Vec::new()));
    let layer = RateLimitLayer::builder()
        .name("per_client")
        .key(ClientIp::peer())
        .on_event({
            let hints = Arc::clone(&hints);
            move |event| {
                if let EventKind::KeyMissing { hint } = event.kind {
                    hints.lock().unwrap().push(hint);
                }
            }
        })
        .build()
        .unwrap();
    let mut service = layer.layer(tower::service_fn(|_: http::Request<()>| async {
        Ok::<_, std::io::Error>(())
    }));
    // A server started without connect info: no peer address.
    let err = service
        .ready()
        .await
        .unwrap()
        .call(http::Request::new(()))
        .await
        .unwrap_err();
    let missing = err.downcast_ref::<KeyMissing>().expect("KeyMissing");
    let text = err.to_string();
    assert!(
        text.contains("into_make_service_with_connect_info"),
        "{text}"
    );
    assert!(missing.why().is_some_and(|why| why.contains("SocketAddr")));
    let hints = hints.lock().unwrap();
    assert_eq!(hints.len(), 1);
    assert_eq!(hints[0], missing.why());
}
