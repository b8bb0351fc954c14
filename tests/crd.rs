//! The CRD committed under `crds/` is what the code generates.

use digicert_operator::controller::crd_yaml;

#[test]
fn committed_crd_is_up_to_date() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/crds/digicertorders.yaml");
    let committed = std::fs::read_to_string(path).expect("crds/digicertorders.yaml exists");
    assert!(
        committed == crd_yaml(),
        "crds/digicertorders.yaml is stale: run `cargo run -- crd > crds/digicertorders.yaml`"
    );
}

#[test]
fn the_crd_subcommand_prints_it() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_digicert-operator"))
        .arg("crd")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), crd_yaml());
}
