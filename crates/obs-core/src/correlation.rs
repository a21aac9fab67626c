//! Correlation IDs: one per request, on every span record and log line.
//!
//! A request's correlation id comes from the caller when it sends a valid
//! `x-request-id` or `x-correlation-id` header, and is generated otherwise.
//! Inside `tracing` spans it travels as the `correlation_id` span field (child
//! spans inherit it, also across `.instrument()`ed tasks and threads). Code
//! that runs outside any span uses a [`CorrelationContext`] guard.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::CorrelationIdError;

/// Inbound header names accepted as a correlation id, in order of preference.
pub const CORRELATION_HEADERS: [&str; 2] = ["x-request-id", "x-correlation-id"];

/// The longest correlation id accepted from outside.
pub const MAX_CORRELATION_ID_LEN: usize = 128;

/// A validated correlation id: 1 to [`MAX_CORRELATION_ID_LEN`] visible ASCII
/// characters (`!` to `~`; no spaces, no control characters).
///
/// Cloning is cheap (a shared string), because every span holds one.
///
/// ```
/// use flightdeck_obs_core::CorrelationId;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let id = CorrelationId::new("req-42")?;
/// assert_eq!(id.as_str(), "req-42");
/// assert!(CorrelationId::new("two\nlines").is_err());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CorrelationId(Arc<str>);

/// Where a request's correlation id came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorrelationSource {
    /// Taken from a valid inbound header.
    Inbound,
    /// Generated because no header was given.
    Generated,
    /// Generated because the inbound value was invalid; the bad value is not kept.
    Replaced,
}

impl CorrelationId {
    /// Validates `value` as a correlation id.
    ///
    /// # Errors
    ///
    /// [`CorrelationIdError`] when `value` is empty, longer than
    /// [`MAX_CORRELATION_ID_LEN`], or holds anything but visible ASCII. The
    /// error shows the value only with unprintable bytes escaped.
    pub fn new(value: &str) -> Result<Self, CorrelationIdError> {
        validate(value.as_bytes())?;
        Ok(Self(Arc::from(value)))
    }

    /// A fresh random id: 32 lowercase hex characters.
    pub fn generate() -> Self {
        let hi = crate::ids::next_u64();
        let lo = crate::ids::next_u64();
        Self(Arc::from(format!("{hi:016x}{lo:016x}")))
    }

    /// Takes an inbound header value when valid, else generates a new id.
    ///
    /// The source tells the caller whether the value was replaced, so it can
    /// count or log that without ever echoing the raw bad value.
    ///
    /// ```
    /// use flightdeck_obs_core::{CorrelationId, CorrelationSource};
    /// let (id, source) = CorrelationId::from_inbound(Some(b"abc-123"));
    /// assert_eq!((id.as_str(), source), ("abc-123", CorrelationSource::Inbound));
    /// let (id, source) = CorrelationId::from_inbound(Some(b"evil\r\nSet-Cookie: x"));
    /// assert_eq!(source, CorrelationSource::Replaced);
    /// assert_eq!(id.as_str().len(), 32);
    /// ```
    pub fn from_inbound(value: Option<&[u8]>) -> (Self, CorrelationSource) {
        match value {
            None => (Self::generate(), CorrelationSource::Generated),
            Some(bytes) => match validate(bytes) {
                // Validation guarantees ASCII, so the conversion cannot fail.
                Ok(()) => match std::str::from_utf8(bytes) {
                    Ok(s) => (Self(Arc::from(s)), CorrelationSource::Inbound),
                    Err(_) => (Self::generate(), CorrelationSource::Replaced),
                },
                Err(_) => (Self::generate(), CorrelationSource::Replaced),
            },
        }
    }

    /// Picks the first of [`CORRELATION_HEADERS`] that `lookup` finds.
    ///
    /// `lookup` gets a lowercase header name and returns its raw value.
    pub fn from_headers<'a>(
        lookup: impl Fn(&str) -> Option<&'a [u8]>,
    ) -> (Self, CorrelationSource) {
        let value = CORRELATION_HEADERS.iter().find_map(|name| lookup(name));
        Self::from_inbound(value)
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn validate(bytes: &[u8]) -> Result<(), CorrelationIdError> {
    if bytes.is_empty() {
        return Err(CorrelationIdError::Empty);
    }
    if bytes.len() > MAX_CORRELATION_ID_LEN {
        return Err(CorrelationIdError::TooLong {
            len: bytes.len(),
            max: MAX_CORRELATION_ID_LEN,
        });
    }
    if let Some(pos) = bytes.iter().position(|b| !(0x21..=0x7e).contains(b)) {
        return Err(CorrelationIdError::InvalidByte {
            position: pos,
            value: printable_excerpt_bytes(bytes),
        });
    }
    Ok(())
}

/// A safe, bounded rendering of untrusted text for error messages: at most 64
/// characters with anything unprintable escaped, so it cannot forge log lines.
pub(crate) fn printable_excerpt(s: &str) -> String {
    printable_excerpt_bytes(s.as_bytes())
}

pub(crate) fn printable_excerpt_bytes(bytes: &[u8]) -> String {
    let mut out: String = bytes
        .iter()
        .take(64)
        .flat_map(|b| std::ascii::escape_default(*b))
        .map(char::from)
        .collect();
    if bytes.len() > 64 {
        out.push_str("...");
    }
    out
}

impl fmt::Display for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CorrelationId({:?})", &*self.0)
    }
}

