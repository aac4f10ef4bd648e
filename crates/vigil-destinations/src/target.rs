//! Where alerts go and with which secret: a destination as written (`--alerts URL` or an
//! `[[alerts.destinations]]` table, [`DestinationConfig`]) resolved into a [`Target`].
//!
//! | written | kind | endpoint | secret (env, else file) |
//! | --- | --- | --- | --- |
//! | `https://HOST/PATH` | webhook | as written | HMAC key: `VIGIL_WEBHOOK_SECRET`, `VIGIL_WEBHOOK_SECRET_FILE` (or `secret_env` / `secret_file`) |
//! | `slack+https://hooks.slack.com/services/...` | Slack | the incoming-webhook URL (itself the secret) | none |
//! | `slack://` | Slack | `VIGIL_SLACK_WEBHOOK_URL`, `VIGIL_SLACK_WEBHOOK_URL_FILE` (or `url_env` / `url_file`) | none |
//! | `pagerduty://` | PagerDuty Events v2 | `https://events.pagerduty.com/v2/enqueue` | routing key: `VIGIL_PAGERDUTY_ROUTING_KEY`, `VIGIL_PAGERDUTY_ROUTING_KEY_FILE` (or `routing_key_env` / `routing_key_file`) |
//! | `pagerduty+https://HOST/PATH` | PagerDuty Events v2 | as written (EU service region, a relay) | as above |
//!
//! `http://` is accepted for a loopback host only (127.0.0.0/8, `::1`, `localhost`: tests, a local
//! relay); alerts leave the machine over TLS. A file secret is read whole, one trailing line break
//! dropped. Secrets are read when the pipeline starts: a missing one stops it with what to set.
//! Nothing here prints a secret: [`Target::label`] keeps the scheme and host of the URL only (a
//! webhook's path or query may hold a token, a Slack URL is one).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// The default PagerDuty Events API v2 endpoint.
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// A destination as written in `[[alerts.destinations]]` (or made from an `--alerts` URL).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationConfig {
    /// `https://...`, `slack+https://...`, `slack://`, `pagerduty://`, `pagerduty+https://...` (module docs).
    #[serde(default)]
    pub url: Option<String>,
    /// The URL from this environment variable instead (a Slack URL is a secret: keep it out of files).
    #[serde(default)]
    pub url_env: Option<String>,
    /// The URL from this file instead.
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    /// Webhooks: the environment variable holding the HMAC key (default `VIGIL_WEBHOOK_SECRET`).
    #[serde(default)]
    pub secret_env: Option<String>,
    /// Webhooks: the file holding the HMAC key (default `VIGIL_WEBHOOK_SECRET_FILE`'s value).
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// PagerDuty: the environment variable holding the routing key (default `VIGIL_PAGERDUTY_ROUTING_KEY`).
    #[serde(default)]
    pub routing_key_env: Option<String>,
    /// PagerDuty: the file holding the routing key (default `VIGIL_PAGERDUTY_ROUTING_KEY_FILE`'s value).
    #[serde(default)]
    pub routing_key_file: Option<PathBuf>,
    /// Seconds one request may take (default 10); longer counts as a failed attempt.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// First wait after a failed attempt, in milliseconds (default 1000); doubled per failure, with jitter.
    #[serde(default = "default_retry_initial_ms")]
    pub retry_initial_ms: u64,
    /// Longest wait between attempts, in seconds (default 300).
    #[serde(default = "default_retry_max_secs")]
    pub retry_max_secs: u64,
}

impl std::fmt::Debug for DestinationConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may be a secret (Slack) or hold one (a token in a webhook path).
        f.debug_struct("DestinationConfig")
            .field("url", &self.url.as_deref().map(label_of))
            .field("url_env", &self.url_env)
            .field("url_file", &self.url_file)
            .field("secret_env", &self.secret_env)
            .field("secret_file", &self.secret_file)
            .field("routing_key_env", &self.routing_key_env)
            .field("routing_key_file", &self.routing_key_file)
            .finish_non_exhaustive()
    }
}

fn default_timeout_secs() -> u64 {
    10
}

fn default_retry_initial_ms() -> u64 {
    1_000
}

fn default_retry_max_secs() -> u64 {
    300
}

