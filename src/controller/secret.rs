//! The Secrets the operator writes, as plain data: the `kubernetes.io/tls` certificate
//! Secret and the Secret that keeps a new key while its certificate is being issued.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::decide::{SecretState, StoredCertificate};
use crate::crd::{DigicertOrderSpec, GROUP};
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
    pub order_name: &'a str,
    pub namespace: &'a str,
    pub spec: &'a DigicertOrderSpec,
    pub chain: &'a Chain,
    pub key_pem: &'a str,
    pub certificate_id: u64,
    pub serial_number: &'a str,
    /// Set when the operator is told to let the Secret go with its DigicertOrder.
    pub owner: Option<OwnerReference>,
}

impl TlsSecret<'_> {
    pub fn build(&self) -> Secret {
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
        ]);
        Secret {
            metadata: ObjectMeta {
                name: Some(self.spec.secret_name.clone()),
                namespace: Some(self.namespace.to_string()),
                labels: Some(labels_map),
                annotations: Some(annotations),
                owner_references: self.owner.clone().map(|o| vec![o]),
                ..ObjectMeta::default()
            },
            type_: Some("kubernetes.io/tls".into()),
            data: Some(data(&[
                (TLS_CRT, &self.chain.tls_crt()),
                (TLS_KEY, self.key_pem),
                (CA_CRT, &self.chain.ca_crt()),
            ])),
            ..Secret::default()
        }
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
    let leaf = match keys::certificates_from_pem(&crt)
        .map_err(|e| e.to_string())
        .and_then(|certs| keys::inspect_certificate(&certs[0]).map_err(|e| e.to_string()))
    {
        Ok(leaf) => leaf,
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
            .and_then(|v| v.parse::<u64>().ok())
    };
    SecretState::Valid(Box::new(StoredCertificate {
        key_matches: keys::public_key_bits(&key) == leaf.public_key_bits,
        key: keys::kind_of(&key),
        leaf,
        order_id: annotation(ORDER_ID_ANNOTATION),
        certificate_id: annotation(CERTIFICATE_ID_ANNOTATION),
    }))
}

/// Why the operator may not write its certificate into this existing Secret, if it
/// may not: it belongs to another DigicertOrder, or it is of another type (which a
/// Secret cannot change).
pub fn conflict(secret: &Secret, order_name: &str) -> Option<String> {
    let name = secret.metadata.name.clone().unwrap_or_default();
    if let Some(other) = secret
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(ORDER_LABEL))
        .filter(|v| *v != order_name)
    {
        return Some(format!(
            "Secret {name} belongs to DigicertOrder {other}; give this one another secretName"
        ));
    }
    match secret.type_.as_deref() {
        Some("kubernetes.io/tls") => None,
        other => Some(format!(
            "Secret {name} exists with type {}, not kubernetes.io/tls; delete it or choose another secretName",
            other.unwrap_or("Opaque")
        )),
    }
}

pub fn owner_reference(order: &crate::crd::DigicertOrder) -> OwnerReference {
    use kube::Resource;
    OwnerReference {
        api_version: format!("{GROUP}/v1alpha1"),
        kind: "DigicertOrder".into(),
        name: order.meta().name.clone().unwrap_or_default(),
        uid: order.meta().uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
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
            order_name: "web",
            namespace: "ns",
            spec: &spec,
            chain: &chain,
            key_pem: &key_pem,
            certificate_id: 42,
            serial_number: "0A",
            owner: None,
        }
        .build();
        assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
        let labels = secret.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["team"], "web");
        assert_eq!(labels[ORDER_LABEL], "web");
        assert_eq!(conflict(&secret, "web"), None);
        assert!(
            conflict(&secret, "other").is_some_and(|m| m.contains("belongs to DigicertOrder web"))
        );
        let mut opaque = secret.clone();
        opaque.type_ = Some("Opaque".into());
        assert!(conflict(&opaque, "web").is_some_and(|m| m.contains("type Opaque")));
        assert_eq!(secret.metadata.annotations.as_ref().unwrap()["note"], "x");
        match inspect(Some(&secret)) {
            SecretState::Valid(s) => {
                assert!(s.key_matches);
                assert_eq!(s.key, KeyKind::Ecdsa(256));
                assert_eq!(s.order_id, Some(1001));
                assert_eq!(s.certificate_id, Some(42));
                assert_eq!(s.leaf.dns_names, ["example.com", "www.example.com"]);
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
}
