//! # ip-manager
//!
//! Virtual IP management behind one async trait: netlink (with gratuitous ARP and unsolicited
//! neighbour advertisements), AWS (Elastic IP and secondary private IP moves) and exec hooks.
//!
//! **Not implemented yet**: this crate is reserved in the workspace so that the layout is fixed
//! from the start. The work is tracked in the project's ip-manager issue; nothing here is usable.
#![forbid(unsafe_code)]
