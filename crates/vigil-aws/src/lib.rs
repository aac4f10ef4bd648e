//! AWS for vigil, without an SDK: where credentials and settings come from (the environment, then the
//! shared profile files; [`Profile`]) and Signature Version 4 presigned URLs ([`sigv4::presign`]).
//!
//! Used by `vigil-evidence` (S3 settings) and `vigil-kafka` (the AWS MSK IAM login token, a presigned
//! `kafka-cluster:Connect` URL). Fetching temporary credentials over the network (STS, container and
//! instance metadata) is left to the caller, which has an HTTP client.

mod profile;
pub mod sigv4;

pub use profile::{Credentials, Environment, Profile, WebIdentity, ini_sections};
