//! The simulator's test CA: a root and an intermediate (both RSA, so a leaf can be
//! signed with any of DigiCert's `signature_hash` values), issuing leaves for the public
//! key of a CSR, and the HTTPS server certificate.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber, SignatureAlgorithm,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use pki::keys::{self, KeyKind};

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("test CA: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("test CA: {0}")]
    Key(#[from] keys::KeyError),
    #[error("test CA: {0}")]
    Invalid(String),
}

/// Everything needed to rebuild the CA after a restart (persisted state).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CaMaterial {
    pub root_cert_pem: String,
    pub root_key_pem: String,
    pub intermediate_cert_pem: String,
    pub intermediate_key_pem: String,
}

pub struct TestCa {
    material: CaMaterial,
    root: Issuer<'static, KeyPair>,
    // The intermediate key once per signature hash DigiCert offers.
    intermediates: Vec<(&'static str, Issuer<'static, KeyPair>)>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

/// A leaf the CA signed.
pub struct IssuedLeaf {
    pub der: Vec<u8>,
    pub serial_hex: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

/// The public key of a CSR, ready to be put into a certificate.
struct CsrPublicKey {
    subject_public_key: Vec<u8>,
    alg: &'static SignatureAlgorithm,
}

impl PublicKeyData for CsrPublicKey {
    fn der_bytes(&self) -> &[u8] {
        &self.subject_public_key
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.alg
    }
}

const HASHES: [(&str, &SignatureAlgorithm); 3] = [
    ("sha256", &rcgen::PKCS_RSA_SHA256),
    ("sha384", &rcgen::PKCS_RSA_SHA384),
    ("sha512", &rcgen::PKCS_RSA_SHA512),
];

fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "digicert-operator simulator");
    dn.push(DnType::CommonName, cn);
    dn
}

fn ca_params(cn: &str, now: OffsetDateTime, path_len: u8) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = name(cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_len));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + ::time::Duration::days(3650);
    params.serial_number = Some(random_serial());
    params.use_authority_key_identifier_extension = true;
    params
}

fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    // Positive and without a leading zero octet.
    bytes[0] = (bytes[0] & 0x7f) | 0x10;
    SerialNumber::from_slice(&bytes)
}

impl TestCa {
    /// A new root and intermediate, valid for ten years from `now`.
    pub fn generate(now: OffsetDateTime) -> Result<Self, CaError> {
        let root_key = keys::generate(KeyKind::Rsa(2048))?;
        let root_params = ca_params("digicert-operator simulator Root CA", now, 1);
        let root_cert = root_params.self_signed(&root_key)?;
        let inter_key = keys::generate(KeyKind::Rsa(2048))?;
        let inter_params = ca_params("digicert-operator simulator Issuing CA", now, 0);
        let root_issuer = Issuer::new(root_params, root_key);
        let inter_cert = inter_params.signed_by(&inter_key, &root_issuer)?;
        let material = CaMaterial {
            root_cert_pem: root_cert.pem(),
            root_key_pem: root_issuer.key().serialize_pem(),
            intermediate_cert_pem: inter_cert.pem(),
            intermediate_key_pem: inter_key.serialize_pem(),
        };
        Self::from_material(material)
    }

    pub fn from_material(material: CaMaterial) -> Result<Self, CaError> {
        let root_key = KeyPair::from_pem(&material.root_key_pem)?;
        let root = Issuer::from_ca_cert_pem(&material.root_cert_pem, root_key)?;
        let mut intermediates = Vec::new();
        for (hash, alg) in HASHES {
            let key = KeyPair::from_pem_and_sign_algo(&material.intermediate_key_pem, alg)?;
            intermediates.push((
                hash,
                Issuer::from_ca_cert_pem(&material.intermediate_cert_pem, key)?,
            ));
        }
        Ok(TestCa {
            material,
            root,
            intermediates,
        })
    }

    pub fn material(&self) -> &CaMaterial {
        &self.material
    }

    /// The root certificate: what clients trust.
    pub fn root_pem(&self) -> &str {
        &self.material.root_cert_pem
    }

    pub fn intermediate_pem(&self) -> &str {
        &self.material.intermediate_cert_pem
    }

    /// The intermediate's common name and an id for it (the first 16 hex digits of its
    /// thumbprint), as a duplicate's chain and `ca_cert_id` name it.
    pub fn intermediate_identity(&self) -> (String, String) {
        let info = keys::certificates_from_pem(self.intermediate_pem())
            .ok()
            .and_then(|certs| certs.into_iter().next())
            .and_then(|der| keys::inspect_certificate(&der).ok());
        match info {
            Some(i) => (
                i.common_name.unwrap_or_default(),
                i.thumbprint.chars().take(16).collect(),
            ),
            None => (String::new(), String::new()),
        }
    }

