//! The guard process: forked from the daemon, it waits on the daemon's pidfd and, once the
//! daemon has died, acts on the guard file's slots. Nothing here allocates or takes a lock:
//! every buffer is on this stack, every call a syscall of [`super::sys`], and the process ends
//! with `_exit`.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::os::fd::RawFd;

use super::record::{
    ADVERT_BUFFER, FIRED_AT, HEADER_LEN, HOLDING, MASTER, SLOT_LEN, SlotView, slot_offset, slots_of,
};
use super::sys;

/// The descriptors the guard inherits; every other one is closed.
#[derive(Clone, Copy)]
pub(super) struct Inherited {
    /// The guard file (shared open file description: the daemon's flock is the guard's too).
    pub(super) file: RawFd,
    /// The daemon's pidfd.
    pub(super) pidfd: RawFd,
    /// Where the guard reports that it is ready (8 bytes: step and errno, 0 and 0 when ready).
    pub(super) ready: RawFd,
    /// The daemon's pid, for the log.
    pub(super) daemon: u32,
}

/// The guard's process name (`ps`, `/proc/PID/comm`).
pub(super) const NAME: &std::ffi::CStr = c"crash-guard";

/// Setup steps, reported to the parent when one fails.
pub(super) const STEP_SOCKET: u32 = 1;
pub(super) const STEP_NETLINK: u32 = 2;

/// The guard's sockets, opened before the daemon's death.
struct Sockets {
    v4: RawFd,
    v6: RawFd,
    netlink: RawFd,
}

/// The guard's whole life.
pub(super) fn run(fds: Inherited) -> ! {
    sys::set_name(NAME);
    // systemd stops a unit by SIGTERM to its whole cgroup, a terminal's Ctrl-C goes to the
    // whole process group: the guard outlives both and ends when the daemon has.
    for signal in [
        libc::SIGTERM,
        libc::SIGINT,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGPIPE,
        libc::SIGUSR1,
        libc::SIGUSR2,
    ] {
        sys::ignore(signal);
    }
    // Hold nothing of the daemon's: a listening socket kept open here would stay open after
    // the daemon closed it. Standard input, output and error stay (the guard's log line).
    let mut keep = [fds.file, fds.pidfd, fds.ready];
    keep.sort_unstable();
    let mut next = 3;
    for fd in keep {
        if fd >= next {
            sys::close_range(next, fd - 1);
            next = fd + 1;
        }
    }
    sys::close_range(next, RawFd::MAX);

    let sockets = match open_sockets() {
        Ok(s) => s,
        Err((step, errno)) => {
            report(fds.ready, step, errno);
            sys::exit(1);
        }
    };
    // The guard must outlive the daemon, also when the daemon is killed for memory.
    let oom = sys::open_write(c"/proc/self/oom_score_adj");
    if oom >= 0 {
        let _ = sys::write(oom, b"-1000");
        sys::close(oom);
    }
    report(fds.ready, 0, 0);
    sys::close(fds.ready);

    if sys::wait_readable(fds.pidfd).is_err() {
        sys::exit(2);
    }
    let acted = act(fds, &sockets);
    if acted {
        let _ = sys::pwrite(fds.file, &[1], FIRED_AT as u64);
    }
    sys::exit(0);
}