impl DestinationConfig {
    /// A destination from a URL as given to `--alerts`, with the defaults.
    pub fn from_url(url: &str) -> Self {
        DestinationConfig {
            url: Some(url.to_string()),
            url_env: None,
            url_file: None,
            secret_env: None,
            secret_file: None,
            routing_key_env: None,
            routing_key_file: None,
            timeout_secs: default_timeout_secs(),
            retry_initial_ms: default_retry_initial_ms(),
            retry_max_secs: default_retry_max_secs(),
        }
    }

    /// Whether `flag` (an `--alerts` value) names a destination rather than a file.
    pub fn is_destination(flag: &str) -> bool {
        let lower = flag.to_ascii_lowercase();
        ["https://", "http://", "slack+", "slack://", "pagerduty://", "pagerduty+"].iter().any(|p| lower.starts_with(p))
    }

    /// The destination as shown to people (no secret).
    pub fn label(&self) -> String {
        match (&self.url, &self.url_env, &self.url_file) {
            (Some(url), _, _) => label_of(url),
            (None, Some(var), _) => format!("(URL from ${var})"),
            (None, None, Some(file)) => format!("(URL from {})", file.display()),
            (None, None, None) => "(no url)".to_string(),
        }
    }

    /// Reads the URL and secrets (from `env`, a lookup of environment variables) and checks them.
    pub fn resolve(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Target> {
        let label = self.label();
        let config = |reason: String| Error::Config { destination: label.clone(), reason };
        let written = match (&self.url, &self.url_env, &self.url_file) {
            (Some(url), None, None) => url.clone(),
            (None, Some(_), None) | (None, None, Some(_)) => {
                let (value, _) = secret(env, &label, "the URL", self.url_env.as_deref(), self.url_file.as_ref(), None)?;
                value
            }
            (None, None, None) => return Err(config("give url, url_env or url_file".into())),
            _ => return Err(config("give one of url, url_env and url_file".into())),
        };
        let lower = written.to_ascii_lowercase();
        let (kind, endpoint) = if let Some(rest) = strip_prefix(&written, &lower, "slack+") {
            (Kind::Slack, rest.to_string())
        } else if lower == "slack://" || lower == "slack:" {
            let (url, _) = secret(
                env,
                &label,
                "the Slack webhook URL",
                Some("VIGIL_SLACK_WEBHOOK_URL"),
                None,
                Some("VIGIL_SLACK_WEBHOOK_URL_FILE"),
            )?;
            (Kind::Slack, url)
        } else if lower == "pagerduty://" || lower == "pagerduty:" {
            (Kind::PagerDuty, PAGERDUTY_EVENTS_URL.to_string())
        } else if let Some(rest) = strip_prefix(&written, &lower, "pagerduty+") {
            (Kind::PagerDuty, rest.to_string())
        } else {
            (Kind::Webhook, written.clone())
        };
        let url = reqwest::Url::parse(&endpoint)
            .map_err(|e| config(format!("not a URL ({e}): write https://HOST/PATH, slack://, or pagerduty://")))?;
        let host = url.host_str().unwrap_or_default().to_string();
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&host) => {}
            "http" => {
                return Err(config(
                    "alerts leave the machine over https only (http:// is for a loopback host: 127.0.0.1, ::1, \
                     localhost)"
                        .into(),
                ));
            }
            other => {
                return Err(config(format!(
                    "scheme `{other}` is no alert destination: write https://..., slack+https://..., slack://, \
                     pagerduty:// or pagerduty+https://..."
                )));
            }
        }
        if host.is_empty() {
            return Err(config("the URL has no host".into()));
        }
        if kind == Kind::Slack && !url.username().is_empty() {
            return Err(config("a Slack webhook URL has no user name or password".into()));
        }
        let label = format!(
            "{} {}://{}{}/…",
            kind.as_str(),
            url.scheme(),
            host,
            url.port().map(|p| format!(":{p}")).unwrap_or_default()
        );
        let key = match kind {
            Kind::Webhook => Some(
                secret(
                    env,
                    &label,
                    "the webhook's HMAC secret",
                    Some(self.secret_env.as_deref().unwrap_or("VIGIL_WEBHOOK_SECRET")),
                    self.secret_file.as_ref(),
                    self.secret_file.is_none().then_some("VIGIL_WEBHOOK_SECRET_FILE"),
                )?
                .0,
            ),
            Kind::PagerDuty => Some(
                secret(
                    env,
                    &label,
                    "the PagerDuty routing key",
                    Some(self.routing_key_env.as_deref().unwrap_or("VIGIL_PAGERDUTY_ROUTING_KEY")),
                    self.routing_key_file.as_ref(),
                    self.routing_key_file.is_none().then_some("VIGIL_PAGERDUTY_ROUTING_KEY_FILE"),
                )?
                .0,
            ),
            Kind::Slack => None,
        };
        if self.timeout_secs == 0 || self.retry_initial_ms == 0 || self.retry_max_secs == 0 {
            return Err(config("timeout_secs, retry_initial_ms and retry_max_secs must be at least 1".into()));
        }
        // The spool of a destination is named by what it sends to (never by a secret in the clear).
        let mut hasher = Sha256::new();
        hasher.update(kind.as_str().as_bytes());
        hasher.update([0]);
        hasher.update(url.as_str().as_bytes());
        let spool_name = format!("{}-{}", kind.as_str(), &hex::encode(hasher.finalize())[..16]);
        Ok(Target {
            kind,
            url,
            key: key.map(Secret),
            label,
            spool_name,
            timeout: Duration::from_secs(self.timeout_secs),
            retry_initial: Duration::from_millis(self.retry_initial_ms),
            retry_max: Duration::from_secs(self.retry_max_secs),
        })
    }
}

