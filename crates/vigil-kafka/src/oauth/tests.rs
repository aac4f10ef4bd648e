use super::*;

fn endpoint(url: &str) -> KafkaEndpoint {
    KafkaEndpoint::from_url(url).unwrap()
}

#[test]
fn url_keys_make_oauthbearer_settings_and_imply_the_mechanism() {
    let e = endpoint(
        "kafka://b-1.c.kafka.eu-west-1.amazonaws.com:9098/t?group=g&oauthbearer_method=aws_msk_iam&aws_profile=msk",
    );
    let o = e.oauthbearer.as_ref().unwrap();
    assert_eq!((o.method, o.aws_profile.as_deref()), (OAuthMethod::AwsMskIam, Some("msk")));
    assert!(e.input_problems().is_empty(), "{:?}", e.input_problems());
    let e = endpoint(
        "kafka://h:9092/t?group=g&oauthbearer_method=oidc&oidc_token_endpoint=https://idp.example/oauth2/token\
         &oidc_client_id=vigil&oidc_client_secret_env=SECRET_VAR&oidc_scope=kafka&oidc_audience=cluster-1",
    );
    let o = e.oauthbearer.clone().unwrap();
    assert_eq!(o.client_secret.as_deref(), Some("env:SECRET_VAR"));
    assert_eq!((o.scope.as_deref(), o.audience.as_deref()), (Some("kafka"), Some("cluster-1")));
    assert!(e.input_problems().is_empty(), "{:?}", e.input_problems());
    // The method implies the mechanism and, unless set, SASL_SSL; the user's protocol wins.
    let mut c = rdkafka::ClientConfig::new();
    for (k, v) in implied_properties(&e) {
        c.set(*k, *v);
    }
    assert_eq!(c.get("sasl.mechanism"), Some("OAUTHBEARER"));
    assert_eq!(c.get("security.protocol"), Some("SASL_SSL"));
    // The same from a config table.
    let table: KafkaEndpoint = toml_like(
        r#"{"brokers":["h:9092"],"topics":["t"],"group":"g","oauthbearer":{"method":"oidc",
           "token_endpoint":"https://idp.example/oauth2/token","client_id":"vigil",
           "client_secret":"env:SECRET_VAR","scope":"kafka","audience":"cluster-1"}}"#,
    );
    assert_eq!(table.oauthbearer, Some(o));
}

fn toml_like(json: &str) -> KafkaEndpoint {
    serde_json::from_str(json).unwrap()
}

#[test]
fn oauthbearer_problems_say_what_to_do() {
    let problems = |url: &str| endpoint(url).input_problems().join("\n");
    let p = problems("kafka://h:1/t?group=g&oauthbearer_method=oidc");
    assert!(
        p.contains("oidc_token_endpoint=https://")
            && p.contains("oidc_client_id=")
            && p.contains("oidc_client_secret_env="),
        "{p}"
    );
    let p = problems(
        "kafka://h:1/t?group=g&oauthbearer_method=oidc&oidc_token_endpoint=http://idp.example/token&oidc_client_id=a\
         &oidc_client_secret_file=/s",
    );
    assert!(p.contains("https://"), "{p}");
    let p = problems(
        "kafka://h:1/t?group=g&oauthbearer_method=aws_msk_iam&sasl_mechanism=SCRAM-SHA-512&security_protocol=SSL",
    );
    assert!(p.contains("sasl.mechanism is SCRAM-SHA-512") && p.contains("security.protocol is SSL"), "{p}");
    let p = problems("kafka://h:1/t?group=g&oauthbearer_method=aws_msk_iam&oidc_scope=x&aws_region=Not%20a%20region");
    assert!(p.contains("oidc scope applies to oauthbearer_method=oidc") && p.contains("not an AWS region"), "{p}");
    let p = problems("kafka://h:1/t?group=g&sasl_mechanism=OAUTHBEARER");
    assert!(p.contains("needs a token source") && p.contains("oauthbearer_method=aws_msk_iam"), "{p}");
    let p = problems("kafka://h:1/t?group=g&sasl.oauthbearer.method=oidc");
    assert!(p.contains("not built into vigil") && p.contains("oauthbearer_method=oidc"), "{p}");
    // librdkafka's unsecured test tokens stay allowed.
    assert_eq!(
        problems("kafka://h:1/t?group=g&sasl_mechanism=OAUTHBEARER&enable.sasl.oauthbearer.unsecure.jwt=true"),
        ""
    );
    let err = KafkaEndpoint::from_url("kafka://h:1/t?group=g&aws_region=eu-west-1").unwrap_err().to_string();
    assert!(err.contains("without oauthbearer_method"), "{err}");
    let err = KafkaEndpoint::from_url("kafka://h:1/t?group=g&oauthbearer_method=kerberos").unwrap_err().to_string();
    assert!(err.contains("not aws_msk_iam or oidc"), "{err}");
    // A secret in the URL is refused as before, and a secret inline in a table too.
    let err = KafkaEndpoint::from_url("kafka://h:1/t?group=g&oauthbearer_method=oidc&oidc_client_secret=hunter2")
        .unwrap_err()
        .to_string();
    assert!(err.contains("holds a secret") && !err.contains("hunter2"), "{err}");
    let mut e =
        endpoint("kafka://h:1/t?group=g&oauthbearer_method=oidc&oidc_token_endpoint=https://i/t&oidc_client_id=a");
    e.oauthbearer.as_mut().unwrap().client_secret = Some("hunter2".into());
    let p = e.input_problems().join("\n");
    assert!(p.contains("not the value itself") && !p.contains("hunter2"), "{p}");
}

