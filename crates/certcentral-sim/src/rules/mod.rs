//! The rules of the simulated CertCentral account, as functions over the store:
//! each takes the store, the input and the simulator's clock, checks what DigiCert
//! checks and changes the store as DigiCert would. The web front, the admin API and
//! the validation authority call them; the store knows none of them.

pub mod answers;
pub mod dcv;
pub mod duplicate;
pub mod feed;
pub mod order;
pub mod reissue;
pub mod request;
pub mod revocation;