fn report(ready: RawFd, step: u32, errno: i32) {
    let mut msg = [0u8; 8];
    msg[..4].copy_from_slice(&step.to_le_bytes());
    msg[4..].copy_from_slice(&errno.to_le_bytes());
    let _ = sys::write(ready, &msg);
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn open_sockets() -> Result<Sockets, (u32, i32)> {
    let protocol = libc::c_int::from(vrrp_core::packet::PROTOCOL);
    let v4 = sys::socket(libc::AF_INET, libc::SOCK_RAW, protocol);
    let v4_errno = last_errno();
    if v4 >= 0 {
        sys::set_int(v4, libc::IPPROTO_IP, libc::IP_TTL, 255);
        sys::set_int(v4, libc::IPPROTO_IP, libc::IP_MULTICAST_TTL, 255);
        sys::set_int(v4, libc::IPPROTO_IP, libc::IP_MULTICAST_LOOP, 0);
    }
    // IPv6 may be off on the host: then only IPv4 routers can be guarded.
    let v6 = sys::socket(libc::AF_INET6, libc::SOCK_RAW, protocol);
    if v6 >= 0 {
        sys::set_int(v6, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, 255);
        sys::set_int(v6, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_HOPS, 255);
        sys::set_int(v6, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_LOOP, 0);
    }
    if v4 < 0 && v6 < 0 {
        return Err((STEP_SOCKET, v4_errno));
    }
    let netlink = sys::socket(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_ROUTE);
    if netlink < 0 {
        return Err((STEP_NETLINK, last_errno()));
    }
    Ok(Sockets { v4, v6, netlink })
}

/// The longest the guard keeps a dead Master's addresses after its priority 0 (a new daemon
/// waits 2 s for the file's lock).
const HAND_OVER_MAX: std::time::Duration = std::time::Duration::from_millis(1500);

/// Acts on every slot: the priority-0 advertisement of each Master, then, one advertisement
/// interval later, its addresses removed. True if anything was done.
///
/// The wait is the hand-over: a Backup takes over Skew_Time after priority 0 (less than one
/// interval) and announces the addresses; until then this host keeps them, so that a client's
/// new connection is refused at once (its service is gone) and retried, instead of its SYN
/// vanishing towards a host without the address and coming again only a second later.
fn act(fds: Inherited, sockets: &Sockets) -> bool {
    let mut header = [0u8; HEADER_LEN];
    if !matches!(sys::pread(fds.file, &mut header, 0), Ok(HEADER_LEN)) {
        return false;
    }
    let Some(slots) = slots_of(&header) else {
        return false;
    };
    let mut slot = [0u8; SLOT_LEN];
    let mut acted = false;
    let mut hand_over = std::time::Duration::ZERO;
    // Adverts first, for every router (the Backups wait for them), then the addresses.
    for pass in [MASTER, HOLDING] {
        if pass == HOLDING && !hand_over.is_zero() {
            sys::sleep(hand_over.min(HAND_OVER_MAX));
        }
        for i in 0..slots {
            if !matches!(
                sys::pread(fds.file, &mut slot, slot_offset(i)),
                Ok(SLOT_LEN)
            ) {
                break;
            }
            let view = SlotView(&slot);
            if !view.is(pass) {
                continue;
            }
            acted = true;
            let (done, of) = if pass == MASTER {
                hand_over = hand_over.max(view.advert_interval().unwrap_or_default());
                send_adverts(&view, sockets)
            } else {
                remove_addresses(&view, sockets.netlink, i)
            };
            log(fds.daemon, &view, pass, done, of);
        }
    }
    acted
}

/// Sends the slot's priority-0 advertisement to each destination: (sent, destinations).
fn send_adverts(view: &SlotView<'_>, sockets: &Sockets) -> (usize, usize) {
    let Some(source) = view.source() else {
        return (0, 0);
    };
    let fd = if source.is_ipv6() {
        sockets.v6
    } else {
        sockets.v4
    };
    let mut advert = [0u8; ADVERT_BUFFER];
    let mut sent = 0;
    let total = view.destinations();
    for k in 0..total {
        let Some((to, len)) = view.advert_for(k, &mut advert) else {
            continue;
        };
        if fd >= 0 && sys::send_from(fd, &advert[..len], source, to, view.ifindex()).is_ok() {
            sent += 1;
        }
    }
    (sent, total)
}

// The netlink message type, flags and attribute kinds as libc defines them (u16 on the wire).
const NLM_F_REQUEST_ACK: u16 = (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
const NLMSG_ERROR: u16 = libc::NLMSG_ERROR as u16;

/// An `RTM_DELADDR` request for `address/prefix_len` on `ifindex`, with sequence `seq`, into
/// `out`; returns its length.
pub(super) fn deladdr(
    out: &mut [u8; 64],
    seq: u32,
    ifindex: u32,
    prefix_len: u8,
    address: IpAddr,
) -> usize {
    let (family, bytes, alen): (u8, [u8; 16], usize) = match address {
        IpAddr::V4(a) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&a.octets());
            (libc::AF_INET as u8, b, 4)
        }
        IpAddr::V6(a) => (libc::AF_INET6 as u8, a.octets(), 16),
    };
    let attr_len = 4 + alen; // a multiple of 4 for both families
    let len = 16 + 8 + 2 * attr_len;
    out.fill(0);
    out[0..4].copy_from_slice(&(len as u32).to_ne_bytes());
    out[4..6].copy_from_slice(&libc::RTM_DELADDR.to_ne_bytes());
    out[6..8].copy_from_slice(&NLM_F_REQUEST_ACK.to_ne_bytes());
    out[8..12].copy_from_slice(&seq.to_ne_bytes());
    // ifaddrmsg: family, prefix length, flags, scope, index
    out[16] = family;
    out[17] = prefix_len;
    out[20..24].copy_from_slice(&ifindex.to_ne_bytes());
    let mut at = 24;
    for kind in [libc::IFA_LOCAL, libc::IFA_ADDRESS] {
        out[at..at + 2].copy_from_slice(&(attr_len as u16).to_ne_bytes());
        out[at + 2..at + 4].copy_from_slice(&kind.to_ne_bytes());
        out[at + 4..at + 4 + alen].copy_from_slice(&bytes[..alen]);
        at += attr_len;
    }
    len
}

