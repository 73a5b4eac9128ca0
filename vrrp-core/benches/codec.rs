//! Hot paths of the codec: receiving (parse + every §7.1 check) and encoding one advertisement
//! with 4 IPv4 addresses, the target being under 100 ns each; plus IPv6 and VRRPv2 variants.
//!
//! Run: `cargo bench -p vrrp-core --bench codec`. Figures go in `vrrp-core/README.md`.

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use vrrp_core::packet::{
    AdvertisementBuilder, Authentication, ChecksumMode, IpHeader, IpPacket, Password, Priority,
    ReceivePolicy, Version, Vrid,
};

fn addrs_v4() -> [IpAddr; 4] {
    [
        IpAddr::from([10, 99, 0, 200]),
        IpAddr::from([10, 99, 0, 201]),
        IpAddr::from([10, 99, 0, 202]),
        IpAddr::from([10, 99, 0, 203]),
    ]
}

fn encoded(
    version: Version,
    src: IpAddr,
    dst: IpAddr,
    addrs: &[IpAddr],
    auth: Authentication,
) -> Vec<u8> {
    let mut buf = vec![0u8; vrrp_core::packet::MAX_LEN];
    let vrid = Vrid::new(51).expect("non-zero");
    let n = AdvertisementBuilder::new(version, vrid, addrs)
        .priority(Priority::new(101))
        .authentication(auth)
        .encode_to_slice(src, dst, ChecksumMode::PseudoHeader, &mut buf)
        .expect("valid advertisement");
    buf.truncate(n);
    buf
}

/// `policy` receiving `advert` from `ip`.
fn bench_accept(
    c: &mut Criterion,
    name: &str,
    policy: &ReceivePolicy,
    ip: &IpHeader,
    advert: &[u8],
) {
    c.bench_function(name, |b| {
        b.iter(|| {
            policy
                .accept(black_box(ip), black_box(advert))
                .expect("valid")
                .checksum
        })
    });
}

fn bench(c: &mut Criterion) {
    let src = IpAddr::from([10, 99, 0, 11]);
    let dst = IpAddr::from([224, 0, 0, 18]);
    let vrid = Vrid::new(51).expect("non-zero");
    let v4 = addrs_v4();
    let ip = IpHeader {
        source: src,
        destination: dst,
        ttl: 255,
    };

    let v3 = encoded(Version::V3, src, dst, &v4, Authentication::None);
    let policy_v3 = ReceivePolicy::new(Version::V3);
    c.bench_function("v3_ipv4_4addr/accept", |b| {
        b.iter(|| {
            let a = policy_v3
                .accept(black_box(&ip), black_box(&v3))
                .expect("valid");
            black_box(a.advertisement.priority())
        })
    });
    let mut buf = [0u8; 64];
    c.bench_function("v3_ipv4_4addr/encode", |b| {
        b.iter(|| {
            AdvertisementBuilder::new(Version::V3, vrid, black_box(&v4))
                .priority(Priority::new(101))
                .encode_to_slice(src, dst, ChecksumMode::PseudoHeader, black_box(&mut buf))
                .expect("valid")
        })
    });

    // The same advert with its IPv4 header, as a raw IPv4 socket delivers it.
    let mut packet = vec![
        0x45, 0xc0, 0, 0, 0, 1, 0, 0, 255, 112, 0, 0, 10, 99, 0, 11, 224, 0, 0, 18,
    ];
    packet.extend_from_slice(&v3);
    let total = u16::try_from(packet.len()).expect("short").to_be_bytes();
    packet[2..4].copy_from_slice(&total);
    c.bench_function("v3_ipv4_4addr/ip_parse+accept", |b| {
        b.iter(|| {
            let p = IpPacket::parse(black_box(&packet)).expect("valid");
            let a = policy_v3.accept(&p.header, p.payload).expect("valid");
            black_box(a.advertisement.priority())
        })
    });

    let pass = Authentication::SimpleText(Password::new("secret12").expect("8 bytes"));
    let v2 = encoded(Version::V2, src, dst, &v4, pass);
    let mut policy_v2 = ReceivePolicy::new(Version::V2);
    policy_v2.authentication = pass;
    bench_accept(c, "v2_pass_4addr/accept", &policy_v2, &ip, &v2);

    let ll = IpAddr::from([0xfe80, 0, 0, 0, 0, 0, 0, 1]);
    let group = IpAddr::from(vrrp_core::packet::MULTICAST_V6);
    let v6_addrs = [
        IpAddr::from([0xfd99, 0, 0, 0, 0, 0, 0, 0x200]),
        IpAddr::from([0xfd99, 0, 0, 0, 0, 0, 0, 0x201]),
        IpAddr::from([0xfd99, 0, 0, 0, 0, 0, 0, 0x202]),
        IpAddr::from([0xfd99, 0, 0, 0, 0, 0, 0, 0x203]),
    ];
    let v6 = encoded(Version::V3, ll, group, &v6_addrs, Authentication::None);
    let ip6 = IpHeader {
        source: ll,
        destination: group,
        ttl: 255,
    };
    bench_accept(c, "v3_ipv6_4addr/accept", &policy_v3, &ip6, &v6);
    let mut buf6 = [0u8; 128];
    c.bench_function("v3_ipv6_4addr/encode", |b| {
        b.iter(|| {
            AdvertisementBuilder::new(Version::V3, vrid, black_box(&v6_addrs))
                .encode_to_slice(ll, group, ChecksumMode::PseudoHeader, black_box(&mut buf6))
                .expect("valid")
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
