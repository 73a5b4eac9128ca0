//! Fuzzes every decoder of `vrrp_core::packet`: the input as a whole IP packet, and as a bare
//! VRRP message behind fixed IPv4 and IPv6 headers, under every receive policy. Whatever is
//! accepted is read through every accessor and must survive re-encoding with the same fields.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use vrrp_core::packet::{
    Accepted, AddressFamily, Advertisement, AdvertisementBuilder, AuthType, Authentication,
    ChecksumKind, ChecksumMode, IpHeader, IpPacket, Password, ReceivePolicy, Version,
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

fn policies() -> impl Iterator<Item = ReceivePolicy> {
    let pass = Authentication::SimpleText(Password::new("secret12").expect("valid"));
    [Version::V2, Version::V3]
        .into_iter()
        .flat_map(move |version| {
            MODES.into_iter().flat_map(move |checksum| {
                [Authentication::None, pass]
                    .into_iter()
                    .flat_map(move |authentication| {
                        [false, true]
                            .into_iter()
                            .map(move |require_link_local_first| ReceivePolicy {
                                version,
                                checksum,
                                authentication,
                                require_link_local_first,
                            })
                    })
            })
        })
}

/// Reads everything, then re-encodes from the decoded fields and checks they come back.
fn exercise(ip: &IpHeader, accepted: &Accepted<'_>, policy: &ReceivePolicy) {
    let a = accepted.advertisement;
    let addrs: Vec<IpAddr> = a.addresses().collect();
    assert_eq!(addrs.len(), usize::from(a.address_count()));
    let _ = format!("{a:?}");
    let auth = match a.auth_type() {
        Some(AuthType::SimpleText) => {
            let data = a.auth_data().expect("v2 has auth data");
            // The policy accepted it, so it is the configured password.
            match policy.authentication {
                Authentication::SimpleText(p) => {
                    assert_eq!(data, p.as_wire());
                    Authentication::SimpleText(p)
                }
                Authentication::None => panic!("simple text accepted without a password"),
            }
        }
        _ => Authentication::None,
    };
    let mut buf = [0u8; vrrp_core::packet::MAX_LEN];
    let n = AdvertisementBuilder::new(a.version(), a.vrid(), &addrs)
        .priority(a.priority())
        .advert_interval(a.advert_interval())
        .authentication(auth)
        .encode_to_slice(ip.source, ip.destination, policy.checksum, &mut buf)
        .expect("an accepted advertisement re-encodes");
    let again = policy
        .accept(ip, &buf[..n])
        .expect("the re-encoding is accepted");
    let b = again.advertisement;
    assert_eq!(
        (
            b.version(),
            b.vrid(),
            b.priority(),
            b.advert_interval(),
            b.auth_type()
        ),
        (
            a.version(),
            a.vrid(),
            a.priority(),
            a.advert_interval(),
            a.auth_type()
        )
    );
    // Without authentication the data field is ignored on receipt (RFC 3768 §5.3.6) and
    // written as zeros, so only a password must come back as it was.
    if a.auth_type() == Some(AuthType::SimpleText) {
        assert_eq!(b.auth_data(), a.auth_data());
    }
    assert!(b.addresses().eq(addrs.iter().copied()));
}

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = IpPacket::parse(data) {
        for policy in policies() {
            if let Ok(acc) = policy.accept(&p.header, p.payload) {
                exercise(&p.header, &acc, &policy);
            }
        }
    }
    for family in [AddressFamily::Ipv4, AddressFamily::Ipv6] {
        if let Ok(a) = Advertisement::parse(data, family) {
            let _ = (a.addresses().count(), a.auth_data(), format!("{a:?}"));
        }
    }
    let headers = [
        IpHeader {
            source: [10, 99, 0, 11].into(),
            destination: [224, 0, 0, 18].into(),
            ttl: 255,
        },
        IpHeader {
            source: [0xfe80, 0, 0, 0, 0, 0, 0, 1].into(),
            destination: [0xff02, 0, 0, 0, 0, 0, 0, 0x12].into(),
            ttl: 255,
        },
    ];
    for ip in &headers {
        for policy in policies() {
            if let Ok(acc) = policy.accept(ip, data) {
                exercise(ip, &acc, &policy);
            }
        }
    }
});
