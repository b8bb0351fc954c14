//! Domain control validation: publishing DigiCert's random values where DigiCert
//! looks for them (DNS records, files over HTTP) and taking them down again.

pub mod dnsendpoint;
pub mod http;
pub mod record;
pub mod rfc2136;
pub mod solver;
mod tsig;

/// The first nameserver of /etc/resolv.conf, on port 53.
pub fn system_resolver() -> Option<std::net::SocketAddr> {
    let text = std::fs::read_to_string("/etc/resolv.conf").ok()?;
    first_nameserver(&text)
}

fn first_nameserver(resolv_conf: &str) -> Option<std::net::SocketAddr> {
    resolv_conf.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next()? == "nameserver")
            .then(|| words.next()?.parse::<std::net::IpAddr>().ok())
            .flatten()
            .map(|ip| std::net::SocketAddr::new(ip, 53))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_first_nameserver_is_used() {
        let conf =
            "# generated\nsearch svc.cluster.local\nnameserver 10.96.0.10\nnameserver 1.1.1.1\n";
        assert_eq!(
            super::first_nameserver(conf),
            Some("10.96.0.10:53".parse().unwrap())
        );
        assert_eq!(super::first_nameserver("nameserver fe80::1%eth0\n"), None);
        assert_eq!(
            super::first_nameserver("nameserver ::1\n"),
            Some("[::1]:53".parse().unwrap())
        );
    }
}
