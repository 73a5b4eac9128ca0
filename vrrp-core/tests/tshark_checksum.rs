//! Wireshark as an independent judge: advertisements encoded by this crate, written to a pcap,
//! are dissected by `tshark`, which must read back every field and call every checksum good,
//! and must call a corrupted one bad (so the test can fail).
//!
//! Wireshark's `vrrp.v3_checksum_as_in_v2` preference selects the form it expects for VRRPv3
//! over IPv4: FALSE (default) is the pseudo-header form, TRUE the RFC 9568 message-only form.

mod support;

use std::net::IpAddr;
use std::process::Command;

use vrrp_core::packet::{
    AdvertInterval, AdvertisementBuilder, Authentication, ChecksumMode, MULTICAST_V4, MULTICAST_V6,
    Password, Priority, Version, Vrid,
};

/// One advertisement to encode, and what tshark must read back.
struct Sample {
    version: Version,
    vrid: u8,
    priority: u8,
    centis: u16,
    addresses: Vec<IpAddr>,
    auth: Option<&'static str>,
    source: IpAddr,
    destination: IpAddr,
    mode: ChecksumMode,
}

impl Sample {
    fn encode(&self) -> Vec<u8> {
        let auth = self.auth.map_or(Authentication::None, |p| {
            Authentication::SimpleText(Password::new(p).expect("valid password"))
        });
        let mut buf = vec![0u8; vrrp_core::packet::MAX_LEN];
        let n = AdvertisementBuilder::new(
            self.version,
            Vrid::new(self.vrid).expect("non-zero"),
            &self.addresses,
        )
        .priority(Priority::new(self.priority))
        .advert_interval(AdvertInterval::from_centis(self.centis).expect("valid interval"))
        .authentication(auth)
        .encode_to_slice(self.source, self.destination, self.mode, &mut buf)
        .expect("valid sample");
        buf.truncate(n);
        buf
    }

    fn frame(&self) -> Vec<u8> {
        support::ethernet_ip_frame(self.source, self.destination, &self.encode())
    }
}

fn v4(o: [u8; 4]) -> IpAddr {
    IpAddr::from(o)
}

fn v6(s: &str) -> IpAddr {
    s.parse().expect("valid IPv6 literal")
}

/// Samples whose checksum Wireshark's default preference must call good.
fn default_pref_samples() -> Vec<Sample> {
    let me = v4([10, 99, 0, 11]);
    let group = IpAddr::from(MULTICAST_V4);
    let ll = v6("fe80::94cf:75ff:febb:41bc");
    let group6 = IpAddr::from(MULTICAST_V6);
    let base = |version, vrid| Sample {
        version,
        vrid,
        priority: 101,
        centis: 100,
        addresses: vec![v4([10, 99, 0, 200])],
        auth: None,
        source: me,
        destination: group,
        mode: ChecksumMode::PseudoHeader,
    };
    vec![
        base(Version::V2, 1),
        Sample {
            auth: Some("secret12"),
            ..base(Version::V2, 2)
        },
        Sample {
            auth: Some("abc"),
            priority: 0,
            centis: 25500,
            ..base(Version::V2, 3)
        },
        Sample {
            addresses: (0..4).map(|i| v4([10, 99, 0, 200 + i])).collect(),
            priority: 255,
            ..base(Version::V2, 4)
        },
        Sample {
            destination: v4([10, 99, 0, 12]),
            ..base(Version::V2, 5)
        }, // unicast
        base(Version::V3, 6),
        Sample {
            addresses: (0..4).map(|i| v4([192, 0, 2, i])).collect(),
            centis: 1,
            ..base(Version::V3, 7)
        },
        Sample {
            centis: 0x0fff,
            priority: 0,
            ..base(Version::V3, 8)
        },
        Sample {
            source: ll,
            destination: group6,
            addresses: vec![v6("fd99::200")],
            ..base(Version::V3, 9)
        },
        Sample {
            source: ll,
            destination: group6,
            addresses: vec![v6("fe80::200"), v6("2001:db8::1"), v6("2001:db8::2")],
            centis: 5,
            ..base(Version::V3, 10)
        },
    ]
}