fn strip_prefix<'a>(written: &'a str, lower: &str, prefix: &str) -> Option<&'a str> {
    lower.starts_with(prefix).then(|| &written[prefix.len()..])
}

/// A URL as shown to people: scheme and host, the rest elided (it may hold a token).
fn label_of(url: &str) -> String {
    let lower = url.to_ascii_lowercase();
    let (prefix, rest) = ["slack+", "pagerduty+"]
        .iter()
        .find(|p| lower.starts_with(*p))
        .map_or(("", url), |p| (&url[..p.len()], &url[p.len()..]));
    match rest.split_once("://") {
        Some((scheme, after)) => {
            let authority = after.split(['/', '?', '#']).next().unwrap_or_default();
            let host = authority.rsplit('@').next().unwrap_or_default();
            let tail = if after.len() > authority.len() { "/…" } else { "" };
            format!("{prefix}{scheme}://{host}{tail}")
        }
        None => "(not a URL)".to_string(),
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Reads a secret from the variable `var`, else the file `file`, else the file named by the variable
/// `file_var`. Returns the value and where it came from (for messages).
fn secret(
    env: &dyn Fn(&str) -> Option<String>,
    destination: &str,
    what: &str,
    var: Option<&str>,
    file: Option<&PathBuf>,
    file_var: Option<&str>,
) -> Result<(String, String)> {
    let error = |reason: String| Error::Secret { destination: destination.to_string(), reason };
    if let Some(var) = var
        && let Some(value) = env(var).filter(|v| !v.is_empty())
    {
        return Ok((value, format!("${var}")));
    }
    let path = file.cloned().or_else(|| file_var.and_then(env).filter(|v| !v.is_empty()).map(PathBuf::from));
    if let Some(path) = path {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| error(format!("cannot read {what} from {}: {e}", path.display())))?;
        let value = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text).to_string();
        if value.is_empty() {
            return Err(error(format!("{} is empty: write {what} into it", path.display())));
        }
        return Ok((value, path.display().to_string()));
    }
    let mut places: Vec<String> = var.map(|v| format!("the environment variable {v}")).into_iter().collect();
    places.extend(file_var.map(|v| format!("a file named by {v}")));
    if places.is_empty() {
        places.push("the file given".into());
    }
    Err(error(format!("{what} is not set: set {}", places.join(" or "))))
}

/// The kind of a destination, which decides the request's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A generic HTTPS webhook: the alert as JSON, signed with HMAC-SHA256.
    Webhook,
    /// A Slack incoming webhook: a message (`text` and `blocks`).
    Slack,
    /// PagerDuty Events API v2: a `trigger` event with the alert id as `dedup_key`.
    PagerDuty,
}

impl Kind {
    /// The kind's name, in labels, metrics and spool directories.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Webhook => "webhook",
            Kind::Slack => "slack",
            Kind::PagerDuty => "pagerduty",
        }
    }
}

/// A secret value: never printed.
#[derive(Clone)]
pub(crate) struct Secret(pub(crate) String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// A resolved destination: kind, endpoint, secret and retry policy.
#[derive(Clone)]
pub struct Target {
    /// What it is.
    pub kind: Kind,
    url: reqwest::Url,
    /// HMAC key (webhook) or routing key (PagerDuty).
    pub(crate) key: Option<Secret>,
    label: String,
    spool_name: String,
    /// Per-request time limit.
    pub timeout: Duration,
    /// First back-off.
    pub retry_initial: Duration,
    /// Longest back-off.
    pub retry_max: Duration,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target").field("label", &self.label).field("kind", &self.kind).finish_non_exhaustive()
    }
}

