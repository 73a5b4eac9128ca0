//! Moving bytes both ways between a client and a server, with half-close and an idle timer.
//!
//! One task per connection polls both directions (no split halves: either side may be a TLS
//! stream, which cannot be split without a lock); each direction owns one fixed buffer
//! allocated when the connection starts, so the copy allocates nothing per read. When one side
//! reads EOF the write side of the other is shut down and the other direction keeps flowing
//! (a client may send its request, shut down its write side and still read the whole reply).
//! Every read and write stamps the connection's last activity; the idle timer sleeps until
//! `last activity + idle` and re-arms when activity moved, so it costs one timer per idle
//! period rather than one reset per read.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

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
///
/// Either side may be any stream: a `TcpStream`, or a TLS stream around one (whose shutdown
/// sends `close_notify` before closing the TCP write side).
pub(crate) async fn splice<C, S>(
    client: &mut C,
    server: &mut S,
    idle: Duration,
    bytes_in: &AtomicU64,
    bytes_out: &AtomicU64,
) -> Ended
where
    C: AsyncRead + AsyncWrite + Unpin + ?Sized,
    S: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let activity = Activity::new();
    let mut up = Pump::new(bytes_in);
    let mut down = Pump::new(bytes_out);
    let both = std::future::poll_fn(|cx| {
        // Both directions are polled on every wake-up; an error in either ends the splice.
        let up = up.poll(cx, &mut *client, &mut *server, &activity)?;
        let down = down.poll(cx, &mut *server, &mut *client, &activity)?;
        if up.is_ready() && down.is_ready() {
            Poll::Ready(Ok::<(), io::Error>(()))
        } else {
            Poll::Pending
        }
    });
    tokio::select! {
        result = both => match result {
            Ok(()) => Ended::Closed,
            Err(e) => Ended::Failed(e),
        },
        () = idle_timer(&activity, idle) => Ended::Idle,
    }
}

/// One direction: read, write all, until EOF; then shut down the writer (half-close).
struct Pump<'a> {
    buffer: Box<[u8]>,
    /// `buffer[pos..cap]` is read and not written yet.
    pos: usize,
    cap: usize,
    /// Bytes were written since the last flush (a TLS stream may hold them back).
    unflushed: bool,
    /// The reader reached EOF.
    eof: bool,
    /// The writer is shut down: this direction is over.
    done: bool,
    bytes: &'a AtomicU64,
}

impl<'a> Pump<'a> {
    fn new(bytes: &'a AtomicU64) -> Self {
        Pump {
            buffer: vec![0u8; BUFFER].into_boxed_slice(),
            pos: 0,
            cap: 0,
            unflushed: false,
            eof: false,
            done: false,
            bytes,
        }
    }

    fn poll<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        reader: &mut R,
        writer: &mut W,
        activity: &Activity,
    ) -> Poll<io::Result<()>>
    where
        R: AsyncRead + Unpin + ?Sized,
        W: AsyncWrite + Unpin + ?Sized,
    {
        loop {
            if self.done {
                return Poll::Ready(Ok(()));
            }
            if self.pos < self.cap {
                let n = ready!(
                    Pin::new(&mut *writer).poll_write(cx, &self.buffer[self.pos..self.cap])
                )?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.pos += n;
                self.unflushed = true;
                activity.touch();
                self.bytes.fetch_add(n as u64, Ordering::Relaxed);
                continue;
            }
            if self.eof {
                // The peer may already be gone; its direction reports that, not this one.
                match ready!(Pin::new(&mut *writer).poll_shutdown(cx)) {
                    Err(e) if e.kind() != io::ErrorKind::NotConnected => {
                        return Poll::Ready(Err(e));
                    }
                    _ => {}
                }
                self.done = true;
                continue;
            }
            let mut read = ReadBuf::new(&mut self.buffer);
            match Pin::new(&mut *reader).poll_read(cx, &mut read) {
                Poll::Ready(result) => {
                    match result {
                        Ok(()) => {}
                        // A TLS peer that closed its TCP connection without `close_notify`
                        // (common, and harmless here: TCP framed every byte): an end.
                        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {}
                        Err(e) => return Poll::Ready(Err(e)),
                    }
                    let n = read.filled().len();
                    if n == 0 {
                        self.eof = true;
                    } else {
                        activity.touch();
                        (self.pos, self.cap) = (0, n);
                    }
                }
                Poll::Pending => {
                    // Nothing more to read for now: what was written must leave.
                    if self.unflushed {
                        ready!(Pin::new(&mut *writer).poll_flush(cx))?;
                        self.unflushed = false;
                    }
                    return Poll::Pending;
                }
            }
        }
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
