//! The validation authority: looks for a random value in DNS or on a web server, for
//! real, and says what it looked for and what it saw.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_client::client::{Client, ClientHandle};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use hickory_proto::runtime::TokioRuntimeProvider;
use hickory_proto::tcp::TcpClientStream;
use hickory_proto::udp::UdpClientStream;
use hickory_proto::xfer::DnsResponse;

use crate::rules::dcv;
use crate::store::CheckTarget;
use certcentral::dcv::DcvMethod;

/// Where and how domain control is checked.
#[derive(Clone, Debug)]
pub struct VaConfig {
    /// The DNS server asked for TXT and CNAME records; without one, DNS checks fail.
    pub dns_server: Option<SocketAddr>,
    /// Where `http://<fqdn>/.well-known/...` requests go (with `Host: <fqdn>`);
    /// without one, the name's port 80 after ordinary resolution.
    pub http_address: Option<SocketAddr>,
    /// Also accept the TXT token at `_dnsauth.<domain>` (third-party sources only).
    pub txt_at_dnsauth: bool,
    /// The error code of a failed CNAME check (not documented).
    pub cname_error_code: String,
    /// Divides DigiCert's polling intervals, so tests need not wait minutes.
    pub poll_speedup: u32,
    /// Per lookup or HTTP request.
    pub timeout: Duration,
}

impl Default for VaConfig {
    fn default() -> Self {
        VaConfig {
            dns_server: None,
            http_address: None,
            txt_at_dnsauth: true,
            cname_error_code: "invalid_dns_cname".into(),
            poll_speedup: 1,
            timeout: Duration::from_secs(3),
        }
    }
}

/// A failed check: DigiCert's error code and what was seen.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CheckFailure {
    pub code: String,
    pub message: String,
}

impl VaConfig {
    /// Looks for one of the target's accepted values with the target's method.
    pub async fn check(&self, t: &CheckTarget) -> Result<(), CheckFailure> {
        match t.method {
            DcvMethod::DnsTxtToken => self.check_txt(t).await,
            DcvMethod::DnsCnameToken => self.check_cname(t).await,
            DcvMethod::HttpToken => self.check_http(t).await,
            ref other => Err(CheckFailure {
                code: "invalid_dcv_method".into(),
                message: format!(
                    "{} uses {other}, which cannot be checked automatically.",
                    t.name
                ),
            }),
        }
    }

    async fn check_txt(&self, t: &CheckTarget) -> Result<(), CheckFailure> {
        let fail = |message| CheckFailure {
            code: "invalid_dns_txt".into(),
            message,
        };
        let names = dcv::txt_names(&t.name, self.txt_at_dnsauth);
        let mut seen = Vec::new();
        for name in &names {
            match self.query(name, RecordType::TXT).await {
                Ok(Answer::Records(values)) => {
                    if values
                        .iter()
                        .any(|v| t.tokens.iter().any(|k| v.trim() == k))
                    {
                        return Ok(());
                    }
                    let shown: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
                    seen.push(format!("{name}: {}", shown.join(", ")));
                }
                Ok(Answer::Nothing(why)) => seen.push(format!("{name}: {why}")),
                Err(e) => seen.push(format!("{name}: {e}")),
            }
        }
        Err(fail(format!(
            "no TXT record holding the random value at {} (saw: {})",
            names.join(" or "),
            seen.join("; ")
        )))
    }

    async fn check_cname(&self, t: &CheckTarget) -> Result<(), CheckFailure> {
        let name = dcv::cname_name(&t.name);
        let wanted: Vec<String> = t.tokens.iter().map(|k| dcv::cname_target(k)).collect();
        let seen = match self.query(&name, RecordType::CNAME).await {
            Ok(Answer::Records(targets)) => {
                let norm = |s: &str| s.trim_end_matches('.').to_ascii_lowercase();
                if targets
                    .iter()
                    .any(|v| wanted.iter().any(|w| norm(v) == norm(w)))
                {
                    return Ok(());
                }
                targets.join(", ")
            }
            Ok(Answer::Nothing(why)) => why,
            Err(e) => e,
        };
        let expected = wanted
            .first()
            .cloned()
            .unwrap_or_else(|| dcv::cname_target("<random value>"));
        Err(CheckFailure {
            code: self.cname_error_code.clone(),
            message: format!("no CNAME from {name} to {expected} (saw: {seen})"),
        })
    }

