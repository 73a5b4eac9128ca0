//! [`Deadline`]: a one-shot timer with microsecond precision (a timerfd on CLOCK_MONOTONIC),
//! because tokio's timers round up to the next millisecond and a takeover waits for one.

use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::Instant;

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// The timerfd, with the `AsRawFd` that `AsyncFd` wants.
#[derive(Debug)]
struct Fd(TimerFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// A re-armable one-shot timer.
#[derive(Debug)]
pub(crate) struct Deadline {
    fd: AsyncFd<Fd>,
    armed: Option<Instant>,
}

impl Deadline {
    pub(crate) fn new() -> io::Result<Deadline> {
        let fd = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        Ok(Deadline {
            fd: register(Fd(fd))?,
            armed: None,
        })
    }

    /// Sets the timer to fire at `at` (at once if it is past), or disarms it; a no-op when
    /// that is already so.
    pub(crate) fn arm(&mut self, at: Option<Instant>) -> io::Result<()> {
        if at == self.armed {
            return Ok(());
        }
        self.armed = at;
        let timer = &self.fd.get_ref().0;
        match at {
            None => timer.unset()?,
            Some(at) => {
                // A zero expiration would disarm: a deadline that has passed fires in 1 ns.
                let wait = at
                    .saturating_duration_since(Instant::now())
                    .max(std::time::Duration::from_nanos(1));
                timer.set(
                    Expiration::OneShot(TimeSpec::from_duration(wait)),
                    TimerSetTimeFlags::empty(),
                )?;
            }
        }
        Ok(())
    }

    /// Resolves when the armed deadline has passed; never while disarmed.
    pub(crate) async fn fired(&mut self) -> io::Result<()> {
        if self.armed.is_none() {
            return std::future::pending().await;
        }
        loop {
            let mut ready = self.fd.readable().await?;
            // Reading consumes the expiration; EAGAIN means the readiness was stale (the
            // timer was re-armed since).
            match ready.try_io(|fd| fd.get_ref().0.wait().map_err(io::Error::from)) {
                Ok(Ok(())) => {
                    self.armed = None;
                    return Ok(());
                }
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }
}

#[allow(unsafe_code)]
fn register(fd: Fd) -> io::Result<AsyncFd<Fd>> {
    // SAFETY: the `AsyncFd` takes ownership of the timerfd, which is open and owned by it
    // alone (inside `TimerFd`, closed only on drop); `Fd::as_raw_fd` always returns that same
    // descriptor, and nothing closes or replaces it until the `AsyncFd` is dropped.
    unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.map_err(|e| e.into_parts().1)
}
