//! SASL/OAUTHBEARER logins for managed Kafka: vigil gets the token itself and hands it to librdkafka
//! (which is built without curl, so its own OIDC client is not there).
//!
//! ```text
//! kafka://b-1.msk.xxxx.kafka.eu-west-1.amazonaws.com:9098/cloudtrail?group=vigil&oauthbearer_method=aws_msk_iam
//! kafka://HOST:9092/t?group=vigil&oauthbearer_method=oidc&oidc_token_endpoint=https://idp/oauth2/token
//!     &oidc_client_id=vigil&oidc_client_secret_env=VIGIL_OIDC_SECRET&oidc_scope=kafka
//! ```
//!
//! or in a config file, `[inputs.kafka.oauthbearer]` with `method = "aws_msk_iam"` (`aws_region`,
//! `aws_profile`) or `method = "oidc"` (`token_endpoint`, `client_id`, `client_secret = "env:VAR"` or
//! `"file:PATH"`, `scope`, `audience`). A method implies `sasl.mechanism=OAUTHBEARER` and, unless set,
//! `security.protocol=SASL_SSL`.
//!
//! - [`crate::msk_iam`]: the AWS MSK IAM token, a SigV4-presigned `kafka-cluster:Connect` URL signed with
//!   the usual AWS credential chain.
//! - [`crate::oidc`]: an OAuth 2.0 client-credentials grant against a token endpoint.
//!
//! **How tokens reach librdkafka.** Building a client config ([`KafkaEndpoint::consumer_config`],
//! [`KafkaEndpoint::producer_config`]) makes the endpoint's token source, fetches its first token (so a
//! wrong secret, a missing AWS credential or an unreachable token endpoint fails the start with what to
//! fix, [`Error::Token`]) and registers it under a number that the config carries in
//! `sasl.oauthbearer.config`. Every client context of this crate sets rdkafka's
//! `ClientContext::ENABLE_REFRESH_OAUTH_TOKEN` and answers `generate_oauth_token` from that number
//! (the `oauthbearer_refresh!` items, [`generate_token`]), so every client made from the config, also
//! one made again after a fatal error, gets its tokens. librdkafka asks when the client starts and again at 80 %
//! of the token's lifetime, on the thread that polls the client (the consumer's poller, the producer's
//! polling thread). A failed refresh keeps the old token while it lasts and is retried every 10 s by
//! librdkafka, logged as a warning each time it changes. Tokens and secrets never appear in a message or
//! log line.

use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use rdkafka::client::OAuthToken;
use serde::Deserialize;
use vigil_schema::{ErrorClass, redact};

use crate::config::KafkaEndpoint;
use crate::{Error, Result};

/// Where OAUTHBEARER tokens come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OAuthMethod {
    /// AWS MSK IAM: a SigV4-signed token from AWS credentials.
    AwsMskIam,
    /// OAuth 2.0 client credentials from a token endpoint.
    Oidc,
}

impl OAuthMethod {
    fn name(self) -> &'static str {
        match self {
            OAuthMethod::AwsMskIam => "aws_msk_iam",
            OAuthMethod::Oidc => "oidc",
        }
    }
}

/// The `oauthbearer` table of a Kafka endpoint (or the `oauthbearer_method`, `aws_*` and `oidc_*` keys of a
/// `kafka://` URL).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthBearer {
    /// `aws_msk_iam` or `oidc`.
    pub method: OAuthMethod,
    /// aws_msk_iam: the cluster's region (default: from the broker names, else `AWS_REGION` or the
    /// profile's region).
    pub aws_region: Option<String>,
    /// aws_msk_iam: the profile of the shared AWS files to take credentials from (named, its values win
    /// over the environment's; default: `AWS_PROFILE`, else the usual chain).
    pub aws_profile: Option<String>,
    /// oidc: the token endpoint (`https://`; `http://` only on loopback).
    pub token_endpoint: Option<String>,
    /// oidc: the client id.
    pub client_id: Option<String>,
    /// oidc: the client secret, `env:VARIABLE` or `file:PATH` (never the value).
    pub client_secret: Option<String>,
    /// oidc: the scope to ask for.
    pub scope: Option<String>,
    /// oidc: the audience to ask for (Auth0, Okta and others want one).
    pub audience: Option<String>,
}

