//! What external-dns does with `--source=crd --provider=rfc2136`, for the tests: watch
//! DNSEndpoint objects and write their TXT and CNAME records to a DNS server with the
//! RFC 2136 provider. Records of an object are added when it appears or changes and
//! removed when they leave it or the object goes. Runs until dropped.

use std::collections::HashMap;

use digicert_operator::dcv::dnsendpoint::DNSEndpoint;
use digicert_operator::dcv::record::{DnsRecord, RecordData};
use digicert_operator::dcv::rfc2136::Rfc2136;
use futures::StreamExt;
use kube::api::Api;
use kube::runtime::watcher::{self, Event};

/// The TTL external-dns uses when an endpoint has none.
const DEFAULT_TTL: u32 = 300;

pub struct DnsBridge {
    task: tokio::task::JoinHandle<()>,
}

impl DnsBridge {
    /// Bridges the DNSEndpoints of `namespace` (all namespaces for None) to `dns`.
    pub fn start(client: kube::Client, namespace: Option<&str>, dns: Rfc2136) -> Self {
        let api: Api<DNSEndpoint> = match namespace {
            Some(ns) => Api::namespaced(client, ns),
            None => Api::all(client),
        };
        DnsBridge {
            task: tokio::spawn(run(api, dns)),
        }
    }
}

impl Drop for DnsBridge {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(api: Api<DNSEndpoint>, dns: Rfc2136) {
    // Records written per object (namespace/name), to remove what disappears.
    let mut written: HashMap<String, Vec<DnsRecord>> = HashMap::new();
    let mut events = watcher::watcher(api, watcher::Config::default()).boxed();
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Apply(obj) | Event::InitApply(obj)) => {
                let want = records(&obj);
                let had = written.remove(&key(&obj)).unwrap_or_default();
                sync(&dns, &had, &want).await;
                written.insert(key(&obj), want);
            }
            Ok(Event::Delete(obj)) => {
                let had = written.remove(&key(&obj)).unwrap_or_default();
                sync(&dns, &had, &[]).await;
            }
            Ok(Event::Init | Event::InitDone) => {}
            Err(e) => eprintln!("dns bridge: watch error: {e}"),
        }
    }
}

fn key(obj: &DNSEndpoint) -> String {
    format!(
        "{}/{}",
        obj.metadata.namespace.as_deref().unwrap_or_default(),
        obj.metadata.name.as_deref().unwrap_or_default()
    )
}

/// The TXT and CNAME records of an object (other types are not for domain validation).
pub fn records(obj: &DNSEndpoint) -> Vec<DnsRecord> {
    let mut out = Vec::new();
    for ep in &obj.spec.endpoints {
        let ttl = ep
            .record_ttl
            .and_then(|t| u32::try_from(t).ok())
            .unwrap_or(DEFAULT_TTL);
        for target in &ep.targets {
            let data = match ep.record_type.as_str() {
                "TXT" => RecordData::Txt(target.clone()),
                "CNAME" => RecordData::Cname(target.clone()),
                _ => continue,
            };
            out.push(DnsRecord {
                name: ep.dns_name.clone(),
                data,
                ttl,
            });
        }
    }
    out
}

/// Removes what is in `had` but not in `want`, then adds `want`.
async fn sync(dns: &Rfc2136, had: &[DnsRecord], want: &[DnsRecord]) {
    for old in had.iter().filter(|r| !want.contains(r)) {
        if let Err(e) = dns.remove(old).await {
            eprintln!("dns bridge: removing {old}: {e}");
        }
    }
    for new in want {
        if let Err(e) = dns.add(new).await {
            eprintln!("dns bridge: adding {new}: {e}");
        }
    }
}
