//! An S3 bucket's Object Lock and versions, over the S3 API itself (`object_store` has neither): the
//! bucket's lock configuration and default retention ([`lock_decision`] says whether vigil may use it),
//! and every version of an object with its retention, for `vigil verify` ([`crate::versions`]).

use std::sync::Arc;

use object_store::aws::{AmazonS3, AwsAuthorizer};
use object_store::client::HttpClient;

use crate::store::S3Settings;
use crate::{Error, Result};

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
    pub(crate) s3: Arc<AmazonS3>,
    pub(crate) settings: S3Settings,
    pub(crate) http: HttpClient,
}

fn tag<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))?;
    Some(xml[start..start + end].trim())
}

/// Undoes XML's character escapes (S3 escapes `&`, `<`, `>`, quotes and control characters).
pub(crate) fn unescape(text: &str) -> String {
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
