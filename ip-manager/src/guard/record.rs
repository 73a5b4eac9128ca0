//! The guard file's layout: a header and fixed-size slots, one per guarded virtual router,
//! each holding everything the guard needs to act without allocating: the ready-made
//! priority-0 advertisement (one checksum per destination), where it goes, and the virtual
//! addresses to delete.
//!
//! Written by the daemon (`encode_slot`, and single flag bytes on each transition), read by
//! the guard after the daemon's death ([`SlotView`], allocation-free) and by the next run
//! (`previous_masters`).
//!
//! ```text
//! header (64 bytes): magic "HAGUARD\x01", slots u32, slot length u32, fired u8, daemon pid u32
//! slot (2048 bytes): flags, family, vrid, destinations, ifindex, advert length, addresses,
//!   name length, source, name, checksums, destinations, advert, addresses (ifindex, prefix,
//!   family, address)
//! ```

use std::net::IpAddr;

use vrrp_core::Config;
use vrrp_core::packet::{
    AddressFamily, AdvertisementBuilder, MULTICAST_V4, MULTICAST_V6, Priority,
};

use super::GuardError;
use crate::Vip;

pub(super) const MAGIC: [u8; 8] = *b"HAGUARD\x01";
pub(super) const HEADER_LEN: usize = 64;
pub(super) const SLOT_LEN: usize = 2048;
/// The header's byte set to 1 by a guard that acted.
pub(super) const FIRED_AT: usize = 16;
const PID_AT: usize = 17;

/// At most this many destinations (unicast peers) per guarded router.
pub const MAX_DESTINATIONS: usize = 16;
/// At most this many virtual addresses per guarded router.
pub const MAX_ADDRESSES: usize = 32;
/// At most this many bytes of an instance's name are kept (for the guard's log).
pub const MAX_NAME: usize = 32;
const ADVERT_MAX: usize = 8 + 16 * MAX_ADDRESSES + 8;

/// The slot is in use.
pub(super) const VALID: u8 = 1;
/// The router is Master: the guard sends its priority-0 advertisement.
pub(super) const MASTER: u8 = 2;
/// The addresses are (or may be) on the interface: the guard deletes them.
pub(super) const HOLDING: u8 = 4;

const FLAGS: usize = 0;
const FAMILY: usize = 1;
const VRID: usize = 2;
const DEST_COUNT: usize = 3;
const IFINDEX: usize = 4;
const ADVERT_LEN: usize = 8;
const VIP_COUNT: usize = 10;
const NAME_LEN: usize = 11;
const SOURCE: usize = 12;
const NAME: usize = 28;
const CHECKSUMS: usize = NAME + MAX_NAME;
const DESTINATIONS: usize = CHECKSUMS + 2 * MAX_DESTINATIONS;
const ADVERT: usize = DESTINATIONS + 16 * MAX_DESTINATIONS;
const VIPS: usize = ADVERT + ADVERT_MAX;
const VIP_LEN: usize = 24;
const _: () = assert!(VIPS + VIP_LEN * MAX_ADDRESSES <= SLOT_LEN);

/// The header of a fresh guard file for `slots` slots of daemon `pid`.
pub(super) fn header(slots: u32, pid: u32) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&slots.to_le_bytes());
    h[12..16].copy_from_slice(&(SLOT_LEN as u32).to_le_bytes());
    h[PID_AT..PID_AT + 4].copy_from_slice(&pid.to_le_bytes());
    h
}

/// The number of slots a header announces, if it is a guard file of this layout.
pub(super) fn slots_of(header: &[u8]) -> Option<u32> {
    if header.get(..8)? != MAGIC || read_u32(header, 12)? != SLOT_LEN as u32 {
        return None;
    }
    read_u32(header, 8)
}

/// Where slot `i` starts in the file.
pub(super) fn slot_offset(i: u32) -> u64 {
    HEADER_LEN as u64 + u64::from(i) * SLOT_LEN as u64
}