/// tshark's fields for every VRRP frame in `pcap`, one tab-separated line each.
fn tshark_fields(pcap: &std::path::Path, prefs: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-n").arg("-r").arg(pcap);
    for p in prefs {
        cmd.arg("-o").arg(p);
    }
    cmd.args(["-Y", "vrrp", "-T", "fields", "-E", "separator=/t"]);
    for f in [
        "vrrp.version",
        "vrrp.virt_rtr_id",
        "vrrp.prio",
        "vrrp.addr_count",
        "vrrp.checksum.status",
        "vrrp.ip_addr",
        "vrrp.ipv6_addr",
        "vrrp.auth_type",
        "vrrp.adver_int",
        "vrrp.short_adver_int",
        "vrrp.auth_string",
    ] {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("tshark runs");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("UTF-8")
        .lines()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

/// `tshark -V`'s verdict lines for the VRRP checksum.
fn tshark_verbose_verdicts(pcap: &std::path::Path, prefs: &[&str]) -> Vec<String> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-n").arg("-r").arg(pcap);
    for p in prefs {
        cmd.arg("-o").arg(p);
    }
    let out = cmd
        .args(["-V", "-O", "vrrp"])
        .output()
        .expect("tshark runs");
    assert!(out.status.success(), "tshark -V failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("[Checksum Status:"))
        .map(|l| l.trim().to_owned())
        .collect()
}

const GOOD: &str = "1";
const BAD: &str = "0";

fn have_tshark() -> bool {
    Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn tshark_reads_our_fields_and_calls_every_checksum_good() {
    if !have_tshark() {
        return support::skip("tshark is not installed (apt-get install tshark)");
    }
    let samples = default_pref_samples();
    let dir = tempdir();
    let pcap = dir.join("ours.pcap");
    support::write_pcap(
        &pcap,
        &samples.iter().map(Sample::frame).collect::<Vec<_>>(),
    );

    let rows = tshark_fields(&pcap, &[]);
    assert_eq!(
        rows.len(),
        samples.len(),
        "tshark saw every frame: {rows:?}"
    );
    for (s, row) in samples.iter().zip(&rows) {
        let what = format!("vrid {}: {row:?}", s.vrid);
        assert_eq!(row[0], s.version.number().to_string(), "{what}");
        assert_eq!(row[1], s.vrid.to_string(), "{what}");
        assert_eq!(row[2], s.priority.to_string(), "{what}");
        assert_eq!(row[3], s.addresses.len().to_string(), "{what}");
        assert_eq!(row[4], GOOD, "{what}: checksum");
        let addrs: Vec<String> = s.addresses.iter().map(IpAddr::to_string).collect();
        let addr_col = if s.addresses[0].is_ipv4() {
            &row[5]
        } else {
            &row[6]
        };
        assert_eq!(addr_col, &addrs.join(","), "{what}");
        match s.version {
            Version::V2 => {
                assert_eq!(row[7], if s.auth.is_some() { "1" } else { "0" }, "{what}");
                assert_eq!(row[8], (s.centis / 100).to_string(), "{what}");
                assert_eq!(row[10], s.auth.unwrap_or(""), "{what}");
            }
            Version::V3 => assert_eq!(row[9], s.centis.to_string(), "{what}"),
        }
    }
    let verdicts = tshark_verbose_verdicts(&pcap, &[]);
    assert_eq!(verdicts.len(), samples.len(), "{verdicts:?}");
    assert!(
        verdicts.iter().all(|v| v == "[Checksum Status: Good]"),
        "{verdicts:?}"
    );
}

#[test]
fn tshark_agrees_on_the_rfc9568_form_and_catches_corruption() {
    if !have_tshark() {
        return support::skip("tshark is not installed (apt-get install tshark)");
    }
    let rfc = Sample {
        version: Version::V3,
        vrid: 20,
        priority: 150,
        centis: 100,
        addresses: vec![v4([10, 99, 0, 200]), v4([10, 99, 0, 201])],
        auth: None,
        source: v4([10, 99, 0, 11]),
        destination: IpAddr::from(MULTICAST_V4),
        mode: ChecksumMode::Rfc9568,
    };
    let pseudo = Sample {
        vrid: 21,
        mode: ChecksumMode::PseudoHeader,
        ..clone_sample(&rfc)
    };
    let mut corrupted = pseudo.frame();
    let last = corrupted.len() - 1;
    corrupted[last] ^= 0x01; // the last address byte, checksum left as it was

    let dir = tempdir();
    let pcap = dir.join("forms.pcap");
    support::write_pcap(&pcap, &[rfc.frame(), pseudo.frame(), corrupted]);

    let status = |prefs: &[&str]| -> Vec<String> {
        tshark_fields(&pcap, prefs)
            .into_iter()
            .map(|r| r[4].clone())
            .collect()
    };
    // Default (pseudo-header) preference: only our pseudo-header frame is good.
    assert_eq!(status(&[]), [BAD, GOOD, BAD]);
    // RFC 9568 preference: only our message-only frame is good.
    assert_eq!(
        status(&["vrrp.v3_checksum_as_in_v2:TRUE"]),
        [GOOD, BAD, BAD]
    );
}

fn clone_sample(s: &Sample) -> Sample {
    Sample {
        addresses: s.addresses.clone(),
        ..*s
    }
}

/// A fresh, empty directory in the system temp dir for this process and thread.
fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "vrrp-core-tshark-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
