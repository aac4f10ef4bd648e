//! AWS settings the usual way: environment variables, then the shared profile files
//! (`AWS_SHARED_CREDENTIALS_FILE`, default `~/.aws/credentials`, and `AWS_CONFIG_FILE`, default
//! `~/.aws/config`; profile `AWS_PROFILE` or `default`). A profile named explicitly (in a URL or a config
//! file) wins over the environment's values; otherwise the environment wins.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Environment the AWS settings are read from (the process's, or a test's).
#[derive(Debug, Clone, Default)]
pub struct Environment {
    /// Variables.
    pub vars: BTreeMap<String, String>,
    /// The home directory (for `~/.aws/...`).
    pub home: Option<PathBuf>,
}

impl Environment {
    /// The running process's environment.
    pub fn from_process() -> Environment {
        Environment { vars: std::env::vars().collect(), home: std::env::var_os("HOME").map(PathBuf::from) }
    }

    /// A variable's value; an empty one counts as unset.
    pub fn var(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// The file variable `var` names, else `default` below the home directory.
    pub fn file(&self, var: &str, default: &str) -> Option<PathBuf> {
        self.var(var).map(PathBuf::from).or_else(|| self.home.as_ref().map(|h| h.join(default)))
    }
}

/// Sections of an AWS INI file (`[default]`, `[profile x]` or `[x]`), keys lower-cased.
pub fn ini_sections(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut sections: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim();
            current = name.strip_prefix("profile ").unwrap_or(name).trim().to_string();
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            sections.entry(current.clone()).or_default().insert(k.trim().to_lowercase(), v.trim().to_string());
        }
    }
    sections
}

/// One profile of the shared files, ranked against the environment.
#[derive(Debug, Clone)]
pub struct Profile<'a> {
    env: &'a Environment,
    name: String,
    explicit: bool,
    credentials: BTreeMap<String, String>,
    config: BTreeMap<String, String>,
}

