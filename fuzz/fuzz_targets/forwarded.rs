//! The client address behind forwarding headers: a peer that is not a
//! trusted proxy is keyed by its own address whatever the headers say; a
//! trusted one yields the network of an address written in the headers or
//! of the peer.
#![no_main]

use std::net::{IpAddr, SocketAddr};

use libfuzzer_sys::fuzz_target;
use palisade::rate_limit::{
    KeyExtractor,
    http::{ClientIp, Forwarding},
};

const PEERS: [&str; 8] = [
    "10.1.2.3",
    "10.0.0.7",
    "fd00::5",
    "192.0.2.9",
    "2001:db8::1",
    "::ffff:10.0.0.9",
    "64:ff9b::a00:1",
    "::1",
];

fuzz_target!(|data: &[u8]| {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let peer: IpAddr = PEERS[usize::from(choice) % PEERS.len()].parse().unwrap();
    let forwarding = match choice / 8 % 3 {
        0 => Forwarding::XForwardedFor,
        1 => Forwarding::Forwarded,
        _ => Forwarding::XRealIp,
    };
    let name = match forwarding {
        Forwarding::XForwardedFor => "x-forwarded-for",
        Forwarding::Forwarded => "forwarded",
        _ => "x-real-ip",
    };
    let mut request = http::Request::new(());
    request.extensions_mut().insert(SocketAddr::new(peer, 4000));
    for line in rest.split(|&b| b == b'\n') {
        if let Ok(value) = http::HeaderValue::from_bytes(line) {
            request.headers_mut().append(name, value);
        }
    }
    let by_peer = ClientIp::peer().extract(&request).expect("a peer address");
    let trusting = ClientIp::trusting(["10.0.0.0/8", "fd00::/8"])
        .unwrap()
        .header(forwarding);
    let key = trusting.extract(&request).expect("a peer address");
    let trusted = matches!(by_peer, IpAddr::V4(v4) if v4.octets()[0] == 10)
        || matches!(by_peer, IpAddr::V6(v6) if v6.octets()[0] == 0xfd);
    if !trusted {
        assert_eq!(key, by_peer, "an untrusted peer chose its key");
    } else if key != by_peer {
        // The key is the network of an address the headers carry.
        let text = String::from_utf8_lossy(rest).to_ascii_lowercase();
        // (An IPv4 client may be written in an IPv6 form that carries it.)
        let written = match key {
            IpAddr::V4(v4) => text.contains(&v4.to_string()) || text.contains(':'),
            IpAddr::V6(_) => text.contains(':'),
        };
        assert!(written, "{key} is not in {text:?}");
    }
});
