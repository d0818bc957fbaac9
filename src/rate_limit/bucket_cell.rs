//! A shared token bucket whose numbers change while requests race through
//! it, lock-free for the requests.
//!
//! A request reads the stored word, then the bucket's numbers, decides, and
//! commits with one compare-and-swap of the word. A change closes the word
//! (swaps in [`CLOSED`], which no decision expects, so every decision made
//! on the old numbers fails its compare-and-swap), writes the new numbers,
//! then opens the word again one past where it was: a request that reads
//! the reopened word reads the new numbers with it, and one that read the
//! old word cannot commit on it. A refusal commits nothing, so it checks
//! instead that the word has not moved since the numbers were read. A
//! request that finds the word closed waits for the change on the lock the
//! change holds, instead of spinning.
//!
//! That works because the word never takes a value twice: every admission
//! moves it forward, and so does every change. The word is the TAT plus an
//! `offset` (wrapping); a change sets the offset so that the word moves on
//! by exactly one while the TAT becomes the carried one
//! ([`TokenBucket::carry`]), which may be earlier. Without a change the
//! offset is 0 and the word is the TAT.

use super::{core::Denied, token_bucket::TokenBucket};
use crate::sync::{AtomicU64, Mutex, Ordering, fence, lock};

/// The closed word. A word may also hold it as a value (a TAT at the end of
/// the clock): a request that reads it decides under the change lock, where
/// no change is being made.
const CLOSED: u64 = u64::MAX;

/// The word and the numbers of one shared bucket.
#[derive(Debug)]
pub(crate) struct BucketCell {
    /// The TAT plus `offset`, wrapping; [`CLOSED`] while a change writes.
    word: AtomicU64,
    interval: AtomicU64,
    capacity: AtomicU64,
    offset: AtomicU64,
    /// Held by a change while it writes.
    changing: Mutex<()>,
}

/// What one decision reads: the word, and the numbers it is read with.
#[derive(Clone, Copy)]
struct Snapshot {
    word: u64,
    bucket: TokenBucket,
    offset: u64,
}

impl Snapshot {
    fn tat(&self) -> u64 {
        self.word.wrapping_sub(self.offset)
    }
}

impl BucketCell {
    /// A full bucket of these numbers.
    pub(crate) fn new(bucket: TokenBucket) -> BucketCell {
        BucketCell {
            word: AtomicU64::new(0),
            interval: AtomicU64::new(bucket.interval()),
            capacity: AtomicU64::new(bucket.capacity()),
            offset: AtomicU64::new(0),
            changing: Mutex::new(()),
        }
    }

    /// The numbers that go with `word`, read after it (with acquire).
    #[inline(always)]
    fn numbers(&self, word: u64) -> Snapshot {
        Snapshot {
            word,
            bucket: TokenBucket::new(
                self.interval.load(Ordering::Relaxed),
                self.capacity.load(Ordering::Relaxed),
            ),
            offset: self.offset.load(Ordering::Relaxed),
        }
    }

    /// Takes `cost` tokens at `now`, waiting up to `max_wait`; see
    /// [`TokenBucket::decide`]. A refusal writes nothing.
    #[inline(always)]
    pub(crate) fn take(&self, now: u64, cost: u64, max_wait: u64) -> Result<u64, Denied> {
        let word = self.word.load(Ordering::Acquire);
        if word != CLOSED {
            let seen = self.numbers(word);
            match seen.bucket.decide(seen.tat(), now, cost, max_wait) {
                // Release: had a change closed the word after this commit,
                // the numbers read above were read before it wrote its own.
                Ok((tat, due)) => {
                    if self
                        .word
                        .compare_exchange(
                            word,
                            tat.wrapping_add(seen.offset),
                            Ordering::Release,
                            Ordering::Relaxed,
                        )
                        .is_ok()
                    {
                        return Ok(due);
                    }
                }
                Err(denied) => {
                    if self.moved_since(word).is_none() {
                        return Err(denied);
                    }
                }
            }
        }
        self.take_again(now, cost, max_wait)
    }

    /// [`take`](Self::take) once the word moved under a decision (another
    /// admission, a change) or was found closed.
    #[cold]
    #[inline(never)]
    fn take_again(&self, now: u64, cost: u64, max_wait: u64) -> Result<u64, Denied> {
        self.take_from(
            self.word.load(Ordering::Acquire),
            false,
            now,
            cost,
            max_wait,
        )
    }

