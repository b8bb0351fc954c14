//! Key pairs and certificate signing requests: generation (rcgen), inspection of CSRs
//! and certificates (x509-parser), and the fingerprints that tie them together.

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, RsaKeySize, SanType};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateSigningRequestDer};
use x509_parser::prelude::*;

/// The kind of a public key, as DigiCert tells them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase", tag = "type", content = "size")]
pub enum KeyKind {
    /// RSA with the modulus size in bits.
    Rsa(u32),
    /// ECDSA on NIST P-256 / P-384 / P-521 (size in bits).
    Ecdsa(u32),
    Ed25519,
    Other,
}

impl KeyKind {
    /// DigiCert's `key_size`: bits of the key.
    pub fn bits(self) -> u32 {
        match self {
            KeyKind::Rsa(b) | KeyKind::Ecdsa(b) => b,
            KeyKind::Ed25519 => 256,
            KeyKind::Other => 0,
        }
    }
}

impl std::fmt::Display for KeyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyKind::Rsa(b) => write!(f, "RSA-{b}"),
            KeyKind::Ecdsa(b) => write!(f, "ECDSA P-{b}"),
            KeyKind::Ed25519 => f.write_str("Ed25519"),
            KeyKind::Other => f.write_str("unknown key type"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("unsupported key {0}: use RSA 2048/3072/4096 or ECDSA P-256/P-384")]
    Unsupported(String),
    #[error("key generation failed: {0}")]
    Generate(String),
    #[error("cannot build the certificate signing request: {0}")]
    Csr(String),
    #[error("cannot read PEM: {0}")]
    Pem(String),
    #[error("cannot parse {what}: {message}")]
    Parse { what: &'static str, message: String },
}

/// Generates a key pair of the given kind.
pub fn generate(kind: KeyKind) -> Result<KeyPair, KeyError> {
    let result = match kind {
        KeyKind::Rsa(bits) => {
            let size = match bits {
                2048 => RsaKeySize::_2048,
                3072 => RsaKeySize::_3072,
                4096 => RsaKeySize::_4096,
                _ => return Err(KeyError::Unsupported(kind.to_string())),
            };
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, size)
        }
        KeyKind::Ecdsa(256) => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
        KeyKind::Ecdsa(384) => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
        KeyKind::Ed25519 => KeyPair::generate_for(&rcgen::PKCS_ED25519),
        _ => return Err(KeyError::Unsupported(kind.to_string())),
    };
    result.map_err(|e| KeyError::Generate(e.to_string()))
}

/// A PEM certificate signing request for `common_name` and `dns_names`: the common
/// name in the subject, and every name (the common name first) as a DNS SAN.
pub fn csr_pem(key: &KeyPair, common_name: &str, dns_names: &[String]) -> Result<String, KeyError> {
    let mut names = vec![common_name.to_string()];
    for n in dns_names {
        if !names.iter().any(|m| m.eq_ignore_ascii_case(n)) {
            names.push(n.clone());
        }
    }
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.subject_alt_names = names
        .into_iter()
        .map(|n| {
            n.clone()
                .try_into()
                .map(SanType::DnsName)
                .map_err(|_| KeyError::Csr(format!("{n:?} is not a valid DNS name")))
        })
        .collect::<Result<_, _>>()?;
    let csr = params
        .serialize_request(key)
        .map_err(|e| KeyError::Csr(e.to_string()))?;
    csr.pem().map_err(|e| KeyError::Csr(e.to_string()))
}

/// SHA-256 of the CSR's DER, in hex: identifies a request independently of its PEM
/// line wrapping.
pub fn csr_fingerprint(csr_pem: &str) -> Result<String, KeyError> {
    let der = csr_der(csr_pem)?;
    Ok(sha256_hex(der.as_ref()))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    crate::hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref())
}

fn csr_der(csr_pem: &str) -> Result<CertificateSigningRequestDer<'static>, KeyError> {
    CertificateSigningRequestDer::from_pem_slice(csr_pem.trim().as_bytes())
        .map_err(|e| KeyError::Pem(format!("no CERTIFICATE REQUEST block: {e}")))
}

/// What a CSR asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsrInfo {
    pub common_name: Option<String>,
    pub dns_names: Vec<String>,
    pub key: KeyKind,
    /// The DER SubjectPublicKeyInfo.
    pub public_key_info: Vec<u8>,
    /// Whether the CSR's self-signature verifies with its own public key.
    pub signature_valid: bool,
}

