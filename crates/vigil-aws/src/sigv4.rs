//! AWS Signature Version 4 in the query string (a presigned URL): the canonical request, the string to
//! sign, the derived signing key and the signature, as AWS specifies them
//! (<https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html>). Tested against AWS's
//! published signing test suite and the S3 presigned-URL example.

use sha2::{Digest, Sha256};

use crate::Credentials;

/// The algorithm name.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// SHA-256 of the empty payload (hex), what a presigned request without a body signs.
pub const EMPTY_PAYLOAD_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// What S3 presigned URLs sign instead of a payload hash.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// HMAC-SHA256 (RFC 2104) of `data` under `key`.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(data);
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// Percent-encodes `text` as SigV4 wants it: every byte but `A-Z a-z 0-9 - _ . ~`, as upper-case `%XX`.
pub fn uri_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The canonical query string: names and values encoded, sorted by name then value.
pub fn canonical_query(params: &[(&str, &str)]) -> String {
    let mut encoded: Vec<(String, String)> = params.iter().map(|(k, v)| (uri_encode(k), uri_encode(v))).collect();
    encoded.sort();
    encoded.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// A request to presign.
#[derive(Debug, Clone, Copy)]
pub struct PresignRequest<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// Host (and `:port` when not the scheme's default).
    pub host: &'a str,
    /// The canonical path (`/`, or each segment already encoded).
    pub path: &'a str,
    /// The request's own query parameters (not encoded).
    pub query: &'a [(&'a str, &'a str)],
    /// Signing name of the service (`kafka-cluster`, `s3`, ...).
    pub service: &'a str,
    /// Region.
    pub region: &'a str,
    /// Signing time as `YYYYMMDDTHHMMSSZ` (UTC).
    pub amz_date: &'a str,
    /// `X-Amz-Expires`: seconds the URL stays valid.
    pub expires_secs: u64,
    /// Hex SHA-256 of the payload ([`EMPTY_PAYLOAD_SHA256`]) or [`UNSIGNED_PAYLOAD`].
    pub payload_hash: &'a str,
}

/// A presigned request, with its intermediate steps (for tests and troubleshooting; they hold no secret
/// but the session token, which the URL carries anyway).
#[derive(Clone, PartialEq, Eq)]
pub struct Presigned {
    /// The canonical request that was hashed.
    pub canonical_request: String,
    /// The string that was signed.
    pub string_to_sign: String,
    /// The signature (hex).
    pub signature: String,
    /// The signed query: the canonical query, then `X-Amz-Signature`.
    pub query: String,
}

impl std::fmt::Debug for Presigned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The query may carry a session token: a presigned URL is a bearer credential.
        f.debug_struct("Presigned").field("signature", &"<redacted>").finish_non_exhaustive()
    }
}

