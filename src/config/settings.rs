//! The one reader of app settings: a variable lookup (the process environment) with, for a
//! standalone start, the `Values` of local.settings.json behind it — real environment variables
//! win, as with `func start` — and the small typed reads every settings module shares. Each
//! error names the setting and never shows a value that could be a secret.

use std::collections::HashMap;
use std::time::Duration;

use super::{ConfigError, error};
use crate::domain::TenantId;

/// A variable lookup: the process environment, or a test's table.
type Lookup<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

pub(super) struct Settings<'a> {
    env: Lookup<'a>,
    local: HashMap<String, String>,
}

impl<'a> Settings<'a> {
    /// `env` first, then `local` (local.settings.json `Values`; empty under the host).
    pub(super) fn new(
        env: impl Fn(&str) -> Option<String> + 'a,
        local: HashMap<String, String>,
    ) -> Self {
        Settings {
            env: Box::new(env),
            local,
        }
    }

    /// The value as set, blank or not.
    pub(super) fn get(&self, name: &str) -> Option<String> {
        (self.env)(name).or_else(|| self.local.get(name).cloned())
    }

    /// The value trimmed, when it is set and not blank.
    pub(super) fn present(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// A `true`/`false` (or `1`/`0`) setting; blank is the default.
    pub(super) fn flag(&self, name: &str, default: bool) -> Result<bool, ConfigError> {
        match self.present(name).map(|v| v.to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if v == "true" || v == "1" => Ok(true),
            Some(v) if v == "false" || v == "0" => Ok(false),
            Some(_) => Err(error(format!("{name} must be true or false"))),
        }
    }

    /// A timeout in milliseconds, 1 to 60000.
    pub(super) fn milliseconds(&self, name: &str, default: u64) -> Result<Duration, ConfigError> {
        match self.get(name) {
            None => Ok(Duration::from_millis(default)),
            Some(text) => text
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|ms| (1..=60_000).contains(ms))
                .map(Duration::from_millis)
                .ok_or_else(|| error(format!("{name} must be an integer from 1 to 60000"))),
        }
    }

    /// A whole number of seconds, at least 1.
    pub(super) fn seconds(&self, name: &str, default: u64) -> Result<Duration, ConfigError> {
        match self.get(name) {
            None => Ok(Duration::from_secs(default)),
            Some(text) => text
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|s| *s >= 1)
                .map(Duration::from_secs)
                .ok_or_else(|| {
                    error(format!(
                        "{name} must be a whole number of seconds, at least 1"
                    ))
                }),
        }
    }

    /// A rate per second, per instance: an integer from 1 to 1000 (`unit` names what is
    /// counted, for the error).
    pub(super) fn rate(&self, name: &str, default: u32, unit: &str) -> Result<u32, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(text) => text
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|rate| (1..=1000).contains(rate))
                .ok_or_else(|| {
                    error(format!(
                        "{name} must be an integer from 1 to 1000 ({unit} per second)"
                    ))
                }),
        }
    }

    /// A comma-separated list of tenant ids (blanks skipped); `None` when unset or blank. The
    /// error names the setting and the bad entry.
    pub(super) fn tenant_list(&self, name: &str) -> Result<Option<Vec<TenantId>>, ConfigError> {
        let Some(list) = self.present(name) else {
            return Ok(None);
        };
        list.split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| {
                TenantId::parse(t).map_err(|_| {
                    error(format!(
                        "{name}: \"{}\" is not a valid tenantId",
                        t.escape_debug()
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

/// Settings from name/value pairs, for the settings modules' tests.
#[cfg(test)]
pub(super) fn of(pairs: &[(&str, &str)]) -> Settings<'static> {
    let values: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Settings::new(move |name| values.get(name).cloned(), HashMap::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_wins_over_local_settings() {
        let local = HashMap::from([
            ("A".to_string(), "local".to_string()),
            ("B".to_string(), "local".to_string()),
        ]);
        let settings = Settings::new(|name| (name == "A").then(|| " env ".to_string()), local);
        assert_eq!(settings.get("A").as_deref(), Some(" env "));
        assert_eq!(settings.present("A").as_deref(), Some("env"));
        assert_eq!(settings.get("B").as_deref(), Some("local"));
        assert_eq!(settings.get("C"), None);
    }

    #[test]
    fn typed_reads() {
        let s = of(&[
            ("T", "TRUE"),
            ("F", "0"),
            ("BLANK", " "),
            ("BAD", "yes"),
            ("MS", "250"),
            ("MS0", "0"),
            ("S", "60"),
            ("TENANTS", " a, b ,,"),
            ("BAD_TENANTS", "a,b c"),
        ]);
        assert_eq!(s.flag("T", false), Ok(true));
        assert_eq!(s.flag("F", true), Ok(false));
        assert_eq!(s.flag("BLANK", true), Ok(true));
        assert_eq!(s.flag("UNSET", false), Ok(false));
        assert!(
            s.flag("BAD", false)
                .unwrap_err()
                .to_string()
                .contains("BAD must be true or false")
        );
        assert_eq!(s.milliseconds("MS", 1), Ok(Duration::from_millis(250)));
        assert_eq!(s.milliseconds("UNSET", 7), Ok(Duration::from_millis(7)));
        assert!(s.milliseconds("MS0", 1).is_err());
        assert_eq!(s.seconds("S", 1), Ok(Duration::from_secs(60)));
        assert_eq!(s.rate("S", 1, "reads"), Ok(60));
        assert_eq!(s.rate("UNSET", 7, "reads"), Ok(7));
        for bad in ["MS0", "BAD", "BLANK"] {
            let e = s.rate(bad, 1, "reads").unwrap_err().to_string();
            assert_eq!(
                e,
                format!("{bad} must be an integer from 1 to 1000 (reads per second)")
            );
        }
        assert!(s.seconds("MS0", 1).is_err());
        assert_eq!(
            s.tenant_list("TENANTS").unwrap().unwrap(),
            [TenantId::parse("a").unwrap(), TenantId::parse("b").unwrap()]
        );
        assert_eq!(s.tenant_list("BLANK"), Ok(None));
        assert!(
            s.tenant_list("BAD_TENANTS")
                .unwrap_err()
                .to_string()
                .contains("\"b c\"")
        );
    }
}
