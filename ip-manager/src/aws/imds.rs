//! [`Imds`]: the EC2 instance metadata service, IMDSv2 only (a session token on every read):
//! the instance's role credentials, region, ENI and private address, so a daemon on the
//! instance needs no configured ids or keys.

use std::time::Duration;

use super::credentials::Credentials;
use crate::Error;

/// The metadata service, at `AWS_EC2_METADATA_SERVICE_ENDPOINT` or `http://169.254.169.254`.
#[derive(Clone, Debug)]
pub struct Imds {
    http: reqwest::Client,
    base: String,
}

/// What an instance learns about its own network position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceIdentity {
    /// `i-...`.
    pub instance_id: String,
    /// The region, e.g. `eu-west-1`.
    pub region: String,
    /// The primary network interface, `eni-...`.
    pub eni: String,
    /// The primary interface's first private IPv4 address.
    pub private_ip: String,
}

impl Imds {
    /// The service at its standard address (or the environment's override).
    pub fn new() -> Result<Imds, Error> {
        let base = std::env::var("AWS_EC2_METADATA_SERVICE_ENDPOINT")
            .unwrap_or_else(|_| "http://169.254.169.254".into());
        Imds::with_endpoint(&base)
    }

    /// The service at `base` (tests point it at a local server).
    pub fn with_endpoint(base: &str) -> Result<Imds, Error> {
        let http = reqwest::Client::builder()
            // IMDS answers in microseconds on an instance; off one, fail fast.
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| imds_error("creating the HTTP client", e.to_string()))?;
        Ok(Imds {
            http,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    /// IMDSv2: a session token for the following reads.
    async fn token(&self) -> Result<String, Error> {
        let r = self
            .http
            .put(format!("{}/latest/api/token", self.base))
            .header("X-aws-ec2-metadata-token-ttl-seconds", "300")
            .send()
            .await
            .map_err(|e| {
                imds_error(
                    "getting an IMDSv2 token",
                    format!("{} unreachable (not on EC2?): {e}", self.base),
                )
            })?;
        if !r.status().is_success() {
            return Err(imds_error(
                "getting an IMDSv2 token",
                format!("HTTP {}", r.status()),
            ));
        }
        r.text()
            .await
            .map_err(|e| imds_error("getting an IMDSv2 token", e.to_string()))
    }

    async fn get(&self, token: &str, path: &str) -> Result<String, Error> {
        let what = format!("reading {path}");
        let r = self
            .http
            .get(format!("{}/latest/{path}", self.base))
            .header("X-aws-ec2-metadata-token", token)
            .send()
            .await
            .map_err(|e| imds_error(&what, e.to_string()))?;
        if !r.status().is_success() {
            return Err(imds_error(&what, format!("HTTP {}", r.status())));
        }
        Ok(r.text()
            .await
            .map_err(|e| imds_error(&what, e.to_string()))?
            .trim()
            .to_owned())
    }

    /// The temporary credentials of the instance's IAM role.
    pub async fn credentials(&self) -> Result<Credentials, Error> {
        let token = self.token().await?;
        let roles = self
            .get(&token, "meta-data/iam/security-credentials/")
            .await?;
        let role = roles
            .lines()
            .next()
            .filter(|r| !r.is_empty())
            .ok_or_else(|| Error::AwsCredentials {
                reason: "the instance has no IAM role (attach an instance profile)".into(),
            })?;
        let doc = self
            .get(
                &token,
                &format!("meta-data/iam/security-credentials/{role}"),
            )
            .await?;
        let field = |k: &str| {
            json_string(&doc, k).ok_or_else(|| Error::AwsCredentials {
                reason: format!("IMDS role document lacks {k}"),
            })
        };
        Ok(Credentials {
            access_key_id: field("AccessKeyId")?,
            secret_access_key: field("SecretAccessKey")?,
            session_token: Some(field("Token")?),
        })
    }

    /// The instance id, region, primary ENI and its first private address.
    pub async fn identity(&self) -> Result<InstanceIdentity, Error> {
        let token = self.token().await?;
        let mac = self.get(&token, "meta-data/mac").await?;
        let ips = self
            .get(
                &token,
                &format!("meta-data/network/interfaces/macs/{mac}/local-ipv4s"),
            )
            .await?;
        Ok(InstanceIdentity {
            instance_id: self.get(&token, "meta-data/instance-id").await?,
            region: self.get(&token, "meta-data/placement/region").await?,
            eni: self
                .get(
                    &token,
                    &format!("meta-data/network/interfaces/macs/{mac}/interface-id"),
                )
                .await?,
            private_ip: ips.lines().next().unwrap_or_default().to_owned(),
        })
    }
}

fn imds_error(action: &str, message: String) -> Error {
    Error::Aws {
        action: format!("IMDS: {action}"),
        code: "Imds".into(),
        message,
    }
}

/// The string value of `"key"` in a flat JSON object (the IMDS role document).
fn json_string(doc: &str, key: &str) -> Option<String> {
    let at = doc.find(&format!("\"{key}\""))? + key.len() + 2;
    let rest = doc[at..]
        .trim_start()
        .strip_prefix(':')?
        .trim_start()
        .strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_role_document() {
        let doc = r#"{ "Code" : "Success", "AccessKeyId" : "ASIAX", "SecretAccessKey":"s", "Token" : "t" }"#;
        assert_eq!(
            super::json_string(doc, "AccessKeyId").as_deref(),
            Some("ASIAX")
        );
        assert_eq!(
            super::json_string(doc, "SecretAccessKey").as_deref(),
            Some("s")
        );
        assert_eq!(super::json_string(doc, "Missing"), None);
    }
}
