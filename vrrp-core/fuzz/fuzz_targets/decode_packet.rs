//! Fuzzes every decoder of `vrrp_core::packet`: the input as a whole IP packet, as a bare VRRP
//! message through `Advertisement::parse` for both families, and as a bare message behind fixed
//! IPv4 and IPv6 headers, under every receive policy. Whatever decodes is read through every
//! accessor and must survive re-encoding with the same fields; every error is formatted.
#![no_main]

use std::net::IpAddr;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use vrrp_core::packet::{
    Accepted, AddressFamily, Advertisement, AdvertisementBuilder, AuthType, Authentication,
    ChecksumKind, ChecksumMode, DecodeError, IpHeader, IpPacket, MAX_LEN, Password, ReceivePolicy,
    Version,
};

const MODES: [ChecksumMode; 4] = [
    ChecksumMode::PseudoHeader,
    ChecksumMode::Rfc9568,
    ChecksumMode::AcceptEither {
        send: ChecksumKind::PseudoHeader,
    },
    ChecksumMode::AcceptEither {
        send: ChecksumKind::MessageOnly,
    },
];

/// The fixed IP headers bare messages are fed behind: keepalived's IPv4 multicast pair and an
/// IPv6 link-local source to ff02::12.
const HEADERS: [IpHeader; 2] = [
    IpHeader {
        source: IpAddr::V4(std::net::Ipv4Addr::new(10, 99, 0, 11)),
        destination: IpAddr::V4(std::net::Ipv4Addr::new(224, 0, 0, 18)),
        ttl: 255,
    },
    IpHeader {
        source: IpAddr::V6(std::net::Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)),
        destination: IpAddr::V6(std::net::Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12)),
        ttl: 255,
    },
];

/// All 32 policies: version × checksum mode × (no auth, password "secret12") × link-local-first,
/// built once.
fn policies() -> &'static [ReceivePolicy] {
    static POLICIES: LazyLock<Vec<ReceivePolicy>> = LazyLock::new(|| {
        let pass = Authentication::SimpleText(Password::new("secret12").expect("valid"));
        let mut all = Vec::new();
        for version in [Version::V2, Version::V3] {
            for checksum in MODES {
                for authentication in [Authentication::None, pass] {
                    for require_link_local_first in [false, true] {
                        all.push(ReceivePolicy {
                            version,
                            checksum,
                            authentication,
                            require_link_local_first,
                        });
                    }
                }
            }
        }
        all
    });
    &POLICIES
}

/// Error messages and drop reasons are built from the decoded values: format them all.
fn exercise_error(e: &DecodeError) {
    let _ = (e.to_string(), format!("{e:?}"), e.reason().as_str());
}

/// The simple text password whose wire form is `data`: the bytes before the zero padding.
/// `None` if there is none (all zeros) or a NUL sits inside it, which `Password` refuses.
fn password_from_wire(data: &[u8; 8]) -> Option<Password> {
    let end = data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let p = Password::new(&data[..end]).ok()?;
    assert_eq!(
        p.as_wire(),
        data,
        "zero padding must give back the wire bytes"
    );
    Some(p)
}

