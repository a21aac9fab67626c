//! Prometheus durations (`5m`, `1h`, `30d`, `4w`), parsed and printed the way
//! Prometheus's `model.Duration` does, so rule names match Sloth's.

use std::fmt;

/// A whole number of milliseconds, as Prometheus durations are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PromDuration(u64);

const MS: [(&str, u64); 7] = [
    ("y", 1000 * 60 * 60 * 24 * 365),
    ("w", 1000 * 60 * 60 * 24 * 7),
    ("d", 1000 * 60 * 60 * 24),
    ("h", 1000 * 60 * 60),
    ("m", 1000 * 60),
    ("s", 1000),
    ("ms", 1),
];

impl PromDuration {
    /// From milliseconds.
    pub fn from_millis(ms: u64) -> Self {
        Self(ms)
    }

    /// Milliseconds.
    pub fn as_millis(self) -> u64 {
        self.0
    }

    /// Hours, as a float (Sloth's `Duration.Hours()`).
    pub fn hours(self) -> f64 {
        self.0 as f64 / 3_600_000.0
    }

    /// Parses `1h30m`, `30d`, `4w`, `500ms`: one or more number-unit pairs,
    /// units from largest to smallest, as Prometheus accepts.
    ///
    /// # Errors
    ///
    /// A message naming the value when it is empty, zero, or malformed.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a duration like 5m, 1h or 30d");
        let mut rest = s.trim();
        if rest.is_empty() {
            return Err(bad());
        }
        let mut total: u64 = 0;
        let mut last_unit = 0usize;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(bad());
            }
            let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
            rest = &rest[digits..];
            // "ms" must be tried before "m".
            let (i, (unit, mult)) = MS
                .iter()
                .enumerate()
                .filter(|(_, (u, _))| rest.starts_with(u))
                .max_by_key(|(_, (u, _))| u.len())
                .ok_or_else(bad)?;
            if i < last_unit {
                return Err(bad());
            }
            last_unit = i + 1;
            rest = &rest[unit.len()..];
            total = n
                .checked_mul(*mult)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(bad)?;
        }
        if total == 0 {
            return Err(format!("{s:?} is zero; a window must be positive"));
        }
        Ok(Self(total))
    }
}

impl fmt::Display for PromDuration {
    /// As Prometheus prints it: years and weeks only when exact (`4w`, but `30d`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0;
        if ms == 0 {
            return f.write_str("0s");
        }
        for (i, (unit, mult)) in MS.iter().enumerate() {
            let exact_only = i < 2;
            if exact_only && !ms.is_multiple_of(*mult) {
                continue;
            }
            let v = ms / mult;
            if v > 0 {
                write!(f, "{v}{unit}")?;
                ms -= v * mult;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_prometheus() {
        for (input, shown) in [
            ("30d", "30d"),
            ("28d", "4w"),
            ("7d", "1w"),
            ("24h", "1d"),
            ("72h", "3d"),
            ("90m", "1h30m"),
            ("5m", "5m"),
            ("365d", "1y"),
        ] {
            assert_eq!(
                PromDuration::parse(input).unwrap().to_string(),
                shown,
                "{input}"
            );
        }
    }

    #[test]
    fn rejects_malformed_values() {
        for bad in ["", "5", "m", "1x", "0m", "5m1h", "-5m"] {
            assert!(PromDuration::parse(bad).is_err(), "{bad:?}");
        }
    }
}
