//! # health-check
//!
//! Pluggable health checks (TCP, HTTP, exec, process) driven by a monitor with HAProxy's and
//! keepalived's `interval`, `timeout`, `rise` and `fall`.
//!
//! **Not implemented yet**: this crate is reserved in the workspace so that the layout is fixed
//! from the start. The work is tracked in the project's health-check issue; nothing here is usable.
#![forbid(unsafe_code)]
