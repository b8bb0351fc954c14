//! The operator's error type.

use crate::{certcentral, keys};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    CertCentral(#[from] certcentral::Error),
    #[error(transparent)]
    Key(#[from] keys::KeyError),
    #[error("{0}")]
    Config(String),
    #[error("cannot encode: {0}")]
    Json(#[from] serde_json::Error),
    #[error("finalizer: {0}")]
    Finalizer(String),
    /// Deletion waits for DigiCert (shown in status and events); look again after
    /// this long.
    #[error("deletion waits: {why}; trying again in {}s", after.as_secs())]
    CleanupPending {
        after: std::time::Duration,
        why: String,
    },
}

impl Error {
    /// A write lost a race with another writer; trying again soon is right.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Kube(kube::Error::Api(s)) if s.code == 409)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
