//! OAUTHBEARER tokens from an OAuth 2.0 / OIDC token endpoint with the client-credentials grant
//! (RFC 6749, 4.4): `POST` `grant_type=client_credentials` (with `scope` and `audience` when set), the
//! client id and secret in HTTP Basic authentication (2.3.1), and the answer's `access_token` lives for
//! its `expires_in` seconds (or, without one, until the JWT's `exp`). The secret is read from its
//! environment variable or file at every request, so a rotated secret is picked up.

use serde::Deserialize;
use vigil_schema::redact;

use crate::oauth::{self, OAuthBearer, Token, TokenError, TokenSource};

/// Whether `url` may be a token endpoint: `https://`, or `http://` on a loopback address (a local stand-in),
/// with no credentials in it.
pub fn check_endpoint(url: &str) -> Result<(), String> {
    let shown = redact::url(url);
    if !redact::inline_secrets(url, &[]).is_empty() {
        return Err(format!(
            "the token endpoint {shown} holds credentials, which are refused: give the client secret with \
             oidc_client_secret_env or oidc_client_secret_file"
        ));
    }
    let (scheme, rest) = url.split_once("://").ok_or_else(|| format!("the token endpoint {shown} is not a URL"))?;
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    let host =
        host.rsplit_once(':').map_or(host, |(h, p)| if p.bytes().all(|b| b.is_ascii_digit()) { h } else { host });
    let loopback = matches!(host, "localhost" | "[::1]") || host.starts_with("127.");
    match scheme.to_ascii_lowercase().as_str() {
        "https" if !host.is_empty() => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(format!(
            "the token endpoint {shown} must be https:// (the client secret goes to it; http:// only on loopback)"
        )),
    }
}

/// A token endpoint and the client that asks it.
pub struct Oidc {
    endpoint: String,
    client_id: String,
    secret: String,
    scope: Option<String>,
    audience: Option<String>,
}

/// The answer of a token endpoint (RFC 6749, 5.1 and 5.2).
#[derive(Deserialize)]
struct Answer {
    access_token: Option<String>,
    token_type: Option<String>,
    expires_in: Option<serde_json::Value>,
    error: Option<String>,
    error_description: Option<String>,
}

impl Oidc {
    /// The source for `settings` (method `oidc`, already checked by the endpoint's problems).
    pub fn new(settings: &OAuthBearer) -> Result<Oidc, String> {
        let endpoint = settings.token_endpoint.clone().ok_or("oidc_token_endpoint is not set")?;
        check_endpoint(&endpoint)?;
        let client_id = settings.client_id.clone().filter(|c| !c.is_empty()).ok_or("oidc_client_id is not set")?;
        let secret = settings.client_secret.clone().ok_or("oidc_client_secret_env or _file is not set")?;
        if !(secret.starts_with("env:") || secret.starts_with("file:")) {
            return Err("the OIDC client secret must be env:VARIABLE or file:PATH".into());
        }
        Ok(Oidc { endpoint, client_id, secret, scope: settings.scope.clone(), audience: settings.audience.clone() })
    }

    fn read_secret(&self) -> Result<String, TokenError> {
        if let Some(var) = self.secret.strip_prefix("env:") {
            std::env::var(var).ok().filter(|v| !v.is_empty()).ok_or_else(|| {
                TokenError::user(format!("the OIDC client secret: environment variable {var} is not set"))
            })
        } else {
            let path = self.secret.strip_prefix("file:").unwrap_or_default();
            let text = std::fs::read_to_string(path)
                .map_err(|e| TokenError::user(format!("the OIDC client secret: cannot read {path}: {e}")))?;
            Ok(text.trim_end_matches(['\n', '\r']).to_string())
        }
    }
}

/// `application/x-www-form-urlencoded` encoding of one value (what Basic authentication wants of the
/// client id and secret, too).
fn form_encode(value: &str) -> String {
    vigil_aws::sigv4::uri_encode(value)
}

impl TokenSource for Oidc {
    fn describe(&self) -> String {
        format!("OIDC token endpoint {}", redact::url(&self.endpoint))
    }

