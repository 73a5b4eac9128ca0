//! Moving bytes both ways between a client and a server, with half-close and an idle timer.
//!
//! One task per connection polls both directions; each direction owns one fixed buffer
//! allocated when the connection starts, so the copy allocates nothing per read. When one side
//! reads EOF the write side of the other is shut down and the other direction keeps flowing
//! (a client may send its request, shut down its write side and still read the whole reply).
//! Every read and write stamps the connection's last activity; the idle timer sleeps until
//! `last activity + idle` and re-arms when activity moved, so it costs one timer per idle
//! period rather than one reset per read.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// The size of each direction's buffer.
const BUFFER: usize = 16 * 1024;

/// How a spliced connection ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// Both sides closed their write side (or one closed and the other followed).
    Closed,
    /// No byte moved in either direction for the idle timeout.
    Idle,
    /// A read or write failed (a reset, most often).
    Failed(io::Error),
}

/// When a byte last moved, as milliseconds since the connection started.
#[derive(Debug)]
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// Copies `client` to `server` and back until both directions ended, one side failed, or no
/// byte moved for `idle`. Bytes from the client are added to `bytes_in`, bytes from the
/// server to `bytes_out`, as they move.
pub(crate) async fn splice(
    client: &mut TcpStream,
    server: &mut TcpStream,
    idle: Duration,
    bytes_in: &AtomicU64,
    bytes_out: &AtomicU64,
) -> Ended {
    let activity = Activity::new();
    let (mut client_read, mut client_write) = client.split();
    let (mut server_read, mut server_write) = server.split();
    let both = async {
        tokio::try_join!(
            pump(&mut client_read, &mut server_write, &activity, bytes_in),
            pump(&mut server_read, &mut client_write, &activity, bytes_out),
        )
    };
    tokio::select! {
        result = both => match result {
            Ok(_) => Ended::Closed,
            Err(e) => Ended::Failed(e),
        },
        () = idle_timer(&activity, idle) => Ended::Idle,
    }
}

/// One direction: read, write all, until EOF; then shut down the writer (half-close).
async fn pump<R, W>(
    reader: &mut R,
    writer: &mut W,
    activity: &Activity,
    bytes: &AtomicU64,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buffer = vec![0u8; BUFFER].into_boxed_slice();
    loop {
        let n = reader.read(&mut buffer).await?;
        if n == 0 {
            // The peer may already be gone; its direction reports that, not this one.
            return match writer.shutdown().await {
                Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
                other => other,
            };
        }
        activity.touch();
        writer.write_all(&buffer[..n]).await?;
        activity.touch();
        bytes.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// Returns once no activity was stamped for `idle`.
async fn idle_timer(activity: &Activity, idle: Duration) {
    loop {
        let deadline = activity.last() + idle;
        if deadline <= Instant::now() {
            return;
        }
        tokio::time::sleep_until(deadline.into()).await;
    }
}
