//! TSIG (RFC 8945): the key that signs the updates, read as key files write it, and
//! a signer that lets a server's unsigned error answers through (they say why).

use std::fmt;
use std::str::FromStr;

use hickory_proto::ProtoError;
use hickory_proto::dnssec::rdata::tsig::TsigAlgorithm;
use hickory_proto::dnssec::tsig::TSigner;
use hickory_proto::op::{Message, MessageFinalizer, MessageVerifier, ResponseCode};
use hickory_proto::rr::{Name, Record};
use hickory_proto::xfer::DnsResponse;

use super::record::normalize;
use super::rfc2136::DnsError;

/// The TSIG algorithms the updates can be signed with.
pub const TSIG_ALGORITHMS: &[&str] = &["hmac-sha256", "hmac-sha384", "hmac-sha512"];

/// Allowed clock difference to the server, in seconds (RFC 8945's recommendation).
pub(crate) const TSIG_FUDGE: u16 = 300;

/// A TSIG key. Its secret never appears in messages or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Tsig {
    /// The key's name, as configured at the server.
    pub name: String,
    /// One of [`TSIG_ALGORITHMS`].
    pub algorithm: String,
    pub secret: Vec<u8>,
}

impl fmt::Debug for Tsig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tsig")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl Tsig {
    /// A key from its name, algorithm (`hmac-sha256`, also written `HMAC-SHA256.`) and
    /// base64 secret (as in BIND's and Knot's key files).
    pub fn from_base64(name: &str, algorithm: &str, secret: &str) -> Result<Self, DnsError> {
        let secret = decode_base64(secret).ok_or_else(|| {
            DnsError::InvalidTsig(format!(
                "the secret of TSIG key {name:?} is not valid base64"
            ))
        })?;
        let tsig = Tsig {
            name: normalize(name),
            algorithm: normalize(algorithm),
            secret,
        };
        tsig.signer()?;
        Ok(tsig)
    }

    pub(crate) fn signer(&self) -> Result<TSigner, DnsError> {
        let algorithm = match self.algorithm.as_str() {
            "hmac-sha256" => TsigAlgorithm::HmacSha256,
            "hmac-sha384" => TsigAlgorithm::HmacSha384,
            "hmac-sha512" => TsigAlgorithm::HmacSha512,
            other => {
                return Err(DnsError::InvalidTsig(format!(
                    "TSIG algorithm {other:?} of key {:?} is not supported; use one of {}",
                    self.name,
                    TSIG_ALGORITHMS.join(", ")
                )));
            }
        };
        if self.secret.is_empty() {
            return Err(DnsError::InvalidTsig(format!(
                "the secret of TSIG key {:?} is empty",
                self.name
            )));
        }
        let name = Name::from_str(&self.name).map_err(|e| {
            DnsError::InvalidTsig(format!("TSIG key name {:?} is invalid: {e}", self.name))
        })?;
        TSigner::new(self.secret.clone(), algorithm, name, TSIG_FUDGE)
            .map_err(|e| DnsError::InvalidTsig(format!("TSIG key {:?}: {e}", self.name)))
    }
}

/// TSIG signing whose verifier lets unsigned error responses through: a server that
/// rejects the key cannot sign its answer, and the response code is what says why.
/// Such a response only ever turns into an error.
pub(crate) struct ErrorsUnverified(pub(crate) TSigner);

impl MessageFinalizer for ErrorsUnverified {
    fn finalize_message(
        &self,
        message: &Message,
        current_time: u32,
    ) -> Result<(Vec<Record>, Option<MessageVerifier>), ProtoError> {
        let (records, verifier) = self.0.finalize_message(message, current_time)?;
        let Some(mut verify) = verifier else {
            return Ok((records, None));
        };
        let tolerant: MessageVerifier = Box::new(move |bytes: &[u8]| match verify(bytes) {
            Ok(response) => Ok(response),
            Err(e) => match DnsResponse::from_buffer(bytes.to_vec()) {
                Ok(r) if r.response_code() != ResponseCode::NoError => Ok(r),
                _ => Err(e),
            },
        });
        Ok((records, Some(tolerant)))
    }
}

/// Standard base64 as key files write it: padding optional, whitespace ignored.
pub(crate) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const KEY_FILE: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    KEY_FILE.decode(compact).ok()
}
