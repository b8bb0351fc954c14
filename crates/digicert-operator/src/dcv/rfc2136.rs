//! Publishing validation records with DNS dynamic updates (RFC 2136), signed with a
//! TSIG key (RFC 8945), sent over TCP to the zone's primary server.

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use hickory_client::client::Client;
use hickory_proto::ProtoError;
use hickory_proto::ProtoErrorKind;
use hickory_proto::op::{Message, MessageFinalizer, ResponseCode, UpdateMessage, update_message};
use hickory_proto::rr::rdata::{CNAME, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordSet, RecordType};
use hickory_proto::runtime::TokioRuntimeProvider;
use hickory_proto::tcp::TcpClientStream;
use hickory_proto::xfer::{DnsHandle, DnsResponse, FirstAnswer};

use super::record::{DnsRecord, RecordData, in_zone, normalize};
use super::tsig::{ErrorsUnverified, TSIG_FUDGE};
pub use super::tsig::{TSIG_ALGORITHMS, Tsig};

/// What the server answers for a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Visibility {
    Visible,
    /// Not there; `saw` says what the server answered instead.
    NotVisible {
        saw: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("invalid TSIG key: {0}")]
    InvalidTsig(String),
    #[error("invalid DNS name {name:?}: {detail}")]
    InvalidName { name: String, detail: String },
    /// The update was rejected: `reason` starts with the response code and says
    /// what to check.
    #[error("DNS server {server} refused to change {name} in zone {zone}: {reason}")]
    Refused {
        server: SocketAddr,
        zone: String,
        name: String,
        reason: String,
    },
    #[error("{name} is not in zone {zone} configured for DNS server {server}")]
    NotInConfiguredZone {
        server: SocketAddr,
        zone: String,
        name: String,
    },
    #[error(
        "DNS server {server} is not authoritative for {name}{zone_note} ({detail}); \
         point the provider at the primary server of the zone holding {name}"
    )]
    NotAuthoritative {
        server: SocketAddr,
        name: String,
        zone_note: String,
        detail: String,
    },
    #[error("DNS server {server} failed (SERVFAIL) on {what}; see the server's log")]
    ServerFailure { server: SocketAddr, what: String },
    #[error("DNS server {server} did not answer {what} within {timeout:?}")]
    Timeout {
        server: SocketAddr,
        what: String,
        timeout: Duration,
    },
    #[error("DNS server {server} is unreachable for {what}: {detail}")]
    Unreachable {
        server: SocketAddr,
        what: String,
        detail: String,
    },
    #[error("DNS server {server} answered {what} with {rcode}")]
    Unexpected {
        server: SocketAddr,
        what: String,
        rcode: String,
    },
}

/// An RFC 2136 server and how to talk to it.
#[derive(Clone, Debug)]
pub struct Rfc2136 {
    server: SocketAddr,
    zone: Option<String>,
    tsig: Option<Tsig>,
    timeout: Duration,
}

impl Rfc2136 {
    /// Updates to `server`, unsigned, the zone found by asking it, 10 s per exchange.
    pub fn new(server: SocketAddr) -> Self {
        Rfc2136 {
            server,
            zone: None,
            tsig: None,
            timeout: Duration::from_secs(10),
        }
    }

    /// Every record must be inside this zone (no SOA look-up).
    pub fn with_zone(mut self, zone: &str) -> Self {
        self.zone = Some(normalize(zone));
        self
    }

