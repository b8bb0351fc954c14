//! The CRDs committed under `crds/` are what the code generates.

use digicert_operator::controller::{crd_yaml, one_crd_yaml};
use digicert_operator::crd::{account_crd, crd};

#[test]
fn committed_crds_are_up_to_date() {
    for (file, generated) in [
        ("digicertaccounts.yaml", one_crd_yaml(&account_crd())),
        ("digicertorders.yaml", one_crd_yaml(&crd())),
    ] {
        let path = format!("{}/crds/{file}", env!("CARGO_MANIFEST_DIR"));
        let committed = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("{path} exists"));
        assert!(
            committed == generated,
            "crds/{file} is stale: run `cargo run -- crd` and split its documents into crds/ \
             (hack/render-manifests.sh does)"
        );
    }
    // Nothing else in crds/: `kubectl apply -f crds/` applies every file.
    let mut files: Vec<String> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/crds"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["digicertaccounts.yaml", "digicertorders.yaml"]);
}

#[test]
fn the_crd_subcommand_prints_both() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_digicert-operator"))
        .arg("crd")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text, crd_yaml());
    let kinds: Vec<String> = serde_yaml::Deserializer::from_str(&text)
        .map(|d| {
            let v = serde_yaml::Value::deserialize(d).unwrap();
            v["spec"]["names"]["kind"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(kinds, ["DigicertAccount", "DigicertOrder"]);
}

use serde::Deserialize;
