//! TLS plumbing shared by the client, the simulator and (later) the Kubernetes client.

use std::sync::Once;

/// Installs aws-lc-rs as the process-wide rustls provider. The project uses exactly one
/// provider; having it installed up front means no library ever picks one on its own.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err means another provider was installed first, which only a test harness
        // linking something else could do; the installed one stays.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}
