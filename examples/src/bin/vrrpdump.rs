//! `vrrpdump`: print every VRRP advertisement seen on the network namespace's interfaces,
//! decoded by `vrrp-core`, one line each, like `tcpdump vrrp` but with the checks a VRRP
//! receiver makes (RFC 5798 §7.1) and the checksum form each peer uses.
//!
//! ```text
//! vrrpdump [--count N] [--timeout SECONDS]
//! ip netns exec labcl vrrpdump --count 5 --timeout 10
//! ```
//!
//! It opens an `AF_PACKET` socket (needs CAP_NET_RAW) that sees every interface of the current
//! network namespace, so run it inside the namespace to watch. Each advertisement prints as
//! `key=value` pairs, a dropped one with `error="..."`; the exit code is 0 if at least one
//! advertisement was seen, 1 if none, 2 on a usage or socket error.

use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use vrrp_core::packet::{
    Advertisement, AuthType, ChecksumKind, ChecksumMode, DecodeError, IpHeader, IpPacket,
};

const ETH_P_ALL: u16 = 0x0003;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;

struct Options {
    count: Option<u64>,
    timeout: Option<Duration>,
}

fn main() -> ExitCode {
    let opts = match parse_args(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(msg) => {
            eprintln!("vrrpdump: {msg}\nusage: vrrpdump [--count N] [--timeout SECONDS]");
            return ExitCode::from(2);
        }
    };
    match run(&opts) {
        Ok(0) => ExitCode::from(1),
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vrrpdump: {e}");
            ExitCode::from(2)
        }
    }
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut opts = Options {
        count: None,
        timeout: None,
    };
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--count" => {
                let v = value("--count")?;
                opts.count = Some(
                    v.parse()
                        .map_err(|_| format!("--count {v:?}: not a number"))?,
                );
            }
            "--timeout" => {
                let v = value("--timeout")?;
                let secs: f64 = v
                    .parse()
                    .map_err(|_| format!("--timeout {v:?}: not a number of seconds"))?;
                opts.timeout = Some(
                    Duration::try_from_secs_f64(secs)
                        .map_err(|_| format!("--timeout {v:?}: must be a non-negative number"))?,
                );
            }
            "-h" | "--help" => {
                return Err("print VRRP advertisements seen in this network namespace".into());
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(opts)
}

fn run(opts: &Options) -> io::Result<u64> {
    let protocol = Protocol::from(i32::from(ETH_P_ALL.to_be()));
    let socket = Socket::new(Domain::PACKET, Type::RAW, Some(protocol)).map_err(|e| {
        if e.kind() == io::ErrorKind::PermissionDenied {
            io::Error::new(
                e.kind(),
                "opening an AF_PACKET socket needs CAP_NET_RAW (run as root)",
            )
        } else {
            e
        }
    })?;
    let deadline = opts.timeout.map(|t| Instant::now() + t);
    let mut frame = vec![0u8; 65536];
    let mut seen = 0u64;
    let stdout = io::stdout();
    loop {
        if opts.count.is_some_and(|c| seen >= c) {
            break;
        }
        if let Some(deadline) = deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            socket.set_read_timeout(Some(left))?;
        }
        let n = match (&socket).read(&mut frame) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if let Some(line) = frame.get(..n).and_then(describe_frame) {
            let mut out = stdout.lock();
            writeln!(out, "{line}")?;
            out.flush()?;
            seen += 1;
        }
    }
    Ok(seen)
}

/// One output line for an Ethernet frame carrying VRRP, or `None` for any other frame.
fn describe_frame(frame: &[u8]) -> Option<String> {
    let (eth, mut rest) = frame.split_first_chunk::<14>()?;
    let mut ethertype = u16::from_be_bytes([eth[12], eth[13]]);
    if ethertype == ETHERTYPE_VLAN {
        let (tag, inner) = rest.split_first_chunk::<4>()?;
        ethertype = u16::from_be_bytes([tag[2], tag[3]]);
        rest = inner;
    }
    if ethertype != ETHERTYPE_IPV4 && ethertype != ETHERTYPE_IPV6 {
        return None;
    }
    let mac = format_mac(&eth[6..12]);
    match IpPacket::parse(rest) {
        Ok(p) => Some(describe_vrrp(&mac, &p.header, p.payload)),
        Err(DecodeError::NotVrrp { .. }) => None,
        Err(e) => Some(format!("mac={mac} error=\"{e}\" ip={}", hex(rest))),
    }
}

