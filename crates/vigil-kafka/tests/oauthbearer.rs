//! SASL/OAUTHBEARER end to end against a real Kafka-protocol broker: tansu 0.6.0 started with
//! `--authentication` (by `deploy/local/kafka.sh`), behind a proxy that records what the client sends.
//!
//! What tansu can prove: it offers OAUTHBEARER in its SASL handshake, but it has no token validator (its
//! SASL callback checks PLAIN and SCRAM only), so it answers every OAUTHBEARER `SaslAuthenticate` with
//! `SASL_AUTHENTICATION_FAILED`. The tests therefore check the client side byte for byte: the consumer
//! (the source) and the producer (the sink) each got their token from vigil's provider through
//! librdkafka's refresh callback, sent exactly `n,,\x01auth=Bearer <token>\x01\x01` in `SaslAuthenticate`,
//! and turned the refusal into "Kafka refused the login" with the fix for the method, never printing the
//! token or the secret. (librdkafka's mock cluster has no SASL at all, so it cannot stand in either.)

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};

use base64::Engine;
use vigil_kafka::{Checkpoints, Error, KafkaEndpoint, KafkaSink, KafkaSource, SourceOptions};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A tansu broker that requires SASL logins, stopped on drop.
struct Broker {
    dir: tempfile::TempDir,
    address: String,
}

impl Broker {
    /// `None` (after saying so) when tansu is not installed and `VIGIL_REQUIRE_KAFKA` is unset.
    fn start_with_authentication() -> Option<Broker> {
        let script = repo().join("deploy/local/kafka.sh");
        let installed = Command::new(&script).arg("installed").status().is_ok_and(|s| s.success());
        if !installed {
            assert!(
                std::env::var_os("VIGIL_REQUIRE_KAFKA").is_none(),
                "VIGIL_REQUIRE_KAFKA is set but tansu is not installed (deploy/local/kafka.sh install)"
            );
            eprintln!("skipped: no Kafka broker (deploy/local/kafka.sh install)");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let out = Command::new(&script)
            .arg("start")
            .env("VIGIL_KAFKA_DIR", dir.path())
            .env("VIGIL_KAFKA_AUTH", "1")
            .output()
            .expect("kafka.sh runs");
        assert!(out.status.success(), "kafka.sh start failed: {}", String::from_utf8_lossy(&out.stderr));
        let address = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Some(Broker { dir, address })
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("deploy/local/kafka.sh"))
            .arg("stop")
            .env("VIGIL_KAFKA_DIR", self.dir.path())
            .output();
    }
}

/// Forwards loopback connections to `target` and records every byte clients send.
fn recording_proxy(target: &str) -> (String, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    let sent = Arc::new(Mutex::new(Vec::new()));
    let (target, log) = (target.to_string(), sent.clone());
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(broker) = TcpStream::connect(&target) else { continue };
            let (mut from_client, mut to_broker) =
                (client.try_clone().expect("clone"), broker.try_clone().expect("clone"));
            let (mut from_broker, mut to_client) = (broker, client);
            let log = log.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 16384];
                while let Ok(n) = from_client.read(&mut buf) {
                    if n == 0 || to_broker.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    log.lock().expect("log").extend_from_slice(&buf[..n]);
                }
                let _ = to_broker.shutdown(std::net::Shutdown::Both);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut from_broker, &mut to_client);
                let _ = to_client.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    (address, sent)
}

