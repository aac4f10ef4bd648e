//! Signing keys: the private key a writer signs digests with, and the public keys auditors verify
//! them with.
//!
//! Keys are Ed25519, stored as the PEM files OpenSSL reads and writes: a private key is PKCS#8
//! (`-----BEGIN PRIVATE KEY-----`, what `vigil keys generate` and `openssl genpkey -algorithm ed25519`
//! write), a public key is SubjectPublicKeyInfo (`-----BEGIN PUBLIC KEY-----`, what `vigil keys public`
//! and `openssl pkey -pubout` print). A public-key file may hold several keys, one after the other
//! (the current and the retired ones after a rotation).
//!
//! A key is named by its **key id**: the first 16 hex digits of the SHA-256 of its 32 public-key bytes.
//! Every digest names the key id it is signed with, so old digests stay verifiable after a rotation as
//! long as the auditor keeps the old public key.
//!
//! The private key is read from a file (`[evidence] signing_key_file`, `VIGIL_SIGNING_KEY_FILE`; in
//! Kubernetes a mounted Secret) or from the environment (`VIGIL_SIGNING_KEY`, the PEM text). It never
//! appears in an error, a log line or the archive: errors name the file or variable only.

use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use sha2::{Digest as _, Sha256};

use crate::{Error, Result};

/// Environment variable holding the private key's PEM text.
pub const KEY_ENV: &str = "VIGIL_SIGNING_KEY";
/// Environment variable naming the private key's file.
pub const KEY_FILE_ENV: &str = "VIGIL_SIGNING_KEY_FILE";

/// A private signing key with its id.
pub struct PrivateKey {
    key: SigningKey,
    id: String,
    /// Where it came from, for messages (a path or an environment variable's name).
    origin: String,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey({} from {})", self.id, self.origin)
    }
}

/// A public key with its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
    id: String,
}

/// The key id of a public key: the first 16 hex digits of the SHA-256 of its 32 bytes.
fn key_id(key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

fn key_error(origin: &str, reason: impl Into<String>) -> Error {
    Error::Key { origin: origin.to_string(), reason: reason.into() }
}

impl PrivateKey {
    /// A new random key.
    pub fn generate() -> Result<Self> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| key_error("the system's random source", format!("no random bytes: {e}")))?;
        let key = SigningKey::from_bytes(&seed);
        let id = key_id(&key.verifying_key());
        Ok(PrivateKey { key, id, origin: "a new key".into() })
    }

    /// Reads a PKCS#8 PEM private key from `pem`; `origin` names where it came from in errors.
    pub fn from_pem(pem: &str, origin: &str) -> Result<Self> {
        if pem.contains("BEGIN PUBLIC KEY") && !pem.contains("PRIVATE KEY") {
            return Err(key_error(
                origin,
                "holds a public key; signing needs the private key `vigil keys generate` wrote",
            ));
        }
        let key = SigningKey::from_pkcs8_pem(pem.trim()).map_err(|_| {
            key_error(
                origin,
                "is not a PKCS#8 PEM Ed25519 private key (-----BEGIN PRIVATE KEY-----); create one with \
                 `vigil keys generate --out FILE` or `openssl genpkey -algorithm ed25519`",
            )
        })?;
        let id = key_id(&key.verifying_key());
        Ok(PrivateKey { key, id, origin: origin.to_string() })
    }

    /// Reads the private key file at `path`.
    pub fn from_file(path: &std::path::Path) -> Result<Self> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| key_error(&origin, format!("cannot be read: {e}")))?;
        warn_if_readable_by_others(path);
        Self::from_pem(&text, &origin)
    }

    /// The key from `file` when given, else from `VIGIL_SIGNING_KEY_FILE`, else from `VIGIL_SIGNING_KEY`;
    /// `None` when none is set.
    pub fn from_file_or_env(file: Option<&std::path::Path>) -> Result<Option<Self>> {
        if let Some(path) = file {
            return Self::from_file(path).map(Some);
        }
        if let Some(path) = std::env::var_os(KEY_FILE_ENV).filter(|p| !p.is_empty()) {
            return Self::from_file(std::path::Path::new(&path)).map(Some);
        }
        match std::env::var(KEY_ENV) {
            Ok(pem) if !pem.trim().is_empty() => Self::from_pem(&pem, KEY_ENV).map(Some),
            _ => Ok(None),
        }
    }

    /// The PKCS#8 PEM text of the key (to store it; never log it).
    pub fn to_pem(&self) -> Result<String> {
        let pem = self
            .key
            .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .map_err(|e| key_error(&self.origin, format!("cannot be encoded: {e}")))?;
        Ok(pem.to_string())
    }

    /// The key id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Where the key was read from (a path or a variable name).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Its public half.
    pub fn public(&self) -> PublicKey {
        PublicKey { key: self.key.verifying_key(), id: self.id.clone() }
    }

    /// The Ed25519 signature of `message`, base64.
    pub fn sign(&self, message: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(self.key.sign(message).to_bytes())
    }
}

