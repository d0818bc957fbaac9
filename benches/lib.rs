//! Helpers shared by palisade's benchmarks: a service that is always ready
//! and answers at once, and a way to drive such a service without a runtime,
//! so that a benchmark measures the layer and nothing else.

use std::{
    convert::Infallible,
    future::{Future, Ready, ready},
    pin::pin,
    task::{Context, Poll, Waker},
};

use tower::Service;

/// A service that is always ready and answers its request at once.
#[derive(Clone, Copy, Debug, Default)]
pub struct Echo;

impl Service<u64> for Echo {
    type Response = u64;
    type Error = Infallible;
    type Future = Ready<Result<u64, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: u64) -> Self::Future {
        ready(Ok(request))
    }
}

/// Polls `future` until it is ready, spinning rather than parking: the
/// services benchmarked answer at once, and a layer that returns `Pending`
/// (one waiting on a lock another thread holds) is simply polled again.
pub fn spin_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::hint::spin_loop();
    }
}

/// `ready().await` then `call(request).await`, as a caller of the service
/// does, driven to completion without a runtime.
pub fn ready_call<S>(service: &mut S, request: u64) -> Result<S::Response, S::Error>
where
    S: Service<u64>,
{
    spin_on(async {
        std::future::poll_fn(|cx| service.poll_ready(cx)).await?;
        service.call(request).await
    })
}
