//! IMDSv2 against a metadata server on loopback that behaves like EC2's: a PUT for a session
//! token first (with a TTL header), then every read must carry the token, or it gets 401.
//! (The real service's address, 169.254.169.254, is never contacted by the tests.)
#![cfg(feature = "aws")]

use std::collections::HashMap;

use ip_manager::{Imds, InstanceIdentity};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const TOKEN: &str = "AQAEAtoken==";

fn answers() -> HashMap<&'static str, &'static str> {
    HashMap::from([
        (
            "/latest/meta-data/iam/security-credentials/",
            "ha-vrrp-role",
        ),
        (
            "/latest/meta-data/iam/security-credentials/ha-vrrp-role",
            r#"{ "Code" : "Success", "Type" : "AWS-HMAC", "AccessKeyId" : "ASIAEXAMPLE", "SecretAccessKey" : "role-secret", "Token" : "role-token", "Expiration" : "2026-11-23T12:00:00Z" }"#,
        ),
        ("/latest/meta-data/mac", "0e:11:22:33:44:55"),
        ("/latest/meta-data/instance-id", "i-0abc"),
        ("/latest/meta-data/placement/region", "eu-west-1"),
        (
            "/latest/meta-data/network/interfaces/macs/0e:11:22:33:44:55/interface-id",
            "eni-0def",
        ),
        (
            "/latest/meta-data/network/interfaces/macs/0e:11:22:33:44:55/local-ipv4s",
            "10.0.1.11\n10.0.1.50",
        ),
    ])
}

/// Serves requests until the test ends; a read without the session token gets 401.
async fn serve(listener: TcpListener) {
    let answers = answers();
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            return;
        };
        let mut buf = vec![0u8; 8192];
        let n = sock.read(&mut buf).await.unwrap_or(0);
        let req = String::from_utf8_lossy(&buf[..n]).to_string();
        let mut first = req.lines().next().unwrap_or_default().split(' ');
        let (method, path) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
        let header = |name: &str| {
            req.lines()
                .find(|l| l.to_ascii_lowercase().starts_with(&format!("{name}:")))
                .map(|l| l[name.len() + 1..].trim().to_owned())
        };
        let (status, body) = match (method, path) {
            ("PUT", "/latest/api/token")
                if header("x-aws-ec2-metadata-token-ttl-seconds").is_some() =>
            {
                ("200 OK", TOKEN.to_owned())
            }
            ("PUT", _) => ("400 Bad Request", String::new()),
            ("GET", _) if header("x-aws-ec2-metadata-token").as_deref() != Some(TOKEN) => {
                ("401 Unauthorized", String::new())
            }
            ("GET", p) => match answers.get(p) {
                Some(b) => ("200 OK", (*b).to_owned()),
                None => ("404 Not Found", String::new()),
            },
            _ => ("405 Method Not Allowed", String::new()),
        };
        let resp = format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = sock.write_all(resp.as_bytes()).await;
    }
}

#[tokio::test]
async fn role_credentials_and_identity_via_imdsv2() {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(serve(listener));
    let imds = Imds::with_endpoint(&format!("http://{addr}")).expect("client");

    let creds = imds.credentials().await.expect("role credentials");
    assert_eq!(creds.access_key_id, "ASIAEXAMPLE");
    assert_eq!(creds.secret_access_key, "role-secret");
    assert_eq!(creds.session_token.as_deref(), Some("role-token"));
    assert!(!format!("{creds:?}").contains("role-secret"));

    let id = imds.identity().await.expect("identity");
    assert_eq!(
        id,
        InstanceIdentity {
            instance_id: "i-0abc".into(),
            region: "eu-west-1".into(),
            eni: "eni-0def".into(),
            private_ip: "10.0.1.11".into(),
        }
    );
}

#[tokio::test]
async fn off_ec2_the_error_says_so_quickly() {
    // A loopback port nobody listens on stands in for "not on EC2".
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let imds = Imds::with_endpoint(&format!("http://127.0.0.1:{port}")).expect("client");
    let started = std::time::Instant::now();
    let err = imds.credentials().await.expect_err("nothing listens");
    assert!(err.to_string().contains("not on EC2?"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
