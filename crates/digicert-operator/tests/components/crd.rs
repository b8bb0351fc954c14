//! The CRDs committed under `crds/` are what the code generates.

use digicert_operator::controller::{crd_yaml, one_crd_yaml};
use digicert_operator::crd::{account_crd, crd, issuer_crds};

#[test]
fn committed_crds_are_up_to_date() {
    for (file, generated) in [
        ("digicertaccounts.yaml", one_crd_yaml(&account_crd())),
        ("digicertorders.yaml", one_crd_yaml(&crd())),
        ("digicertissuers.yaml", one_crd_yaml(&issuer_crds().0)),
        (
            "digicertclusterissuers.yaml",
            one_crd_yaml(&issuer_crds().1),
        ),
    ] {
        let path = format!("{}/../../crds/{file}", env!("CARGO_MANIFEST_DIR"));
        let committed = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("{path} exists"));
        assert!(
            committed == generated,
            "crds/{file} is stale: run `cargo run -- crd` and split its documents into crds/ \
             (hack/render-manifests.sh does)"
        );
    }
    // Nothing else in crds/: `kubectl apply -f crds/` applies every file.
    let mut files: Vec<String> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../crds"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "digicertaccounts.yaml",
            "digicertclusterissuers.yaml",
            "digicertissuers.yaml",
            "digicertorders.yaml"
        ]
    );
}

#[test]
fn the_crd_subcommand_prints_them_all() {
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
    assert_eq!(
        kinds,
        [
            "DigicertAccount",
            "DigicertOrder",
            "DigicertIssuer",
            "DigicertClusterIssuer"
        ]
    );
}

/// A command for people that fails says so once, on stderr, as `error: …`.
#[test]
fn a_failing_command_prints_its_error_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_digicert-operator"))
        .args(["crd", "--out-dir"])
        .arg(&missing)
        .env_remove("LOG_LEVEL")
        .env_remove("LOG_FORMAT")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    let want = format!("error: writing {}/digicertaccounts.yaml", missing.display());
    assert!(lines[0].starts_with(&want), "{stderr}");
}

/// Walks the fields of `schema` (an OpenAPI schema): every property and every schema
/// of a list's items or a map's values, down to the leaves. Counts them in `fields`
/// and names those without a description in `missing`.
fn walk(path: &str, schema: &serde_json::Value, fields: &mut usize, missing: &mut Vec<String>) {
    if let Some(properties) = schema["properties"].as_object() {
        for (name, property) in properties {
            let path = format!("{path}.{name}");
            *fields += 1;
            let described = property["description"]
                .as_str()
                .is_some_and(|d| !d.trim().is_empty());
            if !described {
                missing.push(path.clone());
            }
            walk(&path, property, fields, missing);
        }
    }
    if schema["items"].is_object() {
        walk(&format!("{path}[]"), &schema["items"], fields, missing);
    }
    if schema["additionalProperties"].is_object() {
        let path = format!("{path}{{}}");
        walk(&path, &schema["additionalProperties"], fields, missing);
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        for (i, part) in schema[key].as_array().into_iter().flatten().enumerate() {
            walk(&format!("{path}({key}[{i}])"), part, fields, missing);
        }
    }
}

/// `kubectl explain` shows each field's description: none may be missing, in spec or
/// status, enums and references included.
#[test]
fn every_field_has_a_description() {
    let mut fields = 0;
    let mut missing = Vec::new();
    for crd in digicert_operator::crd::crds() {
        let crd = serde_json::to_value(&crd).unwrap();
        let kind = crd["spec"]["names"]["kind"].as_str().unwrap().to_string();
        for version in crd["spec"]["versions"].as_array().unwrap() {
            let schema = &version["schema"]["openAPIV3Schema"];
            walk(&kind, schema, &mut fields, &mut missing);
        }
    }
    // The walk reaches the leaves (both kinds have well over a hundred fields).
    assert!(fields > 150, "only {fields} fields seen");
    assert!(
        missing.is_empty(),
        "fields without a description (add a doc comment):\n{}",
        missing.join("\n")
    );
}

use serde::Deserialize;
