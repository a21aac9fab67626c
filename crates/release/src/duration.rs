//! Durations as Argo, Flagger and Kubernetes write them: `500ms`, `15s`,
//! `1m`, `1h30m` (Go's `time.ParseDuration` units `ms s m h`, summed).

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// Parses `1h30m`, `15s`, `500ms` or a bare number of seconds.
///
/// # Errors
///
/// A message naming the bad text.
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let bad = || {
        format!(
            "{}: not a duration (write 500ms, 15s, 1m or 1h30m)",
            flightdeck_obs_core::shown(text)
        )
    };
    if t.is_empty() || t.len() > 64 {
        return Err(bad());
    }
    if let Ok(secs) = t.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|_| bad());
    }
    let mut total = 0.0f64;
    let mut rest = t;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if num_end == 0 {
            return Err(bad());
        }
        let n: f64 = rest[..num_end].parse().map_err(|_| bad())?;
        rest = &rest[num_end..];
        let (unit, len) = if rest.starts_with("ms") {
            (1e-3, 2)
        } else if rest.starts_with('s') {
            (1.0, 1)
        } else if rest.starts_with('m') {
            (60.0, 1)
        } else if rest.starts_with('h') {
            (3600.0, 1)
        } else {
            return Err(bad());
        };
        total += n * unit;
        rest = &rest[len..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

/// Writes a duration as `15s` or `500ms`.
pub fn format(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(*d))
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Secs(f64),
    }
    match Raw::deserialize(d)? {
        Raw::Text(t) => parse(&t).map_err(serde::de::Error::custom),
        Raw::Secs(s) => Duration::try_from_secs_f64(s)
            .map_err(|_| serde::de::Error::custom(format!("{s}: not a duration"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_style_durations_parse() {
        assert_eq!(parse("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("2"), Ok(Duration::from_secs(2)));
        for bad in ["", "s", "10x", "-5s", "1e400", "5 s"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(format(Duration::from_secs(60)), "60s");
        assert_eq!(format(Duration::from_millis(1500)), "1500ms");
    }
}