impl PublicKey {
    /// The key id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The SubjectPublicKeyInfo PEM text (what auditors keep).
    pub fn to_pem(&self) -> Result<String> {
        self.key
            .to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .map_err(|e| key_error(&self.id, format!("cannot be encoded: {e}")))
    }

    /// Every public key in `text` (one or more PEM blocks); `origin` names the file in errors.
    pub fn all_from_pem(text: &str, origin: &str) -> Result<Vec<PublicKey>> {
        const BEGIN: &str = "-----BEGIN PUBLIC KEY-----";
        const END: &str = "-----END PUBLIC KEY-----";
        if text.contains("PRIVATE KEY-----") {
            return Err(key_error(
                origin,
                "holds a private key: give auditors and `verify` only the public key (`vigil keys public`), and \
                 keep the private key where only the writer reads it",
            ));
        }
        let mut keys = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find(BEGIN) {
            let Some(len) = rest[start..].find(END) else { break };
            let block = &rest[start..start + len + END.len()];
            let key = VerifyingKey::from_public_key_pem(block).map_err(|_| {
                key_error(origin, "holds a PUBLIC KEY block that is no Ed25519 key; print one with `vigil keys public`")
            })?;
            keys.push(PublicKey { id: key_id(&key), key });
            rest = &rest[start + len + END.len()..];
        }
        if keys.is_empty() {
            return Err(key_error(
                origin,
                "holds no public key (-----BEGIN PUBLIC KEY-----); print one with `vigil keys public`",
            ));
        }
        Ok(keys)
    }

    /// Every public key in the file at `path`.
    pub fn all_from_file(path: &std::path::Path) -> Result<Vec<PublicKey>> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| key_error(&origin, format!("cannot be read: {e}")))?;
        Self::all_from_pem(&text, &origin)
    }

    /// Whether `signature` (base64) is this key's signature of `message`.
    pub fn verifies(&self, message: &[u8], signature: &str) -> bool {
        use base64::Engine;
        let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(signature) else { return false };
        let Ok(signature) = Signature::from_slice(&bytes) else { return false };
        self.key.verify(message, &signature).is_ok()
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o004 != 0
    {
        tracing::warn!(
            key = %path.display(),
            "the signing key file is readable by every user of this machine; make it readable by vigil only \
             (chmod 600, or a Kubernetes Secret with defaultMode 0400)"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &std::path::Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_pem_and_sign() {
        let key = PrivateKey::generate().unwrap();
        let pem = key.to_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");
        let again = PrivateKey::from_pem(&pem, "test").unwrap();
        assert_eq!(again.id(), key.id());
        assert_eq!(key.id().len(), 16);
        let public_pem = key.public().to_pem().unwrap();
        let other = PrivateKey::generate().unwrap().public().to_pem().unwrap();
        let publics = PublicKey::all_from_pem(&format!("{other}\n{public_pem}"), "pub.pem").unwrap();
        assert_eq!(publics.len(), 2);
        assert_eq!(publics[1].id(), key.id());
        let signature = key.sign(b"digest");
        assert!(publics[1].verifies(b"digest", &signature));
        assert!(!publics[1].verifies(b"digest!", &signature));
        assert!(!publics[0].verifies(b"digest", &signature));
        assert!(!publics[1].verifies(b"digest", "not base64"));
    }

    #[test]
    fn wrong_files_are_refused_without_echoing_them() {
        let key = PrivateKey::generate().unwrap();
        let private = key.to_pem().unwrap();
        let err = PublicKey::all_from_pem(&private, "auditor.pem").unwrap_err().to_string();
        assert!(err.contains("auditor.pem") && err.contains("private key"), "{err}");
        assert!(!err.contains(&private[30..60]), "{err}");
        let public = key.public().to_pem().unwrap();
        let err = PrivateKey::from_pem(&public, "signing.pem").unwrap_err().to_string();
        assert!(err.contains("public key"), "{err}");
        let err =
            PrivateKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----", "k").unwrap_err();
        assert!(err.to_string().contains("vigil keys generate"), "{err}");
        assert!(PublicKey::all_from_pem("nothing", "p").is_err());
    }

    #[test]
    fn openssl_keys_are_read() {
        // `openssl genpkey -algorithm ed25519` (RFC 8410 test key).
        let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n";
        let key = PrivateKey::from_pem(pem, "openssl.pem").unwrap();
        let public = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";
        assert_eq!(PublicKey::all_from_pem(public, "p").unwrap()[0], key.public());
    }
}
