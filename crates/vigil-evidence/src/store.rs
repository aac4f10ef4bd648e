//! Where an archive lives: a local directory (default) or an S3-compatible bucket, both through
//! `object_store`, with one layout.
//!
//! ```text
//! ./evidence                     local directory (created if missing); file:///abs/path too
//! s3://BUCKET/PREFIX             S3 or any S3-compatible store
//! s3://BUCKET/PREFIX?endpoint=http://127.0.0.1:9000&region=us-east-1&profile=audit
//! ```
//!
//! S3 settings come, strongest first, from the URL's query (`endpoint`, `region`, `profile`,
//! `virtual_hosted_style=true`), the usual AWS environment variables (`AWS_ENDPOINT_URL`, `AWS_REGION`,
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, ...), then the profile files
//! (`AWS_SHARED_CREDENTIALS_FILE`, default `~/.aws/credentials`, and `AWS_CONFIG_FILE`, default
//! `~/.aws/config`; profile `AWS_PROFILE` or `default`). Requests are path-style unless asked otherwise
//! (what S3-compatible servers expect); an `http://` endpoint is allowed as given. Every upload carries a
//! SHA-256 checksum, which S3 requires on buckets with Object Lock.
//!
//! **Object Lock.** `object_store` has no per-object retention, so vigil sets the bucket's default
//! retention ([`S3Bucket::ensure_default_retention`]): from then on S3 itself refuses to delete or
//! overwrite any version of an evidence object or manifest entry before its retention ends. A bucket
//! must have been created with Object Lock enabled (it cannot be turned on later for existing buckets
//! in every store); [`S3Bucket::lock_status`] tells. vigil sets a default retention only on a bucket that
//! has none, and never changes one that is there: a bucket whose default is weaker than the config asks
//! is refused ([`lock_decision`]), a stronger one is kept.
//!
//! **Versions.** A bucket with Object Lock is versioned: a plain delete only adds a delete marker and an
//! overwrite a new version, while the versions vigil wrote stay. [`S3Bucket::list_object_versions`] and
//! [`S3Bucket::object_retention`] let `vigil verify` see that history ([`crate::versions`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey, AwsAuthorizer, AwsCredential, Checksum};
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpRequest, HttpResponse, HttpService, ReqwestConnector,
};
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStore};
use vigil_schema::redact;

use crate::{Error, Result};

/// A parsed archive location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local directory.
    Local(PathBuf),
    /// A bucket and key prefix on an S3-compatible store, with settings from the URL's query.
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix (may be empty).
        prefix: String,
        /// `endpoint`, `region`, `profile`, `virtual_hosted_style`.
        options: BTreeMap<String, String>,
    },
}

const S3_KEYS: [&str; 4] = ["endpoint", "region", "profile", "virtual_hosted_style"];

impl Location {
    /// Parses `location`: a path, `file://PATH` or `s3://BUCKET[/PREFIX][?key=value&...]`.
    ///
    /// Credentials written in the URL (a user name or password before `@`, a secret-like query key, an
    /// `endpoint` with either) are refused, and no error repeats them.
    pub fn parse(location: &str) -> Result<Location> {
        let err = |reason: String| Error::Location { location: redact::url(location).into_owned(), reason };
        let inline = redact::inline_secrets(location, &[]);
        if !inline.is_empty() {
            let found: Vec<String> = inline.iter().map(ToString::to_string).collect();
            return Err(err(format!(
                "holds credentials ({}), which are refused: credentials never go in the URL; set AWS_ACCESS_KEY_ID \
                 and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) in the environment, or name a profile of \
                 ~/.aws/credentials with ?profile=NAME. Rotate the key if this URL was shared",
                found.join(", ")
            )));
        }
        if let Some(rest) = location.strip_prefix("s3://") {
            let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
            let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
            if bucket.is_empty() {
                return Err(err("no bucket: write s3://BUCKET/PREFIX".into()));
            }
            let mut options = BTreeMap::new();
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                if !S3_KEYS.contains(&key) {
                    return Err(err(format!("unknown setting '{key}'; known: {}", S3_KEYS.join(", "))));
                }
                options.insert(key.to_string(), value.to_string());
            }
            return Ok(Location::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.trim_matches('/').to_string(),
                options,
            });
        }
        let local = location.strip_prefix("file://").unwrap_or(location);
        if local.contains("://") {
            return Err(err("unsupported scheme; use a local directory, file://PATH or s3://BUCKET/PREFIX".into()));
        }
        if local.is_empty() {
            return Err(err("empty path".into()));
        }
        Ok(Location::Local(PathBuf::from(local)))
    }
}

/// An opened store: where objects go and, for S3, the bucket's own API (Object Lock).
#[derive(Debug, Clone)]
pub struct OpenedStore {
    /// The object store.
    pub store: Arc<dyn ObjectStore>,
    /// The archive's root inside it.
    pub root: Path,
    /// The bucket, when on S3.
    pub bucket: Option<Arc<S3Bucket>>,
}

