//! Which network interfaces the registry multicasts on: [`Interfaces`], read from
//! `--registry_address`, and the selection it makes in the daemon.

use std::net::IpAddr;

use mdns_sd::{IfKind, ServiceDaemon};

use crate::error::{Code, Error, Result};

/// Which network interfaces the registry multicasts on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Interfaces {
    /// Loopback, plus the interface of each non-loopback node address registered.
    #[default]
    Auto,
    /// Only the interface that has this IP.
    Only(IpAddr),
    /// Every interface, as go-micro's mDNS registry does.
    All,
}

impl Interfaces {
    /// The interfaces named by `--registry_address`: empty for [`Interfaces::Auto`],
    /// `0.0.0.0` or `::` for [`Interfaces::All`], an interface's IP for [`Interfaces::Only`].
    pub fn from_address(address: &str) -> Result<Interfaces> {
        let address = address.trim();
        if address.is_empty() {
            return Ok(Interfaces::Auto);
        }
        let ip: IpAddr = address.parse().map_err(|_| {
            Error::new(
                Code::InvalidArgument,
                format!(
                    "mdns registry address {address:?} is not an IP: name the interface's IP, \
                     0.0.0.0 for all interfaces, or nothing for loopback"
                ),
            )
        })?;
        Ok(if ip.is_unspecified() {
            Interfaces::All
        } else {
            Interfaces::Only(ip)
        })
    }

    /// Tells `daemon` to multicast on these interfaces only ([`Interfaces::Auto`] starts on
    /// loopback).
    pub(super) fn select(self, daemon: &ServiceDaemon) -> std::result::Result<(), mdns_sd::Error> {
        match self {
            Interfaces::All => Ok(()),
            Interfaces::Auto => daemon.disable_interface(IfKind::All).and_then(|()| {
                daemon.enable_interface(vec![IfKind::LoopbackV4, IfKind::LoopbackV6])
            }),
            Interfaces::Only(ip) => daemon
                .disable_interface(IfKind::All)
                .and_then(|()| daemon.enable_interface(IfKind::Addr(ip))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_address_names_the_interfaces() {
        assert_eq!(Interfaces::from_address("").unwrap(), Interfaces::Auto);
        assert_eq!(
            Interfaces::from_address("0.0.0.0").unwrap(),
            Interfaces::All
        );
        assert_eq!(Interfaces::from_address("::").unwrap(), Interfaces::All);
        assert_eq!(
            Interfaces::from_address(" 192.0.2.7 ").unwrap(),
            Interfaces::Only("192.0.2.7".parse().unwrap())
        );
        for bad in ["eth0", "127.0.0.1:5353", "/tmp/dir"] {
            assert_eq!(
                Interfaces::from_address(bad).unwrap_err().code(),
                Code::InvalidArgument
            );
        }
    }
}
