//! Who the client is, as far as the sign-in limit is concerned: the socket's peer, or,
//! when that peer is a proxy the admin trusts, the address the proxies recorded in
//! `X-Forwarded-For`.
//!
//! Behind a proxy every request comes from the proxy's address, so without this one
//! network's budget of failed sign-ins is everyone's, and 20 failures from anywhere lock
//! every user out. The header is read only from trusted peers: anyone else could write
//! any address into it and pick a fresh bucket per guess.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;

use crate::AppState;

/// A network of proxies whose `X-Forwarded-For` is believed: `10.0.0.0/8`,
/// `2001:db8::/32`, or one address (`192.0.2.1`, a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedProxy {
    network: IpAddr,
    prefix: u8,
}

/// A `trusted_proxies` entry that is not an address or a CIDR network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "\"{0}\" is not an IP address or a network in CIDR form (like 10.0.0.0/8 or 2001:db8::/32)"
)]
pub struct TrustedProxyError(String);

impl FromStr for TrustedProxy {
    type Err = TrustedProxyError;

    fn from_str(text: &str) -> Result<TrustedProxy, TrustedProxyError> {
        let refused = || TrustedProxyError(text.to_string());
        let (address, prefix) = match text.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text.trim(), None),
        };
        let network: IpAddr = address.parse().map_err(|_| refused())?;
        let bits = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix.parse::<u8>().map_err(|_| refused())?,
            None => bits,
        };
        if prefix > bits {
            return Err(refused());
        }
        Ok(TrustedProxy { network, prefix })
    }
}

impl TrustedProxy {
    /// Whether `ip` is in this network (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(network), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(network) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(network) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for TrustedProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// The client's address as [`client_address`] found it, kept in the request's
/// extensions for the sign-in limit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientAddress(pub IpAddr);

/// Middleware: works out the client's address once per request.
pub(crate) async fn find_client(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    if let Some(peer) = peer {
        let client = client_address(peer, request.headers(), &state.config().trusted_proxies);
        request.extensions_mut().insert(ClientAddress(client));
    }
    next.run(request).await
}

/// The socket's peer, unless it is a trusted proxy: then the rightmost address in
/// `X-Forwarded-For` that is not a trusted proxy (each proxy appends the address it
/// saw, so everything left of the first untrusted hop may be made up). When every hop is
/// trusted, the leftmost; when a hop does not read as an address, the nearest trusted
/// hop, which is as far as anything can be believed.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[TrustedProxy]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|proxy| proxy.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|value| value.to_str().unwrap_or("").split(','))
        .map(str::trim)
        .filter(|hop| !hop.is_empty())
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            return client;
        };
        client = ip;
        if !is_trusted(ip) {
            return ip;
        }
    }
    client
}

/// An address as proxies write it: bare, or with a port (`192.0.2.1:4711`, `[2001:db8::1]:4711`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|socket| socket.ip()))
        .map(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(list: &[&str]) -> Vec<TrustedProxy> {
        list.iter().map(|p| p.parse().expect("valid")).collect()
    }

    fn forwarded(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", value.parse().expect("header"));
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn cidr_networks_contain_their_addresses() {
        let net: TrustedProxy = "10.0.0.0/8".parse().expect("valid");
        assert!(net.contains(ip("10.200.0.1")));
        assert!(net.contains(ip("::ffff:10.0.0.1")));
        assert!(!net.contains(ip("11.0.0.1")));
        let v6: TrustedProxy = "2001:db8::/32".parse().expect("valid");
        assert!(v6.contains(ip("2001:db8:1::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        let one: TrustedProxy = "192.0.2.1".parse().expect("valid");
        assert!(one.contains(ip("192.0.2.1")) && !one.contains(ip("192.0.2.2")));
        let all: TrustedProxy = "0.0.0.0/0".parse().expect("valid");
        assert!(all.contains(ip("203.0.113.9")));
    }

    #[test]
    fn nonsense_networks_are_refused() {
        for text in [
            "10.0.0.0/33",
            "proxy.example.com",
            "10.0.0.0/x",
            "::/129",
            "",
        ] {
            assert!(text.parse::<TrustedProxy>().is_err(), "{text}");
        }
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let headers = forwarded("203.0.113.66, 198.51.100.7, 10.0.0.2");
        assert_eq!(
            client_address(ip("10.0.0.1"), &headers, &trusted),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn the_header_is_ignored_from_untrusted_peers() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let headers = forwarded("198.51.100.7");
        assert_eq!(
            client_address(ip("192.0.2.10"), &headers, &trusted),
            ip("192.0.2.10")
        );
        assert_eq!(
            client_address(ip("10.0.0.1"), &headers, &[]),
            ip("10.0.0.1"),
            "no proxy is trusted by default"
        );
    }

    #[test]
    fn a_garbled_hop_stops_at_the_nearest_trusted_one() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let headers = forwarded("198.51.100.7, unknown, 10.0.0.2");
        assert_eq!(
            client_address(ip("10.0.0.1"), &headers, &trusted),
            ip("10.0.0.2")
        );
        assert_eq!(
            client_address(ip("10.0.0.1"), &forwarded("[2001:db8::5]:4711"), &trusted),
            ip("2001:db8::5")
        );
    }
}
