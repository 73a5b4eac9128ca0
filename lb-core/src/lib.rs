//! # lb-core
//!
//! Load-balancing algorithms as tower services: HAProxy's `roundrobin`, `static-rr`,
//! `leastconn`, `first`, `source`, `uri`, `hdr(NAME)`, nginx's smooth weighted round robin,
//! power of two choices, consistent hashing and cookie stickiness.
//!
//! **Not implemented yet**: this crate is reserved in the workspace so that the layout is fixed
//! from the start. The work is tracked in the project's lb-core issue; nothing here is usable.
#![forbid(unsafe_code)]
