//! A place in a future for a sleep made only when it is first needed.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use pin_project_lite::pin_project;

use super::{Clock, Instant, Sleep};

pin_project! {
    /// A sleep stored inline in a future (no box), made the first time it is
    /// armed and reset after that.
    #[project = SlotProj]
    pub(crate) enum SleepSlot<S> {
        Empty,
        Armed {
            #[pin]
            sleep: S,
        },
    }
}

impl<S: Sleep> SleepSlot<S> {
    /// Sets the sleep to end at `deadline`, making it from `clock` the first
    /// time.
    pub(crate) fn arm<C: Clock<Sleep = S>>(mut self: Pin<&mut Self>, clock: &C, deadline: Instant) {
        match self.as_mut().project() {
            SlotProj::Armed { sleep } => sleep.reset(deadline),
            SlotProj::Empty => self.set(SleepSlot::Armed {
                sleep: clock.sleep_until(deadline),
            }),
        }
    }

    /// Polls the sleep; an empty slot has nothing to wait for.
    pub(crate) fn poll_sleep(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.project() {
            SlotProj::Armed { sleep } => sleep.poll(cx),
            SlotProj::Empty => Poll::Ready(()),
        }
    }

    /// Whether a sleep was made.
    pub(crate) fn is_armed(&self) -> bool {
        matches!(self, SleepSlot::Armed { .. })
    }
}
