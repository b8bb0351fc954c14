//! Domain control validation: publishing DigiCert's random values where DigiCert
//! looks for them (DNS records, files over HTTP) and taking them down again.

pub mod http;
