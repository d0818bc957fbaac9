//! The bulkhead's settings as one value: what a running layer reads back
//! and changes at once, and (feature `serde`) what a configuration file
//! holds.

use std::time::Duration;

use super::{layer::LAYER, queue::Waiting};
use crate::error::{ConfigError, check};

/// A bulkhead's settings: its bound, and its queue if it has one. What
/// [`BulkheadLayer::settings`](super::BulkheadLayer::settings) reads and
/// [`BulkheadLayer::reconfigure`](super::BulkheadLayer::reconfigure)
/// changes; the builder's [`settings`](super::BulkheadBuilder::settings)
/// takes it.
///
/// With feature `serde`: `max_concurrent = 64` and, optionally,
/// `queue = { max_waiting = 100, max_wait = "500ms" }` (in TOML), checked
/// while read.
///
/// ```
/// use std::time::Duration;
/// use palisade::bulkhead::{BulkheadLayer, QueueBounds};
///
/// let layer = BulkheadLayer::builder(10).build()?;
/// let mut settings = layer.settings();
/// assert_eq!((settings.max_concurrent, settings.queue), (10, None));
/// settings.queue = Some(QueueBounds { max_waiting: 20, max_wait: Duration::from_millis(100) });
/// layer.reconfigure(settings)?;
/// assert_eq!(layer.settings(), settings);
/// # Ok::<(), palisade::error::ConfigError>(())
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The bound on calls in flight, at least 1.
    pub max_concurrent: u32,
    /// The queue, if calls that find every permit taken may wait.
    pub queue: Option<QueueBounds>,
}

/// How many calls may wait for a permit, and for how long each; see
/// [`BulkheadBuilder::queue`](super::BulkheadBuilder::queue).
///
/// ```
/// use std::time::Duration;
/// let _ = palisade::bulkhead::QueueBounds { max_waiting: 8, max_wait: Duration::from_millis(50) };
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct QueueBounds {
    /// How many calls may wait at once, at least 1.
    pub max_waiting: u32,
    /// How long each may wait, above zero.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub max_wait: Duration,
}

impl Settings {
    /// Checks the settings as the builder checks them.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        check::at_least_one(LAYER, "max_concurrent", self.max_concurrent)?;
        if let Some(queue) = self.queue {
            queue.check()?;
        }
        Ok(())
    }
}

impl QueueBounds {
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        check::at_least_one(LAYER, "queue.max_waiting", self.max_waiting)?;
        check::positive(LAYER, "queue.max_wait", self.max_wait)
    }

    pub(crate) fn waiting(&self) -> Waiting {
        Waiting {
            max_waiting: self.max_waiting as usize,
            max_wait: self.max_wait,
        }
    }

    pub(crate) fn of(waiting: Waiting) -> QueueBounds {
        QueueBounds {
            max_waiting: u32::try_from(waiting.max_waiting).unwrap_or(u32::MAX),
            max_wait: waiting.max_wait,
        }
    }
}

#[cfg(feature = "serde")]
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(remote = "Settings", deny_unknown_fields)]
struct Form {
    max_concurrent: u32,
    #[serde(default)]
    queue: Option<QueueBounds>,
}

#[cfg(feature = "serde")]
crate::settings::checked_serde!(Settings, Form, Settings::check);
