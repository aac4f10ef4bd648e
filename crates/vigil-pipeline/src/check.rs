//! The one check `vigil validate` and `vigil run` share before anything is read: the config is
//! consistent, the rules load and plan, the signing key reads, the evidence store answers (and says
//! whether it is signed and locked), and every Kafka input's brokers answer, accept the login and hold
//! the named topics (the cluster's metadata, without joining the group). `validate` prints what it
//! found; `run` stops at the first problem, so a run never starts on a setup that `validate` refuses.

use std::sync::Arc;

use vigil_evidence::Archive;
use vigil_evidence::digest::Signer;
use vigil_rules::{RuleEngine, RulePack, load_rules};

use crate::config::PipelineConfig;
use crate::{Error, Result};

/// How far [`check`] reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// The config, the rules and the signing key only (`vigil validate --no-environment`).
    ConfigOnly,
    /// Also the evidence store and every Kafka input's brokers (what a run needs).
    Environment,
}

/// What [`check`] found, with what it made on the way (the compiled rules, the opened archive).
pub struct Checked {
    /// Problems that stop a run (config, store, Kafka), each with what to do.
    pub problems: Vec<Error>,
    /// Rule files that do not load or plan, each with file:line.
    pub rule_problems: Vec<vigil_rules::Error>,
    /// Things that work but should be fixed (no signing key, no Object Lock).
    pub warnings: Vec<String>,
    /// Sigma rules vigil cannot express exactly, not loaded (the rest of the pack runs): `file:line:
    /// reason` each; loading the rules already logged them.
    pub skipped_rules: Vec<String>,
    /// The rule pack and its compiled rules, when they all loaded and planned.
    pub pack: Option<RulePack>,
    /// See `pack`.
    pub engine: Option<RuleEngine>,
    /// The signing key, when one is set.
    pub signer: Option<Arc<Signer>>,
    /// The evidence archive, opened and reached (with the signer when one is set); `None` also for a
    /// local directory that does not exist yet (a run creates it; nothing there to check).
    pub archive: Option<Archive>,
}

impl std::fmt::Debug for Checked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checked")
            .field("problems", &self.problems)
            .field("rule_problems", &self.rule_problems)
            .field("warnings", &self.warnings)
            .finish_non_exhaustive()
    }
}

impl Checked {
    /// Nothing stops a run.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty() && self.rule_problems.is_empty()
    }

    /// The first problem, as the error a run stops with (rule problems all together).
    pub fn first_problem(&mut self) -> Option<Error> {
        if !self.problems.is_empty() {
            return Some(self.problems.remove(0));
        }
        (!self.rule_problems.is_empty()).then(|| Error::Rules(std::mem::take(&mut self.rule_problems)))
    }
}

/// Checks `config` (read from `origin`, named in messages) against the rules, the key and, with
/// [`Reach::Environment`], the store and the brokers. Never changes the store (the bucket's default
/// retention is set by a run, not here).
pub async fn check(config: &PipelineConfig, origin: &str, reach: Reach) -> Checked {
    let mut checked = Checked {
        problems: config.problems(origin),
        rule_problems: Vec::new(),
        warnings: Vec::new(),
        skipped_rules: Vec::new(),
        pack: None,
        engine: None,
        signer: None,
        archive: None,
    };
    match load_rules(&config.rules.dirs) {
        Err(errors) => checked.rule_problems = errors,
        Ok(pack) => {
            checked.skipped_rules = pack.refused.clone();
            let options = config.rules.engine_options();
            match RuleEngine::with_options(&pack, config.pipeline.effective_threads(), options).await {
                Ok(engine) => (checked.pack, checked.engine) = (Some(pack), Some(engine)),
                Err(errors) => checked.rule_problems = errors,
            }
        }
    }
    match config.evidence.signer() {
        Err(e) => checked.problems.push(e),
        Ok(None) => checked.warnings.push(format!(
            "{origin}: no signing key ([evidence] signing_key_file, VIGIL_SIGNING_KEY_FILE or VIGIL_SIGNING_KEY; \
             create one with `vigil keys generate`): the evidence will not be signed, and `vigil verify \
             --public-key` cannot prove who wrote it"
        )),
        Ok(Some(signer)) => checked.signer = Some(signer),
    }
    // A config with problems is not taken to the store or the brokers (its URLs may be the problem).
    if reach == Reach::ConfigOnly || !checked.problems.is_empty() {
        return checked;
    }
    match check_store(config, origin, checked.signer.clone(), &mut checked.warnings).await {
        Ok(archive) => checked.archive = archive,
        Err(e) => checked.problems.push(e),
    }
    for input in &config.inputs {
        let Some(Ok(endpoint)) = input.kafka_endpoint() else { continue };
        let probed = tokio::task::spawn_blocking(move || vigil_kafka::probe(&endpoint))
            .await
            .map_err(|e| Error::Internal(format!("Kafka check task failed: {e}")));
        match probed {
            Ok(Ok(())) => {}
            Ok(Err(e)) => checked.problems.push(e.into()),
            Err(e) => checked.problems.push(e),
        }
    }
    checked
}

/// Opens the archive and reaches its store: whether it is signed (a signed archive needs the key) and,
/// on S3, whether the bucket has Object Lock.
async fn check_store(
    config: &PipelineConfig,
    origin: &str,
    signer: Option<Arc<Signer>>,
    warnings: &mut Vec<String>,
) -> Result<Option<Archive>> {
    if let vigil_evidence::store::Location::Local(dir) = vigil_evidence::store::Location::parse(&config.evidence.url)?
        && !dir.exists()
    {
        return Ok(None);
    }
    let mut archive = Archive::open(&config.evidence.url)?;
    let signed = archive.is_signed().await?;
    match signer {
        Some(signer) => archive = archive.with_signer(signer),
        // A signed archive stays signed: entries without a digest would fail `verify --public-key`.
        None if signed => {
            return Err(vigil_evidence::Error::SigningKeyMissing { location: archive.location().to_string() }.into());
        }
        None => {}
    }
    if let Some(bucket) = archive.bucket() {
        let status = bucket.lock_status().await?;
        if !status.enabled {
            warnings.push(format!(
                "{origin}: evidence bucket `{}` has no Object Lock, so evidence could be deleted or overwritten before its \
                 retention ends; create the bucket with Object Lock enabled (aws s3api create-bucket \
                 --object-lock-enabled-for-bucket)",
                bucket.settings().bucket
            ));
        }
    }
    Ok(Some(archive))
}