/// Opens the store of `location` (see the module docs).
pub fn open(location: &str) -> Result<OpenedStore> {
    let loc_err = |reason: String| Error::Location { location: redact::url(location).into_owned(), reason };
    match Location::parse(location)? {
        Location::Local(dir) => {
            std::fs::create_dir_all(&dir).map_err(|e| loc_err(format!("cannot create the directory: {e}")))?;
            let store = object_store::local::LocalFileSystem::new_with_prefix(&dir)
                .map_err(|e| loc_err(format!("cannot open the directory: {e}")))?;
            Ok(OpenedStore { store: Arc::new(store), root: Path::default(), bucket: None })
        }
        Location::S3 { bucket, prefix, options } => {
            let settings = S3Settings::resolve(&bucket, &options, &Environment::from_process());
            let s3 = settings.builder().build().map_err(|e| {
                loc_err(format!("{e}; set AWS_REGION, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile"))
            })?;
            let s3 = Arc::new(s3);
            let http = ReqwestConnector::default()
                .connect(&crate::retry::client_options().with_allow_http(true))
                .map_err(|e| loc_err(format!("cannot create an HTTP client: {e}")))?;
            let bucket = S3Bucket { s3: s3.clone(), settings, http };
            Ok(OpenedStore { store: s3, root: Path::from(prefix.as_str()), bucket: Some(Arc::new(bucket)) })
        }
    }
}

/// Environment the S3 settings are read from (the process's, or a test's): [`vigil_aws::Environment`].
pub use vigil_aws::Environment;

/// Resolved S3 settings. `Debug` never shows the secret.
#[derive(Clone, Default)]
pub struct S3Settings {
    /// Bucket.
    pub bucket: String,
    /// Endpoint URL; `None` = AWS.
    pub endpoint: Option<String>,
    /// Region.
    pub region: String,
    /// Virtual-hosted-style requests (`BUCKET.host`) instead of path-style.
    pub virtual_hosted_style: bool,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    session_token: Option<String>,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("virtual_hosted_style", &self.virtual_hosted_style)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &self.secret_access_key.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl S3Settings {
    /// Resolves the settings of `bucket` from URL `options`, then `env`'s variables, then its profile files.
    pub fn resolve(bucket: &str, options: &BTreeMap<String, String>, env: &Environment) -> S3Settings {
        // A profile named in the URL wins over the environment's keys; otherwise the environment wins.
        let profile = vigil_aws::Profile::load(env, options.get("profile").map(String::as_str));
        let pick = |var: &str, key: &str| profile.pick(var, key);
        let endpoint = options
            .get("endpoint")
            .cloned()
            .or_else(|| env.var("AWS_ENDPOINT_URL_S3").map(str::to_string))
            .or_else(|| pick("AWS_ENDPOINT_URL", "endpoint_url"));
        let region = options
            .get("region")
            .cloned()
            .or_else(|| pick("AWS_REGION", "region"))
            .or_else(|| env.var("AWS_DEFAULT_REGION").map(str::to_string))
            .unwrap_or_else(|| "us-east-1".to_string());
        let virtual_hosted_style = options
            .get("virtual_hosted_style")
            .map(|v| v == "true")
            .or_else(|| env.var("AWS_VIRTUAL_HOSTED_STYLE_REQUEST").map(|v| v == "true"))
            .unwrap_or(false);
        S3Settings {
            bucket: bucket.to_string(),
            endpoint,
            region,
            virtual_hosted_style,
            access_key_id: pick("AWS_ACCESS_KEY_ID", "aws_access_key_id"),
            secret_access_key: pick("AWS_SECRET_ACCESS_KEY", "aws_secret_access_key"),
            session_token: pick("AWS_SESSION_TOKEN", "aws_session_token"),
        }
    }

    fn builder(&self) -> AmazonS3Builder {
        // Timeouts and quick per-request retries; longer faults are waited out by `crate::retry`.
        let mut b = AmazonS3Builder::new()
            .with_client_options(crate::retry::client_options())
            .with_retry(crate::retry::request_retry())
            .with_bucket_name(&self.bucket)
            .with_region(&self.region)
            .with_virtual_hosted_style_request(self.virtual_hosted_style)
            .with_checksum_algorithm(Checksum::SHA256);
        if let Some(endpoint) = &self.endpoint {
            b = b.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
        }
        if let (Some(key_id), Some(secret_key)) = (&self.access_key_id, &self.secret_access_key) {
            let credential = || AwsCredential {
                key_id: key_id.clone(),
                secret_key: secret_key.clone(),
                token: self.session_token.clone(),
            };
            let (for_store, credential) = (credential(), Arc::new(credential()));
            b = b
                .with_credentials(Arc::new(object_store::StaticCredentialProvider::new(for_store)))
                .with_http_connector(LockedUploads { credential, region: self.region.clone() });
        } else {
            // No static keys: object_store's own chain (web identity, instance metadata, ...).
            if let Some(token) = &self.session_token {
                b = b.with_config(AmazonS3ConfigKey::Token, token);
            }
        }
        b
    }

    /// URL of `key` (empty: the bucket itself) with `query` (a pair with an empty value is written bare, as
    /// in `?versions`). The key and query are percent-encoded as SigV4 expects (every byte but
    /// `A-Z a-z 0-9 - _ . ~`, and `/` in the key), so the signed path is the path sent.
    fn url(&self, key: &str, query: &[(&str, &str)]) -> String {
        let key = encode(key, true);
        let mut url = match (&self.endpoint, self.virtual_hosted_style) {
            (Some(endpoint), false) if key.is_empty() => format!("{}/{}", endpoint.trim_end_matches('/'), self.bucket),
            (Some(endpoint), false) => format!("{}/{}/{key}", endpoint.trim_end_matches('/'), self.bucket),
            (Some(endpoint), true) => {
                let (scheme, host) = endpoint.split_once("://").unwrap_or(("https", endpoint));
                format!("{scheme}://{}.{}/{key}", self.bucket, host.trim_end_matches('/'))
            }
            (None, _) => format!("https://{}.s3.{}.amazonaws.com/{key}", self.bucket, self.region),
        };
        for (i, (name, value)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&encode(name, false));
            if !value.is_empty() {
                url.push('=');
                url.push_str(&encode(value, false));
            }
        }
        url
    }
}

