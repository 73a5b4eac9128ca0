//! The crate's only `unsafe`: an `AF_PACKET` socket must be bound to an interface with a
//! `sockaddr_ll`, which socket2 has no safe constructor for.
#![allow(unsafe_code)]

use socket2::{SockAddr, SockAddrStorage, socklen_t};

/// The link-layer address of interface `ifindex` for frames of EtherType `protocol`.
pub(super) fn link_layer(ifindex: u32, protocol: u16) -> SockAddr {
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: sockaddr_storage is at least as large and as aligned as sockaddr_ll (both are
    // kernel ABI types, storage is defined to hold any sockaddr), and all-zero bytes are a
    // valid sockaddr_ll, whose fields are plain integers.
    let ll = unsafe { storage.view_as::<libc::sockaddr_ll>() };
    ll.sll_family = libc::AF_PACKET as libc::sa_family_t;
    ll.sll_protocol = protocol.to_be();
    ll.sll_ifindex = i32::try_from(ifindex).unwrap_or(i32::MAX);
    let len = std::mem::size_of::<libc::sockaddr_ll>() as socklen_t;
    // SAFETY: `storage` holds an initialised sockaddr_ll of exactly `len` bytes whose family
    // field says so, which is the contract of SockAddr::new.
    unsafe { SockAddr::new(storage, len) }
}
