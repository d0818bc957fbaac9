//! Helpers shared by the tests that go over loopback.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;

use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// One client connection.
pub type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

/// A connection of its own, with a request sender on it.
pub async fn connect(addr: SocketAddr) -> Sender {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

/// GET `/` on `sender`'s connection, with extra headers, once the
/// connection is ready for it.
pub async fn get(sender: &mut Sender, headers: &[(&str, &str)]) -> hyper::Response<Incoming> {
    get_with(sender, "/", headers).await
}

/// GET `path` on `sender`'s connection.
pub async fn get_path(sender: &mut Sender, path: &str) -> hyper::Response<Incoming> {
    get_with(sender, path, &[]).await
}

async fn get_with(
    sender: &mut Sender,
    path: &str,
    headers: &[(&str, &str)],
) -> hyper::Response<Incoming> {
    let mut request = hyper::Request::get(path).header("host", "localhost");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    sender.ready().await.unwrap();
    sender
        .send_request(request.body(Empty::new()).unwrap())
        .await
        .unwrap()
}
