//! A call made ready now and sent later: layers that wait before calling
//! (a rate limiter's reservation, a bulkhead's queue, a body being
//! buffered) keep the service `poll_ready` made ready for the request.

use tower::Service;

/// Takes the service `poll_ready` made ready for this call and leaves a
/// clone in its place for the next one — tower's pattern for a call that
/// outlives `call` (as in `Buffer` and `Retry`).
pub(crate) fn take_ready<S: Clone>(service: &mut S) -> S {
    let spare = service.clone();
    std::mem::replace(service, spare)
}

/// A request and the service made ready for it, until the call can go.
#[derive(Debug)]
pub(crate) struct Deferred<S, Req> {
    call: Option<(S, Req)>,
}

impl<S, Req> Deferred<S, Req> {
    pub(crate) fn new(service: S, request: Req) -> Self {
        Deferred {
            call: Some((service, request)),
        }
    }

    /// The request waiting to be sent.
    #[cfg(feature = "redis")]
    pub(crate) fn request(&self) -> &Req {
        &self
            .call
            .as_ref()
            .expect("a deferred call is read before it is made")
            .1
    }

    /// Moves the call out, leaving one that was made.
    #[cfg(feature = "redis")]
    pub(crate) fn take(&mut self) -> Deferred<S, Req> {
        Deferred {
            call: self.call.take(),
        }
    }

    /// Sends the request to its service; once.
    pub(crate) fn call(&mut self) -> S::Future
    where
        S: Service<Req>,
    {
        let (mut service, request) = self
            .call
            .take()
            .expect("a deferred call is made once: future polled after completion");
        // `service` was made ready for this request before it waited.
        service.call(request)
    }
}