/// Parses a PEM CSR. The signature is checked but a bad one is reported, not refused,
/// so callers can answer each problem with its own error.
pub fn inspect_csr(csr_pem: &str) -> Result<CsrInfo, KeyError> {
    let der = csr_der(csr_pem)?;
    let (rest, csr) =
        X509CertificationRequest::from_der(der.as_ref()).map_err(|e| KeyError::Parse {
            what: "the certificate signing request",
            message: e.to_string(),
        })?;
    if !rest.is_empty() {
        return Err(KeyError::Parse {
            what: "the certificate signing request",
            message: "trailing bytes".into(),
        });
    }
    let info = &csr.certification_request_info;
    let common_name = info
        .subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string);
    let mut dns_names = Vec::new();
    if let Some(exts) = csr.requested_extensions() {
        for ext in exts {
            if let ParsedExtension::SubjectAlternativeName(san) = ext {
                for name in &san.general_names {
                    if let GeneralName::DNSName(n) = name {
                        dns_names.push(n.to_string());
                    }
                }
            }
        }
    }
    Ok(CsrInfo {
        common_name,
        dns_names,
        key: key_kind(&info.subject_pki),
        public_key_info: info.subject_pki.raw.to_vec(),
        signature_valid: csr.verify_signature().is_ok(),
    })
}

/// The kind of key in a SubjectPublicKeyInfo.
pub fn key_kind(spki: &SubjectPublicKeyInfo<'_>) -> KeyKind {
    use x509_parser::public_key::PublicKey;
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => KeyKind::Rsa(rsa.key_size() as u32),
        Ok(PublicKey::EC(_)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok());
            match curve.map(|o| o.to_id_string()).as_deref() {
                Some("1.2.840.10045.3.1.7") => KeyKind::Ecdsa(256),
                Some("1.3.132.0.34") => KeyKind::Ecdsa(384),
                Some("1.3.132.0.35") => KeyKind::Ecdsa(521),
                _ => KeyKind::Other,
            }
        }
        _ if spki.algorithm.algorithm.to_id_string() == "1.3.101.112" => KeyKind::Ed25519,
        _ => KeyKind::Other,
    }
}

/// The certificates of a PEM chain, in order.
pub fn certificates_from_pem(pem: &str) -> Result<Vec<CertificateDer<'static>>, KeyError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| KeyError::Pem(e.to_string()))?;
    if certs.is_empty() {
        return Err(KeyError::Pem("no CERTIFICATE block".into()));
    }
    Ok(certs)
}

pub fn certificate_pem(der: &[u8]) -> String {
    ::pem::encode(&::pem::Pem::new("CERTIFICATE", der))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_csrs_carry_names_and_key_kind() {
        let cases = [
            KeyKind::Rsa(2048),
            KeyKind::Ecdsa(256),
            KeyKind::Ecdsa(384),
            KeyKind::Ed25519,
        ];
        for kind in cases {
            let key = generate(kind).unwrap();
            let pem = csr_pem(&key, "example.com", &["www.example.com".into()]).unwrap();
            let info = inspect_csr(&pem).unwrap();
            assert_eq!(info.key, kind);
            assert_eq!(info.common_name.as_deref(), Some("example.com"));
            assert_eq!(info.dns_names, ["example.com", "www.example.com"]);
            assert!(info.signature_valid, "{kind}");
            assert_eq!(csr_fingerprint(&pem).unwrap().len(), 64);
        }
    }

    #[test]
    fn unsupported_sizes_are_refused() {
        assert!(generate(KeyKind::Rsa(1024)).is_err());
        assert!(generate(KeyKind::Ecdsa(521)).is_err());
    }

    #[test]
    fn fingerprint_ignores_pem_wrapping() {
        let key = generate(KeyKind::Ecdsa(256)).unwrap();
        let pem = csr_pem(&key, "a.example", &[]).unwrap();
        let rewrapped = format!("\n{}\n", pem.replace('\n', "\r\n"));
        assert_eq!(
            csr_fingerprint(&pem).unwrap(),
            csr_fingerprint(&rewrapped).unwrap()
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(inspect_csr("hello").is_err());
        let bogus =
            "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n";
        assert!(inspect_csr(bogus).is_err());
    }
}
