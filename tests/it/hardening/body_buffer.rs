//! The retry's body buffer holds at most its limit: a frame that passes the
//! limit is passed on as the transport handed it over, never copied.

use std::{
    collections::VecDeque,
    convert::Infallible,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use palisade::retry::body::{BufferBodyLayer, ReplayBody};
use tower::{BoxError, Layer, Service, ServiceExt, service_fn};

/// A body of the given frames, as a transport hands them over.
struct Source(VecDeque<Bytes>);

impl Body for Source {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|data| Ok(Frame::data(data))))
    }
}

#[tokio::test]
async fn a_frame_past_the_limit_is_neither_copied_nor_held_twice() {
    const LIMIT: usize = 64 * 1024;
    let small = Bytes::from(vec![1u8; 1024]);
    let huge = Bytes::from(vec![2u8; 16 << 20]);
    let body = Source(VecDeque::from([small.clone(), huge.clone(), small.clone()]));
    let seen = Arc::new(Mutex::new(Vec::<Bytes>::new()));
    let inner = service_fn({
        let seen = Arc::clone(&seen);
        move |request: http::Request<ReplayBody<Source>>| {
            let seen = Arc::clone(&seen);
            async move {
                assert!(!request.body().is_replayable());
                let mut body = request.into_body();
                while let Some(frame) = body.frame().await {
                    seen.lock().unwrap().push(frame?.into_data().unwrap());
                }
                Ok::<_, BoxError>(())
            }
        }
    });
    let mut service = BufferBodyLayer::new(LIMIT).layer(inner);
    service
        .ready()
        .await
        .unwrap()
        .call(http::Request::new(body))
        .await
        .unwrap();

    let seen = seen.lock().unwrap();
    let sizes: Vec<usize> = seen.iter().map(Bytes::len).collect();
    // What was read within the limit, then the frame that passed it, whole
    // and the very bytes the source gave (not a copy), then the rest.
    assert_eq!(sizes, [1024, 16 << 20, 1024]);
    assert_eq!(
        seen[1].as_ptr(),
        huge.as_ptr(),
        "the large frame was copied"
    );
}