/// Reads every accessor, checks the structural invariants between them, and returns the
/// addresses (the iterator run to its end).
fn read_all(a: &Advertisement<'_>) -> Vec<IpAddr> {
    let count = usize::from(a.address_count());
    assert!(count >= 1);
    let mut it = a.addresses();
    assert_eq!(it.len(), count);
    let addrs: Vec<IpAddr> = it.by_ref().collect();
    assert_eq!(addrs.len(), count);
    assert_eq!((it.next(), it.len()), (None, 0), "fused and exhausted");
    assert!(addrs.iter().all(|x| AddressFamily::of(x) == a.family()));

    let version = a.version();
    let trailer = match version {
        Version::V2 => 8,
        Version::V3 => 0,
    };
    assert_eq!(
        a.as_bytes().len(),
        8 + count * a.family().address_len() + trailer
    );
    assert_eq!(a.as_bytes()[0] >> 4, version.number());
    assert_eq!(a.vrid().get(), a.as_bytes()[1]);
    assert_eq!(a.priority().get(), a.as_bytes()[2]);
    assert_eq!(a.checksum().to_be_bytes(), a.as_bytes()[6..8]);
    let interval = a.advert_interval();
    assert!(interval.centis() >= 1);
    match version {
        Version::V2 => {
            assert_eq!(a.family(), AddressFamily::Ipv4);
            assert!(a.auth_type().is_some());
            assert_eq!(
                a.auth_data().map(|d| &d[..]),
                a.as_bytes().get(8 + count * 4..)
            );
            assert!(interval.whole_secs().is_some());
        }
        Version::V3 => {
            assert_eq!((a.auth_type(), a.auth_data()), (None, None));
            assert!(interval.centis() <= 0x0fff);
        }
    }
    let _ = (
        format!("{a:?}"),
        format!("{:?}", a.addresses()),
        format!("{version} {} {} {interval}", a.vrid(), a.priority()),
        a.priority().is_owner(),
        a.priority().is_shutdown(),
        interval.as_duration(),
        a.auth_type().map(|t| t.to_string()),
    );
    addrs
}

/// Field equality between an advertisement and its re-encoding. `auth`: whether the auth type
/// was carried over (not for AH, which the builder cannot write).
fn assert_same_fields(a: &Advertisement<'_>, b: &Advertisement<'_>, auth: bool) {
    assert_eq!(
        (
            b.version(),
            b.family(),
            b.vrid(),
            b.priority(),
            b.address_count(),
            b.advert_interval(),
        ),
        (
            a.version(),
            a.family(),
            a.vrid(),
            a.priority(),
            a.address_count(),
            a.advert_interval(),
        )
    );
    assert!(b.addresses().eq(a.addresses()));
    if auth {
        assert_eq!(b.auth_type(), a.auth_type());
    }
    match b.auth_type() {
        // The password comes back as it was.
        Some(AuthType::SimpleText) => assert_eq!(b.auth_data(), a.auth_data()),
        // Without authentication the data field is ignored on receipt (RFC 3768 §5.3.6) and
        // written as zeros.
        Some(_) => assert_eq!(b.auth_data(), Some(&[0u8; 8])),
        None => {}
    }
}

/// The authentication to re-encode `a` with: `Some((auth, carried_over))`, or `None` when the
/// advert cannot be re-encoded with its auth type (simple text with an empty password or a NUL
/// inside it).
fn reencode_auth(a: &Advertisement<'_>) -> Option<(Authentication, bool)> {
    match a.auth_type() {
        None | Some(AuthType::NoAuthentication) => Some((Authentication::None, true)),
        Some(AuthType::SimpleText) => {
            let data = a.auth_data().expect("v2 has auth data");
            Some((Authentication::SimpleText(password_from_wire(data)?), true))
        }
        // The builder cannot write AH; everything but the auth type must still round-trip.
        Some(AuthType::IpAuthenticationHeader) => Some((Authentication::None, false)),
    }
}

/// Encodes `a`'s fields between `ip`'s addresses with `mode`; returns the length in `buf`.
fn reencode(
    a: &Advertisement<'_>,
    addrs: &[IpAddr],
    auth: Authentication,
    ip: &IpHeader,
    mode: ChecksumMode,
    buf: &mut [u8; MAX_LEN],
) -> usize {
    AdvertisementBuilder::new(a.version(), a.vrid(), addrs)
        .priority(a.priority())
        .advert_interval(a.advert_interval())
        .authentication(auth)
        .encode_to_slice(ip.source, ip.destination, mode, buf)
        .expect("a decoded advertisement re-encodes")
}