    /// Signs a TLS server leaf for the given public key and names, valid from
    /// `not_before` to `not_after`, with the requested hash.
    pub fn issue(
        &self,
        public_key_info: &[u8],
        common_name: &str,
        dns_names: &[String],
        signature_hash: &str,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<IssuedLeaf, CaError> {
        use x509_parser::prelude::FromDer;
        let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(public_key_info)
            .map_err(|e| CaError::Invalid(format!("bad public key: {e}")))?;
        let alg: &'static SignatureAlgorithm = match keys::key_kind(&spki) {
            KeyKind::Rsa(_) => &rcgen::PKCS_RSA_SHA256,
            KeyKind::Ecdsa(256) => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyKind::Ecdsa(384) => &rcgen::PKCS_ECDSA_P384_SHA384,
            other => return Err(CaError::Invalid(format!("cannot certify a {other} key"))),
        };
        let public_key = CsrPublicKey {
            subject_public_key: spki.subject_public_key.data.to_vec(),
            alg,
        };
        let issuer = &self
            .intermediates
            .iter()
            .find(|(h, _)| *h == signature_hash)
            .ok_or_else(|| CaError::Invalid(format!("unknown signature hash {signature_hash}")))?
            .1;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.subject_alt_names = dns_names
            .iter()
            .map(|n| {
                n.clone()
                    .try_into()
                    .map(SanType::DnsName)
                    .map_err(|_| CaError::Invalid(format!("{n:?} is not a DNS name")))
            })
            .collect::<Result<_, _>>()?;
        params.key_usages = match alg {
            a if a == &rcgen::PKCS_RSA_SHA256 => vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ],
            _ => vec![KeyUsagePurpose::DigitalSignature],
        };
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.not_before = not_before;
        params.not_after = not_after;
        let serial = random_serial();
        let serial_hex = pki::hex(&serial.to_bytes()).to_ascii_uppercase();
        params.serial_number = Some(serial);
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&public_key, issuer)?;
        Ok(IssuedLeaf {
            der: cert.der().to_vec(),
            serial_hex,
            not_before,
            not_after,
        })
    }

    /// A server certificate for the simulator's own HTTPS listener, signed by the root.
    /// Returns (certificate chain PEM, private key PEM).
    pub fn server_certificate(
        &self,
        names: &[String],
        now: OffsetDateTime,
    ) -> Result<(String, String), CaError> {
        let key = keys::generate(KeyKind::Ecdsa(256))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = name("digicert-operator simulator");
        params.subject_alt_names = names
            .iter()
            .map(|n| match n.parse::<std::net::IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => n
                    .clone()
                    .try_into()
                    .map(SanType::DnsName)
                    .map_err(|_| CaError::Invalid(format!("{n:?} is not a DNS name or IP"))),
            })
            .collect::<Result<_, _>>()?;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + ::time::Duration::days(3650);
        params.serial_number = Some(random_serial());
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.root)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::*;

    #[test]
    fn leaves_chain_to_the_root_with_the_requested_hash() {
        let now = OffsetDateTime::now_utc();
        let ca = TestCa::generate(now).unwrap();
        let key = keys::generate(KeyKind::Ecdsa(256)).unwrap();
        let csr = keys::csr_pem(&key, "example.com", &["www.example.com".into()]).unwrap();
        let info = keys::inspect_csr(&csr).unwrap();
        let names = vec!["example.com".to_string(), "www.example.com".to_string()];
        let leaf = ca
            .issue(
                &info.public_key_info,
                "example.com",
                &names,
                "sha384",
                now,
                now + ::time::Duration::days(10),
            )
            .unwrap();
        let (_, cert) = X509Certificate::from_der(&leaf.der).unwrap();
        assert_eq!(
            cert.signature_algorithm.algorithm.to_id_string(),
            "1.2.840.113549.1.1.12" // sha384WithRSAEncryption
        );
        assert_eq!(cert.public_key().raw, info.public_key_info.as_slice());
        let inter_der = keys::certificates_from_pem(ca.intermediate_pem()).unwrap();
        let (_, inter) = X509Certificate::from_der(&inter_der[0]).unwrap();
        cert.verify_signature(Some(inter.public_key())).unwrap();
        let root_der = keys::certificates_from_pem(ca.root_pem()).unwrap();
        let (_, root) = X509Certificate::from_der(&root_der[0]).unwrap();
        inter.verify_signature(Some(root.public_key())).unwrap();

        // Rebuilt from its material, the CA signs with the same intermediate.
        let again = TestCa::from_material(ca.material().clone()).unwrap();
        let leaf2 = again
            .issue(
                &info.public_key_info,
                "example.com",
                &names,
                "sha256",
                now,
                now + ::time::Duration::days(1),
            )
            .unwrap();
        let (_, cert2) = X509Certificate::from_der(&leaf2.der).unwrap();
        cert2.verify_signature(Some(inter.public_key())).unwrap();
    }
}
