//! Key pairs and certificate signing requests: generation (rcgen), inspection of CSRs
//! and certificates (x509-parser), and the fingerprints that tie them together.

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, RsaKeySize, SanType};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateSigningRequestDer};
use x509_parser::prelude::{
    FromDer, GeneralName, ParsedExtension, SubjectPublicKeyInfo, X509Certificate,
    X509CertificationRequest,
};

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
    /// Whether it asks for a CA certificate (basic constraints `cA`).
    pub is_ca: bool,
    /// Whether it asks for client authentication (extended key usage `clientAuth`).
    pub client_auth: bool,
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
    let (mut is_ca, mut client_auth) = (false, false);
    for ext in csr.requested_extensions().into_iter().flatten() {
        match ext {
            ParsedExtension::SubjectAlternativeName(san) => {
                for name in &san.general_names {
                    if let GeneralName::DNSName(n) = name {
                        dns_names.push(n.to_string());
                    }
                }
            }
            ParsedExtension::BasicConstraints(bc) => is_ca |= bc.ca,
            ParsedExtension::ExtendedKeyUsage(eku) => client_auth |= eku.client_auth,
            _ => {}
        }
    }
    Ok(CsrInfo {
        common_name,
        dns_names,
        key: key_kind(&info.subject_pki),
        public_key_info: info.subject_pki.raw.to_vec(),
        signature_valid: csr.verify_signature().is_ok(),
        is_ca,
        client_auth,
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

/// PEM text with LF line ends (the `pem` crate writes CRLF by default).
fn pem_lf(block: pem::Pem) -> String {
    pem::encode_config(
        &block,
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

pub fn certificate_pem(der: &[u8]) -> String {
    pem_lf(pem::Pem::new("CERTIFICATE", der))
}

/// How a private key is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// `RSA PRIVATE KEY` (PKCS#1) or `EC PRIVATE KEY` (SEC 1).
    Pkcs1,
    /// `PRIVATE KEY` (PKCS#8).
    Pkcs8,
}

/// The kind of a key pair's public key.
pub fn kind_of(key: &KeyPair) -> KeyKind {
    use rcgen::PublicKeyData;
    let spki = key.subject_public_key_info();
    match SubjectPublicKeyInfo::from_der(&spki) {
        Ok((_, parsed)) => key_kind(&parsed),
        Err(_) => KeyKind::Other,
    }
}

/// Reads a PEM private key in PKCS#1, SEC 1 or PKCS#8 form. The key pair always
/// holds PKCS#8 (`serialize_der`), whatever the input was.
pub fn parse_private_key(pem_text: &str) -> Result<KeyPair, KeyError> {
    use aws_lc_rs::encoding::AsDer;
    use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let bad = |message: String| KeyError::Parse {
        what: "the private key",
        message,
    };
    let der = PrivateKeyDer::from_pem_slice(pem_text.trim().as_bytes())
        .map_err(|e| KeyError::Pem(format!("no private key: {e}")))?;
    let pkcs8: Vec<u8> = match &der {
        PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der().to_vec(),
        PrivateKeyDer::Pkcs1(k) => {
            let pair = aws_lc_rs::rsa::KeyPair::from_der(k.secret_pkcs1_der())
                .map_err(|e| bad(e.to_string()))?;
            let der: aws_lc_rs::encoding::Pkcs8V1Der =
                pair.as_der().map_err(|e| bad(e.to_string()))?;
            der.as_ref().to_vec()
        }
        PrivateKeyDer::Sec1(k) => {
            let curves = [
                &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                &aws_lc_rs::signature::ECDSA_P384_SHA384_ASN1_SIGNING,
            ];
            let pair = curves
                .into_iter()
                .find_map(|alg| {
                    aws_lc_rs::signature::EcdsaKeyPair::from_private_key_der(
                        alg,
                        k.secret_sec1_der(),
                    )
                    .ok()
                })
                .ok_or_else(|| bad("not a P-256 or P-384 key".into()))?;
            pair.to_pkcs8v1()
                .map_err(|e| bad(e.to_string()))?
                .as_ref()
                .to_vec()
        }
        _ => return Err(bad("unknown key format".into())),
    };
    KeyPair::try_from(&PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8)))
        .map_err(|e| bad(e.to_string()))
}

/// Writes a private key as PEM in the requested encoding.
pub fn encode_private_key(key: &KeyPair, encoding: Encoding) -> Result<String, KeyError> {
    let pkcs8 = key.serialize_der();
    if encoding == Encoding::Pkcs8 {
        return Ok(pem_lf(pem::Pem::new("PRIVATE KEY", pkcs8)));
    }
    match kind_of(key) {
        // PKCS#8 wraps the PKCS#1 RSAPrivateKey in its privateKey OCTET STRING.
        KeyKind::Rsa(_) => {
            let inner = pkcs8_private_key(&pkcs8).ok_or_else(|| KeyError::Parse {
                what: "the PKCS#8 key",
                message: "no privateKey field".into(),
            })?;
            Ok(pem_lf(pem::Pem::new("RSA PRIVATE KEY", inner)))
        }
        KeyKind::Ecdsa(bits) => {
            use aws_lc_rs::encoding::AsDer;
            let alg = match bits {
                256 => &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                384 => &aws_lc_rs::signature::ECDSA_P384_SHA384_ASN1_SIGNING,
                _ => return Err(KeyError::Unsupported(format!("ECDSA P-{bits}"))),
            };
            let pair =
                aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(alg, &pkcs8).map_err(|e| {
                    KeyError::Parse {
                        what: "the ECDSA key",
                        message: e.to_string(),
                    }
                })?;
            let sec1 = pair.private_key().as_der().map_err(|e| KeyError::Parse {
                what: "the ECDSA key",
                message: e.to_string(),
            })?;
            Ok(pem_lf(pem::Pem::new(
                "EC PRIVATE KEY",
                sec1.as_ref().to_vec(),
            )))
        }
        other => Err(KeyError::Unsupported(other.to_string())),
    }
}

/// The privateKey OCTET STRING of a PKCS#8 PrivateKeyInfo:
/// SEQUENCE { INTEGER version, SEQUENCE algorithm, OCTET STRING privateKey, ... }.
fn pkcs8_private_key(der: &[u8]) -> Option<Vec<u8>> {
    use x509_parser::der_parser::ber::BerObjectContent;
    let (_, seq) = x509_parser::der_parser::parse_der(der).ok()?;
    let items = seq.as_sequence().ok()?;
    match &items.get(2)?.content {
        BerObjectContent::OctetString(bytes) => Some(bytes.to_vec()),
        _ => None,
    }
}

/// The encoding of a PEM private key, from its label.
pub fn encoding_of(pem_text: &str) -> Option<Encoding> {
    let label = pem_text.trim_start().strip_prefix("-----BEGIN ")?;
    if label.starts_with("PRIVATE KEY-----") {
        Some(Encoding::Pkcs8)
    } else if label.starts_with("RSA PRIVATE KEY-----") || label.starts_with("EC PRIVATE KEY-----")
    {
        Some(Encoding::Pkcs1)
    } else {
        None
    }
}

/// Whether the certificate `child` carries a signature that `issuer`'s key made.
pub fn signed_by(child: &[u8], issuer: &[u8]) -> bool {
    match (
        X509Certificate::from_der(child),
        X509Certificate::from_der(issuer),
    ) {
        (Ok((_, c)), Ok((_, i))) => c.verify_signature(Some(i.public_key())).is_ok(),
        _ => false,
    }
}

/// The subjectPublicKey bits of a key pair.
pub fn public_key_bits(key: &KeyPair) -> Vec<u8> {
    key.public_key_raw().to_vec()
}

/// What the operator needs to know about a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateInfo {
    pub common_name: Option<String>,
    pub dns_names: Vec<String>,
    pub not_before: time::OffsetDateTime,
    pub not_after: time::OffsetDateTime,
    /// Upper-case hex, as DigiCert shows it.
    pub serial_number: String,
    /// SHA-1 of the DER, upper-case hex (DigiCert's thumbprint).
    pub thumbprint: String,
    pub key: KeyKind,
    pub public_key_bits: Vec<u8>,
    /// The DER SubjectPublicKeyInfo (as a CSR's `public_key_info`).
    pub public_key_info: Vec<u8>,
    pub self_signed: bool,
    pub subject: String,
    pub issuer: String,
}

