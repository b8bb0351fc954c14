//! Domain control validation (DCV): publishing DigiCert's random value in DNS.

pub mod dnsendpoint;
pub mod record;
pub mod rfc2136;