fn describe_vrrp(mac: &str, ip: &IpHeader, vrrp: &[u8]) -> String {
    let head = format!(
        "mac={mac} src={} dst={} ttl={}",
        ip.source, ip.destination, ip.ttl
    );
    let parsed = ip
        .family()
        .and_then(|family| Advertisement::parse(vrrp, family));
    let adv = match parsed {
        Ok(a) => a,
        Err(e) => return format!("{head} error=\"{e}\" hex={}", hex(vrrp)),
    };
    // Either form is reported as seen; a receiver picks one with its ChecksumMode.
    let either = ChecksumMode::AcceptEither {
        send: ChecksumKind::PseudoHeader,
    };
    let checksum = match adv.verify_checksum(ip.source, ip.destination, either) {
        Ok(ChecksumKind::PseudoHeader) => "pseudo-header".to_owned(),
        Ok(ChecksumKind::MessageOnly) => "message-only".to_owned(),
        Err(e) => format!("bad:\"{e}\""),
    };
    let addrs: Vec<String> = adv.addresses().map(|a| a.to_string()).collect();
    let auth = match adv.auth_type() {
        None => "none-v3",
        Some(AuthType::NoAuthentication) => "none",
        Some(AuthType::SimpleText) => "simple-text",
        Some(AuthType::IpAuthenticationHeader) => "ah",
    };
    format!(
        "{head} version={} vrid={} prio={} interval_cs={} addrs={} checksum={:#06x} checksum_kind={checksum} auth={auth} hex={}",
        adv.version().number(),
        adv.vrid(),
        adv.priority(),
        adv.advert_interval().centis(),
        addrs.join(","),
        adv.checksum(),
        hex(vrrp),
    )
}

fn format_mac(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_a_keepalived_frame() {
        // keepalived 2.2.7 VRRPv3/IPv4 advert as captured, Ethernet header included.
        let hex_frame = "01005e00001296cf75bb41bc080045c0002000010000ff70d02c0a63000be0000012313365010064733f0a6300c8";
        let frame: Vec<u8> = (0..hex_frame.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex_frame[i..i + 2], 16).unwrap())
            .collect();
        let line = describe_frame(&frame).unwrap();
        assert!(line.contains("src=10.99.0.11 dst=224.0.0.18 ttl=255 version=3 vrid=51 prio=101 interval_cs=100 addrs=10.99.0.200 checksum=0x733f checksum_kind=pseudo-header"), "{line}");
        assert!(line.starts_with("mac=96:cf:75:bb:41:bc"), "{line}");
    }

    #[test]
    fn ignores_other_traffic_and_reports_malformed_vrrp() {
        assert_eq!(describe_frame(&[0u8; 10]), None);
        let mut arp = vec![0u8; 42];
        arp[12] = 0x08;
        arp[13] = 0x06;
        assert_eq!(describe_frame(&arp), None);
        // An IPv4 header for protocol 112 with a 2-byte payload.
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 22, 0, 0, 0, 0, 255, 112, 0, 0]);
        f.extend_from_slice(&[10, 0, 0, 1, 224, 0, 0, 18, 0x31, 0x01]);
        let line = describe_frame(&f).unwrap();
        assert!(line.contains("error=\"packet truncated"), "{line}");
    }

    #[test]
    fn arguments() {
        let a = |v: &[&str]| parse_args(v.iter().map(|s| s.to_string()));
        let o = a(&["--count", "3", "--timeout", "1.5"]).unwrap();
        assert_eq!(o.count, Some(3));
        assert_eq!(o.timeout, Some(Duration::from_millis(1500)));
        assert!(a(&["--count"]).is_err());
        assert!(a(&["--timeout", "-1"]).is_err());
        assert!(a(&["--bogus"]).is_err());
    }
}
