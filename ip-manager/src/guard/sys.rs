//! The guard's syscalls, each in a small safe function. Everything here is callable from the
//! forked guard: plain syscalls on integers and caller-owned buffers, no allocation, no lock
//! (async-signal-safe in POSIX terms), so that a child forked from a threaded daemon may use
//! them while another thread of the parent held the allocator's lock at the fork.
#![allow(unsafe_code)]

use std::io;
use std::net::{IpAddr, Ipv6Addr};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn check_size(r: libc::ssize_t) -> io::Result<usize> {
    usize::try_from(r).map_err(|_| io::Error::last_os_error())
}

/// Forks; the child runs `child(arg)`, which never returns. The parent gets the child's PID.
///
/// The child is a copy of one thread of a possibly multi-threaded process: `child` must
/// allocate nothing and take no lock (the functions of this module only).
pub(super) fn fork<T>(child: fn(T) -> !, arg: T) -> io::Result<u32> {
    // SAFETY: fork has no memory-safety preconditions of its own; what is unsafe in a threaded
    // process is the child touching state that another thread held at the fork (the
    // allocator, stdio locks). The child runs only `child`, which by this function's contract
    // uses this module's syscall wrappers on its own stack buffers and exits with `_exit`.
    let pid = check(unsafe { libc::fork() })?;
    if pid == 0 {
        child(arg);
    }
    Ok(pid.unsigned_abs())
}

/// A pidfd for process `pid` (Linux 5.3): readable once the process has exited.
pub(super) fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes two integers and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::c_long::from(pid), 0) };
    let fd = RawFd::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    check(fd)?;
    // SAFETY: `fd` was just returned by the kernel, is open and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A pipe, both ends close-on-exec: (read, write).
pub(super) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two descriptors into the two-element array it is given.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `flock(fd, LOCK_EX | LOCK_NB)`: false when another open file description holds it.
pub(super) fn try_lock(fd: RawFd) -> io::Result<bool> {
    // SAFETY: flock takes integers only.
    match check(unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) }) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Ignores `signal` from now on (SIG_IGN).
pub(super) fn ignore(signal: libc::c_int) {
    // SAFETY: setting SIG_IGN installs no handler code; it cannot fail for valid signals.
    unsafe {
        libc::signal(signal, libc::SIG_IGN);
    }
}

/// Closes `fd`.
pub(super) fn close(fd: RawFd) {
    // SAFETY: the caller owns `fd` and does not use it afterwards.
    unsafe {
        libc::close(fd);
    }
}

/// A new socket, or -1.
pub(super) fn socket(domain: libc::c_int, kind: libc::c_int, protocol: libc::c_int) -> RawFd {
    // SAFETY: socket takes integers and returns a new descriptor or -1.
    unsafe { libc::socket(domain, kind | libc::SOCK_CLOEXEC, protocol) }
}

/// Sets an integer socket option; errors ignored (the guard sends anyway).
pub(super) fn set_int(fd: RawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) {
    // SAFETY: the option value is a live c_int whose size is passed along.
    unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            std::ptr::from_ref(&value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Waits until `fd` is readable (a pidfd: its process has exited), retrying on EINTR.
pub(super) fn wait_readable(fd: RawFd) -> io::Result<()> {
    loop {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one live pollfd, count 1, no timeout.
        match check(unsafe { libc::poll(&mut p, 1, -1) }) {
            Ok(_) if p.revents != 0 => return Ok(()),
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
}

/// Sleeps `d` (nanosleep, resumed after a signal).
pub(super) fn sleep(d: std::time::Duration) {
    let mut left = libc::timespec {
        tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::from(d.subsec_nanos()),
    };
    loop {
        let mut rest = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: two live timespecs, the first read, the second written.
        if unsafe { libc::nanosleep(&left, &mut rest) } == 0 {
            return;
        }
        if io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
        left = rest;
    }
}

/// `pread`: reads at most `buf.len()` bytes at `offset`.
pub(super) fn pread(fd: RawFd, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let offset =
        libc::off_t::try_from(offset).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: the buffer is live and writable for its length.
    check_size(unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), buf.len(), offset) })
}

/// `pwrite`: writes `buf` at `offset`.
pub(super) fn pwrite(fd: RawFd, buf: &[u8], offset: u64) -> io::Result<usize> {
    let offset =
        libc::off_t::try_from(offset).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: the buffer is live and readable for its length.
    check_size(unsafe { libc::pwrite(fd, buf.as_ptr().cast(), buf.len(), offset) })
}

/// `write`, once (short writes are the caller's business).
pub(super) fn write(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: the buffer is live and readable for its length.
    check_size(unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) })
}

/// Opens `path` (NUL-terminated) for writing, or -1.
pub(super) fn open_write(path: &std::ffi::CStr) -> RawFd {
    // SAFETY: `path` is a NUL-terminated string that lives across the call.
    unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) }
}

/// Ends the process at once: no destructors, no atexit handlers, no stdio flush (they could
/// take a lock another thread of the parent held at the fork).
pub(super) fn exit(code: libc::c_int) -> ! {
    // SAFETY: _exit never returns and touches no user-space state.
    unsafe { libc::_exit(code) }
}

/// This process's id.
pub(super) fn getpid() -> u32 {
    // SAFETY: getpid cannot fail.
    unsafe { libc::getpid() }.unsigned_abs()
}