#[test]
fn unsecured_development_tokens_are_made_like_librdkafka_makes_them() {
    let t = unsecured_jwt("principal=admin scope=a,b lifeSeconds=600").unwrap();
    assert!(t.value.ends_with('.') && t.value.starts_with(&base64url(br#"{"alg":"none"}"#)), "{t:?}");
    let claims = jwt_claims(&t.value).unwrap();
    assert_eq!(claims["sub"], "admin");
    assert_eq!(claims["scope"], serde_json::json!(["a", "b"]));
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 600);
    assert!(unsecured_jwt("").unwrap_err().contains("oauthbearer_method"));
    // Without a method the context serves exactly these.
    let token = OAuth::default().token(Some("principal=admin")).unwrap();
    assert_eq!(token.principal_name, "admin");
}

struct Counting(std::sync::atomic::AtomicU32, i64);

impl TokenSource for Counting {
    fn describe(&self) -> String {
        "counting".into()
    }
    fn fetch(&self) -> std::result::Result<Token, TokenError> {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if n == 2 {
            return Err(TokenError::external("the service is down"));
        }
        Ok(Token { value: format!("t{n}"), principal: "p".into(), expires_at_ms: now_ms() + self.1 })
    }
}

#[test]
fn the_first_token_is_fetched_at_start_and_later_requests_fetch_anew() {
    let oauth = OAuth::start(Arc::new(Counting(0.into(), 900_000))).unwrap();
    // librdkafka's first request gets the token fetched at start; each refresh a new one.
    assert_eq!(oauth.token(None).unwrap().token, "t0");
    assert_eq!(oauth.token(None).unwrap().token, "t1");
    let err = oauth.token(None).err().unwrap().to_string();
    assert_eq!(err, "counting: the service is down");
    // A first token with less than a minute left is not handed over.
    let short = OAuth::start(Arc::new(Counting(0.into(), 30_000))).unwrap();
    assert_eq!(short.token(None).unwrap().token, "t1");
    assert!(
        !format!("{:?}", Token { value: "secret-token".into(), principal: "p".into(), expires_at_ms: 0 })
            .contains("secret-token")
    );
}

#[test]
fn shown_bodies_drop_secrets_and_stay_short() {
    let body = format!("{{\"error\":\"invalid_client\",\"echo\":\"hunter22\"}}{}", "x".repeat(1000));
    let shown = shown_body(&body, &["hunter22"]);
    assert!(!shown.contains("hunter22") && shown.contains("invalid_client") && shown.len() <= 320, "{shown}");
}