    /// Decides and commits from `word` until a decision stands. A closed
    /// word is waited for on the change lock; once `locked`, no change runs,
    /// so a word holding [`CLOSED`] holds it as a value (a TAT at the end of
    /// the clock). Other requests still commit meanwhile: this one commits
    /// by compare-and-swap too.
    fn take_from(
        &self,
        mut word: u64,
        locked: bool,
        now: u64,
        cost: u64,
        max_wait: u64,
    ) -> Result<u64, Denied> {
        loop {
            if word == CLOSED && !locked {
                let _changing = lock(&self.changing);
                let word = self.word.load(Ordering::Acquire);
                return self.take_from(word, true, now, cost, max_wait);
            }
            let seen = self.numbers(word);
            let (tat, due) = match seen.bucket.decide(seen.tat(), now, cost, max_wait) {
                Ok(decided) => decided,
                Err(denied) => match self.moved_since(word) {
                    None => return Err(denied),
                    Some(actual) => {
                        word = actual;
                        continue;
                    }
                },
            };
            match self.word.compare_exchange(
                word,
                tat.wrapping_add(seen.offset),
                Ordering::Release,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(due),
                Err(actual) => word = actual,
            }
        }
    }

    /// Whether the word moved on from `word` since the numbers were read
    /// after it: a refusal, which commits nothing, stands only if the
    /// numbers it was decided by are those of `word` — a change that wrote
    /// any of them has closed the word first. The fence orders the reads of
    /// the numbers before this read of the word; the word is read with
    /// acquire too, since the word it returns is decided on next, with the
    /// numbers read after it.
    #[cold]
    fn moved_since(&self, word: u64) -> Option<u64> {
        fence(Ordering::Acquire);
        let now = self.word.load(Ordering::Acquire);
        (now != word).then_some(now)
    }

    /// The numbers and the TAT now, for a question that changes nothing.
    pub(crate) fn read(&self) -> (TokenBucket, u64) {
        let mut word = self.word.load(Ordering::Acquire);
        let seen = loop {
            if word == CLOSED {
                let _changing = lock(&self.changing);
                break self.numbers(self.word.load(Ordering::Acquire));
            }
            let seen = self.numbers(word);
            match self.moved_since(word) {
                None => break seen,
                Some(actual) => word = actual,
            }
        };
        (seen.bucket, seen.tat())
    }

    /// Changes the numbers to `into`, carrying the debt as at `now`.
    pub(crate) fn set(&self, into: TokenBucket, now: u64) {
        let _changing = lock(&self.changing);
        // From here on, no decision made on the old numbers commits.
        let word = self.word.swap(CLOSED, Ordering::Acquire);
        let from = self.numbers(word);
        let carried = from.bucket.carry(&into, from.tat(), now);
        let opened = word.wrapping_add(1);
        // Release: a request that reads any new number sees the word closed
        // when it reads the word next.
        self.interval.store(into.interval(), Ordering::Release);
        self.capacity.store(into.capacity(), Ordering::Release);
        self.offset
            .store(opened.wrapping_sub(carried), Ordering::Release);
        self.word.store(opened, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn a_change_keeps_the_debt_and_moves_the_word_on() {
        let cell = BucketCell::new(TokenBucket::new(100 * MS, 3));
        for _ in 0..3 {
            cell.take(0, 1, 0).unwrap();
        }
        let before = cell.word.load(Ordering::Relaxed);
        // Twice the rate: the 3 tokens owed come back in 150 ms.
        cell.set(TokenBucket::new(50 * MS, 3), 0);
        assert_eq!(cell.word.load(Ordering::Relaxed), before + 1);
        assert_eq!(cell.read().1, 150 * MS);
        assert_eq!(cell.take(0, 1, 0), Err(Denied::Wait(50 * MS)));
        assert_eq!(cell.take(50 * MS, 1, 0), Ok(50 * MS));
        assert!(cell.word.load(Ordering::Relaxed) > before + 1);
        // Back to the first numbers: still no fresh burst.
        cell.set(TokenBucket::new(100 * MS, 3), 50 * MS);
        assert_eq!(cell.take(50 * MS, 1, 0), Err(Denied::Wait(100 * MS)));
    }

    #[test]
    fn a_word_that_holds_the_closed_value_is_decided_under_the_lock() {
        // A TAT at the end of the clock: the word holds CLOSED as a value.
        let cell = BucketCell::new(TokenBucket::new(1, 1));
        let end = CLOSED - 1;
        assert_eq!(cell.take(end, 1, 0), Ok(end));
        assert_eq!(cell.word.load(Ordering::Relaxed), CLOSED);
        assert_eq!(cell.read(), (TokenBucket::new(1, 1), CLOSED));
        assert_eq!(cell.take(end, 1, 0), Err(Denied::Wait(1)));
        assert_eq!(cell.take(CLOSED, 1, 0), Err(Denied::Wait(1)));
        // A change reopens it one past, wrapping.
        cell.set(TokenBucket::new(2, 1), end);
        assert_eq!(cell.word.load(Ordering::Relaxed), 0);
        assert_eq!(
            cell.read().1,
            CLOSED,
            "one token owed, at 2 ns a token: saturated"
        );
    }
}
