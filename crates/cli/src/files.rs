//! Atomic file writes: a reader never sees half a file, and a failed write
//! leaves the previous file in place.

use std::path::Path;

use anyhow::Context;

/// Reads an input file named on the command line as text. A file that is
/// missing or unreadable, or not UTF-8, is bad input (exit 2), named with
/// the position of the first bad byte; a byte order mark is dropped.
pub(crate) fn read_input(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path)
        .map_err(|e| crate::BadInput::new(format!("cannot read {}: {e}", path.display())))?;
    decode(path, &bytes)
}

/// [`read_input`], where `-` reads standard input and more than `max` bytes
/// is bad input (the read stops there).
pub(crate) fn read_input_capped(path: &Path, max: u64) -> anyhow::Result<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    let read = if path == Path::new("-") {
        std::io::stdin().take(max + 1).read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(max + 1).read_to_end(&mut bytes))
    };
    read.map_err(|e| crate::BadInput::new(format!("cannot read {}: {e}", path.display())))?;
    if bytes.len() as u64 > max {
        crate::bad_input!("{}: larger than {} MiB", path.display(), max >> 20);
    }
    decode(path, &bytes)
}

/// UTF-8 text, or bad input naming the first bad byte's position.
fn decode(path: &Path, bytes: &[u8]) -> anyhow::Result<String> {
    match flightdeck::obs::locate::utf8_text(bytes) {
        Ok(text) => Ok(text.to_owned()),
        Err(e) => Err(crate::BadInput::new(format!("{}:{e}", path.display())).into()),
    }
}

/// The settings: defaults, then the TOML file (`--config`, else
/// `FLIGHTDECK_CONFIG`), then the `OTEL_*` and `FLIGHTDECK_*` variables.
pub(crate) fn load_settings(config: Option<&Path>) -> anyhow::Result<flightdeck::Settings> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    let from_env = flightdeck::obs::config_file_from(&env);
    let config = config.map(Path::to_path_buf).or(from_env);
    Ok(flightdeck::Settings::load(config.as_deref(), env)?)
}

/// Writes `contents` to `path` atomically (obs-core's `write_atomic`: a
/// temporary file in the same directory, then a rename), with an error that
/// names the path.
pub(crate) fn write_atomic(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    flightdeck::obs::write_atomic(path, contents)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Spans and JSON logs into these files, whatever the settings said: what
/// `demo` and `serve --out` record is what their users read afterwards.
pub(crate) fn record_to(
    settings: &mut flightdeck::ObservabilitySettings,
    traces: &Path,
    logs: &Path,
) {
    settings.trace_file_path = Some(traces.to_path_buf());
    settings.log_file_path = Some(logs.to_path_buf());
    settings.tracing_enabled = true;
    settings.structured_logging = true;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_directory_is_an_error_naming_the_path() {
        let err = write_atomic(Path::new("/nonexistent-dir/x.json"), b"x").unwrap_err();
        assert!(
            format!("{err:#}").contains("/nonexistent-dir/x.json"),
            "{err:#}"
        );
    }
}