/// An advertisement accepted by `policy`: invariants of acceptance, then a re-encoding with the
/// same policy that must be accepted with the same fields, and re-encode to the same bytes.
fn exercise_accepted(ip: &IpHeader, accepted: &Accepted<'_>, policy: &ReceivePolicy) {
    let _ = format!("{accepted:?}");
    let a = &accepted.advertisement;
    let addrs = read_all(a);
    assert_eq!(a.version(), policy.version);
    assert_eq!(Ok(a.family()), ip.family());
    assert!(
        policy
            .checksum
            .accepts(a.version(), a.family(), accepted.checksum)
    );
    if policy.require_link_local_first
        && let Some(IpAddr::V6(first)) = addrs.first()
    {
        assert!(first.is_unicast_link_local());
    }
    let (auth, carried) = reencode_auth(a).expect("an accepted password is a valid password");
    assert!(carried, "AH is never accepted");
    if a.version() == Version::V2 {
        assert_eq!(auth, policy.authentication, "accepted with another auth");
    }

    let mut buf = [0u8; MAX_LEN];
    let n = reencode(a, &addrs, auth, ip, policy.checksum, &mut buf);
    let again = policy
        .accept(ip, &buf[..n])
        .expect("the re-encoding is accepted");
    assert_eq!(
        again.checksum,
        policy.checksum.send_kind(a.version(), a.family())
    );
    let b = &again.advertisement;
    assert_same_fields(a, b, true);
    // Encoding is a function of the fields: the second round gives the same bytes.
    let addrs_b = read_all(b);
    let mut buf2 = [0u8; MAX_LEN];
    let m = reencode(b, &addrs_b, auth, ip, policy.checksum, &mut buf2);
    assert_eq!(buf[..n], buf2[..m]);
}

/// An advertisement that passed `Advertisement::parse` (no checksum or policy checks): every
/// accessor, then re-encodings in every checksum mode that must parse with the same fields and
/// carry the checksum the mode sends.
fn exercise_parsed(a: &Advertisement<'_>) {
    let addrs = read_all(a);
    let Some((auth, carried)) = reencode_auth(a) else {
        return;
    };
    let ip = match a.family() {
        AddressFamily::Ipv4 => &HEADERS[0],
        AddressFamily::Ipv6 => &HEADERS[1],
    };
    let mut buf = [0u8; MAX_LEN];
    for mode in MODES {
        let n = reencode(a, &addrs, auth, ip, mode, &mut buf);
        let b = Advertisement::parse(&buf[..n], a.family()).expect("the re-encoding parses");
        assert_same_fields(a, &b, carried);
        assert_eq!(
            b.verify_checksum(ip.source, ip.destination, mode),
            Ok(mode.send_kind(a.version(), a.family()))
        );
    }
}

/// `vrrp` behind `ip` under every policy. Most policies reject an input for the same reason, so
/// each distinct error is formatted once (formatting dominates the run time otherwise).
fn accept_all(ip: &IpHeader, vrrp: &[u8]) {
    let mut last: Option<DecodeError> = None;
    for policy in policies() {
        match policy.accept(ip, vrrp) {
            Ok(acc) => exercise_accepted(ip, &acc, policy),
            Err(e) if last.as_ref() != Some(&e) => {
                exercise_error(&e);
                last = Some(e);
            }
            Err(_) => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    match IpPacket::parse(data) {
        Ok(p) => {
            let _ = (
                format!("{p:?}"),
                p.header.family().map_err(|e| e.to_string()),
            );
            accept_all(&p.header, p.payload);
        }
        Err(e) => exercise_error(&e),
    }
    for family in [AddressFamily::Ipv4, AddressFamily::Ipv6] {
        match Advertisement::parse(data, family) {
            Ok(a) => exercise_parsed(&a),
            Err(e) => exercise_error(&e),
        }
    }
    for ip in &HEADERS {
        accept_all(ip, data);
    }
});