/// Percent-encodes `text` for a SigV4-signed S3 URL: every byte but `A-Z a-z 0-9 - _ . ~` (and `/` when
/// `keep_slash`, for a key's path).
fn encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') || (keep_slash && byte == b'/') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Uploads to a bucket with a default retention must say which checksum they carry
/// (`x-amz-sdk-checksum-algorithm`, as the AWS SDKs send it) or carry Content-MD5; `object_store` sends the
/// SHA-256 checksum but not that header. This connector adds it to every upload that carries a SHA-256
/// checksum and signs the request again, so the header is covered by the signature.
#[derive(Debug)]
struct LockedUploads {
    credential: Arc<AwsCredential>,
    region: String,
}

impl HttpConnector for LockedUploads {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let inner = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(LockedUploadService {
            inner,
            credential: self.credential.clone(),
            region: self.region.clone(),
        }))
    }
}

#[derive(Debug)]
struct LockedUploadService {
    inner: HttpClient,
    credential: Arc<AwsCredential>,
    region: String,
}

#[async_trait::async_trait]
impl HttpService for LockedUploadService {
    async fn call(&self, mut request: HttpRequest) -> std::result::Result<HttpResponse, HttpError> {
        if request.method() == http::Method::PUT && request.headers().contains_key("x-amz-checksum-sha256") {
            let content_sha = request
                .headers()
                .get("x-amz-content-sha256")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| hex::decode(v).ok());
            let headers = request.headers_mut();
            headers.insert("x-amz-sdk-checksum-algorithm", http::HeaderValue::from_static("SHA256"));
            headers.remove(http::header::AUTHORIZATION);
            let authorizer = AwsAuthorizer::new(&self.credential, "s3", &self.region);
            match content_sha {
                Some(digest) => authorizer.authorize(&mut request, Some(&digest)),
                None => authorizer.with_sign_payload(false).authorize(&mut request, None),
            }
        }
        self.inner.execute(request).await
    }
}

/// Object Lock state of a bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockStatus {
    /// Object Lock is enabled on the bucket.
    pub enabled: bool,
    /// Default retention mode (`COMPLIANCE` or `GOVERNANCE`), when set.
    pub mode: Option<String>,
    /// Default retention in days (years converted at 365 days), when set.
    pub days: Option<u32>,
}

/// One version of an object, or a delete marker, as `ListObjectVersions` gives it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectVersion {
    /// The object's key in the bucket.
    pub key: String,
    /// Version id (`null` for an object written before versioning was enabled).
    pub version_id: String,
    /// The current version of its key (for a delete marker: the key reads as deleted).
    pub is_latest: bool,
    /// When it was written, as S3 gives it (ISO 8601, UTC).
    pub last_modified: String,
    /// Bytes (0 for a delete marker).
    pub size: u64,
    /// ETag without its quotes; empty for a delete marker.
    pub etag: String,
    /// A delete marker rather than data.
    pub delete_marker: bool,
}

/// One page of a `ListObjectVersions` answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionPage {
    /// Versions and delete markers, in the order of the answer.
    pub versions: Vec<ObjectVersion>,
    /// Key and version id markers of the next page, when the answer is truncated.
    pub next: Option<(String, String)>,
}

/// An object version's Object Lock protection, from a HEAD of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectRetention {
    /// `COMPLIANCE` or `GOVERNANCE`; `None`: no retention.
    pub mode: Option<String>,
    /// End of the retention (ISO 8601).
    pub retain_until: Option<String>,
    /// A legal hold is on.
    pub legal_hold: bool,
}

/// The credentials may not read something (S3 answered 403): what and the answer. A reading command
/// reports it as a warning instead of failing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// The permission needed, such as `s3:ListBucketVersions`.
    pub permission: &'static str,
    /// S3's answer.
    pub answer: String,
}

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the credentials lack {} (S3 answered 403: {})", self.permission, self.answer)
    }
}