impl Target {
    /// The destination as shown to people and in metrics: kind, scheme and host (`webhook https://siem.example.com/…`).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The spool subdirectory of this destination: kind and a hash of its endpoint.
    pub fn spool_name(&self) -> &str {
        &self.spool_name
    }

    /// The endpoint (a secret for Slack: never print it).
    pub(crate) fn url(&self) -> &reqwest::Url {
        &self.url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn urls_become_kinds_with_their_secrets_and_labels_hide_paths() {
        let vars = [
            ("VIGIL_WEBHOOK_SECRET", "hmac-key"),
            ("VIGIL_PAGERDUTY_ROUTING_KEY", "R0UT1NGKEY"),
            ("VIGIL_SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T0/B0/s3cr3t"),
        ];
        let env = env(&vars);
        let web = DestinationConfig::from_url("https://siem.example.com:8443/in/tok3n?x=1").resolve(&env).unwrap();
        assert_eq!((web.kind, web.label()), (Kind::Webhook, "webhook https://siem.example.com:8443/…"));
        assert_eq!(web.key.as_ref().unwrap().0, "hmac-key");
        let slack =
            DestinationConfig::from_url("slack+https://hooks.slack.com/services/T0/B0/xyz").resolve(&env).unwrap();
        assert_eq!((slack.kind, slack.url().as_str()), (Kind::Slack, "https://hooks.slack.com/services/T0/B0/xyz"));
        assert!(!slack.label().contains("xyz") && !format!("{slack:?}").contains("xyz"));
        let from_env = DestinationConfig::from_url("slack://").resolve(&env).unwrap();
        assert!(from_env.url().as_str().ends_with("s3cr3t") && !from_env.label().contains("s3cr3t"));
        let pd = DestinationConfig::from_url("pagerduty://").resolve(&env).unwrap();
        assert_eq!((pd.kind, pd.url().as_str()), (Kind::PagerDuty, PAGERDUTY_EVENTS_URL));
        assert!(!format!("{pd:?}").contains("R0UT1NGKEY"));
        assert_ne!(web.spool_name(), slack.spool_name());
        assert!(DestinationConfig::from_url("http://127.0.0.1:9/x").resolve(&env).is_ok());
        let config = DestinationConfig::from_url("https://h/p/tok3n");
        assert!(!format!("{config:?}").contains("tok3n"));
    }

    #[test]
    fn refusals_say_what_to_do_and_show_no_secret() {
        let none = env(&[]);
        let err = DestinationConfig::from_url("http://siem.example.com/hook/t0ken").resolve(&none).unwrap_err();
        assert!(err.to_string().contains("https only") && !err.to_string().contains("t0ken"), "{err}");
        let err = DestinationConfig::from_url("https://siem.example.com/hook/t0ken").resolve(&none).unwrap_err();
        assert!(err.to_string().contains("VIGIL_WEBHOOK_SECRET") && !err.to_string().contains("t0ken"), "{err}");
        assert_eq!(err.class(), vigil_schema::ErrorClass::User);
        let err = DestinationConfig::from_url("pagerduty://").resolve(&none).unwrap_err().to_string();
        assert!(err.contains("VIGIL_PAGERDUTY_ROUTING_KEY"), "{err}");
        let err = DestinationConfig::from_url("slack://").resolve(&none).unwrap_err().to_string();
        assert!(err.contains("VIGIL_SLACK_WEBHOOK_URL"), "{err}");
        let err = DestinationConfig::from_url("ftp://x/y").resolve(&none).unwrap_err().to_string();
        assert!(err.contains("no alert destination") || err.contains("https"), "{err}");
    }

    #[test]
    fn secrets_come_from_files_without_their_line_break() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        std::fs::write(&file, "from-file\n").unwrap();
        let path = file.to_string_lossy().into_owned();
        let vars = [("VIGIL_PAGERDUTY_ROUTING_KEY_FILE", path.as_str())];
        let pd = DestinationConfig::from_url("pagerduty://").resolve(&env(&vars)).unwrap();
        assert_eq!(pd.key.unwrap().0, "from-file");
    }
}
