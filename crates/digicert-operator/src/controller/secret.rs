//! The Secrets the operator writes, as plain data: the `kubernetes.io/tls` certificate
//! Secret and the Secret that keeps a new key while its certificate is being issued.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::decide::{SecretState, StoredCertificate};
use crate::crd::DigicertOrderSpec;
use crate::keys::{self, Chain};

pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGER: &str = "digicert-operator";
/// On every Secret the operator writes: the name of its DigicertOrder. The operator
/// watches only Secrets with this label.
pub const ORDER_LABEL: &str = "digicert-operator.dev/order-name";
/// `certificate` or `pending-key`.
pub const ROLE_LABEL: &str = "digicert-operator.dev/role";
pub const ORDER_ID_ANNOTATION: &str = "digicert-operator.dev/order-id";
pub const CERTIFICATE_ID_ANNOTATION: &str = "digicert-operator.dev/certificate-id";
pub const SERIAL_ANNOTATION: &str = "digicert-operator.dev/serial-number";
/// The names the certificate was requested for, comma-separated, the common name first.
pub const REQUESTED_NAMES_ANNOTATION: &str = "digicert-operator.dev/requested-names";
/// Set to `"true"` by a Secret's owner to hand an existing Secret to the operator.
pub const ADOPT_ANNOTATION: &str = "digicert-operator.dev/adopt";

pub const TLS_CRT: &str = "tls.crt";
pub const TLS_KEY: &str = "tls.key";
pub const CA_CRT: &str = "ca.crt";
pub const CSR: &str = "csr.pem";

/// Name of the Secret that holds a key until its certificate is issued.
pub fn pending_key_name(order_name: &str) -> String {
    let suffix = "-pending-key";
    if order_name.len() + suffix.len() <= 253 {
        return format!("{order_name}{suffix}");
    }
    let hash = &keys::sha256_hex(order_name.as_bytes())[..8];
    format!("{}-{hash}{suffix}", &order_name[..253 - suffix.len() - 9])
}

fn labels(order_name: &str, role: &str) -> BTreeMap<String, String> {
    [
        (MANAGED_BY.to_string(), MANAGER.to_string()),
        (ORDER_LABEL.to_string(), order_name.to_string()),
        (ROLE_LABEL.to_string(), role.to_string()),
    ]
    .into()
}

fn data(entries: &[(&str, &str)]) -> BTreeMap<String, ByteString> {
    entries
        .iter()
        .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
        .collect()
}

fn text(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()?
        .get(key)
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        .filter(|s| !s.trim().is_empty())
}

/// What the certificate Secret should contain.
pub struct TlsSecret<'a> {
    pub meta: SecretMeta<'a>,
    pub chain: &'a Chain,
    pub key_pem: &'a str,
}

/// The certificate Secret's metadata as the spec and the stored certificate say.
pub struct SecretMeta<'a> {
    pub order_name: &'a str,
    pub namespace: &'a str,
    pub spec: &'a DigicertOrderSpec,
    pub certificate_id: u64,
    pub serial_number: &'a str,
    /// The names the certificate was requested for, the common name first.
    pub requested_names: Vec<String>,
    /// Set when the operator is told to let the Secret go with its DigicertOrder.
    pub owner: Option<OwnerReference>,
}

impl SecretMeta<'_> {
    fn build(&self) -> ObjectMeta {
        let template = self.spec.secret_template.clone().unwrap_or_default();
        let mut labels_map = template.labels;
        labels_map.extend(labels(self.order_name, "certificate"));
        let mut annotations = template.annotations;
        annotations.extend([
            (
                ORDER_ID_ANNOTATION.to_string(),
                self.spec.order_id.to_string(),
            ),
            (
                CERTIFICATE_ID_ANNOTATION.to_string(),
                self.certificate_id.to_string(),
            ),
            (
                SERIAL_ANNOTATION.to_string(),
                self.serial_number.to_string(),
            ),
            (
                REQUESTED_NAMES_ANNOTATION.to_string(),
                self.requested_names.join(","),
            ),
        ]);
        ObjectMeta {
            name: Some(self.spec.secret_name.clone()),
            namespace: Some(self.namespace.to_string()),
            labels: Some(labels_map),
            annotations: Some(annotations),
            owner_references: self.owner.clone().map(|o| vec![o]),
            ..ObjectMeta::default()
        }
    }
}