pub fn inspect_certificate(der: &[u8]) -> Result<CertificateInfo, KeyError> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| KeyError::Parse {
        what: "the certificate",
        message: e.to_string(),
    })?;
    let mut dns_names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::DNSName(n) = name {
                dns_names.push(n.to_string());
            }
        }
    }
    Ok(CertificateInfo {
        common_name: cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|c| c.as_str().ok())
            .map(str::to_string),
        dns_names,
        not_before: cert.validity().not_before.to_datetime(),
        not_after: cert.validity().not_after.to_datetime(),
        serial_number: crate::hex(cert.raw_serial()).to_ascii_uppercase(),
        thumbprint: crate::hex(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, der).as_ref(),
        )
        .to_ascii_uppercase(),
        key: key_kind(cert.public_key()),
        public_key_bits: cert.public_key().subject_public_key.data.to_vec(),
        public_key_info: cert.public_key().raw.to_vec(),
        self_signed: cert.subject() == cert.issuer(),
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
    })
}

/// A downloaded chain split the way a TLS Secret stores it.
#[derive(Clone, Debug)]
pub struct Chain {
    pub leaf: CertificateDer<'static>,
    pub intermediates: Vec<CertificateDer<'static>>,
    /// The self-signed last certificate, when the chain ends with one.
    pub root: Option<CertificateDer<'static>>,
}

