//! The registry of input formats: one line per format (its variant, its name in configs and
//! `--input FORMAT:PATH`, and the function that builds its normalizer). A new format is its own file
//! (a [`crate::Normalizer`] and a `build` function) plus one line in [`registry!`] below; everything
//! else (parsing the name, listing the formats, the hostile-input and fuzz tests that match on
//! [`Format`]) follows from the line.

use std::sync::Arc;

use crate::{FormatOptions, Normalizer, Result, cloudtrail, json, k8s_audit, linux_auth, web_access};

/// Declares [`Format`] with one variant per line and its `ALL`, `name` and `build`.
macro_rules! registry {
    ($($(#[doc = $doc:literal])* $variant:ident => $name:literal, $build:expr;)+) => {
        /// The input formats vigil reads.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Format {
            $($(#[doc = $doc])* $variant,)+
        }

        impl Format {
            /// Every format, in the order shown to users.
            pub const ALL: &'static [Format] = &[$(Format::$variant),+];

            /// The name used in configs and `--input FORMAT:PATH`.
            pub fn name(self) -> &'static str {
                match self {
                    $(Format::$variant => $name,)+
                }
            }

            /// A normalizer for this format with `options`.
            pub fn build(self, options: &FormatOptions) -> Result<Arc<dyn Normalizer>> {
                match self {
                    $(Format::$variant => ($build)(options),)+
                }
            }
        }
    };
}

registry! {
    /// AWS CloudTrail: NDJSON, `{"Records":[...]}` objects or bare arrays.
    Cloudtrail => "cloudtrail", cloudtrail::build;
    /// Kubernetes audit.k8s.io Event, NDJSON or `EventList`.
    K8sAudit => "k8s_audit", k8s_audit::build;
    /// Web access log already as JSON (field mapping in config; defaults fit the common layout).
    WebAccessJson => "web_access_json", json::build_web_access;
    /// Apache/NGINX combined (or common) log format text lines.
    ApacheCombined => "apache_combined", web_access::build;
    /// Linux authentication syslog lines (sshd, sudo, su, PAM).
    LinuxAuth => "linux_auth", linux_auth::build;
    /// Okta System Log events (JSON).
    Okta => "okta", json::build_okta;
    /// GitHub organization / enterprise audit log events (JSON).
    GithubAudit => "github_audit", json::build_github_audit;
    /// Any JSON log, mapped to the canonical columns in config.
    Json => "json", json::build_generic;
}
