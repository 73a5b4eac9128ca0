//! VRRPv2 authentication (RFC 3768 §5.3.6, RFC 2338 §5.3.6).
//!
//! RFC 3768 removed authentication from the protocol but keeps the 8-byte field; keepalived
//! still sends and checks the RFC 2338 simple text password (`auth_type PASS`), so this crate
//! speaks it for interop. IP Authentication Header (type 2) is recognised on the wire and
//! rejected: it needs IPsec state this crate does not keep. VRRPv3 has no authentication.

use std::fmt;

use super::error::FieldError;

/// The Auth Type byte of a VRRPv2 advertisement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthType {
    /// 0: no authentication; the 8-byte data field is zero.
    NoAuthentication,
    /// 1: simple text password in the 8-byte data field (RFC 2338), keepalived's `PASS`.
    SimpleText,
    /// 2: IP Authentication Header (RFC 2338), keepalived's `AH`. Not supported.
    IpAuthenticationHeader,
}

impl AuthType {
    /// The byte written on the wire.
    pub const fn number(self) -> u8 {
        match self {
            AuthType::NoAuthentication => 0,
            AuthType::SimpleText => 1,
            AuthType::IpAuthenticationHeader => 2,
        }
    }

    /// The auth type with this wire number, if it is one of the three defined.
    pub const fn from_number(n: u8) -> Option<AuthType> {
        match n {
            0 => Some(AuthType::NoAuthentication),
            1 => Some(AuthType::SimpleText),
            2 => Some(AuthType::IpAuthenticationHeader),
            _ => None,
        }
    }
}

impl fmt::Display for AuthType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthType::NoAuthentication => "0 (none)",
            AuthType::SimpleText => "1 (simple text password)",
            AuthType::IpAuthenticationHeader => "2 (IP Authentication Header)",
        })
    }
}

/// A simple text password: up to 8 bytes, zero-padded to 8 on the wire.
///
/// keepalived silently truncates a longer `auth_pass` to 8 characters; this type refuses it
/// instead, so two configs that look different never authenticate as equal.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Password([u8; 8]);

impl Password {
    /// The password `secret`: 1 to 8 bytes, none of them NUL (a NUL would be read back as
    /// padding by other implementations).
    pub fn new(secret: impl AsRef<[u8]>) -> Result<Password, FieldError> {
        let secret = secret.as_ref();
        if secret.is_empty() {
            return Err(FieldError::PasswordEmpty);
        }
        if secret.len() > 8 {
            return Err(FieldError::PasswordTooLong { len: secret.len() });
        }
        if secret.contains(&0) {
            return Err(FieldError::PasswordNul);
        }
        let mut data = [0u8; 8];
        data[..secret.len()].copy_from_slice(secret);
        Ok(Password(data))
    }

    /// The 8 bytes as they appear on the wire.
    pub const fn as_wire(&self) -> &[u8; 8] {
        &self.0
    }
}

impl fmt::Debug for Password {
    // Never print the secret: configs and packet dumps end up in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

/// The authentication a VRRPv2 instance sends and requires.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Authentication {
    /// Auth type 0 (the RFC 3768 behaviour and the only one VRRPv3 has).
    #[default]
    None,
    /// Auth type 1 with this password (keepalived `authentication { auth_type PASS }`).
    SimpleText(Password),
}

impl Authentication {
    /// The wire auth type this authentication sends.
    pub const fn auth_type(&self) -> AuthType {
        match self {
            Authentication::None => AuthType::NoAuthentication,
            Authentication::SimpleText(_) => AuthType::SimpleText,
        }
    }

    /// The 8-byte authentication data field this authentication sends.
    pub const fn wire_data(&self) -> [u8; 8] {
        match self {
            Authentication::None => [0; 8],
            Authentication::SimpleText(p) => p.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_zero_padded_to_eight_bytes_rfc2338_5_3_6() {
        let p = Password::new("secret").unwrap();
        assert_eq!(p.as_wire(), b"secret\0\0");
        assert_eq!(Password::new("secret12").unwrap().as_wire(), b"secret12");
    }

    #[test]
    fn password_refuses_what_keepalived_would_truncate() {
        assert_eq!(
            Password::new("secret123"),
            Err(FieldError::PasswordTooLong { len: 9 })
        );
        assert_eq!(Password::new(""), Err(FieldError::PasswordEmpty));
        assert_eq!(Password::new(b"a\0b"), Err(FieldError::PasswordNul));
    }

    #[test]
    fn password_debug_hides_the_secret() {
        let p = Password::new("hunter2").unwrap();
        assert!(!format!("{p:?}").contains("hunter2"));
    }

    #[test]
    fn auth_type_numbers_round_trip() {
        for n in 0..=255u8 {
            if let Some(t) = AuthType::from_number(n) {
                assert_eq!(t.number(), n);
            } else {
                assert!(n > 2);
            }
        }
    }
}