/// What vigil does with a bucket's Object Lock when a pipeline starts ([`lock_decision`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockDecision {
    /// Object Lock is not enabled: nothing can be set (the caller warns).
    NotEnabled,
    /// No default retention yet: set the configured one (first-time setup).
    Set,
    /// The bucket's default is at least as strong as the config's: leave it.
    Keep,
    /// The bucket's default is weaker: refuse to start, for this reason.
    Refuse(String),
}

/// How strong a retention mode is: `COMPLIANCE` (nobody can shorten or remove it) beats `GOVERNANCE`
/// (whoever has `s3:BypassGovernanceRetention` can), which beats anything else.
pub fn mode_strength(mode: &str) -> u8 {
    match mode {
        "COMPLIANCE" => 2,
        "GOVERNANCE" => 1,
        _ => 0,
    }
}

/// Decides what to do with the bucket's Object Lock `status` when the config asks for `days` days in
/// `mode`. vigil never changes an existing default retention: it sets one only where there is none, and a
/// default weaker in mode or days than the config's is refused, saying how to fix it.
pub fn lock_decision(bucket: &str, status: &LockStatus, mode: &str, days: u32) -> LockDecision {
    if !status.enabled {
        return LockDecision::NotEnabled;
    }
    let (Some(has_mode), Some(has_days)) = (status.mode.as_deref(), status.days) else {
        return LockDecision::Set;
    };
    let weaker_mode = mode_strength(has_mode) < mode_strength(mode);
    let fewer_days = has_days < days;
    if !weaker_mode && !fewer_days {
        return LockDecision::Keep;
    }
    let what = match (weaker_mode, fewer_days) {
        (true, true) => "weaker in mode and shorter",
        (true, false) => "weaker in mode",
        _ => "shorter",
    };
    let (fix_mode, fix_days) =
        (if mode_strength(has_mode) >= mode_strength(mode) { has_mode } else { mode }, has_days.max(days));
    LockDecision::Refuse(format!(
        "its Object Lock default retention ({has_mode}, {has_days} days) is {what} than the config asks \
         ({mode}, {days} days), and vigil never changes an existing lock, so it will not write evidence there. \
         Either strengthen the bucket's lock: aws s3api put-object-lock-configuration --bucket {bucket} \
         --object-lock-configuration '{{\"ObjectLockEnabled\":\"Enabled\",\"Rule\":{{\"DefaultRetention\":\
         {{\"Mode\":\"{fix_mode}\",\"Days\":{fix_days}}}}}}}', or configure [evidence] retention_days = {has_days} \
         and object_lock_mode = \"{has_mode}\" to match the bucket"
    ))
}

/// An S3 bucket's own API, for what `object_store` does not cover (Object Lock, object versions).
#[derive(Debug)]
pub struct S3Bucket {
    s3: Arc<AmazonS3>,
    settings: S3Settings,
    http: HttpClient,
}

fn tag<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))?;
    Some(xml[start..start + end].trim())
}

/// Undoes XML's character escapes (S3 escapes `&`, `<`, `>`, quotes and control characters).
fn unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        let Some(end) = after.find(';') else {
            out.push_str(after);
            return out;
        };
        let entity = &after[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &after[end + 1..];
            }
            None => {
                out.push('&');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Parses a `GetObjectLockConfiguration` answer.
pub fn parse_lock_configuration(xml: &str) -> LockStatus {
    let days = tag(xml, "Days")
        .and_then(|d| d.parse().ok())
        .filter(|d| *d > 0)
        .or_else(|| tag(xml, "Years").and_then(|y| y.parse::<u32>().ok()).map(|y| y * 365));
    LockStatus {
        enabled: tag(xml, "ObjectLockEnabled") == Some("Enabled"),
        mode: tag(xml, "Mode").map(str::to_string),
        days,
    }
}

/// Parses one page of a `ListObjectVersions` answer.
pub fn parse_versions_page(xml: &str) -> VersionPage {
    let parse = |body: &str, delete_marker: bool| ObjectVersion {
        key: tag(body, "Key").map(unescape).unwrap_or_default(),
        version_id: tag(body, "VersionId").map(unescape).unwrap_or_default(),
        is_latest: tag(body, "IsLatest") == Some("true"),
        last_modified: tag(body, "LastModified").unwrap_or_default().to_string(),
        size: tag(body, "Size").and_then(|s| s.parse().ok()).unwrap_or(0),
        etag: tag(body, "ETag").map(|e| unescape(e).trim_matches('"').to_string()).unwrap_or_default(),
        delete_marker,
    };
    // AWS interleaves both kinds in key order; some servers list each kind apart. Keep the answer's order.
    let mut found: Vec<(usize, ObjectVersion)> = Vec::new();
    for (kind, delete_marker) in [("Version", false), ("DeleteMarker", true)] {
        let (open, close) = (format!("<{kind}>"), format!("</{kind}>"));
        let mut at = 0;
        while let Some(start) = xml[at..].find(&open).map(|s| s + at) {
            let body = start + open.len();
            let Some(end) = xml[body..].find(&close).map(|e| e + body) else { break };
            found.push((start, parse(&xml[body..end], delete_marker)));
            at = end + close.len();
        }
    }
    found.sort_by_key(|(at, _)| *at);
    // The markers are outside every <Version>/<DeleteMarker> element, which hold no such names.
    let next = (tag(xml, "IsTruncated") == Some("true")).then(|| {
        (
            tag(xml, "NextKeyMarker").map(unescape).unwrap_or_default(),
            tag(xml, "NextVersionIdMarker").map(unescape).unwrap_or_default(),
        )
    });
    VersionPage { versions: found.into_iter().map(|(_, v)| v).collect(), next }
}

/// An answer of the bucket's own API.
struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty())
    }

    /// S3's error code and message, or the start of the body.
    fn says(&self) -> String {
        match (tag(&self.body, "Code"), tag(&self.body, "Message")) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.to_string(),
            _ => self.body.trim().chars().take(200).collect(),
        }
    }
}