fn tls_secret(metadata: ObjectMeta, tls_crt: &str, key_pem: &str, ca_crt: &str) -> Secret {
    Secret {
        metadata,
        type_: Some("kubernetes.io/tls".into()),
        data: Some(data(&[
            (TLS_CRT, tls_crt),
            (TLS_KEY, key_pem),
            (CA_CRT, ca_crt),
        ])),
        ..Secret::default()
    }
}

impl TlsSecret<'_> {
    pub fn build(&self) -> Secret {
        tls_secret(
            self.meta.build(),
            &self.chain.tls_crt(),
            self.key_pem,
            &self.chain.ca_crt(),
        )
    }
}

/// The certificate Secret brought in line with the spec, keeping its certificate and
/// key (template labels and annotations, the operator's labels, the owner reference,
/// the key's encoding), or `None` when it already is. Labels and annotations the
/// operator set before and the spec no longer asks for count as a difference too: the
/// apply that follows removes them.
pub fn refreshed(actual: &Secret, want: &SecretMeta, encoding: keys::Encoding) -> Option<Secret> {
    let key_pem = text(actual, TLS_KEY)?;
    let key_pem = if keys::encoding_of(&key_pem) == Some(encoding) {
        key_pem
    } else {
        let key = keys::parse_private_key(&key_pem).ok()?;
        keys::encode_private_key(&key, encoding).ok()?
    };
    let desired = tls_secret(
        want.build(),
        &text(actual, TLS_CRT)?,
        &key_pem,
        &text(actual, CA_CRT).unwrap_or_default(),
    );
    let owned = applied_fields(actual);
    let meta = &actual.metadata;
    let stale = |have: &Option<BTreeMap<String, String>>,
                 wanted: &Option<BTreeMap<String, String>>,
                 applied: &[String]| {
        let have = have.clone().unwrap_or_default();
        let wanted = wanted.clone().unwrap_or_default();
        wanted.iter().any(|(k, v)| have.get(k) != Some(v))
            || applied.iter().any(|k| !wanted.contains_key(k))
    };
    let our_uid = want.owner.as_ref().map(|o| o.uid.as_str());
    let has_owner = |uid: &str| {
        meta.owner_references
            .iter()
            .flatten()
            .any(|o| o.uid == uid && o.controller == Some(true))
    };
    let owner_stale = match our_uid {
        Some(uid) => !has_owner(uid),
        None => owned.owner_references,
    };
    let differs = stale(&meta.labels, &desired.metadata.labels, &owned.labels)
        || stale(
            &meta.annotations,
            &desired.metadata.annotations,
            &owned.annotations,
        )
        || owner_stale
        || text(actual, TLS_KEY).as_deref() != Some(key_pem.as_str());
    differs.then_some(desired)
}

/// What the operator's field manager set with its last apply.
#[derive(Debug, Default, PartialEq)]
struct AppliedFields {
    labels: Vec<String>,
    annotations: Vec<String>,
    owner_references: bool,
}