    pub fn with_tsig(mut self, tsig: Tsig) -> Self {
        self.tsig = Some(tsig);
        self
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// The zone holding `fqdn`: the configured one (checked), else the one the server
    /// names in the SOA it answers for `fqdn` or one of its parents.
    pub async fn zone_for(&self, fqdn: &str) -> Result<String, DnsError> {
        let fqdn = normalize(fqdn);
        if let Some(zone) = &self.zone {
            if in_zone(&fqdn, zone) {
                return Ok(zone.clone());
            }
            return Err(DnsError::NotInConfiguredZone {
                server: self.server,
                zone: zone.clone(),
                name: fqdn,
            });
        }
        let mut candidate = fqdn.as_str();
        loop {
            if let Some(zone) = self.soa_owner(&fqdn, candidate).await? {
                return Ok(zone);
            }
            match candidate.split_once('.') {
                Some((_, parent)) if !parent.is_empty() => candidate = parent,
                _ => return Err(self.not_authoritative(&fqdn, "no SOA found for it")),
            }
        }
    }

    /// The zone named by the server's SOA for `candidate` (answer or authority), None
    /// when it gives none (e.g. `candidate` is a CNAME).
    async fn soa_owner(&self, fqdn: &str, candidate: &str) -> Result<Option<String>, DnsError> {
        let what = format!("the SOA query for {candidate}");
        let response = self.query(candidate, RecordType::SOA, &what).await?;
        match response.response_code() {
            ResponseCode::NoError | ResponseCode::NXDomain => {}
            ResponseCode::Refused | ResponseCode::NotAuth => {
                let detail = format!("{} to {what}", rcode_name(response.response_code()));
                return Err(self.not_authoritative(fqdn, &detail));
            }
            rcode => return Err(self.rcode_error(rcode, &what)),
        }
        let soa = response
            .answers()
            .iter()
            .chain(response.name_servers())
            .find(|r| r.record_type() == RecordType::SOA);
        if let Some(soa) = soa {
            return Ok(Some(normalize(&soa.name().to_ascii())));
        }
        // A referral: the name is delegated to other servers.
        if response
            .name_servers()
            .iter()
            .any(|r| r.record_type() == RecordType::NS)
        {
            return Err(self.not_authoritative(fqdn, "it answered with a delegation"));
        }
        Ok(None)
    }

    /// Adds the record to its RRset: a TXT joins the TXT strings already there, a
    /// CNAME replaces any CNAME of the name.
    pub async fn add(&self, record: &DnsRecord) -> Result<(), DnsError> {
        let (zone, mut rr) = self.prepare(record).await?;
        let zone_name = dns_name(&zone)?;
        let mut message = match &record.data {
            RecordData::Txt(_) => {
                // An RRset has one TTL: joining the TXT strings there keeps theirs.
                if let Some(ttl) = self.rrset_ttl(rr.name(), RecordType::TXT).await? {
                    rr.set_ttl(ttl);
                }
                update_message::append(rr.into(), zone_name, false, false)
            }
            RecordData::Cname(_) => {
                let mut old = rr.clone();
                old.set_data(RData::Update0(RecordType::CNAME));
                let mut message = update_message::delete_rrset(old, zone_name, false);
                message.add_update(rr);
                message
            }
        };
        message.set_id(rand::random());
        self.update(message, record, &zone, "add").await
    }

    /// The TTL of the `rtype` RRset at `name`, if there is one.
    async fn rrset_ttl(&self, name: &Name, rtype: RecordType) -> Result<Option<u32>, DnsError> {
        let text = name.to_ascii();
        let what = format!("the {rtype} query for {text}");
        let response = self.query(&text, rtype, &what).await?;
        Ok(response
            .answers()
            .iter()
            .find(|r| r.record_type() == rtype && r.name() == name)
            .map(|r| r.ttl()))
    }

    /// Deletes exactly this record (name, type and data), leaving the others.
    pub async fn remove(&self, record: &DnsRecord) -> Result<(), DnsError> {
        let (zone, rr) = self.prepare(record).await?;
        let set: RecordSet = rr.into();
        let message = update_message::delete_by_rdata(set, dns_name(&zone)?, false);
        self.update(message, record, &zone, "remove").await
    }

    /// Whether the server answers the record (its type at its name, this data).
    pub async fn lookup(&self, record: &DnsRecord) -> Result<Visibility, DnsError> {
        lookup_at(self.server, record, self.timeout).await
    }

    /// The zone of the record and the record in hickory's form, checked to be inside
    /// the zone (hickory's update builders assert that).
    async fn prepare(&self, record: &DnsRecord) -> Result<(String, Record), DnsError> {
        let zone = self.zone_for(&record.name).await?;
        let rr = to_record(record)?;
        if !dns_name(&zone)?.zone_of(rr.name()) {
            return Err(DnsError::NotInConfiguredZone {
                server: self.server,
                zone,
                name: record.fqdn(),
            });
        }
        Ok((zone, rr))
    }

    async fn update(
        &self,
        message: Message,
        record: &DnsRecord,
        zone: &str,
        verb: &str,
    ) -> Result<(), DnsError> {
        let what = format!("the update to {verb} {record}");
        let signer = match &self.tsig {
            Some(tsig) => Some(Arc::new(ErrorsUnverified(tsig.signer()?)) as Arc<_>),
            None => None,
        };
        let response = self.exchange(message, signer, &what).await?;
        match response.response_code() {
            ResponseCode::NoError => Ok(()),
            ResponseCode::Refused | ResponseCode::NotAuth => {
                Err(self.refused(response.response_code(), zone, record))
            }
            ResponseCode::NotZone => Err(self.not_authoritative(
                &record.fqdn(),
                &format!("NOTZONE: {} is not in zone {zone} there", record.fqdn()),
            )),
            rcode => Err(self.rcode_error(rcode, &what)),
        }
    }

    async fn query(
        &self,
        name: &str,
        rtype: RecordType,
        what: &str,
    ) -> Result<DnsResponse, DnsError> {
        query_at(self.server, name, rtype, self.timeout, what).await
    }

    async fn exchange(
        &self,
        message: Message,
        signer: Option<Arc<dyn MessageFinalizer>>,
        what: &str,
    ) -> Result<DnsResponse, DnsError> {
        exchange(self.server, message, signer, self.timeout, what).await
    }

    fn refused(&self, rcode: ResponseCode, zone: &str, record: &DnsRecord) -> DnsError {
        let hint = match (&self.tsig, rcode) {
            (None, _) => "no TSIG key is configured and the server does not accept \
                          unsigned updates; configure a TSIG key the server allows to \
                          update the zone"
                .to_string(),
            (Some(t), ResponseCode::NotAuth) => format!(
                "the server did not accept TSIG key {:?} ({}): its name, algorithm or \
                 secret differs from the server's, the clocks differ by more than \
                 {TSIG_FUDGE} s, or the server is not authoritative for the zone",
                t.name, t.algorithm
            ),
            (Some(t), _) => format!(
                "TSIG key {:?} is not allowed to update this zone, or the key is \
                 unknown to the server; check the server's update policy (ACL)",
                t.name
            ),
        };
        DnsError::Refused {
            server: self.server,
            zone: zone.to_string(),
            name: record.fqdn(),
            reason: format!("{}: {hint}", rcode_name(rcode)),
        }
    }

    fn not_authoritative(&self, fqdn: &str, detail: &str) -> DnsError {
        let zone_note = match &self.zone {
            Some(zone) => format!(" (configured zone {zone})"),
            None => String::new(),
        };
        DnsError::NotAuthoritative {
            server: self.server,
            name: fqdn.to_string(),
            zone_note,
            detail: detail.to_string(),
        }
    }

    fn rcode_error(&self, rcode: ResponseCode, what: &str) -> DnsError {
        rcode_error(self.server, rcode, what)
    }
}

/// Whether `server` answers the record (its type at its name, this data); otherwise
/// what it answered.
pub async fn lookup_at(
    server: SocketAddr,
    record: &DnsRecord,
    timeout: Duration,
) -> Result<Visibility, DnsError> {
    let rtype = match record.data {
        RecordData::Txt(_) => RecordType::TXT,
        RecordData::Cname(_) => RecordType::CNAME,
    };
    let what = format!("the {} query for {}", record.record_type(), record.fqdn());
    let response = query_at(server, &record.fqdn(), rtype, timeout, &what).await?;
    match response.response_code() {
        ResponseCode::NoError | ResponseCode::NXDomain => {}
        rcode => return Err(rcode_error(server, rcode, &what)),
    }
    let seen: Vec<String> = response
        .answers()
        .iter()
        .filter(|r| r.record_type() == rtype && normalize(&r.name().to_ascii()) == record.fqdn())
        .filter_map(|r| rdata_text(r.data()))
        .collect();
    let wanted = match &record.data {
        RecordData::Txt(text) => text.clone(),
        RecordData::Cname(target) => normalize(target),
    };
    if seen.contains(&wanted) {
        return Ok(Visibility::Visible);
    }
    let saw = if seen.is_empty() {
        format!(
            "no {} record ({})",
            record.record_type(),
            response.response_code()
        )
    } else {
        format!("{} {}", record.record_type(), seen.join(", "))
    };
    Ok(Visibility::NotVisible { saw })
}

/// TXT strings joined, CNAME targets normalized.
fn rdata_text(data: &RData) -> Option<String> {
    match data {
        RData::TXT(txt) => Some(
            txt.txt_data()
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect(),
        ),
        RData::CNAME(c) => Some(normalize(&c.0.to_ascii())),
        _ => None,
    }
}

async fn query_at(
    server: SocketAddr,
    name: &str,
    rtype: RecordType,
    timeout: Duration,
    what: &str,
) -> Result<DnsResponse, DnsError> {
    let name = dns_name(name)?;
    let mut message = Message::new();
    message
        .set_id(rand::random())
        .set_op_code(hickory_proto::op::OpCode::Query)
        .set_recursion_desired(false)
        .add_query(hickory_proto::op::Query::query(name, rtype));
    exchange(server, message, None, timeout, what).await
}

/// One request over a TCP connection of its own, within `timeout`.
async fn exchange(
    server: SocketAddr,
    message: Message,
    signer: Option<Arc<dyn MessageFinalizer>>,
    timeout: Duration,
    what: &str,
) -> Result<DnsResponse, DnsError> {
    let provider = TokioRuntimeProvider::new();
    let (stream, handle) = TcpClientStream::new(server, None, Some(timeout), provider);
    let transport = |e: ProtoError| transport_error(server, what, timeout, e);
    let work = async {
        let (client, bg) = Client::with_timeout(stream, handle, timeout, signer)
            .await
            .map_err(transport)?;
        let bg = tokio::spawn(bg);
        let result = client.send(message).first_answer().await;
        bg.abort();
        result.map_err(transport)
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(result) => result,
        Err(_) => Err(DnsError::Timeout {
            server,
            what: what.to_string(),
            timeout,
        }),
    }
}

fn transport_error(server: SocketAddr, what: &str, timeout: Duration, e: ProtoError) -> DnsError {
    let what = what.to_string();
    match e.kind() {
        ProtoErrorKind::Timeout => DnsError::Timeout {
            server,
            what,
            timeout,
        },
        _ => DnsError::Unreachable {
            server,
            what,
            detail: e.to_string(),
        },
    }
}

fn rcode_error(server: SocketAddr, rcode: ResponseCode, what: &str) -> DnsError {
    match rcode {
        ResponseCode::ServFail => DnsError::ServerFailure {
            server,
            what: what.to_string(),
        },
        _ => DnsError::Unexpected {
            server,
            what: what.to_string(),
            rcode: rcode_name(rcode),
        },
    }
}

/// The mnemonic of a response code (RFC 1035, 2136), as DNS tools print it.
pub fn rcode_name(rcode: ResponseCode) -> String {
    let name = match rcode {
        ResponseCode::NoError => "NOERROR",
        ResponseCode::FormErr => "FORMERR",
        ResponseCode::ServFail => "SERVFAIL",
        ResponseCode::NXDomain => "NXDOMAIN",
        ResponseCode::NotImp => "NOTIMP",
        ResponseCode::Refused => "REFUSED",
        ResponseCode::YXDomain => "YXDOMAIN",
        ResponseCode::YXRRSet => "YXRRSET",
        ResponseCode::NXRRSet => "NXRRSET",
        ResponseCode::NotAuth => "NOTAUTH",
        ResponseCode::NotZone => "NOTZONE",
        other => return format!("RCODE {}", u16::from(other)),
    };
    name.to_string()
}

fn dns_name(name: &str) -> Result<Name, DnsError> {
    Name::from_str(&format!("{}.", normalize(name))).map_err(|e| DnsError::InvalidName {
        name: name.to_string(),
        detail: e.to_string(),
    })
}

fn to_record(record: &DnsRecord) -> Result<Record, DnsError> {
    let name = dns_name(&record.name)?;
    let data = match &record.data {
        RecordData::Txt(text) => RData::TXT(TXT::new(txt_strings(text))),
        RecordData::Cname(target) => RData::CNAME(CNAME(dns_name(target)?)),
    };
    let mut rr = Record::from_rdata(name, record.ttl, data);
    rr.set_dns_class(DNSClass::IN);
    Ok(rr)
}

/// A TXT string longer than 255 bytes is split into character-strings, as resolvers
/// and DigiCert join them again.
fn txt_strings(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        if current.len() + c.len_utf8() > 255 {
            out.push(std::mem::take(&mut current));
        }
        current.push(c);
    }
    out.push(current);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dcv::tsig::decode_base64;