impl std::str::FromStr for CorrelationId {
    type Err = CorrelationIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl Serialize for CorrelationId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for CorrelationId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

thread_local! {
    static SCOPES: RefCell<Vec<CorrelationId>> = const { RefCell::new(Vec::new()) };
}

/// A correlation scope for code that runs outside `tracing` spans.
///
/// While the guard lives, log lines and root spans created on this thread
/// carry its id. Scopes nest; dropping the guard restores the outer one. The
/// guard is `!Send` because the scope belongs to the thread that opened it:
/// for async code, put the id on a span with `correlation_id = %id` and
/// `.instrument()` the future instead.
///
/// ```
/// use flightdeck_obs_core::{CorrelationContext, CorrelationId};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let id = CorrelationId::new("batch-7")?;
/// {
///     let _scope = CorrelationContext::enter(id.clone());
///     assert_eq!(CorrelationContext::current(), Some(id));
/// }
/// assert_eq!(CorrelationContext::current(), None);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct CorrelationContext {
    // Makes the guard !Send and !Sync: it pops this thread's stack.
    _not_send: std::marker::PhantomData<*const ()>,
}

impl CorrelationContext {
    /// Opens a scope with `id` on this thread until the guard drops.
    #[must_use = "the scope ends when the guard is dropped"]
    pub fn enter(id: CorrelationId) -> Self {
        SCOPES.with(|s| s.borrow_mut().push(id));
        Self {
            _not_send: std::marker::PhantomData,
        }
    }

    /// The correlation id in effect here: the current span's, else the
    /// innermost scope's on this thread.
    pub fn current() -> Option<CorrelationId> {
        crate::layer::current_span_correlation().or_else(Self::current_scope)
    }

    /// The innermost [`CorrelationContext`] scope's id on this thread, ignoring spans.
    pub fn current_scope() -> Option<CorrelationId> {
        SCOPES.with(|s| s.borrow().last().cloned())
    }
}

impl Drop for CorrelationContext {
    fn drop(&mut self) {
        SCOPES.with(|s| {
            s.borrow_mut().pop();
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_inbound_ids_are_kept() {
        let (id, src) = CorrelationId::from_inbound(Some(b"0af7651916cd43dd8448eb211c80319c"));
        assert_eq!(src, CorrelationSource::Inbound);
        assert_eq!(id.as_str(), "0af7651916cd43dd8448eb211c80319c");
    }

    #[test]
    fn invalid_inbound_ids_are_replaced_not_echoed() {
        let long = vec![b'a'; MAX_CORRELATION_ID_LEN + 1];
        let bad: [&[u8]; 5] = [
            b"",
            b"has space",
            b"line\nbreak",
            &long,
            "caf\u{e9}".as_bytes(),
        ];
        for value in bad {
            let (id, src) = CorrelationId::from_inbound(Some(value));
            assert_eq!(src, CorrelationSource::Replaced, "{value:?}");
            assert_eq!(id.as_str().len(), 32);
            assert!(id.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }

    #[test]
    fn max_length_is_accepted() {
        let s = "x".repeat(MAX_CORRELATION_ID_LEN);
        assert!(CorrelationId::new(&s).is_ok());
    }

    #[test]
    fn error_messages_escape_the_value() {
        let err = CorrelationId::new("a\nb").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid correlation id \"a\\nb\": byte 1 is not visible ASCII (allowed: '!' to '~')"
        );
        let err = CorrelationId::new("").unwrap_err();
        assert_eq!(err.to_string(), "invalid correlation id: it is empty");
    }

    #[test]
    fn headers_prefer_x_request_id() {
        let (id, _) = CorrelationId::from_headers(|name| match name {
            "x-request-id" => Some(b"first".as_slice()),
            "x-correlation-id" => Some(b"second".as_slice()),
            _ => None,
        });
        assert_eq!(id.as_str(), "first");
        let (_, src) = CorrelationId::from_headers(|_| None);
        assert_eq!(src, CorrelationSource::Generated);
    }

    #[test]
    fn scopes_nest_and_restore() {
        let a = CorrelationId::new("a").unwrap();
        let b = CorrelationId::new("b").unwrap();
        let outer = CorrelationContext::enter(a.clone());
        {
            let _inner = CorrelationContext::enter(b.clone());
            assert_eq!(CorrelationContext::current_scope(), Some(b));
        }
        assert_eq!(CorrelationContext::current_scope(), Some(a));
        drop(outer);
        assert_eq!(CorrelationContext::current_scope(), None);
    }
}
