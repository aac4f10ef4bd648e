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

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, AwsAuthorizer, AwsCredential, Checksum};
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
    pub(crate) fn url(&self, key: &str, query: &[(&str, &str)]) -> String {
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

pub use crate::bucket::{
    Denied, LockDecision, LockStatus, ObjectRetention, ObjectVersion, S3Bucket, VersionPage, lock_decision,
    mode_strength, parse_lock_configuration, parse_versions_page,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bucket::unescape;

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
