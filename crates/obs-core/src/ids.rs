//! Trace and span identifiers in the W3C Trace Context layout.
//!
//! A [`TraceId`] is 16 bytes and a [`SpanId`] is 8 bytes; both print as
//! fixed-width lowercase hex (32 and 16 characters) and are never all zero,
//! exactly as the W3C Trace Context and OpenTelemetry require. That makes our
//! ids interchangeable with the ids an OpenTelemetry collector receives.

use std::cell::Cell;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ParseIdError;

/// A 128-bit trace identifier, shown as 32 lowercase hex characters.
///
/// Every span of one request shares the trace id of the request's root span.
///
/// ```
/// use flightdeck_obs_core::TraceId;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let id: TraceId = "4bf92f3577b34da6a3ce929d0e0e4736".parse()?;
/// assert_eq!(id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId(u128);

/// A 64-bit span identifier, shown as 16 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId(u64);

impl TraceId {
    /// Wraps a raw value; `None` for the invalid all-zero id.
    pub fn from_u128(value: u128) -> Option<Self> {
        (value != 0).then_some(Self(value))
    }

    /// Wraps big-endian bytes as they appear on the wire (OTLP, `traceparent`).
    pub fn from_bytes(bytes: [u8; 16]) -> Option<Self> {
        Self::from_u128(u128::from_be_bytes(bytes))
    }

    /// The raw value.
    pub fn to_u128(self) -> u128 {
        self.0
    }

    /// Big-endian bytes, as on the wire.
    pub fn to_bytes(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }

    /// A fresh random id from a fast thread-local generator.
    ///
    /// The generator is not cryptographic: ids must be unique, not secret.
    pub fn random() -> Self {
        loop {
            let value = (u128::from(next_u64()) << 64) | u128::from(next_u64());
            if let Some(id) = Self::from_u128(value) {
                return id;
            }
        }
    }
}

impl SpanId {
    /// Wraps a raw value; `None` for the invalid all-zero id.
    pub fn from_u64(value: u64) -> Option<Self> {
        (value != 0).then_some(Self(value))
    }

    /// Wraps big-endian bytes as they appear on the wire.
    pub fn from_bytes(bytes: [u8; 8]) -> Option<Self> {
        Self::from_u64(u64::from_be_bytes(bytes))
    }

    /// The raw value.
    pub fn to_u64(self) -> u64 {
        self.0
    }

    /// Big-endian bytes, as on the wire.
    pub fn to_bytes(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }

    /// A fresh random id from a fast thread-local generator.
    pub fn random() -> Self {
        loop {
            if let Some(id) = Self::from_u64(next_u64()) {
                return id;
            }
        }
    }
}

/// The two lowercase hex digits of each byte.
const HEX_PAIRS: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut t = [[0; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [DIGITS[i >> 4], DIGITS[i & 0xf]];
        i += 1;
    }
    t
};

/// `b` as two lowercase hex digits (also JSON's `\u00XX` escapes).
pub(crate) fn hex_byte(b: u8) -> [u8; 2] {
    HEX_PAIRS[usize::from(b)]
}

/// The low `N` hex digits of `value`, lowercase, most significant first, a
/// byte (two digits) at a time from a table, without the formatter's
/// padding machinery (ids are written into every log line and span record).
fn hex<const N: usize>(value: u128) -> [u8; N] {
    let bytes = value.to_be_bytes();
    let mut out = [b'0'; N];
    for (pair, b) in out.chunks_exact_mut(2).zip(&bytes[16 - N / 2..]) {
        pair.copy_from_slice(&hex_byte(*b));
    }
    out
}

impl TraceId {
    /// The 32 lowercase hex digits, as [`Display`](fmt::Display) writes them.
    pub(crate) fn hex_digits(self) -> [u8; 32] {
        hex::<32>(self.0)
    }
}

impl SpanId {
    /// The 16 lowercase hex digits, as [`Display`](fmt::Display) writes them.
    pub(crate) fn hex_digits(self) -> [u8; 16] {
        hex::<16>(u128::from(self.0))
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.hex_digits();
        // Hex digits are ASCII.
        f.pad(std::str::from_utf8(&digits).unwrap_or_default())
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.hex_digits();
        f.pad(std::str::from_utf8(&digits).unwrap_or_default())
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({self})")
    }
}