/// Removes the slot's addresses: (removed or already gone, addresses).
fn remove_addresses(view: &SlotView<'_>, netlink: RawFd, slot: u32) -> (usize, usize) {
    let total = view.vips();
    let mut message = [0u8; 64];
    let mut ack = [0u8; 256];
    let mut done = 0;
    for k in 0..total {
        let Some(vip) = view.vip(k) else { continue };
        let seq = (slot << 8) | k as u32;
        let len = deladdr(&mut message, seq, vip.ifindex, vip.prefix_len, vip.address);
        if sys::send_to_kernel(netlink, &message[..len]).is_err() {
            continue;
        }
        // rtnetlink handles the request within the send: its answer is already queued.
        let n = sys::recv_now(netlink, &mut ack);
        if n >= 20 && ack.get(4..6) == Some(&NLMSG_ERROR.to_ne_bytes()[..]) {
            let error = ack
                .get(16..20)
                .and_then(|e| e.try_into().ok())
                .map_or(0, i32::from_ne_bytes);
            // Gone already (EADDRNOTAVAIL) is as good as removed.
            if error == 0 || error == -libc::EADDRNOTAVAIL {
                done += 1;
            }
        }
    }
    (done, total)
}

/// A line on standard error, written from a stack buffer.
struct Line {
    buf: [u8; 256],
    len: usize,
}

impl std::fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let room = self.buf.len() - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

fn log(daemon: u32, view: &SlotView<'_>, pass: u8, done: usize, of: usize) {
    let mut line = Line {
        buf: [0; 256],
        len: 0,
    };
    let name = std::str::from_utf8(view.name()).unwrap_or("?");
    let _ = write!(
        line,
        "crash guard {}: daemon {daemon} died; instance {name} (VRID {}, ifindex {}): ",
        sys::getpid(),
        view.vrid(),
        view.ifindex()
    );
    let _ = if pass == MASTER {
        writeln!(line, "priority 0 sent to {done} of {of} destinations")
    } else {
        writeln!(line, "{done} of {of} virtual addresses removed")
    };
    let _ = sys::write(2, &line.buf[..line.len]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deladdr_is_what_iproute2_sends() {
        let mut out = [0u8; 64];
        let len = deladdr(&mut out, 7, 2, 24, IpAddr::from([10, 99, 0, 200]));
        assert_eq!(len, 40);
        assert_eq!(u32::from_ne_bytes(out[0..4].try_into().expect("4")), 40);
        assert_eq!(u16::from_ne_bytes(out[4..6].try_into().expect("2")), 21);
        assert_eq!(&out[16..20], &[2, 24, 0, 0]);
        assert_eq!(u32::from_ne_bytes(out[20..24].try_into().expect("4")), 2);
        assert_eq!(&out[24..32], &[8, 0, 2, 0, 10, 99, 0, 200]);
        assert_eq!(&out[32..40], &[8, 0, 1, 0, 10, 99, 0, 200]);
        let len6 = deladdr(&mut out, 8, 3, 64, "fd99::200".parse().expect("v6"));
        assert_eq!(len6, 16 + 8 + 40);
        assert_eq!(out[16], libc::AF_INET6 as u8);
    }
}
