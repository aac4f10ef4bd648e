//! `vigil keys`: create a signing key, print its public key.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;

use crate::logs;

#[derive(Subcommand, Debug)]
pub(crate) enum KeysCommand {
    /// Create a new Ed25519 signing key: writes the private key (PKCS#8 PEM, readable by you only) to
    /// --out and prints the public key (SubjectPublicKeyInfo PEM) for auditors on stdout.
    Generate {
        /// Where to write the private key; an existing file is never overwritten.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Print the public key (PEM) of a private key: what auditors pass to `vigil verify --public-key`.
    Public {
        /// The private key file (default: VIGIL_SIGNING_KEY_FILE, else the PEM in VIGIL_SIGNING_KEY).
        #[arg(long, value_name = "FILE", env = "VIGIL_SIGNING_KEY_FILE")]
        key: Option<PathBuf>,
    },
}

pub(crate) fn keys(command: KeysCommand) -> Result<ExitCode> {
    use vigil_evidence::keys::PrivateKey;
    match command {
        KeysCommand::Generate { out } => {
            let key = PrivateKey::generate()?;
            let pem = key.to_pem()?;
            write_private(&out, pem.as_bytes())?;
            print!("{}", key.public().to_pem()?);
            logs::say(
                tracing::Level::INFO,
                &format!(
                    "wrote the private key {} to {} (keep it where only vigil reads it: a Kubernetes Secret, a file \
                     of mode 0600); the public key above is what auditors keep",
                    key.id(),
                    out.display()
                ),
            );
        }
        KeysCommand::Public { key } => {
            let Some(key) = PrivateKey::from_file_or_env(key.as_deref())? else {
                bail!("give --key FILE, or set VIGIL_SIGNING_KEY_FILE or VIGIL_SIGNING_KEY");
            };
            print!("{}", key.public().to_pem()?);
            logs::say(tracing::Level::INFO, &format!("key id {}", key.id()));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Creates `path` readable and writable by its owner only, refusing to replace an existing file.
pub(crate) fn write_private(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| {
        format!("cannot create {} (an existing key is never overwritten; choose another path)", path.display())
    })?;
    file.write_all(bytes).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