    async fn check_http(&self, t: &CheckTarget) -> Result<(), CheckFailure> {
        let url = dcv::http_token_url(&t.name);
        let fail = |what: String| CheckFailure {
            code: "file_random_value_not_found".into(),
            message: format!("{url} {what}"),
        };
        let mut builder = reqwest::Client::builder()
            .timeout(self.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy();
        if let Some(addr) = self.http_address {
            builder = builder.resolve(&t.name.to_ascii_lowercase(), addr);
        }
        let client = builder
            .build()
            .map_err(|e| fail(format!("could not be fetched: {e}")))?;
        let response = client
            .get(&url)
            .send()
            .await
            .map_err(|e| fail(describe_http_error(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(fail(format!("answered {}", status.as_u16())));
        }
        let body = response
            .text()
            .await
            .map_err(|e| fail(format!("body unreadable: {e}")))?;
        let body = body.trim();
        if t.tokens.iter().any(|k| k == body) {
            return Ok(());
        }
        let shown: String = body.chars().take(100).collect();
        Err(fail(format!("answered {} with {shown:?}", status.as_u16())))
    }

    /// One query, over UDP, again over TCP when the answer was truncated.
    async fn query(&self, name: &str, kind: RecordType) -> Result<Answer, String> {
        let server = self
            .dns_server
            .ok_or_else(|| "no DNS server configured for domain validation".to_string())?;
        let fqdn = Name::from_ascii(format!("{}.", name.trim_end_matches('.')))
            .map_err(|e| format!("not a DNS name: {e}"))?;
        let response = self.udp_query(server, fqdn.clone(), kind).await?;
        let response = if response.truncated() {
            self.tcp_query(server, fqdn, kind).await?
        } else {
            response
        };
        Ok(Answer::from_response(&response, kind))
    }

    async fn udp_query(
        &self,
        server: SocketAddr,
        name: Name,
        kind: RecordType,
    ) -> Result<DnsResponse, String> {
        let stream = UdpClientStream::builder(server, TokioRuntimeProvider::new())
            .with_timeout(Some(self.timeout))
            .build();
        let (mut client, bg) = Client::connect(stream)
            .await
            .map_err(|e| format!("DNS server {server}: {e}"))?;
        let bg = tokio::spawn(bg);
        let result = client.query(name, DNSClass::IN, kind).await;
        bg.abort();
        result.map_err(|e| format!("DNS server {server}: {e}"))
    }

    async fn tcp_query(
        &self,
        server: SocketAddr,
        name: Name,
        kind: RecordType,
    ) -> Result<DnsResponse, String> {
        let (stream, sender) = TcpClientStream::new(
            server,
            None,
            Some(self.timeout),
            TokioRuntimeProvider::new(),
        );
        let (mut client, bg) = Client::with_timeout(stream, sender, self.timeout, None)
            .await
            .map_err(|e| format!("DNS server {server} (TCP): {e}"))?;
        let bg = tokio::spawn(bg);
        let result = client.query(name, DNSClass::IN, kind).await;
        bg.abort();
        result.map_err(|e| format!("DNS server {server} (TCP): {e}"))
    }
}

/// What a DNS answer held for the asked type.
enum Answer {
    /// TXT strings (joined per record) or CNAME targets.
    Records(Vec<String>),
    /// NXDOMAIN, no record of the type, or another response code.
    Nothing(String),
}

impl Answer {
    fn from_response(response: &DnsResponse, kind: RecordType) -> Answer {
        match response.response_code() {
            ResponseCode::NoError => {}
            ResponseCode::NXDomain => return Answer::Nothing("NXDOMAIN".into()),
            other => return Answer::Nothing(format!("{other}")),
        }
        let values: Vec<String> = response
            .answers()
            .iter()
            .filter(|r| r.record_type() == kind)
            .filter_map(|r| match r.data() {
                RData::TXT(txt) => Some(
                    txt.iter()
                        .map(|s| String::from_utf8_lossy(s).into_owned())
                        .collect::<String>(),
                ),
                RData::CNAME(c) => Some(c.0.to_ascii()),
                _ => None,
            })
            .collect();
        if values.is_empty() {
            Answer::Nothing(format!("no {kind} record"))
        } else {
            Answer::Records(values)
        }
    }
}

fn describe_http_error(e: &reqwest::Error) -> String {
    let mut root: &dyn std::error::Error = e;
    while let Some(next) = root.source() {
        root = next;
    }
    if e.is_timeout() {
        "did not answer in time".into()
    } else if e.is_connect() {
        let text = root.to_string();
        if text.to_ascii_lowercase().contains("refused") {
            "could not be fetched: connection refused".into()
        } else {
            format!("could not be fetched: {text}")
        }
    } else {
        format!("could not be fetched: {root}")
    }
}