/// `kafka://` query keys of OAUTHBEARER settings.
pub(crate) const URL_KEYS: [&str; 9] = [
    "oauthbearer_method",
    "aws_region",
    "aws_profile",
    "oidc_token_endpoint",
    "oidc_client_id",
    "oidc_client_secret_env",
    "oidc_client_secret_file",
    "oidc_scope",
    "oidc_audience",
];

/// URL keys that look like secrets by name but hold a setting or a reference to a secret.
pub(crate) const PLAIN_URL_KEYS: [&str; 4] =
    ["oauthbearer_method", "oidc_token_endpoint", "oidc_client_secret_env", "oidc_client_secret_file"];

impl OAuthBearer {
    /// The settings from the OAUTHBEARER keys of a `kafka://` URL (`keys` holds only [`URL_KEYS`]).
    pub(crate) fn from_url_keys(keys: &[(String, String)]) -> std::result::Result<Option<OAuthBearer>, String> {
        if keys.is_empty() {
            return Ok(None);
        }
        let get = |name: &str| keys.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let method = match get("oauthbearer_method").as_deref() {
            Some("aws_msk_iam") => OAuthMethod::AwsMskIam,
            Some("oidc") => OAuthMethod::Oidc,
            Some(other) => {
                return Err(format!("oauthbearer_method `{other}` is not aws_msk_iam or oidc"));
            }
            None => {
                let given: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
                return Err(format!(
                    "{} given without oauthbearer_method: add oauthbearer_method=aws_msk_iam or oauthbearer_method=oidc",
                    given.join(", ")
                ));
            }
        };
        let secret = match (get("oidc_client_secret_env"), get("oidc_client_secret_file")) {
            (Some(_), Some(_)) => {
                return Err("give oidc_client_secret_env or oidc_client_secret_file, not both".into());
            }
            (Some(var), None) => Some(format!("env:{var}")),
            (None, Some(path)) => Some(format!("file:{path}")),
            (None, None) => None,
        };
        Ok(Some(OAuthBearer {
            method,
            aws_region: get("aws_region"),
            aws_profile: get("aws_profile"),
            token_endpoint: get("oidc_token_endpoint"),
            client_id: get("oidc_client_id"),
            client_secret: secret,
            scope: get("oidc_scope"),
            audience: get("oidc_audience"),
        }))
    }

    /// Problems of these settings, each with what to do.
    fn problems(&self, out: &mut Vec<String>) {
        let method = self.method.name();
        let misplaced = |name: &str, belongs: &str, out: &mut Vec<String>| {
            out.push(format!("{name} applies to oauthbearer_method={belongs}, not {method}: remove it"));
        };
        match self.method {
            OAuthMethod::AwsMskIam => {
                for (name, set) in [
                    ("token_endpoint", self.token_endpoint.is_some()),
                    ("client_id", self.client_id.is_some()),
                    ("client_secret", self.client_secret.is_some()),
                    ("scope", self.scope.is_some()),
                    ("audience", self.audience.is_some()),
                ] {
                    if set {
                        misplaced(&format!("oidc {name}"), "oidc", out);
                    }
                }
                if let Some(region) = &self.aws_region
                    && !crate::msk_iam::is_region(region)
                {
                    out.push(format!("aws_region `{region}` is not an AWS region name (like eu-west-1)"));
                }
            }
            OAuthMethod::Oidc => {
                if self.aws_region.is_some() || self.aws_profile.is_some() {
                    misplaced("aws_region and aws_profile", "aws_msk_iam", out);
                }
                match &self.token_endpoint {
                    None => out.push(
                        "oauthbearer_method=oidc needs the token endpoint: oidc_token_endpoint=https://... (in a \
                         config file: token_endpoint = \"https://...\")"
                            .into(),
                    ),
                    Some(url) => {
                        if let Err(e) = crate::oidc::check_endpoint(url) {
                            out.push(e);
                        }
                    }
                }
                if self.client_id.as_deref().is_none_or(str::is_empty) {
                    out.push(
                        "oauthbearer_method=oidc needs the client id: oidc_client_id=NAME (in a config file: \
                         client_id = \"NAME\")"
                            .into(),
                    );
                }
                match &self.client_secret {
                    None => out.push(
                        "oauthbearer_method=oidc needs the client secret: oidc_client_secret_env=VARIABLE or \
                         oidc_client_secret_file=PATH (in a config file: client_secret = \"env:VARIABLE\" or \
                         \"file:PATH\")"
                            .into(),
                    ),
                    Some(r) if !(r.starts_with("env:") || r.starts_with("file:")) => out.push(
                        "the OIDC client secret must be \"env:VARIABLE\" or \"file:PATH\", not the value itself \
                         (remove the value from the config and rotate it if it was shared)"
                            .into(),
                    ),
                    Some(_) => {}
                }
            }
        }
    }
}

