//! The AWS MSK IAM login token (what AWS's `aws-msk-iam-sasl-signer` libraries make): the URL
//! `https://kafka.{region}.amazonaws.com/?Action=kafka-cluster%3AConnect` presigned with SigV4 (service
//! `kafka-cluster`, `X-Amz-Expires=900`, the SHA-256 of the empty payload), a `User-Agent` parameter
//! added after signing, base64url-encoded without padding. It lives until the signing time plus 900 s, or
//! until the temporary credentials it was signed with expire, whichever comes first.
//!
//! **Credentials**, in the usual AWS order ([`vigil_aws::Profile`] reads the first two as S3 does):
//! 1. static keys: `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (/ `AWS_SESSION_TOKEN`), or those of the
//!    profile (`aws_profile`, else `AWS_PROFILE`, else `default`) in `~/.aws/credentials` or
//!    `~/.aws/config` (a profile named with `aws_profile` wins over the environment);
//! 2. a web identity: `AWS_WEB_IDENTITY_TOKEN_FILE` and `AWS_ROLE_ARN` (EKS IRSA; or the profile's
//!    `web_identity_token_file` and `role_arn`), exchanged at STS (`AssumeRoleWithWebIdentity`, the
//!    region's endpoint or `AWS_ENDPOINT_URL_STS`);
//! 3. container credentials: `AWS_CONTAINER_CREDENTIALS_FULL_URI` (EKS Pod Identity, with
//!    `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`) or `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` (ECS);
//! 4. the EC2 instance profile (IMDSv2), unless `AWS_EC2_METADATA_DISABLED=true`.
//!
//! Temporary credentials (2-4) are kept until five minutes before they expire; static keys and files
//! are read again at every refresh, so rotated keys are picked up.
//!
//! **Region**: `aws_region`, else the one in the broker names (`b-1.x.y.c2.kafka.eu-west-1.amazonaws.com`,
//! `boot-x.c1.kafka-serverless.us-east-1.amazonaws.com`), else `AWS_REGION`, the profile's region or
//! `AWS_DEFAULT_REGION`.

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use vigil_aws::sigv4::{self, PresignRequest};
use vigil_aws::{Credentials, Environment, Profile, WebIdentity};

use crate::oauth::{self, OAuthBearer, Token, TokenError, TokenSource};

/// Seconds a token is valid (what AWS's signers use).
pub const TOKEN_EXPIRY_SECS: u64 = 900;
/// The action the token allows.
pub const ACTION: &str = "kafka-cluster:Connect";
/// The SigV4 signing name.
pub const SERVICE: &str = "kafka-cluster";
/// The `User-Agent` query parameter.
pub const USER_AGENT: &str = concat!("vigil/", env!("CARGO_PKG_VERSION"));
/// Temporary credentials are fetched again this long before they expire.
const CREDENTIAL_MARGIN_S: i64 = 300;

/// Whether `region` looks like an AWS region name (`eu-west-1`, `us-gov-west-1`, `cn-north-1`).
pub fn is_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
        && parts.last().is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

/// The region in an MSK broker name (`...kafka.REGION.amazonaws.com`, `...kafka-serverless.REGION...`).
pub fn region_of_broker(broker: &str) -> Option<String> {
    let host = broker.rsplit_once(':').map_or(broker, |(h, _)| h).to_ascii_lowercase();
    let labels: Vec<&str> = host.split('.').collect();
    labels.windows(3).find_map(|w| {
        ((w[0] == "kafka" || w[0] == "kafka-serverless") && is_region(w[1]) && w[2] == "amazonaws")
            .then(|| w[1].to_string())
    })
}

