//! Property tests of the codec: every valid advertisement round-trips through encode and
//! receive with all its fields, any corruption of it is rejected, and no input whatsoever
//! makes a parser panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use vrrp_core::packet::{
    AddressFamily, AdvertInterval, Advertisement, AdvertisementBuilder, Authentication,
    ChecksumKind, ChecksumMode, IpHeader, IpPacket, Password, Priority, ReceivePolicy, Version,
    Vrid,
};

/// Everything an advertisement and the IP header around it can vary in.
#[derive(Clone, Debug)]
struct Case {
    version: Version,
    vrid: Vrid,
    priority: Priority,
    interval: AdvertInterval,
    addresses: Vec<IpAddr>,
    authentication: Authentication,
    mode: ChecksumMode,
    source: IpAddr,
    destination: IpAddr,
}

fn v4() -> impl Strategy<Value = IpAddr> {
    any::<[u8; 4]>().prop_map(|o| IpAddr::V4(Ipv4Addr::from(o)))
}

fn v6() -> impl Strategy<Value = IpAddr> {
    any::<[u8; 16]>().prop_map(|o| IpAddr::V6(Ipv6Addr::from(o)))
}

fn mode() -> impl Strategy<Value = ChecksumMode> {
    prop_oneof![
        Just(ChecksumMode::PseudoHeader),
        Just(ChecksumMode::Rfc9568),
        Just(ChecksumMode::AcceptEither {
            send: ChecksumKind::PseudoHeader
        }),
        Just(ChecksumMode::AcceptEither {
            send: ChecksumKind::MessageOnly
        }),
    ]
}

fn vrid() -> impl Strategy<Value = Vrid> {
    (1u8..=255).prop_map(|v| Vrid::new(v).expect("non-zero"))
}

/// Address counts mostly small, sometimes the 255 maximum.
fn count() -> impl Strategy<Value = usize> {
    prop_oneof![8 => 1usize..=8, 1 => 9usize..=255]
}

fn password() -> impl Strategy<Value = Authentication> {
    prop::collection::vec(1u8..=255, 1..=8)
        .prop_map(|p| Authentication::SimpleText(Password::new(p).expect("1..=8 non-NUL bytes")))
}

fn v2_case() -> impl Strategy<Value = Case> {
    (
        vrid(),
        any::<u8>(),
        1u8..=255,
        count().prop_flat_map(|n| prop::collection::vec(v4(), n)),
        prop_oneof![Just(Authentication::None), password()],
        mode(),
        v4(),
        v4(),
    )
        .prop_map(
            |(vrid, prio, secs, addresses, authentication, mode, source, destination)| Case {
                version: Version::V2,
                vrid,
                priority: Priority::new(prio),
                interval: AdvertInterval::from_secs(secs).expect("non-zero"),
                addresses,
                authentication,
                mode,
                source,
                destination,
            },
        )
}

fn v3_case() -> impl Strategy<Value = Case> {
    let family = prop_oneof![Just(AddressFamily::Ipv4), Just(AddressFamily::Ipv6)];
    (family, vrid(), any::<u8>(), 1u16..=0x0fff, count(), mode()).prop_flat_map(
        |(family, vrid, prio, centis, n, mode)| {
            let addr = match family {
                AddressFamily::Ipv4 => v4().boxed(),
                AddressFamily::Ipv6 => v6().boxed(),
            };
            (prop::collection::vec(addr.clone(), n), addr.clone(), addr).prop_map(
                move |(addresses, source, destination)| Case {
                    version: Version::V3,
                    vrid,
                    priority: Priority::new(prio),
                    interval: AdvertInterval::from_centis(centis).expect("1..=4095"),
                    addresses,
                    authentication: Authentication::None,
                    mode,
                    source,
                    destination,
                },
            )
        },
    )
}

fn case() -> impl Strategy<Value = Case> {
    prop_oneof![v2_case(), v3_case()]
}

fn encode(c: &Case) -> Vec<u8> {
    let mut out = bytes::BytesMut::new();
    AdvertisementBuilder::new(c.version, c.vrid, &c.addresses)
        .priority(c.priority)
        .advert_interval(c.interval)
        .authentication(c.authentication)
        .encode(c.source, c.destination, c.mode, &mut out)
        .expect("a valid case encodes");
    out.to_vec()
}

fn policy(c: &Case) -> ReceivePolicy {
    ReceivePolicy {
        version: c.version,
        checksum: c.mode,
        authentication: c.authentication,
        require_link_local_first: false,
    }
}