fn read_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn read_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn put_addr(out: &mut [u8], a: IpAddr) {
    match a {
        IpAddr::V4(v4) => out[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => out[..16].copy_from_slice(&v6.octets()),
    }
}

/// One interface index, resolved now (the guard cannot look names up after the daemon died).
pub(super) type IndexOf<'a> = &'a dyn Fn(&str) -> Result<u32, GuardError>;

/// The slot for virtual router `config` named `name`, whose adverts leave through interface
/// index `ifindex` and whose addresses are `vips` (their interfaces resolved by `index_of`).
/// Flags: valid, neither Master nor holding.
pub(super) fn encode_slot(
    name: &str,
    config: &Config,
    ifindex: u32,
    vips: &[Vip],
    index_of: IndexOf<'_>,
) -> Result<[u8; SLOT_LEN], GuardError> {
    let too_many = |what: &'static str, count: usize, max: usize| GuardError::TooMany {
        instance: name.to_owned(),
        what,
        count,
        max,
    };
    let group = match config.family() {
        AddressFamily::Ipv4 => IpAddr::V4(MULTICAST_V4),
        AddressFamily::Ipv6 => IpAddr::V6(MULTICAST_V6),
    };
    let destinations: &[IpAddr] = if config.unicast_peers.is_empty() {
        std::slice::from_ref(&group)
    } else {
        &config.unicast_peers
    };
    if destinations.len() > MAX_DESTINATIONS {
        return Err(too_many(
            "unicast peers",
            destinations.len(),
            MAX_DESTINATIONS,
        ));
    }
    if vips.len() > MAX_ADDRESSES {
        return Err(too_many("virtual addresses", vips.len(), MAX_ADDRESSES));
    }
    if config.virtual_addresses.len() > MAX_ADDRESSES {
        return Err(too_many(
            "advertised addresses",
            config.virtual_addresses.len(),
            MAX_ADDRESSES,
        ));
    }
    let builder = AdvertisementBuilder::new(config.version, config.vrid, &config.virtual_addresses)
        .priority(Priority::SHUTDOWN)
        .advert_interval(config.advert_interval)
        .authentication(config.authentication);
    let source = config.primary_address;
    let mut s = [0u8; SLOT_LEN];
    s[FLAGS] = VALID;
    s[FAMILY] = if source.is_ipv6() { 6 } else { 4 };
    s[VRID] = config.vrid.get();
    s[DEST_COUNT] = destinations.len() as u8; // at most MAX_DESTINATIONS
    s[IFINDEX..IFINDEX + 4].copy_from_slice(&ifindex.to_le_bytes());
    s[VIP_COUNT] = vips.len() as u8; // at most MAX_ADDRESSES
    put_addr(&mut s[SOURCE..SOURCE + 16], source);
    let name_bytes = truncated(name);
    s[NAME_LEN] = name_bytes.len() as u8;
    s[NAME..NAME + name_bytes.len()].copy_from_slice(name_bytes);
    let mut advert = [0u8; ADVERT_MAX];
    for (k, &to) in destinations.iter().enumerate() {
        let len = builder
            .encode_to_slice(source, to, config.checksum, &mut advert)
            .map_err(|e| GuardError::Advert {
                instance: name.to_owned(),
                error: e,
            })?;
        if k == 0 {
            s[ADVERT_LEN..ADVERT_LEN + 2].copy_from_slice(&(len as u16).to_le_bytes());
            s[ADVERT..ADVERT + len].copy_from_slice(&advert[..len]);
        }
        s[CHECKSUMS + 2 * k..CHECKSUMS + 2 * k + 2].copy_from_slice(&advert[6..8]);
        put_addr(
            &mut s[DESTINATIONS + 16 * k..DESTINATIONS + 16 * k + 16],
            to,
        );
    }
    for (k, vip) in vips.iter().enumerate() {
        let at = VIPS + VIP_LEN * k;
        s[at..at + 4].copy_from_slice(&index_of(&vip.interface)?.to_le_bytes());
        s[at + 4] = vip.prefix_len;
        s[at + 5] = if vip.address.is_ipv6() { 6 } else { 4 };
        put_addr(&mut s[at + 8..at + 24], vip.address);
    }
    Ok(s)
}

