//! GrowthBook's hashing and bucketing functions.
//!
//! Hashing is FNV-1a 32-bit over UTF-16 code units (JavaScript's
//! `charCodeAt`), so a non-ASCII id lands in the same bucket as in the
//! JavaScript SDK. Hand-written: the `fnv` crate hashes bytes (UTF-8), which
//! would put such ids elsewhere, and the function is six lines.

const FNV_OFFSET: u32 = 0x811c_9dc5;
const FNV_PRIME: u32 = 0x0100_0193;

/// A `[start, end)` slice of the unit interval owned by one variation.
pub type BucketRange = (f64, f64);

#[inline]
fn fnv1a_update(mut h: u32, s: &str) -> u32 {
    if s.is_ascii() {
        // ASCII bytes are exactly the UTF-16 code units, and far cheaper to
        // walk than `encode_utf16`.
        for &b in s.as_bytes() {
            h ^= u32::from(b);
            h = h.wrapping_mul(FNV_PRIME);
        }
        return h;
    }
    for unit in s.encode_utf16() {
        h ^= u32::from(unit);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// FNV-1a 32-bit of `s` as UTF-16 code units.
///
/// ```
/// assert_eq!(flightdeck_experiments::fnv1a32("a"), 0xe40c292c);
/// ```
pub fn fnv1a32(s: &str) -> u32 {
    fnv1a_update(FNV_OFFSET, s)
}

/// GrowthBook's `hash(seed, value, version)`: a number in `[0, 1)`, or
/// `None` for an unknown version.
///
/// * version 1 (legacy): `fnv(value + seed) % 1000 / 1000`;
/// * version 2: `fnv(str(fnv(seed + value))) % 10000 / 10000`.
///
/// ```
/// use flightdeck_experiments::hash;
/// assert_eq!(hash("", "a", 1), Some(0.22));
/// assert_eq!(hash("seed", "a", 2), Some(0.0505));
/// assert_eq!(hash("", "a", 99), None);
/// ```
pub fn hash(seed: &str, value: &str, version: u32) -> Option<f64> {
    match version {
        1 => {
            let h = fnv1a_update(fnv1a_update(FNV_OFFSET, value), seed);
            Some(f64::from(h % 1000) / 1000.0)
        }
        2 => Some(finish_v2(fnv1a_update(
            fnv1a_update(FNV_OFFSET, seed),
            value,
        ))),
        _ => None,
    }
}

/// Version 2's second pass: fnv of the decimal text of `inner`, digit by
/// digit (the digits are ASCII, one UTF-16 unit each).
///
/// Hand-written because the FNV fold is a serial chain: the digits must be
/// ready before the fold needs them, without the instructions of ten
/// constant divisions. `inner` is split into two halves of five digits, and
/// each half is read out as a 32.32 fixed-point fraction of 10^4 (jeaiii's
/// itoa): the integer part is the next digit, and multiplying the fraction
/// by 10 brings up the one after. The 10- and 9-digit cases (99.8% of
/// hashes) share the fold: only its starting state differs, so the length
/// costs a conditional move, not a branch the predictor cannot guess.
#[inline]
fn finish_v2_bucket(inner: u32) -> u32 {
    const FRACTION: u64 = 0xffff_ffff;
    // ceil(2^32 / 10^4): exact for every five-digit half (tested).
    const TEN_THOUSANDTH: u64 = 429_497;
    let step = |h: u32, digit: u64| (h ^ (u32::from(b'0') + digit as u32)).wrapping_mul(FNV_PRIME);
    if inner < 100_000_000 {
        // Eight digits or fewer: one hash in 43.
        let (mut text, mut at, mut n) = ([0u8; 8], 8, inner);
        loop {
            at -= 1;
            text[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let h = text[at..]
            .iter()
            .fold(FNV_OFFSET, |h, &b| step(h, u64::from(b - b'0')));
        return h % 10000;
    }
    let mut high = u64::from(inner / 100_000) * TEN_THOUSANDTH;
    let mut low = u64::from(inner % 100_000) * TEN_THOUSANDTH;
    let lead = step(FNV_OFFSET, high >> 32);
    let mut h = if inner >= 1_000_000_000 {
        lead
    } else {
        FNV_OFFSET
    };
    for _ in 0..4 {
        high = (high & FRACTION) * 10;
        h = step(h, high >> 32);
    }
    h = step(h, low >> 32);
    for _ in 0..4 {
        low = (low & FRACTION) * 10;
        h = step(h, low >> 32);
    }
    h % 10000
}

/// Version 2's hash value.
#[inline]
fn finish_v2(inner: u32) -> f64 {
    f64::from(finish_v2_bucket(inner)) / 10000.0
}

/// How many buckets hash `version` has: its value is a bucket divided by
/// this. `None` for an unknown version.
pub(crate) fn buckets(version: u32) -> Option<u32> {
    match version {
        1 => Some(1000),
        2 => Some(10_000),
        _ => None,
    }
}

/// A seed with its version-2 hashing state computed once: version 2 hashes
/// `seed + value`, so the seed's part of the work is the same for every user.
#[derive(Debug, Clone)]
pub(crate) struct SeededHash {
    seed: String,
    v2_state: u32,
}

impl SeededHash {
    pub(crate) fn new(seed: &str) -> Self {
        Self {
            seed: seed.to_owned(),
            v2_state: fnv1a_update(FNV_OFFSET, seed),
        }
    }

    /// The integer bucket behind `hash(seed, value, version)`: the hash is
    /// this divided by [`buckets`]`(version)`.
    #[inline]
    pub(crate) fn bucket(&self, value: &str, version: u32) -> Option<u32> {
        match version {
            2 => Some(finish_v2_bucket(fnv1a_update(self.v2_state, value))),
            1 => Some(fnv1a_update(fnv1a_update(FNV_OFFSET, value), &self.seed) % 1000),
            _ => None,
        }
    }

    /// `hash(seed, value, version)`.
    #[inline]
    pub(crate) fn hash(&self, value: &str, version: u32) -> Option<f64> {
        match version {
            2 => Some(finish_v2(fnv1a_update(self.v2_state, value))),
            v => hash(&self.seed, value, v),
        }
    }
}

/// `n` equal weights summing to 1 (empty for `n == 0`).
pub fn equal_weights(n: usize) -> Vec<f64> {
    vec![1.0 / n as f64; n]
}

/// GrowthBook's `getBucketRanges`: coverage is clamped to `[0, 1]`; weights
/// of the wrong length or not summing to 1 (within 0.01) fall back to equal
/// weights. Each variation keeps the start of its full-coverage slice, so
/// raising coverage later never moves a user who was already in.
///
/// ```
/// use flightdeck_experiments::bucket_ranges;
/// assert_eq!(bucket_ranges(2, 0.5, None), vec![(0.0, 0.25), (0.5, 0.75)]);
/// ```
pub fn bucket_ranges(n: usize, coverage: f64, weights: Option<&[f64]>) -> Vec<BucketRange> {
    let coverage = if coverage.is_nan() {
        1.0
    } else {
        coverage.clamp(0.0, 1.0)
    };
    let equal = equal_weights(n);
    let weights = match weights {
        Some(w) if w.len() == n && valid_total(w) => w,
        _ => &equal,
    };
    let mut cumulative = 0.0;
    weights
        .iter()
        .map(|w| {
            let start = cumulative;
            cumulative += w;
            (start, start + coverage * w)
        })
        .collect()
}

fn valid_total(weights: &[f64]) -> bool {
    let total: f64 = weights.iter().sum();
    (0.99..=1.01).contains(&total)
}

/// Whether `weights` would be used as given by [`bucket_ranges`] (right
/// length, summing to 1 within 0.01).
pub fn weights_are_valid(n: usize, weights: &[f64]) -> bool {
    weights.len() == n && valid_total(weights)
}

/// GrowthBook's `chooseVariation`: the first range holding `n`.
pub fn choose_variation(n: f64, ranges: &[BucketRange]) -> Option<usize> {
    ranges
        .iter()
        .position(|&(start, end)| n >= start && n < end)
}

/// GrowthBook's `inNamespace`: `start <= hash("__" + id, value, 1) < end`.
pub fn in_namespace(hash_value: &str, namespace_id: &str, start: f64, end: f64) -> bool {
    // hash("__" + id, value, 1) = fnv(value + "__" + id): no allocation.
    let h = fnv1a_update(
        fnv1a_update(fnv1a_update(FNV_OFFSET, hash_value), "__"),
        namespace_id,
    );
    let n = f64::from(h % 1000) / 1000.0;
    n >= start && n < end
}

/// GrowthBook's `getQueryStringOverride`: the variation forced by
/// `?{key}={index}` in `url`, when the index is a valid variation.
///
/// ```
/// use flightdeck_experiments::query_string_override;
/// assert_eq!(query_string_override("my-test", "http://a.com/?my-test=1", 2), Some(1));
/// assert_eq!(query_string_override("my-test", "http://a.com/?my-test=2", 2), None);
/// ```
pub fn query_string_override(key: &str, url: &str, n: usize) -> Option<usize> {
    let search = url.split('?').nth(1).filter(|s| !s.is_empty())?;
    let search = search.split('#').next().unwrap_or("");
    let (k, v) = search
        .split('&')
        .map(|kv| {
            let mut it = kv.splitn(3, '=');
            (it.next().unwrap_or(""), it.next())
        })
        .find(|(k, _)| *k == key)?;
    let _ = k;
    let index = parse_int(v?)?;
    usize::try_from(index).ok().filter(|&i| i < n)
}

/// JavaScript's `parseInt(s)` for base 10: leading whitespace, a sign, then
/// as many digits as there are.
fn parse_int(s: &str) -> Option<i64> {
    let t = s.trim_start();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let end = digits
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    let n: i64 = digits[..end].parse().ok()?;
    Some(if neg { -n } else { n })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_ascii_ids_hash_over_utf16_code_units() {
        // Computed from the spec by hand-checked UTF-16 units: "é" is one
        // unit (0xe9); "😀" is two (0xd83d 0xde00). UTF-8 bytes would differ.
        let manual = |units: &[u16]| {
            let mut h = FNV_OFFSET;
            for &u in units {
                h ^= u32::from(u);
                h = h.wrapping_mul(FNV_PRIME);
            }
            h
        };
        assert_eq!(fnv1a32("é"), manual(&[0xe9]));
        assert_eq!(fnv1a32("😀"), manual(&[0xd83d, 0xde00]));
        assert_ne!(fnv1a32("é"), manual(&[0xc3, 0xa9]));
    }

    #[test]
    fn the_second_pass_hashes_the_decimal_text() {
        for n in [
            0u32,
            7,
            10,
            99,
            100,
            12_345,
            99_999,
            100_000,
            999_999_999,
            1_000_000_000,
            4_294_967_295,
        ]
        .into_iter()
        .chain((0..2000).map(|i: u32| i.wrapping_mul(2_654_435_761)))
        {
            let expected = f64::from(fnv1a32(&n.to_string()) % 10000) / 10000.0;
            assert_eq!(finish_v2(n), expected, "{n}");
        }
    }

    #[test]
    fn five_digit_halves_read_out_exactly() {
        // Every half `finish_v2` can meet, against its decimal text.
        for x in 0u64..100_000 {
            let mut t = x * 429_497;
            let mut text = vec![b'0' + (t >> 32) as u8];
            for _ in 0..4 {
                t = (t & 0xffff_ffff) * 10;
                text.push(b'0' + (t >> 32) as u8);
            }
            assert_eq!(text, format!("{x:05}").into_bytes(), "{x}");
        }
    }

    #[test]
    fn parse_int_reads_a_leading_integer() {
        assert_eq!(parse_int(" 12abc"), Some(12));
        assert_eq!(parse_int("-1"), Some(-1));
        assert_eq!(parse_int("abc"), None);
    }
}
