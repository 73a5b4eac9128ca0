//! Test support shared by the integration tests: a classic-pcap reader and writer, Ethernet and
//! IP framing for captures, hex, the rule for tests that need the machine, and the simulated
//! segment ([`segment`]).
#![allow(dead_code, unreachable_pub)]

use std::net::IpAddr;
use std::path::Path;

pub mod segment;

/// Link type of Ethernet captures.
pub const LINKTYPE_ETHERNET: u32 = 1;

/// One captured frame.
#[derive(Clone, Debug)]
pub struct Frame {
    /// 1-based frame number, as Wireshark counts.
    pub number: usize,
    /// The captured bytes.
    pub data: Vec<u8>,
}

/// Reads a classic pcap file (either byte order, micro- or nanosecond magic).
pub fn read_pcap(path: &Path) -> Vec<Frame> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    assert!(
        bytes.len() >= 24,
        "{}: shorter than a pcap header",
        path.display()
    );
    let magic = [bytes[0], bytes[1], bytes[2], bytes[3]];
    let le = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => panic!(
            "{}: not a classic pcap (magic {magic:02x?})",
            path.display()
        ),
    };
    let u32_at = |at: usize| {
        let b = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
        if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    assert_eq!(
        u32_at(20),
        LINKTYPE_ETHERNET,
        "{}: not an Ethernet capture",
        path.display()
    );
    let mut frames = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let incl = u32_at(at + 8) as usize;
        let start = at + 16;
        let end = start + incl;
        assert!(
            end <= bytes.len(),
            "{}: record {} truncated",
            path.display(),
            frames.len() + 1
        );
        frames.push(Frame {
            number: frames.len() + 1,
            data: bytes[start..end].to_vec(),
        });
        at = end;
    }
    assert_eq!(
        at,
        bytes.len(),
        "{}: trailing bytes after the last record",
        path.display()
    );
    frames
}

/// Writes `frames` (Ethernet) as a little-endian microsecond pcap, one millisecond apart.
pub fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]); // thiszone, sigfigs
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        let len = u32::try_from(f.len()).expect("frame under 4 GiB");
        let usec = u32::try_from(i * 1000).expect("few frames");
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&usec.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(f);
    }
    std::fs::write(path, out).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// The IP packet inside an Ethernet frame (VLAN tags skipped), if it is IPv4 or IPv6.
pub fn ethernet_payload(frame: &[u8]) -> Option<&[u8]> {
    let mut ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    let mut at = 14;
    if ethertype == 0x8100 {
        ethertype = u16::from_be_bytes([*frame.get(16)?, *frame.get(17)?]);
        at = 18;
    }
    matches!(ethertype, 0x0800 | 0x86dd).then(|| &frame[at..])
}

/// An Ethernet frame carrying `payload` as an IPv4 or IPv6 packet from `src` to `dst` with
/// protocol VRRP and TTL/hop limit 255, as the kernel would build it for a raw VRRP socket.
pub fn ethernet_ip_frame(src: IpAddr, dst: IpAddr, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    let (dst_mac, ethertype) = match dst {
        IpAddr::V4(d) if d.is_multicast() => {
            let o = d.octets();
            ([0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]], 0x0800u16)
        }
        IpAddr::V4(_) => ([0x02, 0, 0, 0, 0, 0x02], 0x0800),
        IpAddr::V6(d) => {
            let o = d.octets();
            ([0x33, 0x33, o[12], o[13], o[14], o[15]], 0x86dd)
        }
    };
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    f.extend_from_slice(&ethertype.to_be_bytes());
    let len = u16::try_from(payload.len()).expect("payload under 64 KiB");
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut h = [0u8; 20];
            h[0] = 0x45;
            h[1] = 0xc0;
            h[2..4].copy_from_slice(&(len + 20).to_be_bytes());
            h[8] = 255;
            h[9] = 112;
            h[12..16].copy_from_slice(&s.octets());
            h[16..20].copy_from_slice(&d.octets());
            let sum = internet_checksum(&h);
            h[10..12].copy_from_slice(&sum.to_be_bytes());
            f.extend_from_slice(&h);
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            f.extend_from_slice(&[0x60, 0, 0, 0]);
            f.extend_from_slice(&len.to_be_bytes());
            f.extend_from_slice(&[112, 255]);
            f.extend_from_slice(&s.octets());
            f.extend_from_slice(&d.octets());
        }
        _ => panic!("mixed address families {src} -> {dst}"),
    }
    f.extend_from_slice(payload);
    f
}

/// RFC 1071 checksum, for IPv4 headers built here (independent of the crate's own code).
pub fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Bytes from a hex string.
pub fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd-length hex {s:?}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or_else(|e| panic!("hex {s:?}: {e}")))
        .collect()
}

/// Hex of `b`.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Whether this run is CI, where a missing prerequisite is a failure, never a skip.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// Skips the calling test with a loud message, or fails it under CI.
/// Use as `let Some(x) = ... else { return skip("why") };`.
pub fn skip(why: &str) {
    if in_ci() {
        panic!("CI must run this test, but {why}");
    }
    eprintln!("\n*** SKIPPED: {why} (set CI=1 to turn this into a failure) ***\n");
}
