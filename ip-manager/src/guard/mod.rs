//! The crash guard (feature `guard`): when the daemon dies without its clean stop (SIGKILL,
//! the OOM killer, a segfault, an abort), a tiny process it forked at start sends the
//! priority-0 advertisement of every virtual router the daemon was Master of and, one advert
//! interval later, deletes their virtual addresses. The Backup takes over after Skew_Time
//! (0.61 s at 1 s adverts) instead of Master_Down_Interval (3.6 s); meanwhile the dead
//! Master's host still holds the address, so that a client's new connection is refused at once
//! and retried rather than its SYN vanishing for a second; then it no longer answers ARP for
//! it.
//!
//! How it works:
//! - [`Guard::start`] opens (or creates) the guard file, locks it, reads what the previous run
//!   left ([`Guard::previous_masters`]: the routers that were Master when it died), starts a
//!   fresh one, and forks the guard. The guard closes every descriptor it inherited but the
//!   file, opens its raw IP-112 sockets and a netlink socket, ignores SIGTERM / SIGINT / SIGHUP
//!   (systemd stops a unit by signalling its whole cgroup; the guard outlives the daemon and
//!   ends right after it), sets its OOM score to -1000, names itself `crash-guard` (what `ps`
//!   shows), and waits on the daemon's pidfd.
//! - [`Guard::register`] writes a fixed-size slot per router: the ready-made priority-0
//!   advertisement (same VRID, version, authentication, interval, addresses; one checksum per
//!   destination), the source address, the destinations (unicast peers or the multicast
//!   group), the interface index, and the addresses with their prefix length and interface.
//!   [`GuardSlot`] marks each transition with a one-byte write: Master (send priority 0 and
//!   delete the addresses), leaving Master (only delete them), idle.
//! - When the daemon has died the guard reads the slots into stack buffers and, for each
//!   router marked Master, sends its advertisement (TTL / hop limit 255, from the router's
//!   source address, out of its interface), waits one advertisement interval (at most
//!   1.5 s: the Backup takes over within Skew_Time, less than that), then deletes the
//!   addresses of each router
//!   marked so with a hand-built `RTM_DELADDR`, logs one line per router on standard error,
//!   marks the file "fired" and exits. It allocates nothing after the fork.
//! - A clean stop leaves every slot idle (the routers sent their own priority 0 and released
//!   their addresses): the guard wakes, finds nothing to do and exits. It never sends priority
//!   0 for a router that was not Master.
//! - The next run reads the file: a router that was Master when the last run died can be
//!   held down (vrrpd's `crash_hold_down`: the restarted daemon stays Backup, at priority 1,
//!   for that long) so that a crash-and-restart does not move the address twice in a row.
//!
//! A daemon with several routers starts one guard and registers each;
//! [`FailoverBuilder::crash_guard`](crate::failover::FailoverBuilder::crash_guard) does it all
//! for one [`Failover`](crate::failover::Failover).
//!
//! ```no_run
//! use ip_manager::guard::Guard;
//! use ip_manager::Vip;
//! use std::net::IpAddr;
//! use vrrp_core::{Config, State};
//! use vrrp_core::packet::Vrid;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let guard = Guard::start("/run/myservice/guard")?;
//! let vip = Vip::parse("10.99.0.200/24", "eth0")?;
//! let config = Config::new(
//!     Vrid::new(51).expect("1..=255"),
//!     IpAddr::from([10, 99, 0, 11]),
//!     vec![vip.address],
//! );
//! let slot = guard.register("VI_1", &config, "eth0", &[vip])?;
//! // On each state change, around moving the addresses:
//! slot.changing(State::Backup, State::Master); // before adding them
//! slot.changed(State::Master); // after
//! # Ok(()) }
//! ```

mod events;
mod process;
mod record;
mod sys;

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use thiserror::Error;
use vrrp_core::{Config, State};