/// `YYYYMMDDTHHMMSSZ` of seconds since the Unix epoch.
pub fn amz_date(secs: i64) -> String {
    let (y, m, d) = vigil_schema::time::civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// The MSK IAM token for `region` signed with `credentials` at `signed_at` (seconds since the epoch).
pub fn token(credentials: &Credentials, region: &str, signed_at: i64) -> Token {
    let host = format!("kafka.{region}.amazonaws.com");
    let date = amz_date(signed_at);
    let signed = sigv4::presign(
        credentials,
        &PresignRequest {
            method: "GET",
            host: &host,
            path: "/",
            query: &[("Action", ACTION)],
            service: SERVICE,
            region,
            amz_date: &date,
            expires_secs: TOKEN_EXPIRY_SECS,
            payload_hash: sigv4::EMPTY_PAYLOAD_SHA256,
        },
    );
    let url = format!("https://{host}/?{}&User-Agent={}", signed.query, sigv4::uri_encode(USER_AGENT));
    let mut expires_at = signed_at + TOKEN_EXPIRY_SECS as i64;
    if let Some(credentials_expire) = credentials.expires_at {
        expires_at = expires_at.min(credentials_expire);
    }
    Token { value: oauth::base64url(url.as_bytes()), principal: "aws-msk-iam".into(), expires_at_ms: expires_at * 1000 }
}

/// The AWS MSK IAM token source.
pub struct MskIam {
    region: String,
    profile: Option<String>,
    env: Environment,
    /// Temporary credentials from STS or a metadata service, and where they came from.
    cached: Mutex<Option<(Credentials, &'static str)>>,
}

impl MskIam {
    /// The source for `settings` (method `aws_msk_iam`) of a cluster with `brokers`; fails when no region
    /// can be told.
    pub fn new(settings: &OAuthBearer, brokers: &[String], env: Environment) -> Result<MskIam, String> {
        let profile = settings.aws_profile.clone();
        let region = settings
            .aws_region
            .clone()
            .or_else(|| brokers.iter().find_map(|b| region_of_broker(b)))
            .or_else(|| Profile::load(&env, profile.as_deref()).region())
            .ok_or_else(|| {
                "aws_msk_iam cannot tell the cluster's region: set aws_region=REGION (the region in the broker \
                 names, for example eu-west-1) or AWS_REGION"
                    .to_string()
            })?;
        Ok(MskIam { region, profile, env, cached: Mutex::new(None) })
    }

    /// The region tokens are signed for.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Credentials from the chain (see the module docs).
    pub fn credentials(&self) -> Result<Credentials, TokenError> {
        let profile = Profile::load(&self.env, self.profile.as_deref());
        if let Some(static_keys) = profile.static_credentials() {
            return Ok(static_keys);
        }
        let now = now_s();
        let mut cached = self.cached.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((c, _)) = cached.as_ref()
            && c.expires_at.is_none_or(|at| at - now > CREDENTIAL_MARGIN_S)
        {
            return Ok(c.clone());
        }
        let (fresh, from) = if let Some(identity) = profile.web_identity() {
            (self.web_identity(&identity)?, "web identity")
        } else if let Some(container) = container_endpoint(&self.env)? {
            (container_credentials(&self.env, container)?, "container credentials")
        } else if self.env.var("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Err(no_credentials(&profile, "instance metadata is off (AWS_EC2_METADATA_DISABLED)"));
        } else {
            match instance_credentials(&self.env) {
                Ok(c) => (c, "instance profile"),
                Err(e) => return Err(no_credentials(&profile, &e.reason)),
            }
        };
        tracing::info!(from, expires_in_s = fresh.expires_at.map(|at| at - now), "AWS credentials for MSK IAM");
        *cached = Some((fresh.clone(), from));
        Ok(fresh)
    }

    fn web_identity(&self, identity: &WebIdentity) -> Result<Credentials, TokenError> {
        let token = std::fs::read_to_string(&identity.token_file).map_err(|e| {
            TokenError::user(format!(
                "cannot read the web identity token {} (AWS_WEB_IDENTITY_TOKEN_FILE): {e}",
                identity.token_file.display()
            ))
        })?;
        let endpoint = self
            .env
            .var("AWS_ENDPOINT_URL_STS")
            .map_or_else(|| format!("https://sts.{}.amazonaws.com/", self.region), str::to_string);
        let session = identity.session_name.clone().unwrap_or_else(|| format!("vigil-{}", now_s()));
        let form = [
            ("Action", "AssumeRoleWithWebIdentity"),
            ("Version", "2011-06-15"),
            ("RoleArn", identity.role_arn.as_str()),
            ("RoleSessionName", session.as_str()),
            ("WebIdentityToken", token.trim()),
        ];
        let body: String =
            form.iter().map(|(k, v)| format!("{k}={}", sigv4::uri_encode(v))).collect::<Vec<_>>().join("&");
        let role = identity.role_arn.clone();
        let what = format!("STS AssumeRoleWithWebIdentity for {role}");
        let headers = vec![
            ("content-type", "application/x-www-form-urlencoded".to_string()),
            ("accept", "application/xml".to_string()),
        ];
        let (status, text) = oauth::exchange(reqwest::Method::POST, endpoint, headers, Some(body), what.clone(), None)?;
        let secrets = [token.trim()];
        if status != 200 {
            let code = xml_value(&text, "Code").unwrap_or_default();
            let message = xml_value(&text, "Message").unwrap_or_else(|| oauth::shown_body(&text, &secrets));
            let fault = if status >= 500 { TokenError::external } else { TokenError::user };
            return Err(fault(format!(
                "{what} answered {status} {code}: {}. Check that the role's trust policy allows this service \
                 account (the OIDC provider and the sub claim) and that the token file is the projected one",
                oauth::shown_body(&message, &secrets)
            )));
        }
        let field = |name: &str| {
            xml_value(&text, name).ok_or_else(|| TokenError::external(format!("{what}: the answer has no {name}")))
        };
        Ok(Credentials {
            access_key_id: field("AccessKeyId")?,
            secret_access_key: field("SecretAccessKey")?,
            session_token: Some(field("SessionToken")?),
            expires_at: Some(parse_expiration(&field("Expiration")?, &what)?),
        })
    }
}

impl TokenSource for MskIam {
    fn describe(&self) -> String {
        format!("AWS MSK IAM ({})", self.region)
    }

    fn fetch(&self) -> Result<Token, TokenError> {
        let credentials = self.credentials()?;
        let token = token(&credentials, &self.region, now_s());
        if token.expires_at_ms <= oauth::now_ms() {
            return Err(TokenError::user(
                "the AWS credentials have expired: renew them (aws sso login, a new session token) or use \
                 long-lived ones",
            ));
        }
        Ok(token)
    }
}

fn now_s() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

fn no_credentials(profile: &Profile<'_>, last: &str) -> TokenError {
    TokenError::user(format!(
        "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), or name a \
         profile of ~/.aws/credentials with aws_profile=NAME or AWS_PROFILE (profile `{}` has no keys), or run \
         with a web identity (EKS IRSA: AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN), EKS Pod Identity or an ECS \
         task role, or an EC2 instance profile ({last})",
        profile.name()
    ))
}

/// The text of the first `<name>...</name>` element (STS answers), entities decoded.
fn xml_value(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{name}>"))?;
    let text = xml[start..end].trim();
    Some(
        text.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

fn parse_expiration(text: &str, what: &str) -> Result<i64, TokenError> {
    vigil_normalize::time::parse_rfc3339_us(text)
        .map(|us| us.div_euclid(1_000_000))
        .ok_or_else(|| TokenError::external(format!("{what}: the expiration `{text}` is not a time")))
}

/// Where container credentials are served (`AWS_CONTAINER_CREDENTIALS_FULL_URI`, or the ECS relative URI
/// on 169.254.170.2), if this runs in such a container.
fn container_endpoint(env: &Environment) -> Result<Option<String>, TokenError> {
    if let Some(full) = env.var("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
        return Ok(Some(full.to_string()));
    }
    Ok(env.var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").map(|relative| format!("http://169.254.170.2{relative}")))
}

/// The JSON answer of a container or instance metadata credential service.
#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MetadataCredentials {
    access_key_id: String,
    secret_access_key: String,
    token: Option<String>,
    expiration: Option<String>,
}

fn metadata_credentials(text: &str, what: &str) -> Result<Credentials, TokenError> {
    let c: MetadataCredentials = serde_json::from_str(text)
        .map_err(|e| TokenError::external(format!("{what}: the answer is not the expected JSON ({e})")))?;
    Ok(Credentials {
        access_key_id: c.access_key_id,
        secret_access_key: c.secret_access_key,
        session_token: c.token,
        expires_at: c.expiration.as_deref().map(|t| parse_expiration(t, what)).transpose()?,
    })
}

/// A GET (or a PUT for the IMDSv2 session) with headers, within `timeout_ms`.
fn metadata_request(
    method: reqwest::Method,
    url: String,
    headers: Vec<(&'static str, String)>,
    what: String,
    timeout_ms: u64,
) -> Result<(u16, String), TokenError> {
    oauth::exchange(method, url, headers, None, what, Some(std::time::Duration::from_millis(timeout_ms)))
}

fn container_credentials(env: &Environment, url: String) -> Result<Credentials, TokenError> {
    let what = "the container credential service".to_string();
    let authorization = match env.var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
        Some(file) => Some(
            std::fs::read_to_string(file)
                .map_err(|e| {
                    TokenError::user(format!("cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE {file}: {e}"))
                })?
                .trim()
                .to_string(),
        ),
        None => env.var("AWS_CONTAINER_AUTHORIZATION_TOKEN").map(str::to_string),
    };
    let headers = authorization.iter().map(|a| ("authorization", a.clone())).collect();
    let (status, text) = metadata_request(reqwest::Method::GET, url, headers, what.clone(), 5_000)?;
    if status != 200 {
        return Err(TokenError::external(format!("{what} answered {status}: {}", oauth::shown_body(&text, &[]))));
    }
    metadata_credentials(&text, &what)
}

fn instance_credentials(env: &Environment) -> Result<Credentials, TokenError> {
    let base = env.var("AWS_EC2_METADATA_SERVICE_ENDPOINT").unwrap_or("http://169.254.169.254").trim_end_matches('/');
    let what = "instance metadata (IMDSv2)".to_string();
    let (status, session) = metadata_request(
        reqwest::Method::PUT,
        format!("{base}/latest/api/token"),
        vec![("x-aws-ec2-metadata-token-ttl-seconds", "21600".into())],
        what.clone(),
        1_000,
    )?;
    if status != 200 {
        return Err(TokenError::external(format!("{what} refused a session ({status})")));
    }
    let header = vec![("x-aws-ec2-metadata-token", session.trim().to_string())];
    let roles = format!("{base}/latest/meta-data/iam/security-credentials/");
    let (status, role) = metadata_request(reqwest::Method::GET, roles.clone(), header.clone(), what.clone(), 1_000)?;
    let role = role.lines().next().unwrap_or_default().trim().to_string();
    if status != 200 || role.is_empty() {
        return Err(TokenError::user(format!("{what}: this instance has no instance profile (role) attached")));
    }
    let (status, text) = metadata_request(reqwest::Method::GET, format!("{roles}{role}"), header, what.clone(), 1_000)?;
    if status != 200 {
        return Err(TokenError::external(format!("{what} answered {status} for role {role}")));
    }
    metadata_credentials(&text, &what)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::oauth::stand_in;

    fn settings(region: Option<&str>, profile: Option<&str>) -> OAuthBearer {
        OAuthBearer {
            method: crate::oauth::OAuthMethod::AwsMskIam,
            aws_region: region.map(str::to_string),
            aws_profile: profile.map(str::to_string),
            token_endpoint: None,
            client_id: None,
            client_secret: None,
            scope: None,
            audience: None,
        }
    }

    fn env(vars: &[(&str, &str)]) -> Environment {
        let mut map: BTreeMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        map.entry("AWS_EC2_METADATA_DISABLED".into()).or_insert_with(|| "true".into());
        Environment { vars: map, home: None }
    }

    fn suite_credentials(token: Option<&str>) -> Credentials {
        Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: token.map(str::to_string),
            expires_at: None,
        }
    }

    /// The query parameters of a decoded token URL, %-decoded.
    fn decode(token: &str) -> (String, Vec<(String, String)>) {
        use base64::Engine;
        assert!(!token.contains('=') && !token.contains('+') && !token.contains('/'), "base64url without padding");
        let url = String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).unwrap()).unwrap();
        let (base, query) = url.split_once('?').unwrap();
        let unescape = |s: &str| {
            let mut out = Vec::new();
            let b = s.as_bytes();
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'%' {
                    out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                    i += 3;
                } else {
                    out.push(b[i]);
                    i += 1;
                }
            }
            String::from_utf8(out).unwrap()
        };
        let params = query
            .split('&')
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap();
                (unescape(k), unescape(v))
            })
            .collect();
        (base.to_string(), params)
    }

    #[test]
    fn the_token_is_the_presigned_connect_url_byte_for_byte() {
        // The signing test suite's keys and time; the request is MSK's.
        let signed_at = 1_440_938_160; // 2015-08-30T12:36:00Z
        assert_eq!(amz_date(signed_at), "20150830T123600Z");
        let t = token(&suite_credentials(None), "us-east-1", signed_at);
        use base64::Engine;
        let url =
            String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&t.value).unwrap()).unwrap();
        // The canonical request is the suite's presigned GET with MSK's host, action and expiry: the same
        // presign code passes the suite's vectors byte for byte (vigil-aws); this pins the MSK request.
        let canonical = "GET\n/\nAction=kafka-cluster%3AConnect&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=\
                         AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fkafka-cluster%2Faws4_request&X-Amz-Date=20150830T123600Z\
                         &X-Amz-Expires=900&X-Amz-SignedHeaders=host\nhost:kafka.us-east-1.amazonaws.com\n\nhost\n\
                         e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let signed = sigv4::presign(
            &suite_credentials(None),
            &PresignRequest {
                method: "GET",
                host: "kafka.us-east-1.amazonaws.com",
                path: "/",
                query: &[("Action", ACTION)],
                service: SERVICE,
                region: "us-east-1",
                amz_date: "20150830T123600Z",
                expires_secs: 900,
                payload_hash: sigv4::EMPTY_PAYLOAD_SHA256,
            },
        );
        assert_eq!(signed.canonical_request, canonical);
        assert_eq!(
            url,
            format!(
                "https://kafka.us-east-1.amazonaws.com/?Action=kafka-cluster%3AConnect&X-Amz-Algorithm=AWS4-HMAC-SHA256\
                 &X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fkafka-cluster%2Faws4_request\
                 &X-Amz-Date=20150830T123600Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature={}\
                 &User-Agent=vigil%2F{}",
                signed.signature,
                env!("CARGO_PKG_VERSION")
            )
        );
        // Lifetime: signing time + 900 s.
        assert_eq!(t.expires_at_ms, (signed_at + 900) * 1000);
    }

    #[test]
    fn the_token_has_what_msk_checks_and_lives_no_longer_than_its_credentials() {
        let mut creds = suite_credentials(Some("session/token+="));
        let now = now_s();
        creds.expires_at = Some(now + 120);
        let t = token(&creds, "eu-west-1", now);
        let (base, params) = decode(&t.value);
        assert_eq!(base, "https://kafka.eu-west-1.amazonaws.com/");
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("Action"), Some("kafka-cluster:Connect"));
        assert_eq!(get("X-Amz-Algorithm"), Some("AWS4-HMAC-SHA256"));
        assert_eq!(get("X-Amz-Expires"), Some("900"));
        assert_eq!(get("X-Amz-SignedHeaders"), Some("host"));
        assert_eq!(get("X-Amz-Security-Token"), Some("session/token+="));
        assert_eq!(get("X-Amz-Date"), Some(amz_date(now).as_str()));
        assert_eq!(get("User-Agent"), Some(USER_AGENT));
        let credential: Vec<&str> = get("X-Amz-Credential").unwrap().split('/').collect();
        assert_eq!(credential, ["AKIDEXAMPLE", &amz_date(now)[..8], "eu-west-1", "kafka-cluster", "aws4_request"]);
        assert_eq!(get("X-Amz-Signature").map(str::len), Some(64));
        // Credentials expiring in 2 minutes cut the token's life to theirs.
        assert_eq!(t.expires_at_ms, (now + 120) * 1000);
    }

    #[test]
    fn the_region_comes_from_the_settings_the_brokers_or_the_environment() {
        assert_eq!(
            region_of_broker("b-1.mycluster.abc123.c2.kafka.eu-west-1.amazonaws.com:9098").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            region_of_broker("boot-abc.c1.kafka-serverless.us-east-1.amazonaws.com:9098").as_deref(),
            Some("us-east-1")
        );
        assert_eq!(region_of_broker("127.0.0.1:9092"), None);
        assert!(is_region("us-gov-west-1") && !is_region("eu-west") && !is_region("EU-WEST-1"));
        let brokers = vec!["b-1.c.x.c2.kafka.ap-south-1.amazonaws.com:9098".to_string()];
        let e = env(&[("AWS_REGION", "eu-central-1")]);
        assert_eq!(MskIam::new(&settings(Some("sa-east-1"), None), &brokers, e.clone()).unwrap().region(), "sa-east-1");
        assert_eq!(MskIam::new(&settings(None, None), &brokers, e.clone()).unwrap().region(), "ap-south-1");
        assert_eq!(MskIam::new(&settings(None, None), &[], e).unwrap().region(), "eu-central-1");
        let err = MskIam::new(&settings(None, None), &[], env(&[])).err().unwrap();
        assert!(err.contains("aws_region=REGION"), "{err}");
    }

    #[test]
    fn credentials_come_from_the_environment_then_the_named_profile() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join(".aws")).unwrap();
        std::fs::write(
            home.path().join(".aws/credentials"),
            "[msk]\naws_access_key_id = PROFILEKEY\naws_secret_access_key = profilesecret\n",
        )
        .unwrap();
        let mut e = env(&[("AWS_ACCESS_KEY_ID", "ENVKEY"), ("AWS_SECRET_ACCESS_KEY", "envsecret")]);
        e.home = Some(home.path().to_path_buf());
        let from_env = MskIam::new(&settings(Some("eu-west-1"), None), &[], e.clone()).unwrap();
        assert_eq!(from_env.credentials().unwrap().access_key_id, "ENVKEY");
        let named = MskIam::new(&settings(Some("eu-west-1"), Some("msk")), &[], e).unwrap();
        assert_eq!(named.credentials().unwrap().access_key_id, "PROFILEKEY");
        let token = named.fetch().unwrap();
        let (_, params) = decode(&token.value);
        assert!(params.iter().any(|(k, v)| k == "X-Amz-Credential" && v.starts_with("PROFILEKEY/")));
        // Nothing anywhere: the message lists every way to give credentials.
        let none = MskIam::new(&settings(Some("eu-west-1"), None), &[], env(&[])).unwrap();
        let err = none.fetch().unwrap_err();
        assert_eq!(err.class, vigil_schema::ErrorClass::User);
        for fix in
            ["AWS_ACCESS_KEY_ID", "aws_profile=NAME", "AWS_WEB_IDENTITY_TOKEN_FILE", "Pod Identity", "instance profile"]
        {
            assert!(err.reason.contains(fix), "{fix}: {}", err.reason);
        }
    }

    const STS_ANSWER: &str = r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <SessionToken>IQoJb3JpZ2luX2VjEXAMPLE/token+x==</SessionToken>
      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>
      <Expiration>EXPIRATION</Expiration>
      <AccessKeyId>ASIAWEBIDENTITYEXAMPLE</AccessKeyId>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