fn header(c: &Case) -> IpHeader {
    IpHeader {
        source: c.source,
        destination: c.destination,
        ttl: 255,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_field_round_trips(c in case()) {
        let bytes = encode(&c);
        let accepted = policy(&c).accept(&header(&c), &bytes).expect("own advert is accepted");
        let a = accepted.advertisement;
        prop_assert_eq!(a.version(), c.version);
        prop_assert_eq!(a.vrid(), c.vrid);
        prop_assert_eq!(a.priority(), c.priority);
        prop_assert_eq!(a.advert_interval(), c.interval);
        prop_assert_eq!(usize::from(a.address_count()), c.addresses.len());
        prop_assert_eq!(a.addresses().collect::<Vec<_>>(), c.addresses.clone());
        prop_assert_eq!(a.family(), AddressFamily::of(&c.source));
        prop_assert_eq!(accepted.checksum, c.mode.send_kind(c.version, a.family()));
        match c.authentication {
            Authentication::None if c.version == Version::V2 => {
                prop_assert_eq!(a.auth_data(), Some(&[0u8; 8]));
            }
            Authentication::None => prop_assert_eq!(a.auth_data(), None),
            Authentication::SimpleText(p) => prop_assert_eq!(a.auth_data(), Some(p.as_wire())),
        }
        prop_assert_eq!(a.as_bytes(), &bytes[..]);
    }

    #[test]
    fn any_single_bit_flip_is_rejected(c in case(), bit in any::<prop::sample::Index>()) {
        let mut bytes = encode(&c);
        let bit = bit.index(bytes.len() * 8);
        bytes[bit / 8] ^= 1 << (bit % 8);
        // Accept only the form that was sent: with accept-either a flip can, by a 1-in-2^15
        // coincidence, turn one valid form into the other.
        let strict = ReceivePolicy {
            checksum: match c.mode.send_kind(c.version, AddressFamily::of(&c.source)) {
                ChecksumKind::PseudoHeader => ChecksumMode::PseudoHeader,
                ChecksumKind::MessageOnly => ChecksumMode::Rfc9568,
            },
            ..policy(&c)
        };
        prop_assert!(strict.accept(&header(&c), &bytes).is_err(), "bit {} flipped, still accepted", bit);
    }

    #[test]
    fn any_truncation_or_extension_is_rejected(c in case(), cut in any::<prop::sample::Index>(), extra in 1usize..32) {
        let bytes = encode(&c);
        let cut = cut.index(bytes.len());
        prop_assert!(policy(&c).accept(&header(&c), &bytes[..cut]).is_err());
        let mut longer = bytes.clone();
        longer.extend(std::iter::repeat_n(0u8, extra));
        prop_assert!(policy(&c).accept(&header(&c), &longer).is_err());
    }

    #[test]
    fn a_ttl_other_than_255_is_rejected(c in case(), ttl in 0u8..255) {
        let bytes = encode(&c);
        let ip = IpHeader { ttl, ..header(&c) };
        prop_assert!(policy(&c).accept(&ip, &bytes).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600), ttl in any::<u8>()) {
        let _ = IpPacket::parse(&bytes);
        for family in [AddressFamily::Ipv4, AddressFamily::Ipv6] {
            if let Ok(a) = Advertisement::parse(&bytes, family) {
                let _ = (a.addresses().count(), a.auth_data(), a.advert_interval(), format!("{a:?}"));
            }
        }
        let pairs = [
            (IpAddr::from([10, 0, 0, 1]), IpAddr::from([224, 0, 0, 18])),
            (IpAddr::from([0xfe80, 0, 0, 0, 0, 0, 0, 1]), IpAddr::from([0xff02, 0, 0, 0, 0, 0, 0, 0x12])),
            (IpAddr::from([10, 0, 0, 1]), IpAddr::from([0xff02, 0, 0, 0, 0, 0, 0, 0x12])),
        ];
        for (source, destination) in pairs {
            for version in [Version::V2, Version::V3] {
                let mut p = ReceivePolicy::new(version);
                p.require_link_local_first = true;
                let _ = p.accept(&IpHeader { source, destination, ttl }, &bytes);
            }
        }
    }

    #[test]
    fn arbitrary_bytes_after_a_valid_header_never_panic(
        head in prop::sample::select(vec![0x21u8, 0x31]),
        vrid in any::<u8>(), prio in any::<u8>(), count in any::<u8>(),
        rest in prop::collection::vec(any::<u8>(), 0..1100),
    ) {
        // Biased towards the interesting paths: a valid version/type nibble and a count that
        // often matches the length.
        let mut bytes = vec![head, vrid, prio, count];
        bytes.extend_from_slice(&rest);
        for family in [AddressFamily::Ipv4, AddressFamily::Ipv6] {
            if let Ok(a) = Advertisement::parse(&bytes, family) {
                prop_assert_eq!(a.addresses().len(), usize::from(a.address_count()));
            }
        }
    }
}
