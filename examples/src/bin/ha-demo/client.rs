//! `--client ADDRESS`: the story's client, run inside its namespace. It sends an ICMP echo
//! request to ADDRESS every 10 ms on a fixed schedule, whether or not replies come (unlike
//! `ping`, which slows down while requests go unanswered and so stretches the gap it shows),
//! and prints `reply <seconds since the epoch> <seq>` for each reply, until it is stopped.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// Requests per second.
pub(crate) const RATE: u32 = 100;

const ECHO_REPLY: u8 = 0;

/// An echo request with identifier `id` and sequence number `seq`.
fn echo_request(id: u16, seq: u16) -> Vec<u8> {
    health_check::echo_request(false, id, seq, b"ha-demo!")
}

/// The sequence number of an echo reply with identifier `id`, from a raw IPv4 packet.
fn reply_seq(packet: &[u8], id: u16) -> Option<u16> {
    let ihl = usize::from(packet.first()? & 0x0f) * 4;
    let icmp = packet.get(ihl..)?;
    if icmp.len() < 8 || icmp[0] != ECHO_REPLY || icmp[4..6] != id.to_be_bytes() {
        return None;
    }
    Some(u16::from_be_bytes([icmp[6], icmp[7]]))
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// Runs until killed.
pub(crate) fn run(target: Ipv4Addr) -> ExitCode {
    let socket = match Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ha-demo --client: a raw ICMP socket needs CAP_NET_RAW: {e}");
            return ExitCode::FAILURE;
        }
    };
    let receiver = match socket.try_clone() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ha-demo --client: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The low 16 bits of the PID tell our replies from anyone else's.
    let id = (std::process::id() & 0xffff) as u16;
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        let mut receiver = &receiver;
        while let Ok(n) = receiver.read(&mut buf) {
            if let Some(seq) = reply_seq(&buf[..n], id) {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "reply {:.6} {seq}", now());
                let _ = out.flush();
            }
        }
    });
    let to = SockAddr::from(SocketAddrV4::new(target, 0));
    let interval = Duration::from_secs(1) / RATE;
    let start = Instant::now();
    for n in 0u32.. {
        // An absolute schedule: a late wake-up does not shift the later requests.
        let due = start + interval * n;
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let seq = (n & 0xffff) as u16;
        if let Err(e) = socket.send_to(&echo_request(id, seq), &to) {
            // No route or no neighbour yet is part of an outage: keep the schedule.
            let _ = writeln!(std::io::stderr(), "send {seq}: {e}");
        }
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_request_checksums_to_zero_and_replies_are_matched_by_id() {
        let p = echo_request(0x1234, 7);
        assert_eq!(
            health_check::internet_checksum(&p),
            0,
            "a packet with its checksum sums to zero"
        );
        // A reply as the kernel hands it over: a 20-byte IPv4 header, then the ICMP message.
        let mut packet = vec![0x45u8];
        packet.resize(20, 0);
        let mut reply = p;
        reply[0] = ECHO_REPLY;
        packet.extend_from_slice(&reply);
        assert_eq!(reply_seq(&packet, 0x1234), Some(7));
        assert_eq!(reply_seq(&packet, 0x4321), None, "someone else's");
        packet[20] = 8; // an echo request
        assert_eq!(reply_seq(&packet, 0x1234), None, "not a reply");
        assert_eq!(reply_seq(&packet[..24], 0x1234), None, "truncated");
    }
}