</AssumeRoleWithWebIdentityResponse>"#;

    #[test]
    fn a_web_identity_is_exchanged_at_sts_and_kept_until_near_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, "eyJhbGciOiJSUzI1NiJ9.e30.sig-of-the-pod\n").unwrap();
        let expiration = vigil_schema::time::format_time_us((now_s() + 3600) * 1_000_000);
        let (sts, seen) = stand_in::serve(vec![
            (200, "text/xml", STS_ANSWER.replace("EXPIRATION", &expiration)),
            (
                400,
                "text/xml",
                "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code>\
                <Message>Incorrect token audience</Message></Error></ErrorResponse>"
                    .to_string(),
            ),
        ]);
        let file = token_file.to_string_lossy().into_owned();
        let vars = [
            ("AWS_WEB_IDENTITY_TOKEN_FILE", file.as_str()),
            ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/vigil"),
            ("AWS_ROLE_SESSION_NAME", "vigil-pod"),
            ("AWS_ENDPOINT_URL_STS", sts.as_str()),
        ];
        let msk = MskIam::new(&settings(Some("eu-west-1"), None), &[], env(&vars)).unwrap();
        let first = msk.fetch().unwrap();
        let (_, params) = decode(&first.value);
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert!(get("X-Amz-Credential").unwrap().starts_with("ASIAWEBIDENTITYEXAMPLE/"));
        assert_eq!(get("X-Amz-Security-Token").as_deref(), Some("IQoJb3JpZ2luX2VjEXAMPLE/token+x=="));
        // Kept: a second token needs no second STS call (the stand-in would answer 400).
        let second = msk.fetch().unwrap();
        assert!(second.expires_at_ms >= first.expires_at_ms);
        let requests = seen.lock().unwrap().clone();
        assert_eq!(requests.len(), 1);
        let form = &requests[0].body;
        assert_eq!(requests[0].method, "POST");
        for part in [
            "Action=AssumeRoleWithWebIdentity",
            "Version=2011-06-15",
            "RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fvigil",
            "RoleSessionName=vigil-pod",
            "WebIdentityToken=eyJhbGciOiJSUzI1NiJ9.e30.sig-of-the-pod",
        ] {
            assert!(form.split('&').any(|p| p == part), "{part} in {form}");
        }
        // Credentials about to expire are fetched again; a refusal says what to check and never shows the
        // identity token.
        msk.cached.lock().unwrap().as_mut().unwrap().0.expires_at = Some(now_s() + 60);
        let err = msk.fetch().unwrap_err();
        assert_eq!(err.class, vigil_schema::ErrorClass::User);
        assert!(
            err.reason.contains("400 InvalidIdentityToken: Incorrect token audience")
                && err.reason.contains("trust policy"),
            "{}",
            err.reason
        );
        assert!(!err.reason.contains("sig-of-the-pod"), "{}", err.reason);
    }

    #[test]
    fn container_and_instance_credentials_are_used_when_there_is_nothing_else() {
        let expiration = vigil_schema::time::format_time_us((now_s() + 3600) * 1_000_000);
        let answer = format!(
            r#"{{"AccessKeyId":"ASIACONTAINER","SecretAccessKey":"s","Token":"t","Expiration":"{expiration}"}}"#
        );
        let dir = tempfile::tempdir().unwrap();
        let auth = dir.path().join("auth");
        std::fs::write(&auth, "pod-identity-token\n").unwrap();
        let (base, seen) = stand_in::serve(vec![(200, "application/json", answer.clone())]);
        let full = format!("{base}/v1/credentials");
        let auth_file = auth.to_string_lossy().into_owned();
        let vars = [
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", full.as_str()),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &auth_file),
        ];
        let msk = MskIam::new(&settings(Some("eu-west-1"), None), &[], env(&vars)).unwrap();
        assert_eq!(msk.credentials().unwrap().access_key_id, "ASIACONTAINER");
        let request = seen.lock().unwrap()[0].clone();
        assert_eq!(
            (request.path.as_str(), request.header("authorization")),
            ("/v1/credentials", Some("pod-identity-token"))
        );

        let instance = answer.replace("ASIACONTAINER", "ASIAINSTANCE");
        let (imds, seen) = stand_in::serve(vec![
            (200, "text/plain", "session-token".into()),
            (200, "text/plain", "vigil-role\n".into()),
            (200, "application/json", instance),
        ]);
        let vars = [("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.as_str()), ("AWS_EC2_METADATA_DISABLED", "false")];
        let msk = MskIam::new(&settings(Some("eu-west-1"), None), &[], env(&vars)).unwrap();
        assert_eq!(msk.credentials().unwrap().access_key_id, "ASIAINSTANCE");
        let requests = seen.lock().unwrap().clone();
        assert_eq!(requests[0].method, "PUT");
        assert_eq!(requests[2].path, "/latest/meta-data/iam/security-credentials/vigil-role");
        assert_eq!(requests[2].header("x-aws-ec2-metadata-token"), Some("session-token"));
    }
}
