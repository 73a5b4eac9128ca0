//! Golden vectors: every VRRP packet that keepalived 2.2.7 sent in the captures under
//! `tests/vectors/` decodes, validates and re-encodes to the identical bytes, and the decoded
//! fields agree with what Wireshark's dissector read (the JSON beside the captures, written by
//! `tests/vectors/capture.sh`, so no tshark is needed here). The vectors are part of the
//! repository: a missing one is a failure, never a skip.

mod support;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde_json::Value;
use support::{ethernet_payload, read_pcap};
use vrrp_core::packet::{
    AddressFamily, Advertisement, AdvertisementBuilder, AuthType, Authentication, ChecksumKind,
    ChecksumMode, DecodeError, IpHeader, IpPacket, Password, ReceivePolicy, Version,
};

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

/// One VRRP message found in a capture, with the IP fields it arrived with.
struct Captured {
    pcap: String,
    frame: usize,
    ip: IpHeader,
    /// The VRRP message; for keepalived's AH mode, the message inside the AH header.
    vrrp: Vec<u8>,
    /// Whether it came wrapped in an IP Authentication Header (protocol 51).
    ah: bool,
}

/// Every VRRP message in every capture, AH-wrapped ones unwrapped by hand (the crate refuses
/// AH on purpose, which is tested separately).
fn all_captured(dir: &Path) -> Vec<Captured> {
    let mut pcaps: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    pcaps.sort();
    assert!(
        pcaps.len() >= 9,
        "expected the 9 keepalived captures, found {pcaps:?}"
    );
    let mut out = Vec::new();
    for path in pcaps {
        let name = path
            .file_name()
            .expect("file name")
            .to_string_lossy()
            .into_owned();
        for frame in read_pcap(&path) {
            let Some(ip) = ethernet_payload(&frame.data) else {
                continue;
            };
            match IpPacket::parse(ip) {
                Ok(p) => out.push(Captured {
                    pcap: name.clone(),
                    frame: frame.number,
                    ip: p.header,
                    vrrp: p.payload.to_vec(),
                    ah: false,
                }),
                Err(DecodeError::AuthenticationHeaderUnsupported) => {
                    out.push(unwrap_ah(&name, frame.number, ip));
                }
                Err(DecodeError::NotVrrp { .. }) => {} // ARP-less IPv6 NAs and the like
                Err(e) => panic!("{name} frame {}: {e}", frame.number),
            }
        }
    }
    out
}

/// IPv4 header (IHL) + AH (RFC 4302: next header, payload length in 32-bit words minus 2).
fn unwrap_ah(pcap: &str, frame: usize, ip: &[u8]) -> Captured {
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let ah = &ip[ihl..];
    assert_eq!(
        ah[0], 112,
        "{pcap} frame {frame}: AH next header is not VRRP"
    );
    let ah_len = (usize::from(ah[1]) + 2) * 4;
    let header = IpHeader {
        source: IpAddr::from([ip[12], ip[13], ip[14], ip[15]]),
        destination: IpAddr::from([ip[16], ip[17], ip[18], ip[19]]),
        ttl: ip[8],
    };
    Captured {
        pcap: pcap.into(),
        frame,
        ip: header,
        vrrp: ah[ah_len..].to_vec(),
        ah: true,
    }
}

/// The policy keepalived's configs in `tests/vectors/keepalived/` call for.
fn policy_for(c: &Captured, version: Version) -> ReceivePolicy {
    let mut policy = ReceivePolicy::new(version);
    if c.pcap.starts_with("v2_mc_auth_pass") {
        policy.authentication =
            Authentication::SimpleText(Password::new("secret12").expect("valid password"));
    }
    policy
}

