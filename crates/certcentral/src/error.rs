//! Errors of CertCentral calls: what DigiCert answered, or why no answer came.

use super::types::{ApiErrorDetail, Operation};

/// Why a call got no usable HTTP answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportKind {
    /// No connection could be made (refused, DNS, TLS handshake). The request was never
    /// sent, so even a non-idempotent call may be repeated.
    Connect,
    /// No answer within the time limit.
    Timeout,
    /// The connection broke after the request went out.
    Reset,
}

impl std::fmt::Display for TransportKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TransportKind::Connect => "connection failed",
            TransportKind::Timeout => "timed out",
            TransportKind::Reset => "connection lost",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// DigiCert answered with an HTTP error and (usually) an `errors` body.
    #[error("CertCentral {operation} failed with HTTP {status}: {}", describe(.errors))]
    Api {
        operation: Operation,
        status: u16,
        errors: Vec<ApiErrorDetail>,
    },
    #[error("CertCentral {operation} {kind}: {message}")]
    Transport {
        operation: Operation,
        kind: TransportKind,
        message: String,
    },
    /// A success status with a body that is not what the API documents.
    #[error(
        "CertCentral {operation} answered HTTP {status} with a body that could not be read: {message}"
    )]
    Decode {
        operation: Operation,
        status: u16,
        message: String,
    },
    #[error("invalid CertCentral client configuration: {0}")]
    Config(String),
}

fn describe(errors: &[ApiErrorDetail]) -> String {
    if errors.is_empty() {
        return "no error details".to_string();
    }
    errors
        .iter()
        .map(|e| {
            if e.message.is_empty() {
                e.code.clone()
            } else {
                format!("{} ({})", e.code, e.message)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    /// HTTP status, when DigiCert answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } | Error::Decode { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The first DigiCert error code, e.g. `not_found|order`.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { errors, .. } => errors.first().map(|e| e.code.as_str()),
            _ => None,
        }
    }

    pub fn has_code(&self, code: &str) -> bool {
        matches!(self, Error::Api { errors, .. } if errors.iter().any(|e| e.code == code))
    }

    pub fn operation(&self) -> Option<Operation> {
        match self {
            Error::Api { operation, .. }
            | Error::Transport { operation, .. }
            | Error::Decode { operation, .. } => Some(*operation),
            Error::Config(_) => None,
        }
    }

    /// Transient failures worth another try later: rate limiting, server errors,
    /// timeouts, broken connections and garbled answers. Every other 4xx is
    /// permanent: repeating the same call gets the same answer.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Api { status, .. } => *status == 429 || *status >= 500 || *status == 408,
            Error::Transport { .. } | Error::Decode { .. } => true,
            Error::Config(_) => false,
        }
    }

    /// Whether the request certainly had no effect at DigiCert, so that even a
    /// non-idempotent call may be sent again.
    pub fn certainly_not_processed(&self) -> bool {
        match self {
            Error::Api { status, .. } => *status == 429,
            Error::Transport { kind, .. } => *kind == TransportKind::Connect,
            _ => false,
        }
    }

    pub fn is_rate_limited(&self) -> bool {
        matches!(self, Error::Api { status: 429, .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str) -> Error {
        Error::Api {
            operation: Operation::Reissue,
            status,
            errors: vec![ApiErrorDetail {
                code: code.into(),
                message: "m".into(),
            }],
        }
    }

    #[test]
    fn retryable_versus_permanent() {
        let cases = [
            (api(429, "request_limit_exceeded"), true, true),
            (api(500, "internal"), true, false),
            (api(503, "unavailable"), true, false),
            (api(400, "csr_invalid_cannot_parse"), false, false),
            (api(401, "access_denied|invalid_api_key"), false, false),
            (api(403, "access_denied|missing_permission"), false, false),
            (api(404, "not_found|order"), false, false),
            (
                Error::Transport {
                    operation: Operation::Reissue,
                    kind: TransportKind::Connect,
                    message: "refused".into(),
                },
                true,
                true,
            ),
            (
                Error::Transport {
                    operation: Operation::Reissue,
                    kind: TransportKind::Reset,
                    message: "reset".into(),
                },
                true,
                false,
            ),
            (
                Error::Transport {
                    operation: Operation::Reissue,
                    kind: TransportKind::Timeout,
                    message: "slow".into(),
                },
                true,
                false,
            ),
            (
                Error::Decode {
                    operation: Operation::OrderInfo,
                    status: 200,
                    message: "eof".into(),
                },
                true,
                false,
            ),
            (Error::Config("x".into()), false, false),
        ];
        for (err, retryable, not_processed) in cases {
            assert_eq!(err.is_retryable(), retryable, "{err}");
            assert_eq!(err.certainly_not_processed(), not_processed, "{err}");
        }
    }

    #[test]
    fn message_keeps_status_and_code() {
        let e = api(404, "not_found|order");
        assert_eq!(e.status(), Some(404));
        assert_eq!(e.code(), Some("not_found|order"));
        assert!(e.has_code("not_found|order"));
        assert_eq!(
            e.to_string(),
            "CertCentral reissue failed with HTTP 404: not_found|order (m)"
        );
    }
}
