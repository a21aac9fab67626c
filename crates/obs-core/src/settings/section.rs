//! Settings sections: the keys one crate owns, loaded from the one TOML file
//! and the one set of variables.
//!
//! obs-core owns the observability keys ([`ObservabilitySettings`](super::ObservabilitySettings)).
//! Crates above it own theirs (`slo` the `slo_*` keys, `golden` the
//! `golden_*` keys) by implementing [`SettingsSection`]; the facade composes
//! them with [`ObservabilitySettings::load_with`](super::ObservabilitySettings::load_with),
//! so one file and one set of `FLIGHTDECK_*` variables set them all, with one
//! precedence and one unknown-key check across every section.

use std::collections::HashMap;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};

use crate::error::SettingsError;

/// The keys one crate owns and how it takes their values.
///
/// Keys are `snake_case`; each is also a `FLIGHTDECK_<KEY>` variable. A key
/// belongs to one section: loading fails when two sections claim the same key.
///
/// ```
/// use flightdeck_obs_core::{ObservabilitySettings, SettingValue, SettingsCheck, SettingsError, SettingsSection};
///
/// #[derive(Default)]
/// struct Cache { size: usize }
///
/// impl SettingsSection for Cache {
///     fn keys(&self) -> &'static [&'static str] { &["cache_size"] }
///     fn set(&mut self, value: &SettingValue<'_>) -> Result<(), SettingsError> {
///         self.size = value.integer()?;
///         Ok(())
///     }
///     fn validate(&self, check: &SettingsCheck<'_>) -> Result<(), SettingsError> {
///         check.at_least("cache_size", self.size as f64, 1.0, "a whole number, 1 or more")
///     }
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut cache = Cache::default();
/// let env = [("FLIGHTDECK_CACHE_SIZE".to_owned(), "64".to_owned())];
/// let obs = ObservabilitySettings::load_with(None, env, &mut [&mut cache])?;
/// assert_eq!((cache.size, obs.service_name.as_str()), (64, "rag-service"));
/// # Ok(())
/// # }
/// ```
pub trait SettingsSection {
    /// The keys this section owns.
    fn keys(&self) -> &'static [&'static str];

    /// Takes one of [`keys`](Self::keys)' values (called in precedence
    /// order: the file, then the variables, so a later call wins).
    ///
    /// # Errors
    ///
    /// [`SettingsError::InvalidValue`] (see [`SettingValue::invalid`]) when the
    /// value has the wrong type.
    fn set(&mut self, value: &SettingValue<'_>) -> Result<(), SettingsError>;

    /// Checks every value against its allowed range, once everything is set.
    ///
    /// # Errors
    ///
    /// [`SettingsError::InvalidValue`] naming the first bad key, built with
    /// `check` so it says where the value came from.
    fn validate(&self, check: &SettingsCheck<'_>) -> Result<(), SettingsError>;
}

/// A raw value from a file or a variable.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Raw<'a> {
    Toml(&'a toml::Value),
    Text(&'a str),
}

impl Raw<'_> {
    pub(crate) fn shown(&self) -> String {
        match self {
            Raw::Toml(v) => v.to_string(),
            Raw::Text(s) => (*s).to_owned(),
        }
    }
}

/// One key's value as a file or a variable gave it, with where it came from;
/// the typed readers answer errors that name the key, the value and the origin.
#[derive(Debug, Clone, Copy)]
pub struct SettingValue<'a> {
    key: &'static str,
    raw: Raw<'a>,
    origin: &'a str,
}

impl<'a> SettingValue<'a> {
    pub(crate) fn new(key: &'static str, raw: Raw<'a>, origin: &'a str) -> Self {
        Self { key, raw, origin }
    }