/// Parses exactly `len` lowercase hex characters into a non-zero value.
fn parse_hex(kind: &'static str, s: &str, len: usize) -> Result<u128, ParseIdError> {
    let invalid = |reason: &'static str| ParseIdError {
        kind,
        value: crate::correlation::printable_excerpt(s),
        reason,
    };
    if s.len() != len {
        return Err(invalid(if kind == "trace id" {
            "expected 32 lowercase hex characters"
        } else {
            "expected 16 lowercase hex characters"
        }));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(invalid("only lowercase hex digits 0-9a-f are allowed"));
    }
    let value = u128::from_str_radix(s, 16).map_err(|_| invalid("not a hex number"))?;
    if value == 0 {
        return Err(invalid("an all-zero id is invalid"));
    }
    Ok(value)
}

impl FromStr for TraceId {
    type Err = ParseIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex("trace id", s, 32).map(Self)
    }
}

impl FromStr for SpanId {
    type Err = ParseIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Sixteen hex digits always fit in a u64.
        parse_hex("span id", s, 16).map(|v| Self(v as u64))
    }
}

macro_rules! serde_via_display {
    ($ty:ty) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

serde_via_display!(TraceId);
serde_via_display!(SpanId);

static SEED_COUNTER: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static RNG_STATE: Cell<u64> = Cell::new(thread_seed());
}

/// Seeds each thread differently: wall clock, process id, a global counter and
/// the address of a stack variable, mixed through SplitMix64.
fn thread_seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let marker = 0u8;
    let addr = &marker as *const u8 as u64;
    let n = SEED_COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut state = nanos ^ (u64::from(std::process::id()) << 32) ^ addr.rotate_left(17) ^ n;
    splitmix64(&mut state)
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The next value of this thread's SplitMix64 stream.
pub(crate) fn next_u64() -> u64 {
    RNG_STATE.with(|cell| {
        let mut state = cell.get();
        let out = splitmix64(&mut state);
        cell.set(state);
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_print_fixed_width_lowercase_hex() {
        let t = TraceId::from_u128(0xab).unwrap();
        assert_eq!(t.to_string(), "000000000000000000000000000000ab");
        let s = SpanId::from_u64(0xab).unwrap();
        assert_eq!(s.to_string(), "00000000000000ab");
        // The table encoder agrees with the formatter's `x` everywhere.
        for v in [
            1,
            0x0123_4567_89ab_cdef,
            u128::MAX,
            u128::MAX >> 4,
            1 << 127,
        ] {
            let t = TraceId::from_u128(v).unwrap();
            assert_eq!(t.to_string(), format!("{v:032x}"));
            let w = v as u64 | 1;
            let s = SpanId::from_u64(w).unwrap();
            assert_eq!(s.to_string(), format!("{w:016x}"));
        }
    }

    #[test]
    fn all_zero_ids_are_rejected() {
        assert!(TraceId::from_u128(0).is_none());
        assert!(SpanId::from_u64(0).is_none());
        let err = "0000000000000000".parse::<SpanId>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid span id \"0000000000000000\": an all-zero id is invalid"
        );
    }

    #[test]
    fn parsing_rejects_upper_case_and_wrong_length() {
        let err = "4BF92F3577B34DA6A3CE929D0E0E4736"
            .parse::<TraceId>()
            .unwrap_err();
        assert!(err.to_string().contains("lowercase"), "{err}");
        let err = "abc".parse::<TraceId>().unwrap_err();
        assert!(err.to_string().contains("expected 32"), "{err}");
    }

    #[test]
    fn random_ids_are_unique_and_round_trip() {
        let mut seen = HashSet::new();
        for _ in 0..10_000 {
            let id = TraceId::random();
            assert!(seen.insert(id));
            assert_eq!(id.to_string().parse::<TraceId>().unwrap(), id);
            assert_eq!(TraceId::from_bytes(id.to_bytes()), Some(id));
        }
    }

    #[test]
    fn serde_uses_hex_strings() {
        let id = SpanId::from_u64(0x00f0_67aa_0ba9_02b7).unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"00f067aa0ba902b7\"");
        assert_eq!(serde_json::from_str::<SpanId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<SpanId>("\"zz\"").is_err());
    }
}