/// Presigns `request` with `credentials`: adds `X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`,
/// `X-Amz-Expires`, `X-Amz-SignedHeaders=host` and, for temporary credentials, `X-Amz-Security-Token` (all
/// signed), then signs the canonical request (its only header is `host`).
pub fn presign(credentials: &Credentials, request: &PresignRequest<'_>) -> Presigned {
    let date = request.amz_date.get(..8).unwrap_or(request.amz_date);
    let scope = format!("{date}/{}/{}/aws4_request", request.region, request.service);
    let credential = format!("{}/{scope}", credentials.access_key_id);
    let expires = request.expires_secs.to_string();
    let mut params: Vec<(&str, &str)> = request.query.to_vec();
    params.extend([
        ("X-Amz-Algorithm", ALGORITHM),
        ("X-Amz-Credential", credential.as_str()),
        ("X-Amz-Date", request.amz_date),
        ("X-Amz-Expires", expires.as_str()),
        ("X-Amz-SignedHeaders", "host"),
    ]);
    if let Some(token) = &credentials.session_token {
        params.push(("X-Amz-Security-Token", token.as_str()));
    }
    let query = canonical_query(&params);
    let canonical_request = format!(
        "{}\n{}\n{query}\nhost:{}\n\nhost\n{}",
        request.method, request.path, request.host, request.payload_hash
    );
    let string_to_sign =
        format!("{ALGORITHM}\n{}\n{scope}\n{}", request.amz_date, hex::encode(Sha256::digest(&canonical_request)));
    let key = [date, request.region, request.service, "aws4_request"]
        .iter()
        .fold(format!("AWS4{}", credentials.secret_access_key).into_bytes(), |key, part| {
            hmac_sha256(&key, part.as_bytes()).to_vec()
        });
    let signature = hex::encode(hmac_sha256(&key, string_to_sign.as_bytes()));
    let query = format!("{query}&X-Amz-Signature={signature}");
    Presigned { canonical_request, string_to_sign, signature, query }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        let hex = |b: [u8; 32]| hex::encode(b);
        assert_eq!(
            hex(hmac_sha256(&[0x0b; 20], b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            hex(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // A key longer than the block is hashed first.
        assert_eq!(
            hex(hmac_sha256(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    /// The signing test suite's credentials, region, service and time (query-signing variants).
    fn suite(query: &[(&str, &str)], token: Option<&str>) -> Presigned {
        let credentials = Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: token.map(str::to_string),
            expires_at: None,
        };
        presign(
            &credentials,
            &PresignRequest {
                method: "GET",
                host: "example.amazonaws.com",
                path: "/",
                query,
                service: "service",
                region: "us-east-1",
                amz_date: "20150830T123600Z",
                expires_secs: 3600,
                payload_hash: EMPTY_PAYLOAD_SHA256,
            },
        )
    }

    const SUITE_PARAMS: &str = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2F\
                                service%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=3600";

    // AWS signing test suite (v4), query-signature variants: get-vanilla, get-vanilla-query-order-key-case,
    // get-vanilla-with-session-token, get-vanilla-query-unreserved, get-vanilla-utf8-query. Each checks the
    // canonical request, the string to sign and the signature byte for byte.
    /// Name, query, session token, canonical query, canonical request hash, signature.
    type SuiteCase =
        (&'static str, Vec<(&'static str, &'static str)>, Option<&'static str>, String, &'static str, &'static str);

    #[test]
    fn presigning_matches_the_aws_signing_test_suite() {
        let cases: [SuiteCase; 5] = [
            (
                "get-vanilla",
                vec![],
                None,
                format!("{SUITE_PARAMS}&X-Amz-SignedHeaders=host"),
                "bb7705b4aa3cb8e8f5e1e0b3d4c0b64030797a313c8ceee43e33117cc43eadc5",
                "e93c787ed7f371d5c6b165c1b38ede9550f4dce4144713e844b25b7192d3865d",
            ),
            (
                "get-vanilla-query-order-key-case",
                vec![("Param2", "value2"), ("Param1", "value1")],
                None,
                format!("Param1=value1&Param2=value2&{SUITE_PARAMS}&X-Amz-SignedHeaders=host"),
                "b82878ecb2ab7ad194b9fe79b2946c2a36ee1627a219408089b2d774c1a0cedb",
                "86012e2c9ad4d77369f5d81c11f75158aae4f895a085212cc6d3f923d300bed5",
            ),
            (
                "get-vanilla-with-session-token",
                vec![],
                Some("6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"),
                format!(
                    "{SUITE_PARAMS}&X-Amz-Security-Token=6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267\
                     &X-Amz-SignedHeaders=host"
                ),
                "cb30434103085aa9e73780fc60dc9a9df818fd2a7b1de12a9f6f4d791f898761",
                "7ff2b50b376cb4d151970630573d6291dc128cc5c2a12ffb237f73cc53f67b6c",
            ),
            (
                "get-vanilla-query-unreserved",
                vec![(
                    "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
                    "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
                )],
                None,
                format!(
                    "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=\
                     -._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz&{SUITE_PARAMS}\
                     &X-Amz-SignedHeaders=host"
                ),
                "c77f27ef2b499fbfee3f0b3c88bba7057b2b31ee9b62047078a5e0d6be91fd58",
                "8e76a88a7433637b12778d5592799b29ad21ecd6cf6325051c21d86f0acda2bf",
            ),
            (
                "get-vanilla-utf8-query",
                vec![("\u{1234}", "bar")],
                None,
                format!("%E1%88%B4=bar&{SUITE_PARAMS}&X-Amz-SignedHeaders=host"),
                "b2e8ae8e48ec880defebc6f6dc1d9fbc9f1856b33146f2943060ca71a50a7a77",
                "0bdd809b1519ac4f0c1dc3540e2cc46bd0c7f778eda408b2ebf3b913d21ff600",
            ),
        ];
        for (name, query, token, canonical_query, request_hash, signature) in cases {
            let signed = suite(&query, token);
            assert_eq!(
                signed.canonical_request,
                format!("GET\n/\n{canonical_query}\nhost:example.amazonaws.com\n\nhost\n{EMPTY_PAYLOAD_SHA256}"),
                "{name}"
            );
            assert_eq!(
                signed.string_to_sign,
                format!("AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n{request_hash}"),
                "{name}"
            );
            assert_eq!(signed.signature, signature, "{name}");
            assert_eq!(signed.query, format!("{canonical_query}&X-Amz-Signature={signature}"), "{name}");
        }
    }

    // The presigned-URL example of the S3 documentation ("Authenticating Requests: Using Query Parameters").
    #[test]
    fn presigning_matches_the_s3_documentation_example() {
        let credentials = Credentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
            expires_at: None,
        };
        let signed = presign(
            &credentials,
            &PresignRequest {
                method: "GET",
                host: "examplebucket.s3.amazonaws.com",
                path: "/test.txt",
                query: &[],
                service: "s3",
                region: "us-east-1",
                amz_date: "20130524T000000Z",
                expires_secs: 86400,
                payload_hash: UNSIGNED_PAYLOAD,
            },
        );
        assert_eq!(
            hex::encode(Sha256::digest(&signed.canonical_request)),
            "3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04"
        );
        assert_eq!(
            format!("https://examplebucket.s3.amazonaws.com/test.txt?{}", signed.query),
            "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=\
             AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&\
             X-Amz-Expires=86400&X-Amz-SignedHeaders=host&\
             X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        );
        assert!(!format!("{signed:?}").contains("aeeed9bb"));
    }

    #[test]
    fn uri_encoding_keeps_only_unreserved_bytes() {
        assert_eq!(uri_encode("kafka-cluster:Connect"), "kafka-cluster%3AConnect");
        assert_eq!(uri_encode("a b+c/d=e~"), "a%20b%2Bc%2Fd%3De~");
    }
}
