//! The response future of [`HttpAnswer`](super::http::HttpAnswer)
//! (feature `http`).

use std::{
    convert::Infallible,
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use http::Response;
use pin_project_lite::pin_project;
use tower::BoxError;

use super::http::Answer;

pin_project! {
    /// The response future of [`HttpAnswer`](super::http::HttpAnswer).
    ///
    /// # Cancellation
    ///
    /// Dropped before the wrapped future completes, it is dropped with it; no answer is
    /// made.
    ///
    /// # Examples
    ///
    /// ```
    /// use palisade::stack::http::HttpAnswerLayer;
    /// use tower::{Layer, Service};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let mut service = HttpAnswerLayer::new().layer(tower::service_fn(|_: ()| async {
    ///     Err::<http::Response<()>, _>(std::io::Error::other("boom"))
    /// }));
    /// let response = service.call(()).await.unwrap();
    /// assert_eq!(response.status(), 500);
    /// # }
    /// ```
    pub struct AnswerFuture<F, A> {
        #[pin]
        state: State<F>,
        answer: Arc<A>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Called { #[pin] future: F },
        Unready { error: Option<BoxError> },
    }
}

impl<F, A> AnswerFuture<F, A> {
    /// The answer to the wrapped service's `future`.
    pub(super) fn called(future: F, answer: Arc<A>) -> Self {
        AnswerFuture {
            state: State::Called { future },
            answer,
        }
    }

    /// The answer to `error`, met before the call (in `poll_ready`).
    pub(super) fn unready(error: BoxError, answer: Arc<A>) -> Self {
        AnswerFuture {
            state: State::Unready { error: Some(error) },
            answer,
        }
    }
}

impl<F, A> fmt::Debug for AnswerFuture<F, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnswerFuture").finish_non_exhaustive()
    }
}

impl<F, A, B, E> Future for AnswerFuture<F, A>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<BoxError>,
    A: Answer<B>,
{
    type Output = Result<Response<B>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let error = match this.state.project() {
            StateProj::Called { future } => match ready!(future.poll(cx)) {
                Ok(response) => return Poll::Ready(Ok(response)),
                Err(error) => error.into(),
            },
            StateProj::Unready { error } => error.take().expect("polled after completion"),
        };
        Poll::Ready(Ok(this.answer.answer(error)))
    }
}
