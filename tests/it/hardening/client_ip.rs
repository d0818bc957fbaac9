//! The client-address key: one host cannot spread its requests over many
//! keys by using many addresses of its own network.

use std::{
    net::{IpAddr, Ipv6Addr, SocketAddr},
    time::Duration,
};

use palisade::{
    clock::ManualClock,
    rate_limit::{KeyExtractor, Rate, RateLimitLayer, http::ClientIp},
};
use tower::{Layer, Service, service_fn};

fn from(peer: IpAddr) -> http::Request<()> {
    let mut request = http::Request::new(());
    request
        .extensions_mut()
        .insert(SocketAddr::new(peer, 40_000));
    request
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[tokio::test]
async fn ten_thousand_addresses_of_one_ipv6_64_share_one_limit() {
    let clock = ManualClock::new();
    let layer = RateLimitLayer::builder()
        .token_bucket(Rate::new(1, Duration::from_secs(10)), 1)
        .key(ClientIp::peer())
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut service = layer.layer(service_fn(|_: http::Request<()>| async {
        Ok::<_, std::io::Error>(())
    }));
    let network = u128::from("2001:db8:aa:bb::".parse::<Ipv6Addr>().unwrap());
    let mut admitted = 0;
    for host in 1..=10_000u64 {
        // Distinct interface identifiers spread over the whole /64.
        let address = IpAddr::V6(Ipv6Addr::from(
            network | u128::from(host.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        ));
        if service.call(from(address)).await.is_ok() {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 1);
    // Another /64 is another client.
    assert!(service.call(from(ip("2001:db8:aa:bc::1"))).await.is_ok());
    assert_eq!(layer.tracked_keys(), 2);
}

#[test]
fn the_key_is_the_network_and_the_prefixes_can_be_set() {
    let key = ClientIp::peer();
    assert_eq!(
        key.extract(&from(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd"))),
        Some(ip("2001:db8:1:2::"))
    );
    assert_eq!(key.extract(&from(ip("192.0.2.77"))), Some(ip("192.0.2.77")));

    let wide = ClientIp::peer()
        .ipv6_prefix(48)
        .unwrap()
        .ipv4_prefix(24)
        .unwrap();
    assert_eq!(
        wide.extract(&from(ip("2001:db8:1:2::9"))),
        Some(ip("2001:db8:1::"))
    );
    assert_eq!(wide.extract(&from(ip("192.0.2.77"))), Some(ip("192.0.2.0")));

    let each = ClientIp::peer().ipv6_prefix(128).unwrap();
    assert_eq!(
        each.extract(&from(ip("2001:db8::9"))),
        Some(ip("2001:db8::9"))
    );

    for bad in [0, 129] {
        assert_eq!(
            ClientIp::peer().ipv6_prefix(bad).unwrap_err().field(),
            "ipv6_prefix"
        );
    }
    for bad in [0, 33] {
        assert_eq!(
            ClientIp::peer().ipv4_prefix(bad).unwrap_err().field(),
            "ipv4_prefix"
        );
    }
}

#[test]
fn ipv6_forms_of_an_ipv4_address_are_that_address() {
    let key = ClientIp::peer();
    for form in [
        "::ffff:192.0.2.1",
        "64:ff9b::192.0.2.1",
        "::192.0.2.1",
        "64:ff9b::c000:201",
    ] {
        assert_eq!(
            key.extract(&from(ip(form))),
            Some(ip("192.0.2.1")),
            "{form}"
        );
    }
    // The unspecified and loopback addresses are not IPv4-compatible ones.
    assert_eq!(key.extract(&from(ip("::1"))), Some(ip("::")));
    assert_eq!(key.extract(&from(ip("::"))), Some(ip("::")));
    // A NAT64 peer in a forwarding header counts as its IPv4 address too,
    // and a proxy named by its IPv4 address is trusted over NAT64.
    let proxied = ClientIp::trusting(["10.0.0.7"]).unwrap();
    let mut request = from(ip("64:ff9b::10.0.0.7"));
    request
        .headers_mut()
        .insert("x-forwarded-for", "64:ff9b::203.0.113.9".parse().unwrap());
    assert_eq!(proxied.extract(&request), Some(ip("203.0.113.9")));
}