/// `name` cut to [`MAX_NAME`] bytes at a character boundary.
fn truncated(name: &str) -> &[u8] {
    let mut end = name.len().min(MAX_NAME);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name.as_bytes()[..end]
}

/// A slot as read back, by the guard or the next run. Every accessor bounds-checks: a torn or
/// foreign file yields `None`s, never a panic.
#[derive(Clone, Copy)]
pub(super) struct SlotView<'a>(pub(super) &'a [u8]);

/// One virtual address of a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct SlotVip {
    pub(super) ifindex: u32,
    pub(super) prefix_len: u8,
    pub(super) address: IpAddr,
}

fn addr_at(b: &[u8], at: usize, family: u8) -> Option<IpAddr> {
    match family {
        4 => {
            let o: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
            Some(IpAddr::from(o))
        }
        6 => {
            let o: [u8; 16] = b.get(at..at + 16)?.try_into().ok()?;
            Some(IpAddr::from(o))
        }
        _ => None,
    }
}

impl<'a> SlotView<'a> {
    pub(super) fn flags(&self) -> u8 {
        self.0.get(FLAGS).copied().unwrap_or(0)
    }

    pub(super) fn is(&self, flag: u8) -> bool {
        let f = self.flags();
        f & VALID != 0 && f & flag != 0
    }

    pub(super) fn family(&self) -> u8 {
        self.0.get(FAMILY).copied().unwrap_or(0)
    }

    pub(super) fn vrid(&self) -> u8 {
        self.0.get(VRID).copied().unwrap_or(0)
    }

    pub(super) fn ifindex(&self) -> u32 {
        read_u32(self.0, IFINDEX).unwrap_or(0)
    }

    pub(super) fn name(&self) -> &'a [u8] {
        let len = usize::from(self.0.get(NAME_LEN).copied().unwrap_or(0)).min(MAX_NAME);
        self.0.get(NAME..NAME + len).unwrap_or(&[])
    }

    pub(super) fn source(&self) -> Option<IpAddr> {
        addr_at(self.0, SOURCE, self.family())
    }

    pub(super) fn destinations(&self) -> usize {
        usize::from(self.0.get(DEST_COUNT).copied().unwrap_or(0)).min(MAX_DESTINATIONS)
    }

    /// Destination `k` and the advertisement for it (its checksum patched in) written to
    /// `out`: `(destination, length)`.
    pub(super) fn advert_for(&self, k: usize, out: &mut [u8]) -> Option<(IpAddr, usize)> {
        if k >= self.destinations() {
            return None;
        }
        let to = addr_at(self.0, DESTINATIONS + 16 * k, self.family())?;
        let len = usize::from(read_u16(self.0, ADVERT_LEN)?);
        if !(8..=ADVERT_MAX).contains(&len) {
            return None;
        }
        out.get_mut(..len)?
            .copy_from_slice(self.0.get(ADVERT..ADVERT + len)?);
        out.get_mut(6..8)?
            .copy_from_slice(self.0.get(CHECKSUMS + 2 * k..CHECKSUMS + 2 * k + 2)?);
        Some((to, len))
    }

    /// The advertisement interval its advert carries (VRRPv2: seconds in byte 5; VRRPv3:
    /// centiseconds in the low 12 bits of bytes 4-5).
    pub(super) fn advert_interval(&self) -> Option<std::time::Duration> {
        let advert = self.0.get(ADVERT..ADVERT + 6)?;
        Some(match advert[0] >> 4 {
            2 => std::time::Duration::from_secs(u64::from(advert[5])),
            3 => {
                let centis = u16::from_be_bytes([advert[4] & 0x0f, advert[5]]);
                std::time::Duration::from_millis(u64::from(centis) * 10)
            }
            _ => return None,
        })
    }

    pub(super) fn vips(&self) -> usize {
        usize::from(self.0.get(VIP_COUNT).copied().unwrap_or(0)).min(MAX_ADDRESSES)
    }

    pub(super) fn vip(&self, k: usize) -> Option<SlotVip> {
        if k >= self.vips() {
            return None;
        }
        let at = VIPS + VIP_LEN * k;
        Some(SlotVip {
            ifindex: read_u32(self.0, at)?,
            prefix_len: *self.0.get(at + 4)?,
            address: addr_at(self.0, at + 8, *self.0.get(at + 5)?)?,
        })
    }
}