fn applied_fields(secret: &Secret) -> AppliedFields {
    let Some(entry) =
        secret.metadata.managed_fields.iter().flatten().find(|m| {
            m.manager.as_deref() == Some(MANAGER) && m.operation.as_deref() == Some("Apply")
        })
    else {
        return AppliedFields::default();
    };
    let fields = entry.fields_v1.as_ref().map(|f| &f.0);
    let meta = fields.and_then(|f| f.get("f:metadata"));
    let keys = |name: &str| -> Vec<String> {
        meta.and_then(|m| m.get(name))
            .and_then(|l| l.as_object())
            .map(|o| {
                o.keys()
                    .filter_map(|k| k.strip_prefix("f:").map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    AppliedFields {
        labels: keys("f:labels"),
        annotations: keys("f:annotations"),
        owner_references: meta.is_some_and(|m| m.get("f:ownerReferences").is_some()),
    }
}

/// The Secret that keeps a new key (and its CSR) between generation and issuance.
pub fn pending_key_secret(
    order_name: &str,
    namespace: &str,
    key_pem: &str,
    csr_pem: &str,
    owner: OwnerReference,
) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(pending_key_name(order_name)),
            namespace: Some(namespace.to_string()),
            labels: Some(labels(order_name, "pending-key")),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".into()),
        data: Some(data(&[(TLS_KEY, key_pem), (CSR, csr_pem)])),
        ..Secret::default()
    }
}

/// A stored pending key and its CSR.
pub struct PendingKey {
    pub key: rcgen::KeyPair,
    pub key_pem: String,
    pub csr_pem: String,
    pub csr_fingerprint: String,
}

pub fn read_pending_key(secret: &Secret) -> Result<PendingKey, String> {
    let key_pem = text(secret, TLS_KEY).ok_or("no tls.key")?;
    let csr_pem = text(secret, CSR).ok_or("no csr.pem")?;
    let key = keys::parse_private_key(&key_pem).map_err(|e| e.to_string())?;
    let csr_fingerprint = keys::csr_fingerprint(&csr_pem).map_err(|e| e.to_string())?;
    Ok(PendingKey {
        key,
        key_pem,
        csr_pem,
        csr_fingerprint,
    })
}

/// A reissue's key pair when it is the one the certificate Secret holds (kept key):
/// that key and the CSR recorded in status, which must be for that very key (a key
/// replaced meanwhile makes the reissue useless).
pub fn kept_key(certificate: &Secret, csr_pem: &str) -> Result<PendingKey, String> {
    let key_pem = text(certificate, TLS_KEY).ok_or("no tls.key")?;
    let key = keys::parse_private_key(&key_pem).map_err(|e| e.to_string())?;
    let csr = keys::inspect_csr(csr_pem).map_err(|e| e.to_string())?;
    if csr.public_key_info != rcgen::PublicKeyData::subject_public_key_info(&key) {
        return Err("the Secret's key is not the one the CSR was made with".into());
    }
    Ok(PendingKey {
        key,
        key_pem,
        csr_pem: csr_pem.to_string(),
        csr_fingerprint: keys::csr_fingerprint(csr_pem).map_err(|e| e.to_string())?,
    })
}

/// The key in a certificate Secret, for reuse (rotation policy Never) and for
/// checking a certificate DigiCert reissued by itself.
pub fn stored_key(secret: &Secret) -> Option<rcgen::KeyPair> {
    keys::parse_private_key(&text(secret, TLS_KEY)?).ok()
}

/// The PEM text of `tls.key`, as stored.
pub fn stored_key_pem(secret: &Secret) -> Option<String> {
    text(secret, TLS_KEY)
}

/// What a certificate Secret holds.
pub fn inspect(secret: Option<&Secret>) -> SecretState {
    let Some(secret) = secret else {
        return SecretState::Missing;
    };
    let Some(crt) = text(secret, TLS_CRT) else {
        return SecretState::Missing;
    };
    let (chain, leaf) = match Chain::parse(&crt).and_then(|chain| {
        let leaf = keys::inspect_certificate(&chain.leaf)?;
        Ok((chain, leaf))
    }) {
        Ok(parsed) => parsed,
        Err(e) => return SecretState::Invalid(format!("tls.crt: {e}")),
    };
    let key = match text(secret, TLS_KEY).map(|k| keys::parse_private_key(&k)) {
        Some(Ok(k)) => k,
        Some(Err(e)) => return SecretState::Invalid(format!("tls.key: {e}")),
        None => return SecretState::Invalid("no tls.key".into()),
    };
    let annotation = |name: &str| {
        secret
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(name))
    };
    let number = |name: &str| annotation(name).and_then(|v| v.parse::<u64>().ok());
    let certificate_id = number(CERTIFICATE_ID_ANNOTATION);
    let foreign = origin(
        &leaf,
        chain.leaf_signed_by_intermediate(),
        annotation(SERIAL_ANNOTATION).map(String::as_str),
        certificate_id,
    )
    .err();
    SecretState::Valid(Box::new(StoredCertificate {
        key_matches: keys::public_key_bits(&key) == leaf.public_key_bits,
        key: keys::kind_of(&key),
        leaf,
        order_id: number(ORDER_ID_ANNOTATION),
        certificate_id,
        requested_names: annotation(REQUESTED_NAMES_ANNOTATION)
            .map(|v| v.split(',').map(str::to_string).collect()),
        foreign,
    }))
}

/// Whether a stored certificate is one the operator wrote for its order: it carries
/// DigiCert's certificate id, the serial recorded with it, and the signature of the
/// intermediate stored after it, when there is one (a self-signed or hand-made
/// certificate has none).
/// `Err` says why not.
pub fn origin(
    leaf: &keys::CertificateInfo,
    signed_by_chain: Option<bool>,
    recorded_serial: Option<&str>,
    certificate_id: Option<u64>,
) -> Result<(), String> {
    if leaf.self_signed {
        return Err("it is self-signed".into());
    }
    if signed_by_chain == Some(false) {
        return Err("the certificate stored after it in tls.crt did not sign it".into());
    }
    if certificate_id.is_none() {
        return Err(format!(
            "the Secret records no DigiCert certificate id ({CERTIFICATE_ID_ANNOTATION})"
        ));
    }
    match recorded_serial {
        Some(serial) if serial.eq_ignore_ascii_case(&leaf.serial_number) => Ok(()),
        Some(serial) => Err(format!(
            "its serial {} is not the recorded {serial}",
            leaf.serial_number
        )),
        None => Err(format!(
            "the Secret records no serial number ({SERIAL_ANNOTATION})"
        )),
    }
}

/// How the operator stands to an existing Secret of the spec's `secretName`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Written by the operator for this DigicertOrder.
    Ours,
    /// Written for a DigicertOrder of the same order that no longer exists: handed on.
    HandedOn { from: String },
    /// Handed over by its owner with the adopt annotation.
    Adopted,
    /// Not to be touched; the text says why and what to do.
    Conflict(String),
}

