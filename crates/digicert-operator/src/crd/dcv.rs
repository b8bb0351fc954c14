//! Domain control validation (DCV) settings, on a DigicertAccount and per
//! DigicertOrder, and what a DigicertOrder's status shows of it.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How the operator completes DigiCert's domain control validation by itself: when a
/// reissue waits for it, and ahead of a planned reissue when a domain's validation
/// would lapse before it.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(
    cel,
    validation = Rule::new("self.method == 'http-token' ? has(self.http) : has(self.dns)").message("dns-txt-token and dns-cname-token need dns; http-token needs http"),
    validation = Rule::new("!has(self.dns) || (has(self.dns.rfc2136) != has(self.dns.dnsEndpoint))").message("dns takes exactly one of rfc2136 and dnsEndpoint"),
    validation = Rule::new("!has(self.http) || (has(self.http.ingress) != has(self.http.gatewayHTTPRoute))").message("http takes exactly one of ingress and gatewayHTTPRoute")
)]
#[serde(rename_all = "camelCase")]
pub struct DomainValidationSpec {
    /// The DigiCert DCV method: `dns-txt-token` (default; a TXT record at the domain
    /// holding the random value), `dns-cname-token` (`_dnsauth.<domain>` CNAME to
    /// `<random value>.dcv.digicert.com`) or `http-token` (the random value at
    /// `http://<name>/.well-known/pki-validation/fileauth.txt`; not for wildcards).
    #[serde(default)]
    pub method: DcvMethodSpec,

    /// Where DNS records go, for the DNS methods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsSolverSpec>,

    /// How the random value is served over HTTP, for `http-token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpSolverSpec>,

    /// Validate again when a domain's validation would lapse within this long after
    /// the next planned reissue is due, and look this long before that reissue (a
    /// duration such as `48h`). Default `48h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$"))]
    pub renew_before: Option<String>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DcvMethodSpec {
    #[default]
    #[serde(rename = "dns-txt-token")]
    DnsTxtToken,
    #[serde(rename = "dns-cname-token")]
    DnsCnameToken,
    #[serde(rename = "http-token")]
    HttpToken,
}

impl DcvMethodSpec {
    pub fn as_str(self) -> &'static str {
        match self {
            DcvMethodSpec::DnsTxtToken => "dns-txt-token",
            DcvMethodSpec::DnsCnameToken => "dns-cname-token",
            DcvMethodSpec::HttpToken => "http-token",
        }
    }
}

/// One DNS provider.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DnsSolverSpec {
    /// RFC 2136 dynamic updates, signed with TSIG, to the zone's primary server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rfc2136: Option<Rfc2136Spec>,
    /// external-dns `DNSEndpoint` objects (externaldns.k8s.io/v1alpha1) in the
    /// DigicertOrder's namespace, for any provider external-dns serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_endpoint: Option<DnsEndpointSpec>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Rfc2136Spec {
    /// The server that takes updates, `host:port` or `host` (port 53).
    #[schemars(length(min = 1, max = 261), regex(pattern = r"^[^\s/]+$"))]
    pub nameserver: String,
    /// The zone to update. Default: found by asking the server for the SOA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub zone: Option<String>,
    /// The TSIG key's name as the server knows it.
    #[schemars(length(min = 1, max = 253))]
    pub tsig_key_name: String,
    /// The TSIG algorithm.
    #[serde(default)]
    pub tsig_algorithm: TsigAlgorithm,
    /// The Secret holding the TSIG secret (base64, as in the server's configuration).
    /// On a DigicertAccount it is in the operator's namespace; on a DigicertOrder in
    /// the order's own.
    pub tsig_secret_ref: TsigSecretRef,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TsigAlgorithm {
    #[default]
    #[serde(rename = "hmac-sha256")]
    HmacSha256,
    #[serde(rename = "hmac-sha384")]
    HmacSha384,
    #[serde(rename = "hmac-sha512")]
    HmacSha512,
}