/// The OAUTHBEARER problems of an endpoint (its mechanism, protocol and token settings).
pub(crate) fn endpoint_problems(endpoint: &KafkaEndpoint, out: &mut Vec<String>) {
    let property = |name: &str| endpoint.properties.get(name).map(String::as_str);
    let mechanism = property("sasl.mechanism").or(property("sasl.mechanisms"));
    let unsecure_jwt = property("enable.sasl.oauthbearer.unsecure.jwt").is_some_and(|v| v == "true");
    let librdkafka_oidc = property("sasl.oauthbearer.method").is_some_and(|m| m.eq_ignore_ascii_case("oidc"));
    let no_librdkafka_oidc = "librdkafka's own OIDC client (sasl.oauthbearer.method=oidc) is not built into vigil";
    match &endpoint.oauthbearer {
        Some(oauth) => {
            if let Some(m) = mechanism.filter(|m| !m.eq_ignore_ascii_case("OAUTHBEARER")) {
                out.push(format!(
                    "oauthbearer_method logs in with SASL/OAUTHBEARER, but sasl.mechanism is {m}: remove \
                     sasl_mechanism (or set it to OAUTHBEARER)"
                ));
            }
            if let Some(p) = property("security.protocol")
                .filter(|p| !p.eq_ignore_ascii_case("SASL_SSL") && !p.eq_ignore_ascii_case("SASL_PLAINTEXT"))
            {
                out.push(format!(
                    "OAUTHBEARER is a SASL login, but security.protocol is {p}: use SASL_SSL (the default with \
                     oauthbearer_method; SASL_PLAINTEXT only for a test broker on a trusted network)"
                ));
            }
            if librdkafka_oidc || unsecure_jwt {
                out.push(format!(
                    "oauthbearer_method={} gets the tokens itself: remove sasl.oauthbearer.method and \
                     enable.sasl.oauthbearer.unsecure.jwt",
                    oauth.method.name()
                ));
            }
            oauth.problems(out);
        }
        None if librdkafka_oidc => out.push(format!(
            "{no_librdkafka_oidc}: use oauthbearer_method=oidc with oidc_token_endpoint, oidc_client_id and \
             oidc_client_secret_env (in a config file: [inputs.kafka.oauthbearer] method = \"oidc\")"
        )),
        None if mechanism.is_some_and(|m| m.eq_ignore_ascii_case("OAUTHBEARER")) && !unsecure_jwt => out.push(format!(
            "sasl.mechanism=OAUTHBEARER needs a token source: oauthbearer_method=aws_msk_iam (AWS MSK IAM, with \
                 the usual AWS credentials) or oauthbearer_method=oidc (OAuth client credentials); {no_librdkafka_oidc}"
        )),
        None => {}
    }
}

/// librdkafka properties an OAUTHBEARER method implies (set before the user's own properties).
pub(crate) fn implied_properties(endpoint: &KafkaEndpoint) -> &'static [(&'static str, &'static str)] {
    if endpoint.oauthbearer.is_some() {
        &[("sasl.mechanism", "OAUTHBEARER"), ("security.protocol", "SASL_SSL")]
    } else {
        &[]
    }
}

/// An OAUTHBEARER token. `Debug` never shows its value.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// The token (a bearer credential).
    pub value: String,
    /// The Kafka principal name librdkafka records with it (not sent to the broker).
    pub principal: String,
    /// When it expires, in milliseconds since the Unix epoch.
    pub expires_at_ms: i64,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("value", &"<redacted>")
            .field("principal", &self.principal)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish()
    }
}

/// Why no token could be had: what to do, and whose fault it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenError {
    /// What went wrong and what to do (never a secret).
    pub reason: String,
    /// The user's settings ([`ErrorClass::User`]) or a service that failed ([`ErrorClass::External`]).
    pub class: ErrorClass,
}

impl TokenError {
    pub(crate) fn user(reason: impl Into<String>) -> TokenError {
        TokenError { reason: reason.into(), class: ErrorClass::User }
    }