#[test]
fn every_keepalived_packet_decodes_validates_and_reencodes_identically() {
    let dir = vectors_dir();
    let captured = all_captured(&dir);
    let mut per_pcap: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &captured {
        let what = format!("{} frame {}", c.pcap, c.frame);
        let family = c.ip.family().expect("one family");
        let adv = Advertisement::parse(&c.vrrp, family).unwrap_or_else(|e| panic!("{what}: {e}"));
        let version = adv.version();
        let policy = policy_for(c, version);

        if c.ah {
            // keepalived's AH mode: the message is well-formed and its v2 checksum right, but
            // the receive policy refuses the authentication type.
            assert_eq!(
                adv.auth_type(),
                Some(AuthType::IpAuthenticationHeader),
                "{what}"
            );
            assert_eq!(
                adv.verify_checksum(c.ip.source, c.ip.destination, ChecksumMode::PseudoHeader),
                Ok(ChecksumKind::MessageOnly),
                "{what}"
            );
            assert_eq!(
                policy.accept(&c.ip, &c.vrrp),
                Err(DecodeError::AuthenticationHeaderUnsupported),
                "{what}"
            );
            *per_pcap.entry(&c.pcap).or_default() += 1;
            continue;
        }

        let accepted = policy
            .accept(&c.ip, &c.vrrp)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let expect_kind = match (version, family) {
            (Version::V2, _) => ChecksumKind::MessageOnly,
            (Version::V3, _) => ChecksumKind::PseudoHeader, // keepalived's default, v4 and v6
        };
        assert_eq!(accepted.checksum, expect_kind, "{what}");

        // Re-encode from the decoded fields alone: the bytes must be keepalived's.
        let addrs: Vec<IpAddr> = adv.addresses().collect();
        let auth = match adv.auth_type() {
            Some(AuthType::SimpleText) => Authentication::SimpleText(
                Password::new(
                    adv.auth_data()
                        .expect("v2")
                        .split(|b| *b == 0)
                        .next()
                        .expect("some"),
                )
                .expect("keepalived's password is valid"),
            ),
            _ => Authentication::None,
        };
        let mut buf = [0u8; 128];
        let n = AdvertisementBuilder::new(version, adv.vrid(), &addrs)
            .priority(adv.priority())
            .advert_interval(adv.advert_interval())
            .authentication(auth)
            .encode_to_slice(
                c.ip.source,
                c.ip.destination,
                ChecksumMode::PseudoHeader,
                &mut buf,
            )
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            support::hex(&buf[..n]),
            support::hex(&c.vrrp),
            "{what}: re-encoded bytes differ"
        );
        *per_pcap.entry(&c.pcap).or_default() += 1;
    }
    // Every capture holds keepalived's adverts; none may be silently missed.
    for pcap in [
        "garp_takeover_v4.pcap",
        "una_takeover_v6.pcap",
        "v2_mc_auth_ah.pcap",
        "v2_mc_auth_pass.pcap",
        "v2_mc_noauth.pcap",
        "v2_prio0_shutdown.pcap",
        "v2_unicast.pcap",
        "v3_ipv4.pcap",
        "v3_ipv6.pcap",
    ] {
        assert!(
            per_pcap.get(pcap).copied().unwrap_or(0) >= 4,
            "{pcap}: {per_pcap:?}"
        );
    }
    eprintln!(
        "decoded {} keepalived adverts: {per_pcap:?}",
        captured.len()
    );
}