impl<'a> Profile<'a> {
    /// Reads profile `named` (explicit: its values win over the environment's), else `AWS_PROFILE`, else
    /// `default`, from the credentials file and the config file. Missing files are empty.
    pub fn load(env: &'a Environment, named: Option<&str>) -> Profile<'a> {
        let name = named.or(env.var("AWS_PROFILE")).unwrap_or("default").to_string();
        let read = |var: &str, default: &str| -> BTreeMap<String, String> {
            env.file(var, default)
                .and_then(|p| std::fs::read_to_string(p).ok())
                .map(|t| ini_sections(&t).remove(&name).unwrap_or_default())
                .unwrap_or_default()
        };
        let credentials = read("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
        let config = read("AWS_CONFIG_FILE", ".aws/config");
        Profile { env, name, explicit: named.is_some(), credentials, config }
    }

    /// The profile's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The environment it was read with.
    pub fn env(&self) -> &'a Environment {
        self.env
    }

    /// `key` of the profile (the credentials file first, then the config file).
    pub fn from_files(&self, key: &str) -> Option<String> {
        self.credentials.get(key).or_else(|| self.config.get(key)).cloned()
    }

    /// Variable `var` or the profile's `key`: the profile first when it was named explicitly, else the
    /// environment first.
    pub fn pick(&self, var: &str, key: &str) -> Option<String> {
        if self.explicit {
            self.from_files(key).or_else(|| self.env.var(var).map(str::to_string))
        } else {
            self.env.var(var).map(str::to_string).or_else(|| self.from_files(key))
        }
    }

    /// The region: `AWS_REGION` or the profile's `region`, then `AWS_DEFAULT_REGION`.
    pub fn region(&self) -> Option<String> {
        self.pick("AWS_REGION", "region").or_else(|| self.env.var("AWS_DEFAULT_REGION").map(str::to_string))
    }

    /// Static keys (`AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`, with `AWS_SESSION_TOKEN`, or the
    /// profile's `aws_access_key_id`, ...), when both the key id and the secret are there.
    pub fn static_credentials(&self) -> Option<Credentials> {
        Some(Credentials {
            access_key_id: self.pick("AWS_ACCESS_KEY_ID", "aws_access_key_id")?,
            secret_access_key: self.pick("AWS_SECRET_ACCESS_KEY", "aws_secret_access_key")?,
            session_token: self.pick("AWS_SESSION_TOKEN", "aws_session_token"),
            expires_at: None,
        })
    }

    /// A web identity to assume a role with (`AWS_WEB_IDENTITY_TOKEN_FILE` and `AWS_ROLE_ARN`, as EKS IRSA
    /// sets them, or the profile's `web_identity_token_file` and `role_arn`).
    pub fn web_identity(&self) -> Option<WebIdentity> {
        Some(WebIdentity {
            token_file: PathBuf::from(self.pick("AWS_WEB_IDENTITY_TOKEN_FILE", "web_identity_token_file")?),
            role_arn: self.pick("AWS_ROLE_ARN", "role_arn")?,
            session_name: self.pick("AWS_ROLE_SESSION_NAME", "role_session_name"),
        })
    }
}

/// AWS credentials. `Debug` never shows the secret or the session token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Access key id (not a secret: it names the key).
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Session token of temporary credentials.
    pub session_token: Option<String>,
    /// When temporary credentials expire, in seconds since the Unix epoch.
    pub expires_at: Option<i64>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A role to assume with a web identity token (STS `AssumeRoleWithWebIdentity`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebIdentity {
    /// File holding the identity token (re-read at every use: Kubernetes rotates it).
    pub token_file: PathBuf,
    /// The role.
    pub role_arn: String,
    /// The role session's name, if set.
    pub session_name: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home_with_files() -> tempfile::TempDir {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join(".aws")).unwrap();
        std::fs::write(
            home.path().join(".aws/credentials"),
            "# comment\n[default]\naws_access_key_id = DEF\naws_secret_access_key = defsecret\n\
             [msk]\nAWS_ACCESS_KEY_ID=MSK\naws_secret_access_key=msksecret\naws_session_token=msktoken\n",
        )
        .unwrap();
        std::fs::write(
            home.path().join(".aws/config"),
            "[profile msk]\nregion = eu-central-1\n[profile irsa]\nrole_arn = arn:aws:iam::1:role/r\n\
             web_identity_token_file = /var/run/token\n",
        )
        .unwrap();
        home
    }

    #[test]
    fn ini_sections_name_profiles_both_ways_and_lower_case_keys() {
        let s = ini_sections("[default]\nA = 1\n[profile x]\nb=2\n; c=3\n[y]\nc = a=b\n");
        assert_eq!(s["default"]["a"], "1");
        assert_eq!(s["x"]["b"], "2");
        assert_eq!(s["y"]["c"], "a=b");
    }

    #[test]
    fn the_environment_wins_unless_the_profile_is_named() {
        let home = home_with_files();
        let mut env = Environment { vars: BTreeMap::new(), home: Some(home.path().to_path_buf()) };
        let creds = Profile::load(&env, None).static_credentials().unwrap();
        assert_eq!((creds.access_key_id.as_str(), creds.session_token), ("DEF", None));
        env.vars.insert("AWS_PROFILE".into(), "msk".into());
        let p = Profile::load(&env, None);
        assert_eq!(p.name(), "msk");
        assert_eq!(p.region().as_deref(), Some("eu-central-1"));
        assert_eq!(p.static_credentials().unwrap().session_token.as_deref(), Some("msktoken"));
        env.vars.insert("AWS_ACCESS_KEY_ID".into(), "ENV".into());
        env.vars.insert("AWS_SECRET_ACCESS_KEY".into(), "envsecret".into());
        env.vars.insert("AWS_REGION".into(), "ap-south-1".into());
        let p = Profile::load(&env, None);
        assert_eq!(p.static_credentials().unwrap().access_key_id, "ENV");
        assert_eq!(p.region().as_deref(), Some("ap-south-1"));
        // Named explicitly: the profile's values win.
        let p = Profile::load(&env, Some("msk"));
        assert_eq!(p.static_credentials().unwrap().access_key_id, "MSK");
        assert_eq!(p.region().as_deref(), Some("eu-central-1"));
        // Debug never shows a secret.
        let shown = format!("{:?}", p.static_credentials().unwrap());
        assert!(shown.contains("MSK") && !shown.contains("msksecret") && !shown.contains("msktoken"), "{shown}");
    }

    #[test]
    fn web_identity_comes_from_the_environment_or_the_profile() {
        let home = home_with_files();
        let mut env = Environment { vars: BTreeMap::new(), home: Some(home.path().to_path_buf()) };
        assert_eq!(Profile::load(&env, None).web_identity(), None);
        let irsa = Profile::load(&env, Some("irsa")).web_identity().unwrap();
        assert_eq!(irsa.role_arn, "arn:aws:iam::1:role/r");
        assert_eq!(irsa.token_file, PathBuf::from("/var/run/token"));
        env.vars.insert("AWS_WEB_IDENTITY_TOKEN_FILE".into(), "/t".into());
        env.vars.insert("AWS_ROLE_ARN".into(), "arn:aws:iam::2:role/pod".into());
        env.vars.insert("AWS_ROLE_SESSION_NAME".into(), "s".into());
        let pod = Profile::load(&env, None).web_identity().unwrap();
        assert_eq!((pod.role_arn.as_str(), pod.session_name.as_deref()), ("arn:aws:iam::2:role/pod", Some("s")));
        // A missing home and missing files are simply empty.
        let bare = Environment::default();
        assert!(Profile::load(&bare, Some("x")).static_credentials().is_none());
    }
}
