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
//! in every store); [`S3Bucket::lock_status`] tells.

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
                .connect(&ClientOptions::new().with_allow_http(true))
                .map_err(|e| loc_err(format!("cannot create an HTTP client: {e}")))?;
            let bucket = S3Bucket { s3: s3.clone(), settings, http };
            Ok(OpenedStore { store: s3, root: Path::from(prefix.as_str()), bucket: Some(Arc::new(bucket)) })
        }
    }
}

/// Environment the S3 settings are read from (the process's, or a test's).
#[derive(Debug, Clone, Default)]
pub struct Environment {
    /// Variables.
    pub vars: BTreeMap<String, String>,
    /// The home directory (for `~/.aws/...`).
    pub home: Option<PathBuf>,
}

impl Environment {
    /// The running process's environment.
    pub fn from_process() -> Environment {
        Environment { vars: std::env::vars().collect(), home: std::env::var_os("HOME").map(PathBuf::from) }
    }

    fn var(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str).filter(|v| !v.is_empty())
    }

    fn file(&self, var: &str, default: &str) -> Option<PathBuf> {
        self.var(var).map(PathBuf::from).or_else(|| self.home.as_ref().map(|h| h.join(default)))
    }
}

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

/// Sections of an AWS INI file (`[default]`, `[profile x]` or `[x]`), keys lower-cased.
fn ini_sections(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut sections: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim();
            current = name.strip_prefix("profile ").unwrap_or(name).trim().to_string();
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            sections.entry(current.clone()).or_default().insert(k.trim().to_lowercase(), v.trim().to_string());
        }
    }
    sections
}

impl S3Settings {
    /// Resolves the settings of `bucket` from URL `options`, then `env`'s variables, then its profile files.
    pub fn resolve(bucket: &str, options: &BTreeMap<String, String>, env: &Environment) -> S3Settings {
        let profile = options.get("profile").map(String::as_str).or(env.var("AWS_PROFILE")).unwrap_or("default");
        let read = |var: &str, default: &str| -> BTreeMap<String, String> {
            env.file(var, default)
                .and_then(|p| std::fs::read_to_string(p).ok())
                .map(|t| ini_sections(&t).remove(profile).unwrap_or_default())
                .unwrap_or_default()
        };
        let credentials = read("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
        let config = read("AWS_CONFIG_FILE", ".aws/config");
        let from_files = |key: &str| credentials.get(key).or_else(|| config.get(key)).cloned();
        let explicit_profile = options.contains_key("profile");
        // A profile named in the URL wins over the environment's keys; otherwise the environment wins.
        let pick = |var: &str, key: &str| {
            if explicit_profile {
                from_files(key).or_else(|| env.var(var).map(str::to_string))
            } else {
                env.var(var).map(str::to_string).or_else(|| from_files(key))
            }
        };
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

    /// URL of a bucket-level sub-resource such as `object-lock`.
    fn bucket_url(&self, subresource: &str) -> String {
        match (&self.endpoint, self.virtual_hosted_style) {
            (Some(endpoint), false) => format!("{}/{}?{subresource}", endpoint.trim_end_matches('/'), self.bucket),
            (Some(endpoint), true) => {
                let (scheme, host) = endpoint.split_once("://").unwrap_or(("https", endpoint));
                format!("{scheme}://{}.{}/?{subresource}", self.bucket, host.trim_end_matches('/'))
            }
            (None, _) => format!("https://{}.s3.{}.amazonaws.com/?{subresource}", self.bucket, self.region),
        }
    }
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

/// An S3 bucket's own API, for what `object_store` does not cover (Object Lock).
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

/// Parses a `GetObjectLockConfiguration` answer.
pub fn parse_lock_configuration(xml: &str) -> LockStatus {
    let days = tag(xml, "Days")
        .and_then(|d| d.parse().ok())
        .or_else(|| tag(xml, "Years").and_then(|y| y.parse::<u32>().ok()).map(|y| y * 365));
    LockStatus {
        enabled: tag(xml, "ObjectLockEnabled") == Some("Enabled"),
        mode: tag(xml, "Mode").map(str::to_string),
        days,
    }
}

impl S3Bucket {
    /// The bucket's settings.
    pub fn settings(&self) -> &S3Settings {
        &self.settings
    }

    async fn request(&self, method: http::Method, subresource: &str, body: Vec<u8>) -> Result<(u16, String)> {
        let url = self.settings.bucket_url(subresource);
        let what = |reason: String| Error::Bucket { bucket: self.settings.bucket.clone(), reason };
        let credential =
            self.s3.credentials().get_credential().await.map_err(|e| what(format!("no credentials: {e}")))?;
        let md5 = {
            use base64::Engine;
            use md5::Digest;
            base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(&body))
        };
        let mut request = http::Request::builder()
            .method(method)
            .uri(&url)
            .header("content-md5", md5)
            .body(object_store::client::HttpRequestBody::from(body))
            .map_err(|e| what(format!("bad request for {url}: {e}")))?;
        AwsAuthorizer::new(&credential, "s3", &self.settings.region).authorize(&mut request, None);
        let response = self.http.execute(request).await.map_err(|e| what(format!("{url}: {e}")))?;
        let status = response.status().as_u16();
        let text = response.into_body().bytes().await.map_err(|e| what(format!("{url}: {e}")))?;
        Ok((status, String::from_utf8_lossy(&text).into_owned()))
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

    /// Makes sure the bucket's default retention keeps every new object at least `days` days in `mode`
    /// (`COMPLIANCE` or `GOVERNANCE`). Returns the status after the change; `enabled == false` means the
    /// bucket cannot lock and nothing was changed.
    pub async fn ensure_default_retention(&self, mode: &str, days: u32) -> Result<LockStatus> {
        let status = self.lock_status().await?;
        if !status.enabled || (status.mode.as_deref() == Some(mode) && status.days.is_some_and(|d| d >= days)) {
            return Ok(status);
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
        assert_eq!(s.bucket_url("object-lock"), "http://127.0.0.1:9/b?object-lock");
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
    }
}