    /// The key being set.
    pub fn key(&self) -> &'static str {
        self.key
    }

    /// Where the value came from: `file.toml:3` or `environment FLIGHTDECK_X`.
    pub fn origin(&self) -> &str {
        self.origin
    }

    /// An invalid-value error for this key, value and origin.
    pub fn invalid(&self, expected: &str) -> SettingsError {
        SettingsError::InvalidValue {
            key: self.key,
            value: self.raw.shown(),
            origin: self.origin.to_owned(),
            expected: expected.to_owned(),
        }
    }

    pub(crate) fn toml(&self) -> Option<&'a toml::Value> {
        match self.raw {
            Raw::Toml(v) => Some(v),
            Raw::Text(_) => None,
        }
    }

    /// The value as text (a TOML string, or a variable's text).
    ///
    /// # Errors
    ///
    /// When a file gave another TOML type.
    pub fn string(&self) -> Result<String, SettingsError> {
        match self.raw {
            Raw::Toml(toml::Value::String(s)) => Ok(s.clone()),
            Raw::Text(s) => Ok(s.to_owned()),
            Raw::Toml(_) => Err(self.invalid("a string")),
        }
    }

    /// The value as a boolean (`true`/`false`; a variable may also say
    /// `1`/`0`, `yes`/`no`, `on`/`off`).
    ///
    /// # Errors
    ///
    /// When the value is none of those.
    pub fn boolean(&self) -> Result<bool, SettingsError> {
        match self.raw {
            Raw::Toml(toml::Value::Boolean(b)) => Ok(*b),
            Raw::Text(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(self.invalid("true or false")),
            },
            Raw::Toml(_) => Err(self.invalid("true or false")),
        }
    }

    /// The value as a number (a TOML integer or float, or a variable's text).
    ///
    /// # Errors
    ///
    /// When the value is not a number.
    pub fn number(&self) -> Result<f64, SettingsError> {
        match self.raw {
            Raw::Toml(toml::Value::Float(f)) => Ok(*f),
            Raw::Toml(toml::Value::Integer(i)) => Ok(*i as f64),
            Raw::Text(s) => s
                .trim()
                .parse::<f64>()
                .map_err(|_| self.invalid("a number")),
            Raw::Toml(_) => Err(self.invalid("a number")),
        }
    }

    /// The value as a whole number, 0 or more.
    ///
    /// # Errors
    ///
    /// When the value is not a whole number or is negative.
    pub fn integer(&self) -> Result<usize, SettingsError> {
        match self.raw {
            Raw::Toml(toml::Value::Integer(i)) => {
                usize::try_from(*i).map_err(|_| self.invalid("a whole number, 0 or more"))
            }
            Raw::Text(s) => s
                .trim()
                .parse::<usize>()
                .map_err(|_| self.invalid("a whole number, 0 or more")),
            Raw::Toml(_) => Err(self.invalid("a whole number")),
        }
    }

    /// The value as a path; an empty text means none.
    ///
    /// # Errors
    ///
    /// When a file gave another TOML type than a string.
    pub fn path(&self) -> Result<Option<PathBuf>, SettingsError> {
        let s = self.string()?;
        Ok((!s.is_empty()).then(|| PathBuf::from(s)))
    }
}

/// Where each key's value came from, for error messages.
#[derive(Debug, Default)]
pub(crate) struct Origins(HashMap<&'static str, String>);

/// Range checks for [`SettingsSection::validate`]: errors name the key, the
/// value, where it was set (or "settings" for a default or a value set in
/// code) and what is allowed.
#[derive(Debug)]
pub struct SettingsCheck<'a> {
    origins: Option<&'a Origins>,
}

impl SettingsCheck<'static> {
    /// Checks with no origins known (values set in code): errors say
    /// "settings".
    pub fn in_code() -> Self {
        Self { origins: None }
    }
}

impl<'a> SettingsCheck<'a> {
    pub(crate) fn new(origins: &'a Origins) -> Self {
        Self {
            origins: Some(origins),
        }
    }

    /// Where `key` was set.
    pub fn origin(&self, key: &str) -> String {
        self.origins
            .and_then(|o| o.0.get(key).cloned())
            .unwrap_or_else(|| "settings".into())
    }

    /// An invalid-value error for `key`.
    pub fn invalid(&self, key: &'static str, value: String, expected: &str) -> SettingsError {
        SettingsError::InvalidValue {
            key,
            value,
            origin: self.origin(key),
            expected: expected.to_owned(),
        }
    }

    /// `v` must be finite and within `range`; a tuple of [`Bound`]s gives
    /// open ends, e.g. `(Excluded(0.0), Excluded(1.0))`.
    ///
    /// # Errors
    ///
    /// [`SettingsError::InvalidValue`] saying `expected`.
    pub fn within(
        &self,
        key: &'static str,
        v: f64,
        range: impl RangeBounds<f64>,
        expected: &str,
    ) -> Result<(), SettingsError> {
        if v.is_finite() && range.contains(&v) {
            Ok(())
        } else {
            Err(self.invalid(key, v.to_string(), expected))
        }
    }

    /// `v` must be finite and at least `lo`.
    ///
    /// # Errors
    ///
    /// [`SettingsError::InvalidValue`] saying `expected`.
    pub fn at_least(
        &self,
        key: &'static str,
        v: f64,
        lo: f64,
        expected: &str,
    ) -> Result<(), SettingsError> {
        self.within(key, v, lo.., expected)
    }