/// The DigicertOrder a Secret is labelled for, if any.
pub fn labelled_for(secret: &Secret) -> Option<&str> {
    secret
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(ORDER_LABEL))
        .map(String::as_str)
}

/// How the operator stands to `secret` as DigicertOrder `order_name` of order
/// `order_id`. `labelled_owner_exists` tells whether the DigicertOrder the Secret is
/// labelled for (when another) still exists. The operator writes only Secrets it
/// wrote for this order (labelled for it, or with the label lost but its order id
/// recorded), Secrets of a deleted DigicertOrder of the same order, and Secrets their
/// owner handed over with `digicert-operator.dev/adopt: "true"`; never a Secret of
/// another type, which a Secret cannot change.
pub fn standing(
    secret: &Secret,
    order_name: &str,
    order_id: u64,
    labelled_owner_exists: bool,
) -> Standing {
    let name = secret.metadata.name.clone().unwrap_or_default();
    let annotation = |key: &str| {
        secret
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(key))
            .map(String::as_str)
    };
    let recorded_order = annotation(ORDER_ID_ANNOTATION).and_then(|v| v.parse::<u64>().ok());
    let standing = match labelled_for(secret) {
        Some(owner) if owner == order_name => Standing::Ours,
        Some(owner) if labelled_owner_exists => {
            return Standing::Conflict(format!(
                "Secret {name} belongs to DigicertOrder {owner}; give this one another secretName"
            ));
        }
        Some(owner) if recorded_order.is_none_or(|id| id == order_id) => Standing::HandedOn {
            from: owner.to_string(),
        },
        Some(owner) => {
            return Standing::Conflict(format!(
                "Secret {name} was written for DigicertOrder {owner} of order {}, which no longer exists; delete the Secret or give this one another secretName",
                recorded_order.unwrap_or_default()
            ));
        }
        None if recorded_order == Some(order_id) => Standing::Ours,
        None if annotation(ADOPT_ANNOTATION) == Some("true") => Standing::Adopted,
        None => {
            return Standing::Conflict(format!(
                "Secret {name} exists and was not written by digicert-operator; the operator does not overwrite it: delete it, choose another secretName, or annotate it {ADOPT_ANNOTATION}=true to hand it over"
            ));
        }
    };
    match secret.type_.as_deref() {
        Some("kubernetes.io/tls") => standing,
        other => Standing::Conflict(format!(
            "Secret {name} exists with type {}, not kubernetes.io/tls; delete it or choose another secretName",
            other.unwrap_or("Opaque")
        )),
    }
}

