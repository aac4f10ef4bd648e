//! `[evidence]`: where evidence goes, how it is signed and how long it is kept.

use std::path::PathBuf;

use serde::Deserialize;

use crate::Result;

/// Where evidence goes and how long it is kept.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceConfig {
    /// Local directory, `file://` URL or `s3://BUCKET/PREFIX` (see `vigil_evidence::store`).
    pub url: String,
    /// Days every evidence object is kept (default 400: more than a 12-month audit period plus the
    /// audit itself). On an S3 bucket with Object Lock, vigil sets the bucket's default retention to this,
    /// so nothing can delete or overwrite evidence sooner; `vigil evidence expire` disposes of what is older.
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
    /// Object Lock mode: `COMPLIANCE` (nobody, not even the account root, can shorten it) or `GOVERNANCE`
    /// (users with s3:BypassGovernanceRetention can).
    #[serde(default = "default_lock_mode")]
    pub object_lock_mode: String,
    /// The private key digests are signed with (PKCS#8 PEM, `vigil keys generate`); else
    /// `VIGIL_SIGNING_KEY_FILE` or `VIGIL_SIGNING_KEY`. Without one, the evidence is not signed and
    /// `vigil verify --public-key` cannot prove it.
    #[serde(default)]
    pub signing_key_file: Option<PathBuf>,
    /// A signed digest at least this often while running, and one at shutdown: `"1h"`, `"15m"`, `"90s"`
    /// or seconds (default 1 h).
    #[serde(default = "default_digest_interval", deserialize_with = "duration")]
    pub digest_interval: std::time::Duration,
    /// `vigil evidence expire` refuses a retention shorter than this (default 365: a SOC 2 Type II period
    /// plus margin) unless `--allow-short-retention`.
    #[serde(default = "default_min_retention_days")]
    pub min_retention_days: u32,
}

fn default_digest_interval() -> std::time::Duration {
    vigil_evidence::digest::DEFAULT_DIGEST_INTERVAL
}

fn default_min_retention_days() -> u32 {
    vigil_evidence::expire::DEFAULT_MIN_RETENTION_DAYS
}

/// Reads a duration written as seconds or as `90s`, `15m`, `1h`, `1d`.
fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<std::time::Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Seconds(u64),
        Text(String),
    }
    match Written::deserialize(d)? {
        Written::Seconds(s) => Ok(std::time::Duration::from_secs(s)),
        Written::Text(t) => parse_duration(&t).map_err(serde::de::Error::custom),
    }
}

/// Parses `90s`, `15m`, `1h`, `1d` or plain seconds.
pub fn parse_duration(text: &str) -> std::result::Result<std::time::Duration, String> {
    let t = text.trim();
    let (number, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let scale = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("`{text}` is no duration: write 90s, 15m, 1h or 1d")),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("`{text}` is no duration: write 90s, 15m, 1h or 1d"))
}

/// Default evidence retention in days.
pub const DEFAULT_RETENTION_DAYS: u32 = 400;

fn default_retention_days() -> u32 {
    DEFAULT_RETENTION_DAYS
}

fn default_lock_mode() -> String {
    "COMPLIANCE".to_string()
}

impl EvidenceConfig {
    /// What signs this evidence: the key from `signing_key_file`, else `VIGIL_SIGNING_KEY_FILE` or
    /// `VIGIL_SIGNING_KEY`; `None` when none is set.
    pub fn signer(&self) -> Result<Option<std::sync::Arc<vigil_evidence::digest::Signer>>> {
        let key = vigil_evidence::keys::PrivateKey::from_file_or_env(self.signing_key_file.as_deref())?;
        Ok(key.map(|k| std::sync::Arc::new(vigil_evidence::digest::Signer::new(k, self.digest_interval))))
    }

    /// Evidence at `url` with the default retention.
    pub fn at(url: impl Into<String>) -> EvidenceConfig {
        EvidenceConfig {
            url: url.into(),
            retention_days: DEFAULT_RETENTION_DAYS,
            object_lock_mode: default_lock_mode(),
            signing_key_file: None,
            digest_interval: default_digest_interval(),
            min_retention_days: default_min_retention_days(),
        }
    }
}