    pub(crate) fn external(reason: impl Into<String>) -> TokenError {
        TokenError { reason: reason.into(), class: ErrorClass::External }
    }
}

/// Something that makes OAUTHBEARER tokens.
pub trait TokenSource: Send + Sync {
    /// What it is, for messages (`AWS MSK IAM (eu-west-1)`, `OIDC token endpoint https://...`).
    fn describe(&self) -> String;
    /// A fresh token.
    fn fetch(&self) -> std::result::Result<Token, TokenError>;
}

/// The OAUTHBEARER side of one Kafka client: answers librdkafka's token requests. Without a method it
/// only serves librdkafka's unsecured development tokens (`enable.sasl.oauthbearer.unsecure.jwt`).
#[derive(Clone, Default)]
pub struct OAuth {
    source: Option<Arc<dyn TokenSource>>,
    /// The token fetched when the client was made, handed to librdkafka's first request.
    first: Arc<Mutex<Option<Token>>>,
}

impl std::fmt::Debug for OAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth").field("source", &self.source.as_ref().map(|s| s.describe())).finish_non_exhaustive()
    }
}

impl OAuth {
    /// Wraps `source` and fetches its first token now, so that a client with unusable OAUTHBEARER
    /// settings fails at start with what to fix.
    pub fn start(source: Arc<dyn TokenSource>) -> std::result::Result<OAuth, TokenError> {
        let first = source.fetch()?;
        tracing::info!(
            source = %source.describe(),
            expires_in_s = (first.expires_at_ms - now_ms()) / 1000,
            "got an OAUTHBEARER token"
        );
        Ok(OAuth { source: Some(source), first: Arc::new(Mutex::new(Some(first))) })
    }

    /// Answers librdkafka's token request (`oauthbearer_config` is `sasl.oauthbearer.config`, used only by
    /// the unsecured development tokens).
    pub fn token(
        &self,
        oauthbearer_config: Option<&str>,
    ) -> std::result::Result<OAuthToken, Box<dyn std::error::Error>> {
        let Some(source) = &self.source else {
            return unsecured_jwt(oauthbearer_config.unwrap_or_default()).map(into_rdkafka).map_err(Into::into);
        };
        let first = self.first.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        // The first token is used only while most of its life is left (librdkafka asks again at 80 %).
        let token = match first {
            Some(t) if t.expires_at_ms - now_ms() > 60_000 => t,
            _ => source.fetch().map_err(|e| {
                // librdkafka reports it as "Failed to acquire SASL OAUTHBEARER token: ..." (and keeps the
                // old token while it lasts).
                format!("{}: {}", source.describe(), e.reason)
            })?,
        };
        tracing::debug!(source = %source.describe(), expires_in_s = (token.expires_at_ms - now_ms()) / 1000, "OAUTHBEARER token handed to librdkafka");
        Ok(into_rdkafka(token))
    }
}

fn into_rdkafka(token: Token) -> OAuthToken {
    OAuthToken { token: token.value, principal_name: token.principal, lifetime_ms: token.expires_at_ms }
}

impl KafkaEndpoint {
    /// The OAUTHBEARER token source of this endpoint, with its first token already fetched; empty (serving
    /// only librdkafka's unsecured development tokens) when it sets no `oauthbearer` method.
    pub fn oauth(&self) -> Result<OAuth> {
        let Some(settings) = &self.oauthbearer else { return Ok(OAuth::default()) };
        let source: Arc<dyn TokenSource> = match settings.method {
            OAuthMethod::AwsMskIam => Arc::new(
                crate::msk_iam::MskIam::new(settings, &self.brokers, vigil_aws::Environment::from_process())
                    .map_err(|reason| Error::Config { what: self.describe(), reason })?,
            ),
            OAuthMethod::Oidc => Arc::new(
                crate::oidc::Oidc::new(settings).map_err(|reason| Error::Config { what: self.describe(), reason })?,
            ),
        };
        OAuth::start(source.clone()).map_err(|e| Error::Token {
            what: format!("{} for {}", source.describe(), self.describe()),
            reason: e.reason,
            class: e.class,
        })
    }
}

/// What `sasl.oauthbearer.config` holds for a registered token source: this prefix and its number.
const REGISTERED: &str = "vigil.oauthbearer.source=";

fn registry() -> &'static Mutex<Vec<OAuth>> {
    static SOURCES: OnceLock<Mutex<Vec<OAuth>>> = OnceLock::new();
    SOURCES.get_or_init(Mutex::default)
}

