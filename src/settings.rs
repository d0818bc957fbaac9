//! What the layers' settings share with feature `serde`: their data form,
//! checked when read.
//!
//! Each layer's settings type (`rate_limit::Limit`,
//! `circuit_breaker::Settings`, `bulkhead::Settings`, `timeout::Settings`,
//! `retry::Settings`) serializes as plain data — durations humane (`"250ms"`,
//! `"30s"`, `"1m 30s"`), rates as `"100/s"` — and deserializes checked as the
//! builder checks it: a bad value is refused while reading, with the
//! [`ConfigError`](crate::error::ConfigError) that names its field.

/// Implements `Serialize` and `Deserialize` for `$ty` through `$form`, a
/// private mirror of its fields derived with `#[serde(remote = "...")]`,
/// the second checking what it read with `$check`. (A mirror, rather than
/// `remote = "Self"`, so that the unchecked functions the derive makes stay
/// private.)
macro_rules! checked_serde {
    ($ty:ty, $form:ty, $check:expr) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                <$form>::serialize(self, serializer)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = <$form>::deserialize(deserializer)?;
                let check: fn(&$ty) -> Result<(), $crate::error::ConfigError> = $check;
                check(&value).map_err(serde::de::Error::custom)?;
                Ok(value)
            }
        }
    };
}

pub(crate) use checked_serde;