/// The buffer size [`SlotView::advert_for`] needs.
pub(super) const ADVERT_BUFFER: usize = ADVERT_MAX;

#[cfg(test)]
mod tests {
    use super::*;
    use vrrp_core::packet::{
        Advertisement, Authentication, ChecksumKind, ChecksumMode, Password, Version, Vrid,
    };

    fn index_of(name: &str) -> Result<u32, GuardError> {
        Ok(if name == "eth0" { 2 } else { 7 })
    }

    fn config(peers: Vec<IpAddr>) -> Config {
        let mut c = Config::new(
            Vrid::new(51).expect("51"),
            IpAddr::from([10, 99, 0, 11]),
            vec![
                IpAddr::from([10, 99, 0, 200]),
                IpAddr::from([10, 99, 0, 201]),
            ],
        );
        c.unicast_peers = peers;
        c
    }

    #[test]
    fn a_multicast_slot_holds_the_priority_0_advert_for_the_group() {
        let vips = [
            Vip::parse("10.99.0.200/24", "eth0").expect("vip"),
            Vip::parse("10.99.0.201/32", "vrrp.51").expect("vip"),
        ];
        let s = encode_slot("VI_1", &config(vec![]), 2, &vips, &index_of).expect("slot");
        let v = SlotView(&s);
        assert_eq!(v.flags(), VALID);
        assert!(!v.is(MASTER) && !v.is(HOLDING));
        assert_eq!((v.vrid(), v.family(), v.ifindex()), (51, 4, 2));
        assert_eq!(v.name(), b"VI_1");
        assert_eq!(v.source(), Some(IpAddr::from([10, 99, 0, 11])));
        let mut out = [0u8; ADVERT_BUFFER];
        let (to, len) = v.advert_for(0, &mut out).expect("advert");
        assert_eq!(to, IpAddr::from(MULTICAST_V4));
        assert!(v.advert_for(1, &mut out).is_none());
        let ad = Advertisement::parse(&out[..len], AddressFamily::Ipv4).expect("parses");
        assert_eq!((ad.vrid().get(), ad.priority().get()), (51, 0));
        assert_eq!(ad.version(), Version::V3);
        assert_eq!(
            ad.verify_checksum(IpAddr::from([10, 99, 0, 11]), to, ChecksumMode::default()),
            Ok(ChecksumKind::PseudoHeader)
        );
        assert_eq!(
            v.vip(1),
            Some(SlotVip {
                ifindex: 7,
                prefix_len: 32,
                address: IpAddr::from([10, 99, 0, 201])
            })
        );
        assert!(v.vip(2).is_none());
    }

