//! Connection settings: flags, then environment, then a config file, then
//! the `ticketd dev` defaults.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The gateway of `ticketd dev`.
pub(crate) const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// The config file's keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    /// Gateway base URLs, tried in order.
    #[serde(default)]
    pub(crate) urls: Vec<String>,
    /// One gateway base URL (shorthand for `urls = [url]`).
    #[serde(default)]
    pub(crate) url: Option<String>,
    /// Bearer token.
    #[serde(default)]
    pub(crate) token: Option<String>,
    /// Longest wait for one attempt, in seconds.
    #[serde(default)]
    pub(crate) timeout_secs: Option<u64>,
    /// Retries after the first attempt.
    #[serde(default)]
    pub(crate) retries_max: Option<u32>,
}

/// What the flags say (each `None` when not given).
#[derive(Debug, Default)]
pub(crate) struct Flags {
    pub(crate) urls: Vec<String>,
    pub(crate) token: Option<String>,
    pub(crate) config: Option<PathBuf>,
    pub(crate) timeout_secs: Option<u64>,
    pub(crate) retries_max: Option<u32>,
}

/// The settings in force.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) urls: Vec<String>,
    pub(crate) token: Option<String>,
    pub(crate) timeout_secs: Option<u64>,
    pub(crate) retries_max: Option<u32>,
}

/// Why the settings could not be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    #[error("config file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("{var}: {reason}")]
    Env { var: &'static str, reason: String },
}

/// Where the config file is looked for when neither a flag nor
/// `TICKETCTL_CONFIG` names one.
fn default_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let base =
        env("XDG_CONFIG_HOME").map(PathBuf::from).or_else(|| env("HOME").map(|h| Path::new(&h).join(".config")))?;
    Some(base.join("ticketctl").join("config.toml"))
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let err = |reason: String| ConfigError::File { path: path.display().to_string(), reason };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    toml::from_str(&text).map_err(|e| err(e.to_string()))
}

fn split_urls(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// Resolves flags over environment (`TICKETCTL_URL` comma-separated,
/// `TICKETCTL_TOKEN`, `TICKETCTL_CONFIG`, `TICKETCTL_TIMEOUT_SECS`,
/// `TICKETCTL_RETRIES_MAX`) over the config file.
pub(crate) fn resolve(flags: Flags, env: &dyn Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
    let named = flags.config.clone().or_else(|| env("TICKETCTL_CONFIG").map(PathBuf::from));
    let file = match named {
        // A file the user named must exist.
        Some(path) => read_file(&path)?,
        None => match default_path(env) {
            Some(path) if path.exists() => read_file(&path)?,
            _ => FileConfig::default(),
        },
    };
    let number = |var: &'static str| -> Result<Option<u64>, ConfigError> {
        env(var)
            .map(|v| v.trim().parse::<u64>().map_err(|e| ConfigError::Env { var, reason: e.to_string() }))
            .transpose()
    };
    let mut file_urls = file.urls;
    if let Some(url) = file.url {
        file_urls.insert(0, url);
    }
    let urls = if !flags.urls.is_empty() {
        flags.urls
    } else if let Some(text) = env("TICKETCTL_URL") {
        split_urls(&text)
    } else if !file_urls.is_empty() {
        file_urls
    } else {
        vec![DEFAULT_URL.to_string()]
    };
    let retries_env = match number("TICKETCTL_RETRIES_MAX")? {
        Some(n) => Some(
            u32::try_from(n).map_err(|e| ConfigError::Env { var: "TICKETCTL_RETRIES_MAX", reason: e.to_string() })?,
        ),
        None => None,
    };
    Ok(Settings {
        urls,
        token: flags.token.or_else(|| env("TICKETCTL_TOKEN")).or(file.token),
        timeout_secs: flags.timeout_secs.or(number("TICKETCTL_TIMEOUT_SECS")?).or(file.timeout_secs),
        retries_max: flags.retries_max.or(retries_env).or(file.retries_max),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn flags_beat_environment_beat_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "url = \"http://file:1\"\ntoken = \"file-token\"\ntimeout_secs = 7\nretries_max = 3\n")
            .unwrap();
        let p = path.to_str().unwrap();
        let s = resolve(Flags::default(), &env_of(&[("TICKETCTL_CONFIG", p)])).unwrap();
        assert_eq!(s.urls, ["http://file:1"]);
        assert_eq!((s.token.as_deref(), s.timeout_secs, s.retries_max), (Some("file-token"), Some(7), Some(3)));
        let env =
            env_of(&[("TICKETCTL_CONFIG", p), ("TICKETCTL_URL", "http://a:1, http://b:2"), ("TICKETCTL_TOKEN", "env")]);
        let s = resolve(Flags::default(), &env).unwrap();
        assert_eq!(s.urls, ["http://a:1", "http://b:2"]);
        assert_eq!(s.token.as_deref(), Some("env"));
        let flags = Flags { urls: vec!["http://flag:3".into()], token: Some("flag".into()), ..Flags::default() };
        let s = resolve(flags, &env).unwrap();
        assert_eq!((s.urls, s.token.as_deref()), (vec!["http://flag:3".to_string()], Some("flag")));
    }

    #[test]
    fn defaults_and_bad_sources() {
        let s = resolve(Flags::default(), &env_of(&[("HOME", "/nonexistent-home")])).unwrap();
        assert_eq!(s, Settings { urls: vec![DEFAULT_URL.into()], token: None, timeout_secs: None, retries_max: None });
        let missing = Flags { config: Some("/nonexistent/ticketctl.toml".into()), ..Flags::default() };
        assert!(matches!(resolve(missing, &env_of(&[])), Err(ConfigError::File { .. })));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "adress = \"typo\"\n").unwrap();
        let typo = Flags { config: Some(path), ..Flags::default() };
        let e = resolve(typo, &env_of(&[])).unwrap_err().to_string();
        assert!(e.contains("adress"), "{e}");
        let e = resolve(Flags::default(), &env_of(&[("TICKETCTL_TIMEOUT_SECS", "soon")])).unwrap_err();
        assert!(matches!(e, ConfigError::Env { var: "TICKETCTL_TIMEOUT_SECS", .. }));
    }
}