/// An OIDC token endpoint stand-in: answers every `POST` with `token`, keeping the requests' headers and
/// bodies.
fn token_endpoint(token: &str) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/oauth2/token", listener.local_addr().expect("address"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (answer, log) =
        (format!(r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":3600}}"#), seen.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request = String::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                request.push_str(&line);
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            request.push_str(&String::from_utf8_lossy(&body));
            log.lock().expect("log").push(request);
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    (url, seen)
}

struct NothingArchived;

impl Checkpoints for NothingArchived {
    fn resume_after(&self, _: &vigil_schema::PartitionId) -> Result<Option<i64>, String> {
        Ok(None)
    }
}

/// The SASL/OAUTHBEARER initial client response (RFC 7628) carrying `token`.
fn bearer_message(token: &str) -> Vec<u8> {
    format!("n,,\x01auth=Bearer {token}\x01\x01").into_bytes()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The token as the broker received it in `SaslAuthenticate`, when one was sent.
fn sent_token(sent: &[u8]) -> Option<String> {
    let prefix = b"n,,\x01auth=Bearer ";
    let start = sent.windows(prefix.len()).position(|w| w == prefix)?;
    let rest = &sent[start + prefix.len()..];
    let end = rest.iter().position(|&b| b == 0x01)?;
    Some(String::from_utf8_lossy(&rest[..end]).into_owned())
}

#[test]
fn oidc_tokens_reach_the_broker_from_the_consumer_and_the_producer() {
    let Some(broker) = Broker::start_with_authentication() else { return };
    let (proxy, sent) = recording_proxy(&broker.address);
    // A JWT-shaped token, as identity providers issue them.
    let token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ2aWdpbCJ9.c2lnbmF0dXJlLW9mLXRoZS1pZHA";
    let (endpoint_url, requests) = token_endpoint(token);
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("client-secret");
    std::fs::write(&secret, "oidc-client-secret-4711\n").expect("secret");
    let url = format!(
        "kafka://{proxy}/present?group=g&security_protocol=SASL_PLAINTEXT&oauthbearer_method=oidc\
         &oidc_token_endpoint={endpoint_url}&oidc_client_id=vigil&oidc_client_secret_file={}&oidc_scope=kafka",
        secret.display()
    );
    let endpoint = KafkaEndpoint::from_url(&url).expect("url");

    let started = std::time::Instant::now();
    let err =
        KafkaSource::start(&endpoint, Arc::new(NothingArchived), SourceOptions::default()).expect_err("tansu refuses");
    let consumer_took = started.elapsed();
    let message = err.to_string();
    assert!(matches!(err, Error::Login { .. }), "{message}");
    assert!(message.contains("Kafka refused the login") && message.contains("refused the OIDC token"), "{message}");
    assert!(!message.contains(token) && !message.contains("oidc-client-secret-4711"), "{message}");
    // The consumer sent the provider's token, exactly as RFC 7628 frames it.
    assert!(
        contains(&sent.lock().expect("sent"), &bearer_message(token)),
        "the consumer's SaslAuthenticate carries the token"
    );
    sent.lock().expect("sent").clear();

    let started = std::time::Instant::now();
    let err = KafkaSink::connect(&endpoint.clone().into_output()).expect_err("tansu refuses");
    let producer_took = started.elapsed();
    assert!(matches!(err, Error::Login { .. }), "{err}");
    assert!(
        contains(&sent.lock().expect("sent"), &bearer_message(token)),
        "the producer's SaslAuthenticate carries the token"
    );

    // One client-credentials request per client, with the client's id and secret in Basic authentication.
    let requests = requests.lock().expect("requests").clone();
    assert_eq!(requests.len(), 2, "{requests:?}");
    let basic = base64::engine::general_purpose::STANDARD.encode("vigil:oidc-client-secret-4711");
    for r in &requests {
        assert!(r.starts_with("POST /oauth2/token "), "{r}");
        assert!(r.contains(&format!("authorization: Basic {basic}")), "{r}");
        assert!(r.ends_with("grant_type=client_credentials&scope=kafka"), "{r}");
    }
    eprintln!("refused logins reported after {consumer_took:?} (consumer) and {producer_took:?} (producer)");
}

#[test]
fn a_token_endpoint_that_refuses_fails_the_start_with_what_to_fix() {
    // No broker needed: the first token is fetched before any connection.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/token", listener.local_addr().expect("address"));
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let body = r#"{"error":"unauthorized_client","error_description":"client credentials grant not allowed"}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 400 Bad Request\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("s");
    std::fs::write(&secret, "never-shown-secret").expect("secret");
    let endpoint = KafkaEndpoint::from_url(&format!(
        "kafka://127.0.0.1:1/t?group=g&oauthbearer_method=oidc&oidc_token_endpoint={url}&oidc_client_id=vigil\
         &oidc_client_secret_file={}",
        secret.display()
    ))
    .expect("url");
    let err = KafkaSource::start(&endpoint, Arc::new(NothingArchived), SourceOptions::default()).expect_err("refused");
    let message = err.to_string();
    assert_eq!(err.class(), vigil_schema::ErrorClass::User, "{message}");
    assert!(
        message.starts_with("cannot get a Kafka login token (OIDC token endpoint http://127.0.0.1:")
            && message.contains("answered 400 unauthorized_client (client credentials grant not allowed)")
            && message.contains("check oidc_client_id"),
        "{message}"
    );
    assert!(!message.contains("never-shown-secret"), "{message}");
}

/// The MSK IAM test runs in a child process of this test binary, so that the AWS credentials come from
/// the environment as in production (tests cannot set variables of their own process).
#[test]
fn aws_msk_iam_tokens_from_the_environment_reach_the_broker_signed() {
    let Some(broker) = Broker::start_with_authentication() else { return };
    let home = tempfile::tempdir().expect("home");
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "msk_iam_child", "--nocapture", "--test-threads=1"])
        .env("VIGIL_TEST_MSK_BROKER", &broker.address)
        .env("HOME", home.path())
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
        .env("AWS_SESSION_TOKEN", "session-token-of-the-test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
        .output()
        .expect("child runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("1 passed"), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("msk iam token checked"), "the child ran the check: {stdout}");
}

/// The child of [`aws_msk_iam_tokens_from_the_environment_reach_the_broker_signed`]; does nothing when run
/// on its own.
#[test]
fn msk_iam_child() {
    let Some(broker) = std::env::var("VIGIL_TEST_MSK_BROKER").ok() else { return };
    let (proxy, sent) = recording_proxy(&broker);
    let endpoint = KafkaEndpoint::from_url(&format!(
        "kafka://{proxy}/present?group=g&security_protocol=SASL_PLAINTEXT&oauthbearer_method=aws_msk_iam&aws_region=eu-west-1"
    ))
    .expect("url");
    let err = KafkaSource::start(&endpoint, Arc::new(NothingArchived), SourceOptions::default()).expect_err("refused");
    let message = err.to_string();
    assert!(message.contains("Kafka refused the login") && message.contains("AWS MSK IAM token"), "{message}");
    assert!(message.contains("kafka-cluster:Connect") && !message.contains("wJalrXUtnFEMI"), "{message}");

    let token = sent_token(&sent.lock().expect("sent")).expect("a SaslAuthenticate with a bearer token");
    assert!(!message.contains(&token), "{message}");
    let url = String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&token).expect("base64url"))
        .expect("utf-8");
    let (base, query) = url.split_once('?').expect("query");
    assert_eq!(base, "https://kafka.eu-west-1.amazonaws.com/");
    let params: Vec<(&str, &str)> = query.split('&').filter_map(|p| p.split_once('=')).collect();
    let get = |k: &str| params.iter().find(|(n, _)| *n == k).map(|(_, v)| *v).unwrap_or_default();
    assert_eq!(get("Action"), "kafka-cluster%3AConnect");
    assert_eq!(get("X-Amz-Expires"), "900");
    assert_eq!(get("X-Amz-Security-Token"), "session-token-of-the-test");
    assert!(
        get("X-Amz-Credential").starts_with("AKIDEXAMPLE%2F")
            && get("X-Amz-Credential").ends_with("%2Feu-west-1%2Fkafka-cluster%2Faws4_request")
    );
    // The signature is the one these credentials give for this request at its X-Amz-Date.
    let credentials = vigil_aws::Credentials {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        session_token: Some("session-token-of-the-test".into()),
        expires_at: None,
    };
    let again = vigil_aws::sigv4::presign(
        &credentials,
        &vigil_aws::sigv4::PresignRequest {
            method: "GET",
            host: "kafka.eu-west-1.amazonaws.com",
            path: "/",
            query: &[("Action", "kafka-cluster:Connect")],
            service: "kafka-cluster",
            region: "eu-west-1",
            amz_date: get("X-Amz-Date"),
            expires_secs: 900,
            payload_hash: vigil_aws::sigv4::EMPTY_PAYLOAD_SHA256,
        },
    );
    assert_eq!(get("X-Amz-Signature"), again.signature);
    assert!(get("User-Agent").starts_with("vigil%2F"));
    println!("msk iam token checked");
}