use crate::Vip;
pub use events::GuardedEvents;
use record::{HEADER_LEN, HOLDING, MASTER, SLOT_LEN, SlotView, VALID, slot_offset};
pub use record::{MAX_ADDRESSES, MAX_DESTINATIONS, MAX_NAME};

/// How many routers one guard holds unless [`Guard::start_with`] says otherwise.
pub const DEFAULT_SLOTS: u32 = 256;

/// The tracked object that holds a restarted router down after a crash while Master (see
/// [`Guard::previous_masters`]): with [`HOLD_DOWN_WEIGHT`] and down, the router's priority is 1,
/// so it stays Backup while a peer is Master, and still takes over if nobody else is there.
pub const HOLD_DOWN_TRACKER: &str = "crash-hold-down";

/// The weight of [`HOLD_DOWN_TRACKER`]: the lowest, so the priority is clamped to 1.
pub const HOLD_DOWN_WEIGHT: i16 = -254;

/// The hold-down after a crash while Master, when not configured.
pub const DEFAULT_HOLD_DOWN: Duration = Duration::from_secs(30);

/// How long [`Guard::start`] waits for the guard file's lock (a dead daemon's guard still at
/// work holds it for a few milliseconds).
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Why the guard could not start or a router could not be registered.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum GuardError {
    /// The guard file could not be opened, read or written.
    #[error("crash guard file {path}: {error} (is its directory writable by the daemon?)")]
    File {
        /// The file.
        path: PathBuf,
        /// What failed.
        error: std::io::Error,
    },
    /// Another process holds the guard file.
    #[error(
        "crash guard file {path} is in use by another process: another daemon with the same file is running (give each its own path)"
    )]
    Busy {
        /// The file.
        path: PathBuf,
    },
    /// The guard process could not be made or could not open its sockets.
    #[error("crash guard process: {what}: {error} (it needs CAP_NET_RAW and CAP_NET_ADMIN)")]
    Process {
        /// The step that failed.
        what: &'static str,
        /// Why.
        error: std::io::Error,
    },
    /// Every slot is taken.
    #[error("crash guard: all {slots} slots are taken: start it with more (`Guard::start_with`)")]
    Full {
        /// The number of slots.
        slots: u32,
    },
    /// A router has more of something than a slot holds.
    #[error("crash guard: instance {instance} has {count} {what}, a guard slot holds {max}")]
    TooMany {
        /// The router's name.
        instance: String,
        /// What there is too much of.
        what: &'static str,
        /// How many it has.
        count: usize,
        /// How many fit.
        max: usize,
    },
    /// An interface does not exist.
    #[error("crash guard: instance {instance}: no interface {interface:?}")]
    Interface {
        /// The router's name.
        instance: String,
        /// The interface.
        interface: String,
    },
    /// The priority-0 advertisement could not be encoded.
    #[error("crash guard: instance {instance}: {error}")]
    Advert {
        /// The router's name.
        instance: String,
        /// Why.
        error: vrrp_core::packet::EncodeError,
    },
}

/// A router that was Master when the previous run died (read from the guard file at start).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PreviousMaster {
    /// Its name (at most [`MAX_NAME`] bytes of it).
    pub name: String,
    /// Its VRID.
    pub vrid: u8,
    /// Whether it was an IPv6 router.
    pub ipv6: bool,
    /// The index of the interface its adverts left from.
    pub ifindex: u32,
    /// Whether the previous run's guard sent its priority 0 (false: the guard died too, or
    /// was not there to act).
    pub guard_acted: bool,
}

struct Inner {
    file: File,
    path: PathBuf,
    /// Which slots are taken.
    taken: Mutex<Vec<bool>>,
    pid: u32,
}

/// A running crash guard: see the [module](self) docs. Cloning shares it.
#[derive(Clone)]
#[must_use = "the guard protects only the routers registered with it"]
pub struct Guard {
    inner: Arc<Inner>,
    previous: Arc<[PreviousMaster]>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("path", &self.inner.path)
            .field("pid", &self.inner.pid)
            .field("previous", &self.previous)
            .finish_non_exhaustive()
    }
}

