//! Prints the CRDs of cert-manager's `CertificateRequest` and `Certificate`
//! (cert-manager.io/v1), as the k8s-crds-cert-manager crate derives them.

use k8s_crds_cert_manager::{Certificate, CertificateRequest};
use kube::CustomResourceExt;

fn main() {
    let crds = [CertificateRequest::crd(), Certificate::crd()];
    let version = "1.21.1";
    println!(
        "# cert-manager.io/v1 CertificateRequest and Certificate, derived from the types of\n\
         # the k8s-crds-cert-manager crate {version} (Apache-2.0), which are generated from\n\
         # cert-manager's published CRDs. Written by hack/cert-manager-crds.sh; do not edit."
    );
    for crd in crds {
        println!("---");
        print!("{}", serde_yaml::to_string(&crd).expect("a CRD serialises"));
    }
}