/// Gives a client `config` the endpoint's token source (see the module docs); nothing without an
/// `oauthbearer` method. Sources stay registered for the life of the process (one per client config
/// built: a few per run).
pub(crate) fn attach(endpoint: &KafkaEndpoint, config: &mut rdkafka::ClientConfig) -> Result<()> {
    if endpoint.oauthbearer.is_none() {
        return Ok(());
    }
    let oauth = endpoint.oauth()?;
    let mut sources = registry().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    config.set("sasl.oauthbearer.config", format!("{REGISTERED}{}", sources.len()));
    sources.push(oauth);
    Ok(())
}

/// Answers librdkafka's token request of a client whose config came from [`attach`] (or, without a
/// registered source, with librdkafka's unsecured development token).
pub fn generate_token(oauthbearer_config: Option<&str>) -> std::result::Result<OAuthToken, Box<dyn std::error::Error>> {
    let config = oauthbearer_config.unwrap_or_default();
    let Some(number) = config.strip_prefix(REGISTERED) else { return OAuth::default().token(Some(config)) };
    let oauth = number
        .parse::<usize>()
        .ok()
        .and_then(|n| registry().lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(n).cloned())
        .ok_or("the client's OAUTHBEARER token source is not registered (a bug)")?;
    oauth.token(None)
}

/// The items of a `ClientContext` impl that let librdkafka ask vigil for OAUTHBEARER tokens
/// ([`generate_token`]). Harmless for clients that do not log in with OAUTHBEARER: librdkafka never asks.
macro_rules! oauthbearer_refresh {
    () => {
        const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

        fn generate_oauth_token(
            &self,
            oauthbearer_config: Option<&str>,
        ) -> std::result::Result<rdkafka::client::OAuthToken, Box<dyn std::error::Error>> {
            $crate::oauth::generate_token(oauthbearer_config)
        }
    };
}
pub(crate) use oauthbearer_refresh;

/// The fix to add when the broker refused a login (`reason` is what librdkafka said).
pub(crate) fn login_hint(endpoint: &KafkaEndpoint, reason: &str) -> String {
    if reason.contains("OAUTHBEARER token") {
        // vigil could not make a token: the reason says why and what to do.
        return String::new();
    }
    match endpoint.oauthbearer.as_ref().map(|o| o.method) {
        Some(OAuthMethod::AwsMskIam) => ". The broker refused the AWS MSK IAM token: check that the cluster has IAM \
            access control on and that these are its IAM listeners (port 9098; 9198 for public access), that \
            aws_region is the cluster's region, and that the IAM policy of the credentials allows \
            kafka-cluster:Connect (and the topic and group actions)"
            .into(),
        Some(OAuthMethod::Oidc) => ". The broker refused the OIDC token: check that it trusts the token endpoint's \
            issuer and that oidc_scope / oidc_audience are what the broker expects"
            .into(),
        None => ". Check security.protocol, sasl.mechanism and sasl.username, and that the password's env:/file: \
            secret holds the right value"
            .into(),
    }
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Base64url without padding (JWT parts, the MSK IAM token).
pub(crate) fn base64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The claims of a JWT (its middle part), when `token` is one.
pub(crate) fn jwt_claims(token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let mut parts = token.split('.');
    let (_header, claims) = (parts.next()?, parts.next()?);
    parts.next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims.trim_end_matches('=')).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        serde_json::Value::Object(map) => Some(map),
        _ => None,
    }
}