    /// `v` must be finite and above `lo`.
    ///
    /// # Errors
    ///
    /// [`SettingsError::InvalidValue`] saying `expected`.
    pub fn above(
        &self,
        key: &'static str,
        v: f64,
        lo: f64,
        expected: &str,
    ) -> Result<(), SettingsError> {
        self.within(key, v, (Bound::Excluded(lo), Bound::Unbounded), expected)
    }

    /// `v` must be a share strictly between 0 and 1.
    ///
    /// # Errors
    ///
    /// [`SettingsError::InvalidValue`] saying `expected`.
    pub fn open_share(
        &self,
        key: &'static str,
        v: f64,
        expected: &str,
    ) -> Result<(), SettingsError> {
        self.within(
            key,
            v,
            (Bound::Excluded(0.0), Bound::Excluded(1.0)),
            expected,
        )
    }
}

/// The sections being loaded together (obs-core's own first), and which
/// owns each key.
pub(crate) struct Sections<'s, 'x> {
    own: &'s mut dyn SettingsSection,
    others: &'s mut [&'x mut dyn SettingsSection],
    origins: Origins,
}

impl<'s, 'x> Sections<'s, 'x> {
    /// The sections, or an error when two claim the same key.
    pub(crate) fn new(
        own: &'s mut dyn SettingsSection,
        others: &'s mut [&'x mut dyn SettingsSection],
    ) -> Result<Self, SettingsError> {
        let sections = Self {
            own,
            others,
            origins: Origins::default(),
        };
        let mut seen: Vec<&'static str> = Vec::new();
        for key in sections.keys() {
            if seen.contains(&key) {
                return Err(SettingsError::UnknownKey {
                    key: key.to_owned(),
                    origin: "two settings sections (a key belongs to one)".into(),
                    known: seen.join(", "),
                });
            }
            seen.push(key);
        }
        Ok(sections)
    }

    fn len(&self) -> usize {
        self.others.len() + 1
    }

    fn section(&self, i: usize) -> &dyn SettingsSection {
        if i == 0 {
            &*self.own
        } else {
            &*self.others[i - 1]
        }
    }

    /// Every key of every section, in order.
    pub(crate) fn keys(&self) -> Vec<&'static str> {
        (0..self.len())
            .flat_map(|i| self.section(i).keys().iter().copied())
            .collect()
    }

    /// The owning section's index and key matching `key`, if any.
    fn owner(&self, key: &str) -> Option<(usize, &'static str)> {
        (0..self.len()).find_map(|i| {
            self.section(i)
                .keys()
                .iter()
                .find(|k| **k == key)
                .map(|k| (i, *k))
        })
    }

    /// Sets `key` in the section that owns it.
    pub(crate) fn apply(
        &mut self,
        key: &str,
        raw: Raw<'_>,
        origin: &str,
    ) -> Result<(), SettingsError> {
        let Some((i, key)) = self.owner(key) else {
            return Err(SettingsError::UnknownKey {
                key: key.to_owned(),
                origin: origin.to_owned(),
                known: self.keys().join(", "),
            });
        };
        let value = SettingValue::new(key, raw, origin);
        if i == 0 {
            self.own.set(&value)?;
        } else {
            self.others[i - 1].set(&value)?;
        }
        self.origins.0.insert(key, origin.to_owned());
        Ok(())
    }

    /// Whether some section owns `key`.
    pub(crate) fn owns(&self, key: &str) -> bool {
        self.owner(key).is_some()
    }

    /// Validates every section, in order.
    pub(crate) fn validate(&self) -> Result<(), SettingsError> {
        let check = SettingsCheck::new(&self.origins);
        (0..self.len()).try_for_each(|i| self.section(i).validate(&check))
    }

    /// Applies a TOML file's top-level keys.
    pub(crate) fn apply_toml(&mut self, text: &str, path: &Path) -> Result<(), SettingsError> {
        let table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| SettingsError::Parse {
                    path: path.to_path_buf(),
                    message: e.to_string().trim_end().replace('\n', " "),
                })?;
        for (key, value) in &table {
            let origin = match line_of_key(text, key) {
                Some(line) => format!("{}:{line}", path.display()),
                None => path.display().to_string(),
            };
            self.apply(key, Raw::Toml(value), &origin)?;
        }
        Ok(())
    }
}

/// The 1-based line where `key` is set at the top level of a TOML text.
fn line_of_key(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            let l = line.trim_start();
            let rest = l
                .strip_prefix(key)
                .or_else(|| l.strip_prefix(&format!("\"{key}\"")))
                .or_else(|| l.strip_prefix(&format!("[{key}")));
            rest.is_some_and(|r| {
                let r = r.trim_start();
                r.starts_with('=') || r.starts_with('.') || r.starts_with(']')
            })
        })
        .map(|i| i + 1)
}
