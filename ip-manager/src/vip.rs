//! [`Vip`]: a virtual address on an interface.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::Error;

/// A virtual IP address: address and prefix length on a named interface, with an optional
/// label (IPv4 only; the kernel requires it to start with the interface name, as `eth0:vip`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Vip {
    /// The address.
    pub address: IpAddr,
    /// The prefix length (0..=32 for IPv4, 0..=128 for IPv6).
    pub prefix_len: u8,
    /// The interface: its name as `ip link` shows it, or its index in decimal (`"3"`).
    pub interface: String,
    /// An IPv4 address label (`ip addr add ... label eth0:vip`).
    pub label: Option<String>,
}

impl Vip {
    /// `address/prefix_len` on `interface`, checking the prefix length and label rules.
    pub fn new(
        address: IpAddr,
        prefix_len: u8,
        interface: impl Into<String>,
    ) -> Result<Vip, Error> {
        let vip = Vip {
            address,
            prefix_len,
            interface: interface.into(),
            label: None,
        };
        vip.validate()?;
        Ok(vip)
    }

    /// Parses `"10.99.0.200/24"` or `"fd99::200/64"` (a bare address gets /32 or /128) on
    /// `interface`.
    pub fn parse(cidr: &str, interface: impl Into<String>) -> Result<Vip, Error> {
        let invalid = |why: &str| Error::InvalidVip {
            vip: cidr.to_owned(),
            reason: why.to_owned(),
        };
        let (addr, len) = match cidr.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (cidr, None),
        };
        let address = IpAddr::from_str(addr).map_err(|_| invalid("not an IPv4 or IPv6 address"))?;
        let prefix_len = match len {
            Some(l) => l
                .parse()
                .map_err(|_| invalid("the prefix length is not a number"))?,
            None if address.is_ipv4() => 32,
            None => 128,
        };
        Vip::new(address, prefix_len, interface)
    }

    /// Sets the label (IPv4 only).
    pub fn with_label(mut self, label: impl Into<String>) -> Result<Vip, Error> {
        self.label = Some(label.into());
        self.validate()?;
        Ok(self)
    }

    fn validate(&self) -> Result<(), Error> {
        let invalid = |why: String| Error::InvalidVip {
            vip: self.to_string(),
            reason: why,
        };
        let max = if self.address.is_ipv4() { 32 } else { 128 };
        if self.prefix_len > max {
            return Err(invalid(format!(
                "prefix length {} exceeds {max}",
                self.prefix_len
            )));
        }
        if self.interface.is_empty() || self.interface.len() > 15 {
            return Err(invalid(format!(
                "interface name {:?} must be 1..=15 bytes",
                self.interface
            )));
        }
        if let Some(label) = &self.label {
            if self.address.is_ipv6() {
                return Err(invalid("labels exist for IPv4 addresses only".into()));
            }
            if !label.starts_with(&self.interface) || label.len() > 15 {
                return Err(invalid(format!(
                    "label {label:?} must start with the interface name {:?} and be at most 15 bytes",
                    self.interface
                )));
            }
        }
        Ok(())
    }
}

impl fmt::Display for Vip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} dev {}",
            self.address, self.prefix_len, self.interface
        )?;
        if let Some(l) = &self.label {
            write!(f, " label {l}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cidr_and_defaults_host_prefix() {
        let v = Vip::parse("10.99.0.200/24", "eth0").unwrap();
        assert_eq!(
            (v.address, v.prefix_len),
            (IpAddr::from([10, 99, 0, 200]), 24)
        );
        assert_eq!(Vip::parse("fd99::200", "eth0").unwrap().prefix_len, 128);
        assert_eq!(v.to_string(), "10.99.0.200/24 dev eth0");
    }

    #[test]
    fn bad_input_names_the_field() {
        let e = Vip::parse("10.99.0.300/24", "eth0")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("10.99.0.300/24") && e.contains("not an IPv4"),
            "{e}"
        );
        let e = Vip::parse("10.0.0.1/33", "eth0").unwrap_err().to_string();
        assert!(e.contains("exceeds 32"), "{e}");
        let e = Vip::parse("10.0.0.1/x", "eth0").unwrap_err().to_string();
        assert!(e.contains("prefix length"), "{e}");
        assert!(Vip::parse("10.0.0.1/24", "").is_err());
        let v = Vip::parse("10.0.0.1/24", "eth0").unwrap();
        assert!(v.clone().with_label("eth0:vip").is_ok());
        let e = v.with_label("vip").unwrap_err().to_string();
        assert!(e.contains("must start with the interface name"), "{e}");
        assert!(
            Vip::parse("fd99::1/64", "eth0")
                .unwrap()
                .with_label("eth0:x")
                .is_err()
        );
    }
}