    fn fetch(&self) -> Result<Token, TokenError> {
        let secret = self.read_secret()?;
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = &self.scope {
            form.push(("scope", scope));
        }
        if let Some(audience) = &self.audience {
            form.push(("audience", audience));
        }
        let body: String = form.iter().map(|(k, v)| format!("{k}={}", form_encode(v))).collect::<Vec<_>>().join("&");
        let basic = oauth_basic(&self.client_id, &secret);
        let (endpoint, what) = (self.endpoint.clone(), self.describe());
        let sent_at = oauth::now_ms();
        let headers = vec![
            ("authorization", basic),
            ("content-type", "application/x-www-form-urlencoded".to_string()),
            ("accept", "application/json".to_string()),
        ];
        let (status, text) = oauth::exchange(reqwest::Method::POST, endpoint, headers, Some(body), what.clone(), None)?;
        let secrets = [secret.as_str()];
        let answer: Option<Answer> = serde_json::from_str(&text).ok();
        if status != 200 {
            let said = match &answer {
                Some(Answer { error: Some(error), error_description, .. }) => {
                    let description = error_description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default();
                    oauth::shown_body(&format!("{error}{description}"), &secrets)
                }
                _ => oauth::shown_body(&text, &secrets),
            };
            let fix = match status {
                400 | 401 | 403 => {
                    ": check oidc_client_id, the client secret in its env:/file: source, oidc_scope and oidc_audience \
                     (and that the client may use the client-credentials grant)"
                }
                300..=399 => ": give the final URL of the token endpoint (vigil does not follow redirects)",
                404 | 405 => ": check oidc_token_endpoint (the identity provider's token URL)",
                _ => "",
            };
            let error = format!("{what} answered {status} {said}{fix}");
            return Err(if status >= 500 || status == 429 {
                TokenError::external(error)
            } else {
                TokenError::user(error)
            });
        }
        let answer = answer.ok_or_else(|| {
            TokenError::external(format!("{what}: the answer is not JSON: {}", oauth::shown_body(&text, &secrets)))
        })?;
        let value = answer
            .access_token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| TokenError::external(format!("{what}: the answer has no access_token")))?;
        if let Some(kind) = answer.token_type.as_deref().filter(|t| !t.eq_ignore_ascii_case("bearer")) {
            return Err(TokenError::user(format!(
                "{what}: the token is of type {kind}, not Bearer: OAUTHBEARER needs a bearer token"
            )));
        }
        let claims = oauth::jwt_claims(&value);
        let expires_in = answer.expires_in.as_ref().and_then(|v| v.as_i64().or_else(|| v.as_str()?.parse().ok()));
        let expires_at_ms = match (expires_in, claims.as_ref().and_then(|c| c.get("exp")?.as_i64())) {
            (Some(secs), _) => sent_at + secs * 1000,
            (None, Some(exp)) => exp * 1000,
            (None, None) => {
                return Err(TokenError::external(format!(
                    "{what}: the answer has no expires_in and the token is not a JWT with exp, so vigil cannot tell \
                     when to refresh it"
                )));
            }
        };
        if expires_at_ms <= oauth::now_ms() {
            return Err(TokenError::external(format!("{what}: the token it gave has already expired")));
        }
        let principal = claims
            .as_ref()
            .and_then(|c| c.get("sub")?.as_str().map(str::to_string))
            .unwrap_or_else(|| self.client_id.clone());
        Ok(Token { value, principal, expires_at_ms })
    }
}