impl TsigAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            TsigAlgorithm::HmacSha256 => "hmac-sha256",
            TsigAlgorithm::HmacSha384 => "hmac-sha384",
            TsigAlgorithm::HmacSha512 => "hmac-sha512",
        }
    }
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct TsigSecretRef {
    /// The Secret's name.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub name: String,
    /// The key within the Secret's data. Default `secret`.
    #[serde(default = "default_tsig_key")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
}

fn default_tsig_key() -> String {
    "secret".into()
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DnsEndpointSpec {
    /// Labels put on the DNSEndpoint objects (e.g. what an external-dns instance's
    /// `--label-filter` selects).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// TTL of the records, in seconds. Default 60.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 86400))]
    pub ttl: Option<u32>,
}

/// HTTP solving, like cert-manager's HTTP-01 solver: the operator serves the random
/// value on its solver listener, and a route for
/// `/.well-known/pki-validation/fileauth.txt` of each name sends DigiCert there.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpSolverSpec {
    /// An Ingress per name, in the operator's namespace, to the solver Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<IngressSolverSpec>,
    /// A Gateway API HTTPRoute per name, in the operator's namespace, attached to these
    /// Gateways.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "gatewayHTTPRoute")]
    pub gateway_http_route: Option<HttpRouteSolverSpec>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct IngressSolverSpec {
    /// `spec.ingressClassName` of the Ingress. Default: the cluster's default class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub class_name: Option<String>,
    /// Annotations put on the Ingress.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteSolverSpec {
    /// The Gateways (and listeners) the HTTPRoute attaches to.
    #[schemars(length(min = 1, max = 32))]
    pub parent_refs: Vec<ParentRef>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ParentRef {
    /// The Gateway's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The Gateway's namespace. Default: the HTTPRoute's, the operator's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
    /// The Gateway listener to attach to. Default: every listener that takes the route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub section_name: Option<String>,
}

/// What the operator knows of the order's domain validations.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DomainValidationStatus {
    /// The method the operator solves with (from the order or its account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// When the operator last read DigiCert's validation state of the order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check: Option<Time>,
    /// When it reads it next, ahead of the planned reissue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_check: Option<Time>,
    /// When lapsing validations were last renewed ahead of a reissue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_renewal: Option<Time>,
    /// The order's domains, as DigiCert validates them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<DomainStatus>,
    /// A validation under way: the random value, where it is published, and what
    /// DigiCert said of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge: Option<ChallengeStatus>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DomainStatus {
    /// The domain DigiCert validates (it covers the names below).
    pub name: String,
    /// DigiCert's domain id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// The certificate's names it covers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_names: Vec<String>,
    /// The method of its last validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// `Validated`, `Pending` (DigiCert waits for validation), `Expiring` (lapses
    /// before the next planned reissue) or `Unsupported`.
    pub state: String,
    /// When the completed validation stops being reusable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Time>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ChallengeStatus {
    /// `Order`: the order random value, checked with check-dcv (a reissue waits);
    /// `Domain`: each domain's own value, checked with validate-token (ahead of time).
    pub scope: String,
    /// The method it is published for: `dns-txt-token`, `dns-cname-token` or
    /// `http-token`.
    pub method: String,
    /// When it was published.
    pub published: String,
    /// What was published, one entry a domain.
    pub records: Vec<ChallengeRecord>,
    /// Looks for the published value that did not find it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub looks: u32,
    /// DigiCert checks that failed so far.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub checks: u32,
    /// Not before this time is DigiCert asked again (back-off after a failed check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_check: Option<Time>,
    /// What the last look or check found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ChallengeRecord {
    /// The domain validated.
    pub domain: String,
    /// DigiCert's id of the domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_id: Option<u64>,
    /// The record or URL: `TXT example.com`, `CNAME _dnsauth.example.com`,
    /// `http://example.com/.well-known/pki-validation/fileauth.txt`.
    pub location: String,
    /// The random value published there (public once in DNS or on the web).
    pub token: String,
    /// Put there (a failed attempt is made again before looking).
    #[serde(default)]
    pub published: bool,
    /// Seen where DigiCert will look.
    #[serde(default)]
    pub visible: bool,
}
