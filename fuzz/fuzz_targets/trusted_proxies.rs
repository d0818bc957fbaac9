//! Trusted-proxy specs: each entry an address or a network, anything else
//! refused on the `trusted_proxies` field; a proxy named by its address is
//! trusted (its forwarding header is read).
#![no_main]

use std::net::{IpAddr, SocketAddr};

use libfuzzer_sys::fuzz_target;
use palisade::rate_limit::{KeyExtractor, http::ClientIp};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let entries: Vec<&str> = text.split(',').collect();
    match ClientIp::trusting(&entries) {
        Err(err) => assert_eq!(err.field(), "trusted_proxies"),
        Ok(key) => {
            let key = key.ipv6_prefix(128).unwrap();
            for entry in entries {
                let Ok(proxy) = entry.trim().parse::<IpAddr>() else {
                    continue;
                };
                let mut request = http::Request::new(());
                request
                    .extensions_mut()
                    .insert(SocketAddr::new(proxy, 4000));
                request
                    .headers_mut()
                    .insert("x-forwarded-for", "203.0.113.77".parse().unwrap());
                assert_eq!(
                    key.extract(&request),
                    Some("203.0.113.77".parse().unwrap()),
                    "{proxy} is named but not trusted"
                );
            }
        }
    }
});