/// librdkafka's unsecured development token (RFC 7515 A.5, `alg: none`) from `sasl.oauthbearer.config`
/// (`principal=NAME [principalClaimName=sub] [scopeClaimName=scope] [scope=a,b] [lifeSeconds=3600]`), as
/// its own builtin handler makes it. Only for `enable.sasl.oauthbearer.unsecure.jwt` against a test
/// broker; librdkafka then sets its own equal token right after.
fn unsecured_jwt(config: &str) -> std::result::Result<Token, String> {
    let mut principal = None;
    let (mut principal_claim, mut scope_claim, mut scope, mut life) = ("sub", "scope", None, 3600i64);
    for pair in config.split_whitespace() {
        match pair.split_once('=') {
            Some(("principal", v)) => principal = Some(v),
            Some(("principalClaimName", v)) => principal_claim = v,
            Some(("scopeClaimName", v)) => scope_claim = v,
            Some(("scope", v)) => scope = Some(v),
            Some(("lifeSeconds", v)) => life = v.parse().map_err(|_| format!("lifeSeconds `{v}` is not a number"))?,
            _ => {}
        }
    }
    let principal = principal.ok_or(
        "sasl.mechanism=OAUTHBEARER without oauthbearer_method: set oauthbearer_method=aws_msk_iam or oidc \
         (librdkafka's unsecured test tokens need principal=NAME in sasl.oauthbearer.config)",
    )?;
    let now = now_ms() / 1000;
    let mut claims = serde_json::Map::new();
    claims.insert(principal_claim.into(), principal.into());
    claims.insert("iat".into(), now.into());
    claims.insert("exp".into(), (now + life).into());
    if let Some(scope) = scope {
        claims.insert(scope_claim.into(), scope.split(',').collect::<Vec<_>>().into());
    }
    let value = format!(
        "{}.{}.",
        base64url(br#"{"alg":"none"}"#),
        base64url(serde_json::Value::Object(claims).to_string().as_bytes())
    );
    Ok(Token { value, principal: principal.to_string(), expires_at_ms: (now + life) * 1000 })
}

/// Timeout of one request to a token endpoint or an AWS credential service.
pub(crate) const HTTP_TIMEOUT: Duration = Duration::from_secs(15);

/// The HTTP client of token requests: rustls with the system's root certificates, no redirects (a secret
/// is never sent on to another address), the environment's proxy settings.
pub(crate) fn http() -> std::result::Result<&'static reqwest::Client, TokenError> {
    static CLIENT: OnceLock<std::result::Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .timeout(HTTP_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| format!("cannot create an HTTP client: {e}"))
        })
        .as_ref()
        .map_err(|e| TokenError::external(e.clone()))
}

/// Runs `future` (an HTTP exchange) to its end from any thread: librdkafka asks for tokens on threads
/// that are not async, and a client may be created inside a tokio runtime. The future runs on one small
/// runtime of its own, shared by every client of the process.
pub(crate) fn block_on<T: Send + 'static>(
    future: impl Future<Output = std::result::Result<T, TokenError>> + Send + 'static,
) -> std::result::Result<T, TokenError> {
    static RUNTIME: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    let runtime = RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("vigil-oauth")
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the token runtime: {e}"))
        })
        .as_ref()
        .map_err(|e| TokenError::external(e.clone()))?;
    futures::executor::block_on(runtime.spawn(future))
        .map_err(|e| TokenError::external(format!("the token request failed: {e}")))?
}

/// One HTTP exchange of a token provider (a token endpoint, STS, a credential service), from any
/// thread: `method` `url` with `headers` and `body`, within `timeout` (default [`HTTP_TIMEOUT`]);
/// returns the status and the body's text. `what` names the service in a transport failure.
pub(crate) fn exchange(
    method: reqwest::Method,
    url: String,
    headers: Vec<(&'static str, String)>,
    body: Option<String>,
    what: String,
    timeout: Option<Duration>,
) -> std::result::Result<(u16, String), TokenError> {
    block_on(async move {
        let mut request = http()?.request(method, &url);
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        for (name, value) in headers {
            request = request.header(name, value);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let answer = request.send().await.map_err(|e| transport_error(&what, &e))?;
        let status = answer.status().as_u16();
        Ok((status, answer.text().await.unwrap_or_default()))
    })
}

/// Text of an answer body for a message: at most 300 characters, masked like every shown text, and
/// without `secrets` (a server may echo what it was sent).
pub(crate) fn shown_body(body: &str, secrets: &[&str]) -> String {
    let mut text: String = body.chars().filter(|c| !c.is_control()).take(300).collect();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        text = text.replace(secret, redact::MASK);
    }
    redact::text(&text).into_owned()
}

/// A transport failure as a message (the URL shown masked).
pub(crate) fn transport_error(what: &str, e: &reqwest::Error) -> TokenError {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    let mut source: Option<&dyn std::error::Error> = Some(e);
    let mut detail = Vec::new();
    while let Some(s) = source {
        detail.push(s.to_string());
        source = s.source();
    }
    TokenError::external(format!("{what} {kind}: {}", redact::text(&detail.join(": "))))
}

#[cfg(test)]
#[path = "oauth/stand_in.rs"]
pub(crate) mod stand_in;

#[cfg(test)]
#[path = "oauth/tests.rs"]
mod tests;