impl Chain {
    pub fn parse(pem_text: &str) -> Result<Self, KeyError> {
        let mut certs = certificates_from_pem(pem_text)?;
        let leaf = certs.remove(0);
        let root = match certs.last() {
            Some(last) if inspect_certificate(last)?.self_signed => certs.pop(),
            _ => None,
        };
        Ok(Chain {
            leaf,
            intermediates: certs,
            root,
        })
    }

    /// Leaf and intermediates, as `tls.crt`.
    pub fn tls_crt(&self) -> String {
        std::iter::once(&self.leaf)
            .chain(&self.intermediates)
            .map(|c| certificate_pem(c))
            .collect()
    }

    /// Whether the leaf's signature verifies with the key of the intermediate after it;
    /// `None` when there is none to judge by.
    pub fn leaf_signed_by_intermediate(&self) -> Option<bool> {
        self.intermediates
            .first()
            .map(|issuer| signed_by(&self.leaf, issuer))
    }

    /// The root, as `ca.crt` (empty when the chain has none).
    pub fn ca_crt(&self) -> String {
        self.root.iter().map(|c| certificate_pem(c)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csr_tells_whether_it_asks_for_a_ca_or_client_authentication() {
        let key = generate(KeyKind::Ecdsa(256)).unwrap();
        let csr = |ca: bool, client: bool| {
            let mut params = CertificateParams::new(vec!["example.com".to_string()]).unwrap();
            if ca {
                params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            }
            params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
            if client {
                params
                    .extended_key_usages
                    .push(rcgen::ExtendedKeyUsagePurpose::ClientAuth);
            }
            inspect_csr(&params.serialize_request(&key).unwrap().pem().unwrap()).unwrap()
        };
        let plain = csr(false, false);
        assert!(!plain.is_ca && !plain.client_auth);
        assert!(csr(true, false).is_ca);
        assert!(csr(false, true).client_auth);
        let ours = inspect_csr(&csr_pem(&key, "example.com", &[]).unwrap()).unwrap();
        assert!(!ours.is_ca && !ours.client_auth && ours.signature_valid);
    }

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
    fn keys_round_trip_through_every_encoding() {
        for kind in [KeyKind::Rsa(2048), KeyKind::Ecdsa(256), KeyKind::Ecdsa(384)] {
            let key = generate(kind).unwrap();
            for (encoding, label) in [
                (Encoding::Pkcs8, "-----BEGIN PRIVATE KEY-----"),
                (
                    Encoding::Pkcs1,
                    if matches!(kind, KeyKind::Rsa(_)) {
                        "-----BEGIN RSA PRIVATE KEY-----"
                    } else {
                        "-----BEGIN EC PRIVATE KEY-----"
                    },
                ),
            ] {
                let pem = encode_private_key(&key, encoding).unwrap();
                assert!(pem.starts_with(label), "{kind} {encoding:?}: {pem}");
                let back = parse_private_key(&pem).unwrap();
                assert_eq!(
                    public_key_bits(&back),
                    public_key_bits(&key),
                    "{kind} {encoding:?}"
                );
                assert_eq!(kind_of(&back), kind);
            }
        }
        assert!(parse_private_key("nope").is_err());
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