/// Requests repeated after a transport error or a 5xx/429 answer (200 ms, 400 ms, 800 ms apart).
const BUCKET_API_RETRIES: u32 = 3;

impl S3Bucket {
    /// The bucket's settings.
    pub fn settings(&self) -> &S3Settings {
        &self.settings
    }

    fn error(&self, reason: String) -> Error {
        Error::Bucket { bucket: self.settings.bucket.clone(), reason }
    }

    /// Sends one signed request to `key` (empty: the bucket) with `query`; repeats it a few times when the
    /// store does not answer or answers 5xx or 429.
    async fn send(&self, method: http::Method, key: &str, query: &[(&str, &str)], body: Vec<u8>) -> Result<Answer> {
        let url = self.settings.url(key, query);
        let credential =
            self.s3.credentials().get_credential().await.map_err(|e| self.error(format!("no credentials: {e}")))?;
        let md5 = (!body.is_empty()).then(|| {
            use base64::Engine;
            use md5::Digest;
            base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(&body))
        });
        let mut attempt = 0;
        loop {
            let mut builder = http::Request::builder().method(method.clone()).uri(&url);
            if let Some(md5) = &md5 {
                builder = builder.header("content-md5", md5);
            }
            let mut request = builder
                .body(object_store::client::HttpRequestBody::from(body.clone()))
                .map_err(|e| self.error(format!("bad request for {url}: {e}")))?;
            AwsAuthorizer::new(&credential, "s3", &self.settings.region).authorize(&mut request, None);
            let answer = match self.http.execute(request).await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let headers = response.headers().clone();
                    match response.into_body().bytes().await {
                        Ok(text) => Ok(Answer { status, headers, body: String::from_utf8_lossy(&text).into_owned() }),
                        Err(e) => Err(format!("{method} {url}: {e}")),
                    }
                }
                Err(e) => Err(format!("{method} {url}: {e}")),
            };
            let again = match &answer {
                Ok(a) => a.status >= 500 || a.status == 429,
                Err(_) => true,
            };
            if !again || attempt == BUCKET_API_RETRIES {
                return answer.map_err(|e| self.error(format!("{e} (the store did not answer; try again)")));
            }
            tokio::time::sleep(std::time::Duration::from_millis(200 << attempt)).await;
            attempt += 1;
        }
    }

    async fn request(&self, method: http::Method, subresource: &str, body: Vec<u8>) -> Result<(u16, String)> {
        let answer = self.send(method, "", &[(subresource, "")], body).await?;
        Ok((answer.status, answer.body))
    }

    /// Reads the bucket's Object Lock configuration.
    pub async fn lock_status(&self) -> Result<LockStatus> {
        let (status, text) = self.request(http::Method::GET, "object-lock", Vec::new()).await?;
        match status {
            200 => Ok(parse_lock_configuration(&text)),
            404 if text.contains("NoSuchBucket") => Err(Error::Bucket {
                bucket: self.settings.bucket.clone(),
                reason: "the bucket does not exist; create it with Object Lock enabled".into(),
            }),
            404 | 400 => Ok(LockStatus::default()),
            _ => Err(Error::Bucket {
                bucket: self.settings.bucket.clone(),
                reason: format!("reading its Object Lock configuration answered {status}: {}", text.trim()),
            }),
        }
    }

    /// Makes sure new objects are kept at least `days` days in `mode` (`COMPLIANCE` or `GOVERNANCE`)
    /// without ever weakening the bucket's lock ([`lock_decision`]): sets the default retention when the
    /// bucket has none, keeps one at least as strong, and refuses ([`Error::Bucket`]) one that is weaker.
    /// Returns the status after any change; `enabled == false` means the bucket cannot lock and nothing was
    /// changed.
    pub async fn ensure_default_retention(&self, mode: &str, days: u32) -> Result<LockStatus> {
        let status = self.lock_status().await?;
        match lock_decision(&self.settings.bucket, &status, mode, days) {
            LockDecision::NotEnabled | LockDecision::Keep => return Ok(status),
            LockDecision::Refuse(reason) => return Err(self.error(reason)),
            LockDecision::Set => {}
        }
        let xml = format!(
            "<ObjectLockConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>{mode}</Mode>\
             <Days>{days}</Days></DefaultRetention></Rule></ObjectLockConfiguration>"
        );
        let (code, text) = self.request(http::Method::PUT, "object-lock", xml.into_bytes()).await?;
        if code != 200 {
            return Err(Error::Bucket {
                bucket: self.settings.bucket.clone(),
                reason: format!(
                    "setting the default retention ({mode}, {days} days) answered {code}: {}; the credentials need \
                     s3:PutBucketObjectLockConfiguration",
                    text.trim()
                ),
            });
        }
        tracing::info!(bucket = %self.settings.bucket, mode, days, "bucket default retention set (Object Lock)");
        self.lock_status().await
    }

    /// The bucket's versioning status (`GetBucketVersioning`): `Some("Enabled")`, `Some("Suspended")`,
    /// `None` for a bucket that was never versioned, or `Some("unknown (...)")` from a store that does not
    /// answer the call.
    pub async fn versioning(&self) -> Result<std::result::Result<Option<String>, Denied>> {
        let answer = self.send(http::Method::GET, "", &[("versioning", "")], Vec::new()).await?;
        match answer.status {
            200 => Ok(Ok(tag(&answer.body, "Status").map(str::to_string))),
            403 => Ok(Err(Denied { permission: "s3:GetBucketVersioning", answer: answer.says() })),
            // A store without the call (501 NotImplemented, 400, 405): it keeps no versions vigil can read.
            status @ (400..=499 | 501) if !answer.body.contains("NoSuchBucket") => {
                Ok(Ok(Some(format!("unknown (the store answered {status}: {})", answer.says()))))
            }
            status => Err(self.error(format!("reading its versioning status answered {status}: {}", answer.says()))),
        }
    }

    /// Every version and delete marker of the objects under `prefix` (`ListObjectVersions`, page by page).
    pub async fn list_object_versions(&self, prefix: &str) -> Result<std::result::Result<Vec<ObjectVersion>, Denied>> {
        let mut out = Vec::new();
        let mut marker: Option<(String, String)> = None;
        loop {
            let mut query = vec![("versions", ""), ("prefix", prefix)];
            if let Some((key, version)) = &marker {
                query.push(("key-marker", key));
                query.push(("version-id-marker", version));
            }
            let answer = self.send(http::Method::GET, "", &query, Vec::new()).await?;
            match answer.status {
                200 => {}
                403 => return Ok(Err(Denied { permission: "s3:ListBucketVersions", answer: answer.says() })),
                status => {
                    return Err(self.error(format!("listing object versions answered {status}: {}", answer.says())));
                }
            }
            let page = parse_versions_page(&answer.body);
            out.extend(page.versions);
            match page.next {
                None => return Ok(Ok(out)),
                Some(next) if next.0.is_empty() || marker.as_ref() == Some(&next) => {
                    return Err(self.error(format!(
                        "listing object versions: a truncated answer without a new next marker ({next:?}); the \
                         store's ListObjectVersions is broken"
                    )));
                }
                Some(next) => marker = Some(next),
            }
        }
    }

    /// The Object Lock protection of version `version_id` of `key`, `None` when that version is gone. Read
    /// with a HEAD; when the HEAD shows no retention, `GetObjectRetention` confirms it (S3 leaves the
    /// retention headers out of a HEAD by credentials without `s3:GetObjectRetention`, and that is a refusal,
    /// not an object without retention).
    pub async fn object_retention(
        &self,
        key: &str,
        version_id: &str,
    ) -> Result<std::result::Result<Option<ObjectRetention>, Denied>> {
        let version = [("versionId", version_id)];
        let query: &[(&str, &str)] = if version_id.is_empty() || version_id == "null" { &[] } else { &version };
        let head = self.send(http::Method::HEAD, key, query, Vec::new()).await?;
        match head.status {
            200 => {}
            404 => return Ok(Ok(None)),
            403 => return Ok(Err(Denied { permission: "s3:GetObjectVersion", answer: format!("HEAD {key}") })),
            status => return Err(self.error(format!("HEAD {key} answered {status}"))),
        }
        let mut retention = ObjectRetention {
            mode: head.header("x-amz-object-lock-mode").map(str::to_string),
            retain_until: head.header("x-amz-object-lock-retain-until-date").map(str::to_string),
            legal_hold: head.header("x-amz-object-lock-legal-hold") == Some("ON"),
        };
        if retention.mode.is_some() {
            return Ok(Ok(Some(retention)));
        }
        let mut query = query.to_vec();
        query.insert(0, ("retention", ""));
        let answer = self.send(http::Method::GET, key, &query, Vec::new()).await?;
        match answer.status {
            // Only a <Retention> answer counts (a server without this call may answer with the object itself).
            200 if answer.body.contains("<Retention") => {
                retention.mode = tag(&answer.body, "Mode").map(str::to_string);
                retention.retain_until = tag(&answer.body, "RetainUntilDate").map(str::to_string);
            }
            403 => return Ok(Err(Denied { permission: "s3:GetObjectRetention", answer: answer.says() })),
            _ => {}
        }
        Ok(Ok(Some(retention)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        assert_eq!(Location::parse("ev").unwrap(), Location::Local("ev".into()));
        assert_eq!(Location::parse("file:///tmp/ev").unwrap(), Location::Local("/tmp/ev".into()));
        let Location::S3 { bucket, prefix, options } =
            Location::parse("s3://b/some/prefix/?endpoint=http://127.0.0.1:9000&region=eu-west-1").unwrap()
        else {
            panic!("s3")
        };
        assert_eq!((bucket.as_str(), prefix.as_str()), ("b", "some/prefix"));
        assert_eq!(options["endpoint"], "http://127.0.0.1:9000");
        let err = Location::parse("s3://b/p?endpont=x").unwrap_err().to_string();
        assert!(err.contains("unknown setting 'endpont'"), "{err}");
        assert!(Location::parse("gs://b").unwrap_err().to_string().contains("s3://BUCKET"));
    }

    #[test]
    fn settings_come_from_url_then_env_then_profile_files() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join(".aws")).unwrap();
        std::fs::write(
            home.path().join(".aws/credentials"),
            "[default]\naws_access_key_id = DEF\naws_secret_access_key = defsecret\n[audit]\naws_access_key_id=AUD\naws_secret_access_key=audsecret\n",
        )
        .unwrap();
        std::fs::write(
            home.path().join(".aws/config"),
            "[profile audit]\nregion = eu-central-1\nendpoint_url = http://x:1\n",
        )
        .unwrap();
        let mut env = Environment { vars: BTreeMap::new(), home: Some(home.path().to_path_buf()) };
        let s = S3Settings::resolve("b", &BTreeMap::new(), &env);
        assert_eq!(
            (s.access_key_id.as_deref(), s.region.as_str(), s.endpoint.as_deref()),
            (Some("DEF"), "us-east-1", None)
        );
        env.vars.insert("AWS_PROFILE".into(), "audit".into());
        let s = S3Settings::resolve("b", &BTreeMap::new(), &env);
        assert_eq!((s.access_key_id.as_deref(), s.region.as_str()), (Some("AUD"), "eu-central-1"));
        assert_eq!(s.endpoint.as_deref(), Some("http://x:1"));
        env.vars.insert("AWS_ACCESS_KEY_ID".into(), "ENV".into());
        env.vars.insert("AWS_REGION".into(), "ap-south-1".into());
        let s = S3Settings::resolve("b", &BTreeMap::new(), &env);
        assert_eq!((s.access_key_id.as_deref(), s.region.as_str()), (Some("ENV"), "ap-south-1"));
        let url: BTreeMap<String, String> =
            [("endpoint".to_string(), "http://127.0.0.1:9".to_string())].into_iter().collect();
        let s = S3Settings::resolve("b", &url, &env);
        assert_eq!(s.endpoint.as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(s.url("", &[("object-lock", "")]), "http://127.0.0.1:9/b?object-lock");
        assert!(!format!("{s:?}").contains("audsecret"));
    }

    #[test]
    fn lock_configuration_parses() {
        let xml = "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention>\
                   <Mode>COMPLIANCE</Mode><Years>2</Years></DefaultRetention></Rule></ObjectLockConfiguration>";
        assert_eq!(
            parse_lock_configuration(xml),
            LockStatus { enabled: true, mode: Some("COMPLIANCE".into()), days: Some(730) }
        );
        assert_eq!(parse_lock_configuration("<x/>"), LockStatus::default());
        // moto writes both, the unused one as 0.
        let both =
            "<ObjectLockEnabled>Enabled</ObjectLockEnabled><Mode>GOVERNANCE</Mode><Days>0</Days><Years>1</Years>";
        assert_eq!(parse_lock_configuration(both).days, Some(365));
    }

    fn status(mode: &str, days: u32) -> LockStatus {
        LockStatus { enabled: true, mode: Some(mode.into()), days: Some(days) }
    }

    #[test]
    fn an_existing_lock_is_never_weakened() {
        let decide = |s: &LockStatus, mode: &str, days: u32| lock_decision("b", s, mode, days);
        assert_eq!(decide(&LockStatus::default(), "COMPLIANCE", 400), LockDecision::NotEnabled);
        let unset = LockStatus { enabled: true, ..LockStatus::default() };
        assert_eq!(decide(&unset, "COMPLIANCE", 400), LockDecision::Set, "first-time setup");
        assert_eq!(decide(&status("COMPLIANCE", 400), "COMPLIANCE", 400), LockDecision::Keep);
        assert_eq!(decide(&status("COMPLIANCE", 800), "COMPLIANCE", 400), LockDecision::Keep, "longer");
        assert_eq!(decide(&status("COMPLIANCE", 400), "GOVERNANCE", 400), LockDecision::Keep, "stronger mode");
        assert_eq!(decide(&status("COMPLIANCE", 800), "GOVERNANCE", 30), LockDecision::Keep);
        assert_eq!(decide(&status("GOVERNANCE", 400), "GOVERNANCE", 400), LockDecision::Keep);
        let LockDecision::Refuse(reason) = decide(&status("GOVERNANCE", 1), "COMPLIANCE", 400) else {
            panic!("weaker in mode and days")
        };
        assert!(reason.contains("(GOVERNANCE, 1 days) is weaker in mode and shorter than"), "{reason}");
        assert!(reason.contains("(COMPLIANCE, 400 days)"), "{reason}");
        assert!(reason.contains("never changes an existing lock"), "{reason}");
        assert!(reason.contains("put-object-lock-configuration --bucket b"), "{reason}");
        assert!(reason.contains(r#"{"Mode":"COMPLIANCE","Days":400}"#), "{reason}");
        assert!(reason.contains(r#"retention_days = 1 and object_lock_mode = "GOVERNANCE""#), "{reason}");
        let LockDecision::Refuse(reason) = decide(&status("GOVERNANCE", 800), "COMPLIANCE", 400) else {
            panic!("weaker in mode")
        };
        assert!(reason.contains("is weaker in mode than") && reason.contains(r#""Days":800"#), "{reason}");
        let LockDecision::Refuse(reason) = decide(&status("COMPLIANCE", 300), "GOVERNANCE", 400) else {
            panic!("shorter")
        };
        assert!(reason.contains("is shorter than"), "{reason}");
        assert!(reason.contains(r#"{"Mode":"COMPLIANCE","Days":400}"#), "keeps the stronger mode: {reason}");
    }

    #[test]
    fn object_urls_are_encoded_as_signed() {
        let s = S3Settings {
            bucket: "b".into(),
            endpoint: Some("http://127.0.0.1:9/".into()),
            region: "us-east-1".into(),
            ..S3Settings::default()
        };
        assert_eq!(
            s.url("p/events/source=a b/x.parquet", &[("versionId", "v+1/2")]),
            "http://127.0.0.1:9/b/p/events/source%3Da%20b/x.parquet?versionId=v%2B1%2F2"
        );
        assert_eq!(s.url("", &[("versions", ""), ("prefix", "p/")]), "http://127.0.0.1:9/b?versions&prefix=p%2F");
        let aws = S3Settings { endpoint: None, region: "eu-west-1".into(), ..s.clone() };
        assert_eq!(aws.url("k", &[]), "https://b.s3.eu-west-1.amazonaws.com/k");
        let hosted = S3Settings { virtual_hosted_style: true, ..s };
        assert_eq!(hosted.url("", &[("versioning", "")]), "http://b.127.0.0.1:9/?versioning");
    }

    #[test]
    fn version_listings_parse_in_either_order() {
        // AWS: both kinds interleaved in key order, ETags escaped.
        let aws = "<ListVersionsResult><IsTruncated>true</IsTruncated><KeyMarker></KeyMarker>\
                   <NextKeyMarker>p/b&amp;c</NextKeyMarker><NextVersionIdMarker>v9</NextVersionIdMarker>\
                   <Version><Key>p/a</Key><VersionId>v2</VersionId><IsLatest>true</IsLatest>\
                   <LastModified>2026-12-03T12:40:08.000Z</LastModified><ETag>&quot;e2&quot;</ETag><Size>6</Size></Version>\
                   <DeleteMarker><Key>p/b&amp;c</Key><VersionId>m1</VersionId><IsLatest>true</IsLatest>\
                   <LastModified>2026-12-03T12:40:09.000Z</LastModified></DeleteMarker>\
                   <Version><Key>p/b&amp;c</Key><VersionId>v1</VersionId><IsLatest>false</IsLatest>\
                   <LastModified>2026-12-03T12:40:04.000Z</LastModified><ETag>\"e1\"</ETag><Size>7</Size></Version>\
                   </ListVersionsResult>";
        let page = parse_versions_page(aws);
        assert_eq!(page.next, Some(("p/b&c".to_string(), "v9".to_string())));
        let got: Vec<(&str, &str, bool, bool, &str, u64)> = page
            .versions
            .iter()
            .map(|v| (v.key.as_str(), v.version_id.as_str(), v.is_latest, v.delete_marker, v.etag.as_str(), v.size))
            .collect();
        assert_eq!(
            got,
            [
                ("p/a", "v2", true, false, "e2", 6),
                ("p/b&c", "m1", true, true, "", 0),
                ("p/b&c", "v1", false, false, "e1", 7)
            ]
        );
        assert_eq!(page.versions[0].last_modified, "2026-12-03T12:40:08.000Z");
        // moto: versions first, then delete markers; not truncated.
        let moto = "<ListVersionsResult><IsTruncated>false</IsTruncated><KeyMarker/>\
                    <Version><ETag>\"e1\"</ETag><Size>7</Size><Key>p/b</Key><VersionId>v1</VersionId>\
                    <IsLatest>false</IsLatest><LastModified>2026-12-03T12:40:04.000Z</LastModified></Version>\
                    <DeleteMarker><Key>p/b</Key><VersionId>m1</VersionId><IsLatest>true</IsLatest>\
                    <LastModified>2026-12-03T12:40:09.000Z</LastModified></DeleteMarker></ListVersionsResult>";
        let page = parse_versions_page(moto);
        assert_eq!(page.next, None);
        assert_eq!(page.versions.iter().map(|v| v.delete_marker).collect::<Vec<_>>(), [false, true]);
        assert_eq!(unescape("a&#x41;&#66;&bogus;&"), "aAB&bogus;&");
    }
}