    #[test]
    fn base64_secrets_decode() {
        assert_eq!(decode_base64("Zm9v").unwrap(), b"foo");
        assert_eq!(decode_base64("Zm8=").unwrap(), b"fo");
        assert_eq!(decode_base64("Zg==").unwrap(), b"f");
        assert_eq!(decode_base64(" +/8= ").unwrap(), vec![0xfb, 0xff]);
        assert!(decode_base64("Z").is_none());
        assert!(decode_base64("Zm9v!").is_none());
    }

    #[test]
    fn tsig_keys_are_checked_and_never_show_their_secret() {
        let t = Tsig::from_base64("Key.Name.", "HMAC-SHA256.", "c2VjcmV0LXNlY3JldA==").unwrap();
        assert_eq!(
            (t.name.as_str(), t.algorithm.as_str()),
            ("key.name", "hmac-sha256")
        );
        assert_eq!(t.secret, b"secret-secret");
        let debug = format!("{t:?}");
        assert!(
            !debug.contains("c2VjcmV0") && !debug.contains("secret-secret"),
            "{debug}"
        );
        let err = Tsig::from_base64("k", "hmac-md5", "c2VjcmV0").unwrap_err();
        assert!(err.to_string().contains("hmac-sha256"), "{err}");
        let err = Tsig::from_base64("k", "hmac-sha256", "not base64!").unwrap_err();
        assert!(!err.to_string().contains("not base64!"), "{err}");
    }

    #[test]
    fn long_txt_values_are_split_into_strings_of_at_most_255_bytes() {
        let long = "a".repeat(600);
        let parts = txt_strings(&long);
        assert_eq!(
            parts.iter().map(String::len).collect::<Vec<_>>(),
            [255, 255, 90]
        );
        assert_eq!(txt_strings("x"), ["x"]);
    }

    #[tokio::test]
    async fn a_configured_zone_is_checked_without_asking_the_server() {
        let dns = Rfc2136::new("127.0.0.1:9".parse().unwrap()).with_zone("Example.com.");
        assert_eq!(
            dns.zone_for("a.b.example.com").await.unwrap(),
            "example.com"
        );
        let err = dns.zone_for("example.org").await.unwrap_err();
        assert!(matches!(err, DnsError::NotInConfiguredZone { .. }), "{err}");
        assert!(err.to_string().contains("example.org") && err.to_string().contains("example.com"));
    }
}
