//! The name that tells one layer from another in events, metrics and errors.

use std::{borrow::Borrow, fmt, ops::Deref, sync::Arc};

/// The name of a layer instance, such as `"payments"` for the breaker in front
/// of the payments service.
///
/// Every layer can be given one; it is carried by every [`Event`], recorded as
/// the `name` label of every metric, and shown in every rejection error.
/// Cheap to clone (a reference count), so a rejection can carry it.
///
/// [`Event`]: crate::observe::Event
///
/// # Examples
///
/// ```
/// use palisade::LayerName;
///
/// let name = LayerName::from("payments");
/// assert_eq!(name.as_str(), "payments");
/// assert_eq!(name.to_string(), "payments");
/// assert_eq!(name, LayerName::from(String::from("payments")));
/// assert_eq!(name, "payments");
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LayerName(Arc<str>);

impl LayerName {
    /// The name as a string slice.
    ///
    /// ```
    /// # use palisade::LayerName;
    /// assert_eq!(LayerName::from("db").as_str(), "db");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for LayerName {
    fn from(name: &str) -> LayerName {
        LayerName(Arc::from(name))
    }
}

impl From<String> for LayerName {
    fn from(name: String) -> LayerName {
        LayerName(Arc::from(name))
    }
}

impl From<Arc<str>> for LayerName {
    fn from(name: Arc<str>) -> LayerName {
        LayerName(name)
    }
}

impl Deref for LayerName {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for LayerName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for LayerName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for LayerName {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for LayerName {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl fmt::Display for LayerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for LayerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}