    #[test]
    fn the_slot_knows_its_advert_interval_in_either_version() {
        let mut c = config(vec![]);
        c.advert_interval =
            vrrp_core::packet::AdvertInterval::try_from(std::time::Duration::from_millis(250))
                .expect("250 ms");
        let s = encode_slot("VI_1", &c, 2, &[], &index_of).expect("slot");
        assert_eq!(
            SlotView(&s).advert_interval(),
            Some(std::time::Duration::from_millis(250))
        );
        c.version = Version::V2;
        c.advert_interval =
            vrrp_core::packet::AdvertInterval::try_from(std::time::Duration::from_secs(3))
                .expect("3 s");
        let s = encode_slot("VI_1", &c, 2, &[], &index_of).expect("slot");
        assert_eq!(
            SlotView(&s).advert_interval(),
            Some(std::time::Duration::from_secs(3))
        );
    }

    #[test]
    fn each_unicast_peer_gets_its_own_checksum() {
        let peers = vec![IpAddr::from([10, 99, 0, 12]), IpAddr::from([10, 99, 0, 13])];
        let s = encode_slot("VI_1", &config(peers.clone()), 2, &[], &index_of).expect("slot");
        let v = SlotView(&s);
        let mut out = [0u8; ADVERT_BUFFER];
        for (k, peer) in peers.iter().enumerate() {
            let (to, len) = v.advert_for(k, &mut out).expect("advert");
            assert_eq!(to, *peer);
            let ad = Advertisement::parse(&out[..len], AddressFamily::Ipv4).expect("parses");
            assert_eq!(
                ad.verify_checksum(IpAddr::from([10, 99, 0, 11]), to, ChecksumMode::default()),
                Ok(ChecksumKind::PseudoHeader)
            );
        }
    }

    #[test]
    fn v2_with_a_password_and_ipv6_round_trip() {
        let mut c = config(vec![]);
        c.version = Version::V2;
        c.authentication = Authentication::SimpleText(Password::new("secret12").expect("pw"));
        let s = encode_slot("VI_1", &c, 2, &[], &index_of).expect("slot");
        let mut out = [0u8; ADVERT_BUFFER];
        let (_, len) = SlotView(&s).advert_for(0, &mut out).expect("advert");
        let ad = Advertisement::parse(&out[..len], AddressFamily::Ipv4).expect("parses");
        assert_eq!(ad.auth_data(), Some(b"secret12"));
        assert_eq!(ad.priority().get(), 0);

        let mut c6 = Config::new(
            Vrid::new(7).expect("7"),
            "fe80::1".parse().expect("ll"),
            vec!["fd99::200".parse().expect("vip")],
        );
        c6.checksum = ChecksumMode::default();
        let vips = [Vip::parse("fd99::200/64", "eth0").expect("vip")];
        let s = encode_slot("v6", &c6, 2, &vips, &index_of).expect("slot");
        let v = SlotView(&s);
        let (to, len) = v.advert_for(0, &mut out).expect("advert");
        assert_eq!(to, IpAddr::from(MULTICAST_V6));
        assert_eq!(len, 8 + 16);
        assert_eq!(v.vip(0).map(|x| x.prefix_len), Some(64));
    }

    #[test]
    fn limits_are_errors_that_name_the_instance() {
        let peers = (0..17u8).map(|i| IpAddr::from([10, 0, 0, i])).collect();
        let e = encode_slot("big", &config(peers), 2, &[], &index_of).expect_err("too many");
        assert!(
            e.to_string().contains("big") && e.to_string().contains("16"),
            "{e}"
        );
    }

    #[test]
    fn garbage_reads_as_nothing() {
        let junk = [0xffu8; 100];
        let v = SlotView(&junk);
        let mut out = [0u8; ADVERT_BUFFER];
        assert!(v.advert_for(0, &mut out).is_none());
        assert!(v.vip(0).is_none());
        assert_eq!(slots_of(&junk), None);
        let h = header(4, 1);
        assert_eq!(slots_of(&h), Some(4));
    }

    #[test]
    fn long_names_are_cut_at_a_character_boundary() {
        let name = "é".repeat(40);
        assert_eq!(truncated(&name).len(), 32);
        assert!(std::str::from_utf8(truncated(&name)).is_ok());
    }
}