/// Sends `payload` to `to` (IP protocol 112 over raw socket `fd`) from `source` out of
/// interface `ifindex`, both given per packet in `IP_PKTINFO` / `IPV6_PKTINFO`.
pub(super) fn send_from(
    fd: RawFd,
    payload: &[u8],
    source: IpAddr,
    to: IpAddr,
    ifindex: u32,
) -> io::Result<usize> {
    // Room for one cmsg of either pktinfo, aligned as cmsghdr wants.
    let mut control = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: payload.as_ptr().cast_mut().cast(),
        iov_len: payload.len(),
    };
    // SAFETY: zeroed sockaddr storages and msghdr are valid values of those C types.
    let mut v4: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut v6: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    let (level, kind, data_len) = match (source, to) {
        (IpAddr::V4(_), IpAddr::V4(d)) => {
            v4.sin_family = libc::AF_INET as libc::sa_family_t;
            v4.sin_addr.s_addr = u32::from_ne_bytes(d.octets());
            msg.msg_name = std::ptr::from_mut(&mut v4).cast();
            msg.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            (
                libc::IPPROTO_IP,
                libc::IP_PKTINFO,
                std::mem::size_of::<libc::in_pktinfo>(),
            )
        }
        (IpAddr::V6(_), IpAddr::V6(d)) => {
            v6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            v6.sin6_addr.s6_addr = d.octets();
            if d.is_multicast() || is_link_local(&d) {
                v6.sin6_scope_id = ifindex;
            }
            msg.msg_name = std::ptr::from_mut(&mut v6).cast();
            msg.msg_namelen = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            (
                libc::IPPROTO_IPV6,
                libc::IPV6_PKTINFO,
                std::mem::size_of::<libc::in6_pktinfo>(),
            )
        }
        _ => return Err(io::Error::from_raw_os_error(libc::EAFNOSUPPORT)),
    };
    let data_len = data_len as libc::c_uint;
    // SAFETY: CMSG_SPACE is arithmetic.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(data_len) } as _;
    // SAFETY: `msg` points at `control`, which is at least CMSG_SPACE(data_len) bytes (64
    // bytes against at most 40) and 8-byte aligned, so CMSG_FIRSTHDR is non-null and the
    // header and data written through it stay inside `control`.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = level;
        (*cmsg).cmsg_type = kind;
        (*cmsg).cmsg_len = libc::CMSG_LEN(data_len) as _;
        let data = libc::CMSG_DATA(cmsg);
        match source {
            IpAddr::V4(s) => {
                let info = libc::in_pktinfo {
                    ipi_ifindex: libc::c_int::try_from(ifindex).unwrap_or(0),
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from_ne_bytes(s.octets()),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                std::ptr::write_unaligned(data.cast::<libc::in_pktinfo>(), info);
            }
            IpAddr::V6(s) => {
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: s.octets(),
                    },
                    ipi6_ifindex: ifindex,
                };
                std::ptr::write_unaligned(data.cast::<libc::in6_pktinfo>(), info);
            }
        }
    }
    // SAFETY: every pointer in `msg` points at a live local of the right size.
    check_size(unsafe { libc::sendmsg(fd, &msg, 0) })
}

fn is_link_local(v6: &Ipv6Addr) -> bool {
    v6.segments()[0] & 0xffc0 == 0xfe80
}

/// Sends `message` to the kernel over netlink socket `fd`.
pub(super) fn send_to_kernel(fd: RawFd, message: &[u8]) -> io::Result<usize> {
    // SAFETY: a zeroed sockaddr_nl is a valid value (pid 0: the kernel).
    let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // SAFETY: the buffer and the address are live for the call, their sizes passed along.
    check_size(unsafe {
        libc::sendto(
            fd,
            message.as_ptr().cast(),
            message.len(),
            0,
            std::ptr::from_ref(&kernel).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    })
}

/// Receives into `buf` without waiting; 0 when nothing is there.
pub(super) fn recv_now(fd: RawFd, buf: &mut [u8]) -> usize {
    // SAFETY: the buffer is live and writable for its length.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
    usize::try_from(n).unwrap_or(0)
}

/// Closes the descriptors `first..=last` (nothing when `first > last`).
pub(super) fn close_range(first: RawFd, last: RawFd) {
    let (Ok(first), Ok(last)) = (libc::c_uint::try_from(first), libc::c_uint::try_from(last))
    else {
        return;
    };
    if first > last {
        return;
    }
    // SAFETY: close_range takes integers; the caller owns those descriptors.
    unsafe {
        libc::syscall(libc::SYS_close_range, first, last, 0);
    }
}

/// The index of interface `name` (a name, or an index in decimal), if it exists.
pub(super) fn if_nametoindex(name: &str) -> Option<u32> {
    if let Ok(index) = name.parse::<u32>() {
        return Some(index);
    }
    let name = std::ffi::CString::new(name).ok()?;
    // SAFETY: `name` is NUL-terminated and lives across the call.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    (index != 0).then_some(index)
}

/// Reaps child `pid` (after it failed to start), waiting for it.
pub(super) fn reap(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    let mut status = 0;
    // SAFETY: waitpid writes the status into a live c_int.
    unsafe {
        libc::waitpid(pid, &mut status, 0);
    }
}

/// Names this process `name` (what `ps` and /proc/PID/comm show; at most 15 bytes).
pub(super) fn set_name(name: &std::ffi::CStr) {
    // SAFETY: PR_SET_NAME reads a NUL-terminated string that lives across the call.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, name.as_ptr());
    }
}