/// Whether a Secret is the pending-key Secret of DigicertOrder `order_name`: only
/// such a Secret is overwritten or deleted under that name.
pub fn is_pending_key_of(secret: &Secret, order_name: &str) -> bool {
    let labels = secret.metadata.labels.as_ref();
    let label = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
    label(ORDER_LABEL) == Some(order_name) && label(ROLE_LABEL) == Some("pending-key")
}

/// The controller owner reference to a DigicertOrder (kube's, which the garbage
/// collector follows).
pub fn owner_reference(order: &crate::crd::DigicertOrder) -> OwnerReference {
    use kube::Resource;
    order
        .controller_owner_ref(&())
        .expect("a DigicertOrder read from the API server has a name and uid")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyKind;

    #[test]
    fn long_names_stay_within_the_limit() {
        assert_eq!(pending_key_name("web"), "web-pending-key");
        let long = "a".repeat(253);
        let name = pending_key_name(&long);
        assert!(name.len() <= 253, "{}", name.len());
        assert!(name.ends_with("-pending-key"));
        assert_ne!(pending_key_name(&long), pending_key_name(&"b".repeat(253)));
    }

    fn secret_with(entries: &[(&str, &str)]) -> Secret {
        Secret {
            data: Some(data(entries)),
            ..Secret::default()
        }
    }

    #[test]
    fn inspection_of_broken_secrets() {
        assert_eq!(inspect(None), SecretState::Missing);
        assert_eq!(inspect(Some(&secret_with(&[]))), SecretState::Missing);
        assert!(matches!(
            inspect(Some(&secret_with(&[(TLS_CRT, "garbage")]))),
            SecretState::Invalid(m) if m.starts_with("tls.crt")
        ));
    }

    #[test]
    fn a_built_secret_reads_back_with_its_key_and_annotations() {
        // A self-signed certificate stands in for DigiCert's chain here.
        let key = keys::generate(KeyKind::Ecdsa(256)).unwrap();
        let mut params = rcgen::CertificateParams::new(vec![
            "example.com".to_string(),
            "www.example.com".to_string(),
        ])
        .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "example.com");
        let cert = params.self_signed(&key).unwrap();
        let chain = Chain::parse(&cert.pem()).unwrap();
        let spec: DigicertOrderSpec = serde_json::from_value(serde_json::json!({
            "orderId": 1001, "commonName": "example.com", "dnsNames": ["www.example.com"],
            "secretName": "web-tls",
            "secretTemplate": {"labels": {"team": "web"}, "annotations": {"note": "x"}},
        }))
        .unwrap();
        let key_pem = keys::encode_private_key(&key, keys::Encoding::Pkcs8).unwrap();
        let secret = TlsSecret {
            meta: SecretMeta {
                order_name: "web",
                namespace: "ns",
                spec: &spec,
                certificate_id: 42,
                serial_number: "0A",
                requested_names: super::super::decide::wanted_names(&spec),
                owner: None,
            },
            chain: &chain,
            key_pem: &key_pem,
        }
        .build();
        assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
        let labels = secret.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["team"], "web");
        assert_eq!(labels[ORDER_LABEL], "web");
        assert_eq!(standing(&secret, "web", 1001, false), Standing::Ours);
        assert_eq!(
            secret.metadata.annotations.as_ref().unwrap()[REQUESTED_NAMES_ANNOTATION],
            "example.com,www.example.com"
        );
        assert_eq!(secret.metadata.annotations.as_ref().unwrap()["note"], "x");
        match inspect(Some(&secret)) {
            SecretState::Valid(s) => {
                assert!(s.key_matches);
                assert_eq!(s.key, KeyKind::Ecdsa(256));
                assert_eq!(s.order_id, Some(1001));
                assert_eq!(s.certificate_id, Some(42));
                assert_eq!(s.leaf.dns_names, ["example.com", "www.example.com"]);
                assert_eq!(
                    s.requested_names.as_deref(),
                    Some(&["example.com".to_string(), "www.example.com".to_string()][..])
                );
                // Self-signed: not one DigiCert issued for the order.
                assert_eq!(s.foreign.as_deref(), Some("it is self-signed"));
            }
            other => panic!("{other:?}"),
        }
        // Another key in tls.key: the Secret is valid but the pair does not match.
        let other = keys::generate(KeyKind::Ecdsa(256)).unwrap();
        let mut swapped = secret.clone();
        swapped.data.as_mut().unwrap().insert(
            TLS_KEY.into(),
            ByteString(
                keys::encode_private_key(&other, keys::Encoding::Pkcs1)
                    .unwrap()
                    .into_bytes(),
            ),
        );
        assert!(matches!(inspect(Some(&swapped)), SecretState::Valid(s) if !s.key_matches));
    }

    fn meta_secret(labels: &[(&str, &str)], annotations: &[(&str, &str)], type_: &str) -> Secret {
        let map = |v: &[(&str, &str)]| {
            Some(
                v.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        Secret {
            metadata: ObjectMeta {
                name: Some("web-tls".into()),
                labels: map(labels),
                annotations: map(annotations),
                ..ObjectMeta::default()
            },
            type_: Some(type_.into()),
            ..Secret::default()
        }
    }

    #[test]
    fn the_operator_writes_only_secrets_it_owns_or_was_handed() {
        let tls = "kubernetes.io/tls";
        let ours = [(ORDER_LABEL, "web")];
        let others = [(ORDER_LABEL, "old")];
        let order = [(ORDER_ID_ANNOTATION, "1001")];
        let other_order = [(ORDER_ID_ANNOTATION, "2002")];
        let adopt = [(ADOPT_ANNOTATION, "true")];
        // (labels, annotations, type, labelled owner exists, want)
        type Pairs<'a> = &'a [(&'a str, &'a str)];
        let cases: Vec<(Pairs, Pairs, &str, bool, &str)> = vec![
            (&ours, &order, tls, false, "Ours"),
            (&ours, &[], tls, false, "Ours"),
            (&ours, &order, "Opaque", false, "Conflict"),
            (&others, &order, tls, true, "Conflict"),
            (&others, &order, tls, false, "HandedOn"),
            (&others, &[], tls, false, "HandedOn"),
            (&others, &other_order, tls, false, "Conflict"),
            // Its label removed by hand: the recorded order id still says whose it is.
            (&[], &order, tls, false, "Ours"),
            (&[], &other_order, tls, false, "Conflict"),
            (&[], &[], tls, false, "Conflict"),
            (&[], &adopt, tls, false, "Adopted"),
            (&[], &adopt, "Opaque", false, "Conflict"),
        ];
        for (i, (labels, annotations, type_, exists, want)) in cases.into_iter().enumerate() {
            let got = standing(
                &meta_secret(labels, annotations, type_),
                "web",
                1001,
                exists,
            );
            let name = match &got {
                Standing::Ours => "Ours",
                Standing::HandedOn { from } => {
                    assert_eq!(from, "old");
                    "HandedOn"
                }
                Standing::Adopted => "Adopted",
                Standing::Conflict(why) => {
                    assert!(why.contains("web-tls"), "{why}");
                    "Conflict"
                }
            };
            assert_eq!(name, want, "case {i}: {got:?}");
        }
    }

    #[test]
    fn only_the_orders_own_pending_key_secret_is_touched() {
        let pending = meta_secret(
            &[(ORDER_LABEL, "web"), (ROLE_LABEL, "pending-key")],
            &[],
            "Opaque",
        );
        assert!(is_pending_key_of(&pending, "web"));
        assert!(!is_pending_key_of(&pending, "api"));
        let users = meta_secret(&[], &[], "Opaque");
        assert!(!is_pending_key_of(&users, "web"));
        let certificate = meta_secret(
            &[(ORDER_LABEL, "web"), (ROLE_LABEL, "certificate")],
            &[],
            "kubernetes.io/tls",
        );
        assert!(!is_pending_key_of(&certificate, "web"));
    }

    fn leaf(serial: &str, self_signed: bool) -> keys::CertificateInfo {
        keys::CertificateInfo {
            common_name: Some("example.com".into()),
            dns_names: vec!["example.com".into()],
            not_before: time::OffsetDateTime::UNIX_EPOCH,
            not_after: time::OffsetDateTime::UNIX_EPOCH,
            serial_number: serial.into(),
            thumbprint: "AA".into(),
            key: KeyKind::Ecdsa(256),
            public_key_bits: vec![],
            public_key_info: vec![],
            self_signed,
            subject: "CN=example.com".into(),
            issuer: "CN=CA".into(),
        }
    }

    #[test]
    fn the_operator_tells_its_certificates_from_others() {
        let cases = [
            (leaf("0A", false), Some(true), Some("0a"), Some(7), None),
            // Only the leaf stored: nobody to check its signature against.
            (leaf("0A", false), None, Some("0A"), Some(7), None),
            (
                leaf("0A", true),
                Some(true),
                Some("0A"),
                Some(7),
                Some("self-signed"),
            ),
            (
                leaf("0A", true),
                None,
                Some("0A"),
                Some(7),
                Some("self-signed"),
            ),
            (
                leaf("0A", false),
                Some(false),
                Some("0A"),
                Some(7),
                Some("did not sign"),
            ),
            (
                leaf("0A", false),
                Some(true),
                Some("0B"),
                Some(7),
                Some("not the recorded 0B"),
            ),
            (
                leaf("0A", false),
                Some(true),
                None,
                Some(7),
                Some("no serial"),
            ),
            (
                leaf("0A", false),
                Some(true),
                Some("0A"),
                None,
                Some("no DigiCert certificate id"),
            ),
        ];
        for (leaf, signed, serial, id, want) in cases {
            let got = origin(&leaf, signed, serial, id);
            match want {
                None => assert_eq!(got, Ok(()), "{serial:?}"),
                Some(text) => assert!(
                    got.as_ref().is_err_and(|e| e.contains(text)),
                    "{got:?} should say {text}"
                ),
            }
        }
    }

    /// A Secret as the API server returns it after the operator's apply.
    fn applied(secret: &Secret, fields: serde_json::Value) -> Secret {
        let mut s = secret.clone();
        s.metadata.managed_fields = Some(vec![
            k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry {
                manager: Some(MANAGER.into()),
                operation: Some("Apply".into()),
                fields_v1: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::FieldsV1(
                    fields,
                )),
                ..Default::default()
            },
        ]);
        s
    }

    #[test]
    fn the_secret_follows_the_spec_without_a_reissue() {
        let key = keys::generate(KeyKind::Ecdsa(256)).unwrap();
        let params = rcgen::CertificateParams::new(vec!["example.com".to_string()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let chain = Chain::parse(&cert.pem()).unwrap();
        let spec = |json: serde_json::Value| -> DigicertOrderSpec {
            let mut base = serde_json::json!({
                "orderId": 1001, "commonName": "example.com", "secretName": "web-tls",
            });
            base.as_object_mut()
                .unwrap()
                .extend(json.as_object().unwrap().clone());
            serde_json::from_value(base).unwrap()
        };
        let team = spec(serde_json::json!({"secretTemplate": {"labels": {"team": "web"}}}));
        let pkcs1 = keys::encode_private_key(&key, keys::Encoding::Pkcs1).unwrap();
        let written = TlsSecret {
            meta: SecretMeta {
                order_name: "web",
                namespace: "ns",
                spec: &team,
                certificate_id: 42,
                serial_number: "0A",
                requested_names: super::super::decide::wanted_names(&team),
                owner: None,
            },
            chain: &chain,
            key_pem: &pkcs1,
        }
        .build();
        let fields = serde_json::json!({"f:metadata": {"f:labels": {
            "f:team": {}, format!("f:{ORDER_LABEL}"): {}, format!("f:{ROLE_LABEL}"): {}, format!("f:{MANAGED_BY}"): {}
        }}});
        let actual = applied(&written, fields);
        let meta = |spec, owner| SecretMeta {
            order_name: "web",
            namespace: "ns",
            spec,
            certificate_id: 42,
            serial_number: "0A",
            requested_names: super::super::decide::wanted_names(spec),
            owner,
        };
        // In line: nothing to write.
        assert!(refreshed(&actual, &meta(&team, None), keys::Encoding::Pkcs1).is_none());
        // PKCS#8 asked for: the same key, re-encoded.
        let re = refreshed(&actual, &meta(&team, None), keys::Encoding::Pkcs8).unwrap();
        let pem = text(&re, TLS_KEY).unwrap();
        assert_eq!(keys::encoding_of(&pem), Some(keys::Encoding::Pkcs8));
        assert_eq!(
            keys::public_key_bits(&keys::parse_private_key(&pem).unwrap()),
            keys::public_key_bits(&key)
        );
        assert_eq!(text(&re, TLS_CRT), text(&actual, TLS_CRT));
        // A template label dropped from the spec: the apply leaves it out.
        let plain = spec(serde_json::json!({}));
        let re = refreshed(&actual, &meta(&plain, None), keys::Encoding::Pkcs1).unwrap();
        assert!(!re.metadata.labels.as_ref().unwrap().contains_key("team"));
        // The operator's label removed by hand: put back.
        let mut unlabelled = actual.clone();
        unlabelled
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .remove(ORDER_LABEL);
        assert!(refreshed(&unlabelled, &meta(&team, None), keys::Encoding::Pkcs1).is_some());
        // Another tool's label is none of the operator's business.
        let mut other_label = actual.clone();
        other_label
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("argo".into(), "x".into());
        assert!(refreshed(&other_label, &meta(&team, None), keys::Encoding::Pkcs1).is_none());
        // Owner references toggled on, then off.
        let owner = OwnerReference {
            api_version: "digicert-operator.dev/v1alpha1".into(),
            kind: "DigicertOrder".into(),
            name: "web".into(),
            uid: "u-1".into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        };
        let with_owner = refreshed(
            &actual,
            &meta(&team, Some(owner.clone())),
            keys::Encoding::Pkcs1,
        )
        .unwrap();
        assert_eq!(
            with_owner.metadata.owner_references,
            Some(vec![owner.clone()])
        );
        let owned = applied(
            &with_owner,
            serde_json::json!({"f:metadata": {"f:labels": {"f:team": {}}, "f:ownerReferences": {"k:{\"uid\":\"u-1\"}": {}}}}),
        );
        assert!(refreshed(&owned, &meta(&team, Some(owner)), keys::Encoding::Pkcs1).is_none());
        let off = refreshed(&owned, &meta(&team, None), keys::Encoding::Pkcs1).unwrap();
        assert_eq!(off.metadata.owner_references, None);
    }
}
