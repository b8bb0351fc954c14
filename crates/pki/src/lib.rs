//! Key pairs, certificate signing requests and the certificates issued for them:
//! generation (rcgen), inspection (x509-parser), fingerprints, and the one TLS crypto
//! provider (aws-lc-rs). Shared by the operator, the CertCentral client and the
//! simulator, so all three judge a key or a certificate the same way.

pub mod keys;
pub mod tls;

/// Lower-case hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