/// `Basic base64(urlencode(id):urlencode(secret))` (RFC 6749, 2.3.1).
fn oauth_basic(client_id: &str, secret: &str) -> String {
    use base64::Engine;
    let pair = format!("{}:{}", form_encode(client_id), form_encode(secret));
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::OAuthMethod;
    use crate::oauth::stand_in;

    fn settings(endpoint: &str, secret_file: &std::path::Path) -> OAuthBearer {
        OAuthBearer {
            method: OAuthMethod::Oidc,
            aws_region: None,
            aws_profile: None,
            token_endpoint: Some(endpoint.to_string()),
            client_id: Some("vigil client".into()),
            client_secret: Some(format!("file:{}", secret_file.display())),
            scope: Some("kafka read".into()),
            audience: Some("https://kafka.example".into()),
        }
    }

    fn jwt(claims: &str) -> String {
        format!("{}.{}.signature", oauth::base64url(br#"{"alg":"RS256"}"#), oauth::base64url(claims.as_bytes()))
    }

    #[test]
    fn a_client_credentials_grant_gives_a_token_that_lives_for_expires_in() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s3cr:et/+\n").unwrap();
        let token = jwt(r#"{"sub":"svc-vigil","exp":4102444800}"#);
        let (base, seen) = stand_in::serve(vec![
            (
                200,
                "application/json",
                format!(r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":300}}"#),
            ),
            // No expires_in: the JWT's exp.
            (200, "application/json", format!(r#"{{"access_token":"{token}","token_type":"bearer"}}"#)),
        ]);
        let oidc = Oidc::new(&settings(&format!("{base}/oauth2/token"), &secret)).unwrap();
        let before = oauth::now_ms();
        let t = oidc.fetch().unwrap();
        assert_eq!((t.value.as_str(), t.principal.as_str()), (token.as_str(), "svc-vigil"));
        assert!((before + 300_000..=oauth::now_ms() + 300_000).contains(&t.expires_at_ms), "{t:?}");
        assert_eq!(oidc.fetch().unwrap().expires_at_ms, 4_102_444_800_000);
        let requests = seen.lock().unwrap().clone();
        let r = &requests[0];
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/oauth2/token"));
        assert_eq!(r.header("content-type"), Some("application/x-www-form-urlencoded"));
        assert_eq!(r.body, "grant_type=client_credentials&scope=kafka%20read&audience=https%3A%2F%2Fkafka.example");
        // The id and secret, form-encoded, in Basic authentication; the trailing newline of the file dropped.
        use base64::Engine;
        let basic = r.header("authorization").unwrap().strip_prefix("Basic ").unwrap();
        let pair = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(basic).unwrap()).unwrap();
        assert_eq!(pair, "vigil%20client:s3cr%3Aet%2F%2B");
    }

    #[test]
    fn an_error_answer_says_what_to_check_without_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "hunter2-secret").unwrap();
        let (base, _) = stand_in::serve(vec![
            (
                401,
                "application/json",
                r#"{"error":"invalid_client","error_description":"bad secret hunter2-secret"}"#.into(),
            ),
            (503, "text/html", "<html>maintenance</html>".into()),
            (200, "application/json", r#"{"access_token":"opaque","token_type":"Bearer"}"#.into()),
            (200, "application/json", r#"{"access_token":"opaque","token_type":"mac","expires_in":60}"#.into()),
        ]);
        let oidc = Oidc::new(&settings(&format!("{base}/token"), &secret)).unwrap();
        let err = oidc.fetch().unwrap_err();
        assert_eq!(err.class, vigil_schema::ErrorClass::User);
        assert!(
            err.reason.contains("answered 401 invalid_client (bad secret REDACTED)")
                && err.reason.contains("oidc_client_id"),
            "{}",
            err.reason
        );
        assert!(!err.reason.contains("hunter2-secret"), "{}", err.reason);
        let err = oidc.fetch().unwrap_err();
        assert_eq!(err.class, vigil_schema::ErrorClass::External);
        assert!(err.reason.contains("answered 503") && err.reason.contains("maintenance"), "{}", err.reason);
        let err = oidc.fetch().unwrap_err();
        assert!(err.reason.contains("no expires_in"), "{}", err.reason);
        let err = oidc.fetch().unwrap_err();
        assert!(err.reason.contains("not Bearer"), "{}", err.reason);
        // Nobody listening: a service failure, named.
        let (gone, _) = stand_in::serve(vec![]);
        std::thread::sleep(std::time::Duration::from_millis(50));
        let err = Oidc::new(&settings(&format!("{gone}/token"), &secret)).unwrap().fetch().unwrap_err();
        assert_eq!(err.class, vigil_schema::ErrorClass::External);
        assert!(err.reason.contains("could not connect") || err.reason.contains("failed"), "{}", err.reason);
        // A missing secret file is the user's.
        let missing = settings(&format!("{base}/token"), &dir.path().join("absent"));
        let err = Oidc::new(&missing).unwrap().fetch().unwrap_err();
        assert!(err.reason.contains("cannot read") && err.class == vigil_schema::ErrorClass::User, "{}", err.reason);
    }

    #[test]
    fn token_endpoints_must_be_https_except_on_loopback() {
        assert!(check_endpoint("https://idp.example.com/oauth2/token").is_ok());
        assert!(check_endpoint("http://127.0.0.1:8080/token").is_ok());
        assert!(check_endpoint("http://localhost/token").is_ok());
        assert!(check_endpoint("http://idp.example.com/token").unwrap_err().contains("https://"));
        let err = check_endpoint("https://vigil:hunter2@idp.example.com/token").unwrap_err();
        assert!(err.contains("holds credentials") && !err.contains("hunter2"), "{err}");
    }
}
