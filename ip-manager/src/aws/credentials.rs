//! AWS credentials from the standard places: the environment, then the shared credentials
//! file. (IMDSv2 role credentials on an instance are not implemented yet.)

use std::fmt;
use std::path::{Path, PathBuf};

use crate::Error;

/// An access key, with its session token if temporary. `Debug` never prints the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The access key id (`AKIA...` / `ASIA...`).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// The session token of temporary credentials.
    pub session_token: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"..")
            .field("session_token", &self.session_token.as_ref().map(|_| ".."))
            .finish()
    }
}

impl Credentials {
    /// A static key.
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> Credentials {
        Credentials {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: None,
        }
    }

    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`; then the profile
    /// `AWS_PROFILE` (default `default`) of `AWS_SHARED_CREDENTIALS_FILE` (default
    /// `~/.aws/credentials`).
    pub fn from_environment() -> Result<Credentials, Error> {
        if let (Ok(id), Ok(secret)) = (
            std::env::var("AWS_ACCESS_KEY_ID"),
            std::env::var("AWS_SECRET_ACCESS_KEY"),
        ) {
            return Ok(Credentials {
                access_key_id: id,
                secret_access_key: secret,
                session_token: std::env::var("AWS_SESSION_TOKEN")
                    .ok()
                    .filter(|t| !t.is_empty()),
            });
        }
        let file = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".aws/credentials")))
            .ok_or_else(|| Error::AwsCredentials {
                reason: "no AWS_ACCESS_KEY_ID and no HOME for ~/.aws/credentials".into(),
            })?;
        let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
        Credentials::from_profile_file(&file, &profile)
    }

    /// The `[profile]` section of a shared credentials file.
    pub fn from_profile_file(path: &Path, profile: &str) -> Result<Credentials, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::AwsCredentials {
            reason: format!(
                "reading {}: {e} (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY instead)",
                path.display()
            ),
        })?;
        let (mut id, mut secret, mut token) = (None, None, None);
        let mut in_section = false;
        for line in text.lines().map(str::trim) {
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                in_section = name.trim() == profile;
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            if !in_section {
                continue;
            }
            let value = Some(value.trim().to_owned());
            match key.trim() {
                "aws_access_key_id" => id = value,
                "aws_secret_access_key" => secret = value,
                "aws_session_token" => token = value,
                _ => {}
            }
        }
        match (id, secret) {
            (Some(access_key_id), Some(secret_access_key)) => Ok(Credentials {
                access_key_id,
                secret_access_key,
                session_token: token,
            }),
            _ => Err(Error::AwsCredentials {
                reason: format!(
                    "profile [{profile}] in {} lacks aws_access_key_id or aws_secret_access_key",
                    path.display()
                ),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_file_sections_and_debug_hides_secrets() {
        let dir = std::env::temp_dir().join(format!("aws-creds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("credentials");
        std::fs::write(&file, "[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = s1\n\n[ha]\naws_access_key_id=AKIAHA\naws_secret_access_key=SECRET-two\naws_session_token=TOKEN-xyz\n").unwrap();
        let c = Credentials::from_profile_file(&file, "ha").unwrap();
        assert_eq!(
            (c.access_key_id.as_str(), c.session_token.as_deref()),
            ("AKIAHA", Some("TOKEN-xyz"))
        );
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("SECRET-two") && !shown.contains("TOKEN-xyz"),
            "{shown}"
        );
        let e = Credentials::from_profile_file(&file, "nope")
            .unwrap_err()
            .to_string();
        assert!(e.contains("[nope]"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