/// The JSON's Wireshark fields for each distinct packet agree with the crate's decoding.
#[test]
fn decoded_fields_match_wireshark_for_every_vector() {
    let dir = vectors_dir();
    let path = dir.join("vrrp_vectors.json");
    let json = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let vectors: Vec<Value> = serde_json::from_str(&json).expect("valid JSON");
    let captured = all_captured(&dir);
    let mut checked = 0;
    for v in vectors.iter().filter(|v| v.get("vrrp_hex").is_some()) {
        let name = v["name"].as_str().expect("name");
        let pcap = v["pcap"].as_str().expect("pcap");
        let frame = v["frame"].as_u64().expect("frame") as usize;
        let c = captured
            .iter()
            .find(|c| c.pcap == pcap && c.frame == frame)
            .unwrap_or_else(|| panic!("{name}: frame {frame} of {pcap} not found as VRRP"));
        assert_eq!(
            support::hex(&c.vrrp),
            v["vrrp_hex"].as_str().expect("hex"),
            "{name}"
        );
        let ts = &v["tshark"];
        let field = |k: &str| ts.get(k).and_then(Value::as_str).map(str::to_owned);
        let num = |k: &str| {
            field(k).map(|s| {
                s.parse::<u64>()
                    .unwrap_or_else(|e| panic!("{name} {k}: {e}"))
            })
        };

        let family = c.ip.family().expect("one family");
        let adv = Advertisement::parse(&c.vrrp, family).expect("decodes");
        assert_eq!(
            Some(u64::from(adv.version().number())),
            num("vrrp.version"),
            "{name}"
        );
        assert_eq!(Some(1), num("vrrp.type"), "{name}");
        assert_eq!(
            Some(u64::from(adv.vrid().get())),
            num("vrrp.virt_rtr_id"),
            "{name}"
        );
        assert_eq!(
            Some(u64::from(adv.priority().get())),
            num("vrrp.prio"),
            "{name}"
        );
        assert_eq!(
            Some(u64::from(adv.address_count())),
            num("vrrp.addr_count"),
            "{name}"
        );
        assert_eq!(
            Some(format!("{:#06x}", adv.checksum())),
            field("vrrp.checksum"),
            "{name}"
        );
        assert_eq!(
            field("vrrp.checksum.status").as_deref(),
            Some("1"),
            "{name}: tshark: Good"
        );
        match adv.version() {
            Version::V2 => {
                assert_eq!(
                    Some(u64::from(adv.advert_interval().centis() / 100)),
                    num("vrrp.adver_int"),
                    "{name}"
                );
                let t = adv.auth_type().expect("v2");
                assert_eq!(Some(u64::from(t.number())), num("vrrp.auth_type"), "{name}");
                if let Some(s) = field("vrrp.auth_string") {
                    assert_eq!(
                        adv.auth_data().map(|d| &d[..s.len()]),
                        Some(s.as_bytes()),
                        "{name}"
                    );
                }
            }
            Version::V3 => {
                assert_eq!(
                    Some(u64::from(adv.advert_interval().centis())),
                    num("vrrp.short_adver_int"),
                    "{name}"
                );
            }
        }
        let (src, dst, ttl, addr) = match family {
            AddressFamily::Ipv4 => ("ip.src", "ip.dst", "ip.ttl", "vrrp.ip_addr"),
            AddressFamily::Ipv6 => ("ipv6.src", "ipv6.dst", "ipv6.hlim", "vrrp.ipv6_addr"),
        };
        assert_eq!(Some(c.ip.source.to_string()), field(src), "{name}");
        assert_eq!(Some(c.ip.destination.to_string()), field(dst), "{name}");
        assert_eq!(Some(u64::from(c.ip.ttl)), num(ttl), "{name}");
        let addrs: Vec<String> = adv.addresses().map(|a| a.to_string()).collect();
        assert_eq!(Some(addrs.join(",")), field(addr), "{name}");
        // The JSON's own independent recomputation agreed too.
        assert_eq!(v["checksum_recomputed_ok"], Value::Bool(true), "{name}");
        checked += 1;
    }
    assert_eq!(
        checked, 13,
        "every distinct VRRP vector in the JSON was checked"
    );
}

/// Priority 0 (§6.4.3: "Master ... sends an ADVERTISEMENT with Priority = 0") as keepalived
/// sends it on SIGTERM.
#[test]
fn keepalived_shutdown_advert_has_priority_zero() {
    let dir = vectors_dir();
    let shutdown: Vec<_> = all_captured(&dir)
        .into_iter()
        .filter(|c| c.pcap == "v2_prio0_shutdown.pcap")
        .filter(|c| {
            Advertisement::parse(&c.vrrp, AddressFamily::Ipv4)
                .is_ok_and(|a| a.priority().is_shutdown())
        })
        .collect();
    assert!(
        !shutdown.is_empty(),
        "the capture holds keepalived's priority-0 advert"
    );
    let ip = &shutdown[0].ip;
    assert_eq!(
        ip.source,
        IpAddr::from([10, 99, 0, 11]),
        "sent by the old Master"
    );
    assert_eq!(
        support::hex(&shutdown[0].vrrp),
        "213300010001d39f0a6300c80000000000000000"
    );
}
