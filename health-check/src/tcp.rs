//! [`TcpCheck`]: connect, optionally send bytes and expect a reply prefix (HAProxy's
//! `tcp-check send` / `tcp-check expect string`).

use std::net::SocketAddr;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{Check, CheckError};

/// Healthy when a TCP connection to `addr` succeeds (and, if set, the reply to `send` starts
/// with `expect`). The connection is closed with a reset (`SO_LINGER` 0), as HAProxy closes
/// its check connections, so that frequent checks leave no `TIME_WAIT` sockets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpCheck {
    addr: SocketAddr,
    send: Option<Vec<u8>>,
    expect: Option<Vec<u8>>,
}

impl TcpCheck {
    /// A connect-only check.
    pub fn new(addr: SocketAddr) -> TcpCheck {
        TcpCheck {
            addr,
            send: None,
            expect: None,
        }
    }

    /// Sends `bytes` once connected.
    pub fn send(mut self, bytes: impl Into<Vec<u8>>) -> TcpCheck {
        self.send = Some(bytes.into());
        self
    }

    /// Requires the reply to start with `prefix`.
    pub fn expect(mut self, prefix: impl Into<Vec<u8>>) -> TcpCheck {
        self.expect = Some(prefix.into());
        self
    }
}

#[async_trait]
impl Check for TcpCheck {
    async fn check(&self) -> Result<(), CheckError> {
        let addr = self.addr;
        let reply = |reason: String| CheckError::Reply { addr, reason };
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|source| CheckError::Connect { addr, source })?;
        if let Some(bytes) = &self.send {
            stream
                .write_all(bytes)
                .await
                .map_err(|e| reply(format!("sending failed: {e}")))?;
        }
        // Close with a reset, as HAProxy does for its checks: a health check every second per
        // server must not leave a TIME_WAIT socket behind each time. Failing to set it only
        // costs that.
        let _ = stream.set_zero_linger();
        if let Some(prefix) = &self.expect {
            let mut got = vec![0u8; prefix.len()];
            let mut filled = 0;
            while filled < got.len() {
                match stream.read(&mut got[filled..]).await {
                    Ok(0) => {
                        return Err(reply(format!(
                            "connection closed after {filled} of {} expected bytes",
                            prefix.len()
                        )));
                    }
                    Ok(n) => filled += n,
                    Err(e) => return Err(reply(format!("reading failed: {e}"))),
                }
            }
            if &got != prefix {
                return Err(reply(format!(
                    "expected reply starting {:?}, got {:?}",
                    String::from_utf8_lossy(prefix),
                    String::from_utf8_lossy(&got)
                )));
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("tcp {}", self.addr)
    }
}