fn file_error(path: &Path) -> impl FnOnce(std::io::Error) -> GuardError + '_ {
    move |error| GuardError::File {
        path: path.to_owned(),
        error,
    }
}

impl Guard {
    /// Starts a guard with [`DEFAULT_SLOTS`] slots, its file at `path` (its directory is
    /// made if missing; give each daemon its own). Blocks for the few milliseconds the guard
    /// takes to open its sockets, or up to 2 s while a dead daemon's guard still holds the
    /// file.
    pub fn start(path: impl AsRef<Path>) -> Result<Guard, GuardError> {
        Guard::start_with(path, DEFAULT_SLOTS)
    }

    /// [`start`](Self::start) with room for `slots` routers (2 KiB of file each).
    pub fn start_with(path: impl AsRef<Path>, slots: u32) -> Result<Guard, GuardError> {
        let path = path.as_ref();
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(file_error(path))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(file_error(path))?;
        let waited = Instant::now();
        while !sys::try_lock(file.as_raw_fd()).map_err(file_error(path))? {
            if waited.elapsed() > LOCK_WAIT {
                return Err(GuardError::Busy {
                    path: path.to_owned(),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut old = Vec::new();
        file.read_to_end(&mut old).map_err(file_error(path))?;
        let previous = previous_masters(&old);
        let len = slot_offset(slots);
        file.set_len(0).map_err(file_error(path))?;
        file.set_len(len).map_err(file_error(path))?;
        let pid = sys::getpid();
        file.write_all_at(&record::header(slots, pid), 0)
            .map_err(file_error(path))?;
        let guard_pid = spawn(&file, pid)?;
        Ok(Guard {
            inner: Arc::new(Inner {
                file,
                path: path.to_owned(),
                taken: Mutex::new(vec![false; slots as usize]),
                pid: guard_pid,
            }),
            previous: previous.into(),
        })
    }

    /// The guard process's id.
    pub fn pid(&self) -> u32 {
        self.inner.pid
    }

    /// The guard file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The routers that were Master when the previous run with this file died (empty after a
    /// clean stop, or a reboot that emptied `/run`).
    pub fn previous_masters(&self) -> &[PreviousMaster] {
        &self.previous
    }

    /// Whether the router `vrid` (`ipv6` or not) advertising on `interface` was Master when
    /// the previous run died.
    pub fn was_master(&self, vrid: u8, ipv6: bool, interface: &str) -> bool {
        let index = sys::if_nametoindex(interface);
        self.previous
            .iter()
            .any(|p| p.vrid == vrid && p.ipv6 == ipv6 && Some(p.ifindex) == index)
    }

    /// Registers router `config` (named `name` in the guard's log), whose adverts leave
    /// through `interface` (the macvlan with a virtual MAC) and whose addresses are `vips`.
    /// Everything the guard needs is computed now; the slot starts idle.
    pub fn register(
        &self,
        name: &str,
        config: &Config,
        interface: &str,
        vips: &[Vip],
    ) -> Result<GuardSlot, GuardError> {
        let index_of = |interface: &str| {
            sys::if_nametoindex(interface).ok_or_else(|| GuardError::Interface {
                instance: name.to_owned(),
                interface: interface.to_owned(),
            })
        };
        let ifindex = index_of(interface)?;
        let bytes = record::encode_slot(name, config, ifindex, vips, &index_of)?;
        let index = {
            let mut taken = self
                .inner
                .taken
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let free = taken.iter().position(|t| !t).ok_or(GuardError::Full {
                slots: taken.len() as u32,
            })?;
            taken[free] = true;
            free as u32
        };
        let slot = GuardSlot {
            inner: self.inner.clone(),
            index,
        };
        // The body first, the flags byte last: a death in between leaves the slot unused.
        let at = slot_offset(index);
        let written = self
            .inner
            .file
            .write_all_at(&bytes[1..], at + 1)
            .and_then(|()| self.inner.file.write_all_at(&bytes[..1], at));
        written.map_err(file_error(&self.inner.path))?;
        Ok(slot)
    }
}

/// The routers marked Master in a previous run's guard file.
fn previous_masters(file: &[u8]) -> Vec<PreviousMaster> {
    let Some(header) = file.get(..HEADER_LEN) else {
        return Vec::new();
    };
    let Some(slots) = record::slots_of(header) else {
        return Vec::new();
    };
    let fired = header.get(record::FIRED_AT) == Some(&1);
    (0..slots)
        .filter_map(|i| {
            let at = usize::try_from(slot_offset(i)).ok()?;
            let view = SlotView(file.get(at..at + SLOT_LEN)?);
            view.is(MASTER).then(|| PreviousMaster {
                name: String::from_utf8_lossy(view.name()).into_owned(),
                vrid: view.vrid(),
                ipv6: view.family() == 6,
                ifindex: view.ifindex(),
                guard_acted: fired,
            })
        })
        .collect()
}

/// Forks the guard on `file` for daemon `pid` and waits until it is ready.
fn spawn(file: &File, pid: u32) -> Result<u32, GuardError> {
    let process = |what| move |error| GuardError::Process { what, error };
    let pidfd = sys::pidfd_open(pid).map_err(process("pidfd_open (Linux 5.3 or later)"))?;
    let (ready_read, ready_write) = sys::pipe().map_err(process("pipe"))?;
    let fds = process::Inherited {
        file: file.as_raw_fd(),
        pidfd: pidfd.as_raw_fd(),
        ready: ready_write.as_raw_fd(),
        daemon: pid,
    };
    let child = sys::fork(process::run, fds).map_err(process("fork"))?;
    drop(pidfd);
    drop(ready_write);
    let mut status = [0u8; 8];
    let mut ready = File::from(ready_read);
    let answer = ready.read_exact(&mut status);
    let step = u32::from_le_bytes([status[0], status[1], status[2], status[3]]);
    let errno = i32::from_le_bytes([status[4], status[5], status[6], status[7]]);
    match (answer, step) {
        (Ok(()), 0) => Ok(child),
        (Err(error), _) => {
            sys::reap(child);
            Err(GuardError::Process {
                what: "starting",
                error,
            })
        }
        (Ok(()), step) => {
            sys::reap(child);
            let what = if step == process::STEP_SOCKET {
                "opening a raw IP socket"
            } else {
                "opening a netlink socket"
            };
            Err(GuardError::Process {
                what,
                error: std::io::Error::from_raw_os_error(errno),
            })
        }
    }
}

/// One router's slot in the guard file; dropping it frees the slot (the guard then ignores
/// it). Shared (`Arc`) between the versions of a router that a reload updates in place.
#[must_use = "dropping the slot unregisters the router"]
pub struct GuardSlot {
    inner: Arc<Inner>,
    index: u32,
}

impl std::fmt::Debug for GuardSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardSlot")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl GuardSlot {
    fn set(&self, flags: u8) {
        // One byte on a tmpfs file: it does not fail short of a vanished /run, and then the
        // guard acting on a stale byte is all that could happen.
        let _ = self
            .inner
            .file
            .write_all_at(&[flags], slot_offset(self.index));
    }

    /// Before the addresses move for a state change `from` → `to`: entering Master marks the
    /// slot Master (priority 0 and the addresses deleted if the daemon dies now); leaving it
    /// keeps only the addresses marked (the router no longer advertises: no priority 0).
    pub fn changing(&self, from: State, to: State) {
        if to == State::Master {
            self.set(VALID | MASTER | HOLDING);
        } else if from == State::Master {
            self.set(VALID | HOLDING);
        }
    }

    /// After the addresses moved for a change into `to`: anything but Master leaves the slot
    /// idle.
    pub fn changed(&self, to: State) {
        if to != State::Master {
            self.set(VALID);
        }
    }
}

impl Drop for GuardSlot {
    fn drop(&mut self) {
        self.set(0);
        let mut taken = self
            .inner
            .taken
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(t) = taken.get_mut(self.index as usize) {
            *t = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;
    use vrrp_core::packet::Vrid;

    #[test]
    fn a_previous_run_s_masters_are_read_back() {
        let config = Config::new(
            Vrid::new(51).expect("51"),
            IpAddr::from([10, 99, 0, 11]),
            vec![IpAddr::from([10, 99, 0, 200])],
        );
        let mut file = record::header(2, 1).to_vec();
        let index_of = |_: &str| Ok(2);
        let mut a = record::encode_slot("a", &config, 2, &[], &index_of).expect("slot");
        let b = record::encode_slot("b", &config, 3, &[], &index_of).expect("slot");
        a[0] = VALID | MASTER | HOLDING;
        file.extend_from_slice(&a);
        file.extend_from_slice(&b);
        file[record::FIRED_AT] = 1;
        let previous = previous_masters(&file);
        assert_eq!(
            previous,
            vec![PreviousMaster {
                name: "a".into(),
                vrid: 51,
                ipv6: false,
                ifindex: 2,
                guard_acted: true
            }]
        );
        assert!(previous_masters(&file[..100]).is_empty());
        assert!(previous_masters(b"not a guard file").is_empty());
    }

    /// A real guard, forked from this (multi-threaded) test binary, on loopback only: its
    /// slot is never marked Master, so when the test binary exits the guard finds nothing to
    /// do.
    #[test]
    fn a_guard_starts_registers_and_keeps_its_file_to_itself() {
        let dir = std::env::temp_dir().join(format!("ha-guard-test-{}", std::process::id()));
        let path = dir.join("g");
        let guard = match Guard::start_with(&path, 2) {
            Ok(g) => g,
            Err(GuardError::Process { .. }) => {
                eprintln!("skipped: no raw sockets here (needs root: CAP_NET_RAW)");
                return;
            }
            Err(e) => panic!("{e}"),
        };
        assert!(guard.previous_masters().is_empty());
        assert!(guard.pid() != sys::getpid());
        let comm = std::fs::read_to_string(format!("/proc/{}/comm", guard.pid())).expect("comm");
        assert_eq!(comm.trim(), "crash-guard");
        let config = Config::new(
            Vrid::new(51).expect("51"),
            IpAddr::from([127, 0, 0, 1]),
            vec![IpAddr::from([127, 0, 0, 200])],
        );
        let vip = Vip::parse("127.0.0.200/8", "lo").expect("vip");
        let a = guard
            .register("a", &config, "lo", std::slice::from_ref(&vip))
            .expect("a");
        let b = guard
            .register("b", &config, "lo", std::slice::from_ref(&vip))
            .expect("b");
        assert!(matches!(
            guard.register("c", &config, "lo", &[]),
            Err(GuardError::Full { slots: 2 })
        ));
        drop(b);
        let c = guard
            .register("c", &config, "lo", &[])
            .expect("c reuses b's slot");
        let e = guard
            .register("d", &config, "no-such-if0", &[])
            .expect_err("no interface");
        assert!(e.to_string().contains("no-such-if0"), "{e}");
        // The transitions are single bytes in the slot.
        let read = || std::fs::read(&path).expect("read");
        a.changing(State::Backup, State::Master);
        assert_eq!(read()[HEADER_LEN], VALID | MASTER | HOLDING);
        a.changing(State::Master, State::Backup);
        assert_eq!(read()[HEADER_LEN], VALID | HOLDING);
        a.changed(State::Backup);
        assert_eq!(read()[HEADER_LEN], VALID);
        // The file is locked: a second daemon on it is refused.
        let busy = Guard::start_with(&path, 2).expect_err("busy");
        assert!(matches!(busy, GuardError::Busy { .. }), "{busy}");
        drop((a, c));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
