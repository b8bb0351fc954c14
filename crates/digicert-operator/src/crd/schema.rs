//! The CustomResourceDefinitions as the API server gets them: generated from the
//! types, then tidied (descriptions reflowed, unsigned bounds, no empty defaults).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

use kube::CustomResourceExt;

use super::{DigicertAccount, DigicertClusterIssuer, DigicertIssuer, DigicertOrder};

/// The CRD as the API server gets it (`digicert-operator crd`, `crds/`). kube derives
/// the schema; two things are put right on the way: unsigned integers become plain
/// `integer`s bounded by their range (servers warn about the formats `uint8` …
/// `uint64` on every apply), and doc comments, wrapped in the source, become
/// paragraphs for `kubectl explain`.
pub fn crd() -> CustomResourceDefinition {
    tidy(DigicertOrder::crd())
}

/// The DigicertAccount CRD, tidied the same way.
pub fn account_crd() -> CustomResourceDefinition {
    tidy(DigicertAccount::crd())
}

/// Every CRD of the operator, in the order `digicert-operator crd` prints them.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![account_crd(), crd(), issuer_crds().0, issuer_crds().1]
}

/// The cert-manager issuer CRDs (namespaced, cluster-scoped), tidied the same way.
pub fn issuer_crds() -> (CustomResourceDefinition, CustomResourceDefinition) {
    (
        tidy(DigicertIssuer::crd()),
        tidy(DigicertClusterIssuer::crd()),
    )
}

/// Puts a derived CRD's schemas right (see [`crd`]).
pub fn tidy(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    for version in &mut crd.spec.versions {
        if let Some(schema) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        {
            let mut value = serde_json::to_value(&*schema).expect("the schema serialises");
            tidy_schema(&mut value);
            *schema = serde_json::from_value(value).expect("the tidied schema is a schema");
        }
    }
    crd
}

/// Tidies one schema and the schemas inside it (not `default`, `enum` or `example`
/// values, which are data).
fn tidy_schema(schema: &mut serde_json::Value) {
    use serde_json::Value;
    let Value::Object(map) = schema else {
        return;
    };
    if let Some(Value::String(format)) = map.get("format")
        && let Some(max) = unsigned_max(format)
    {
        map.remove("format");
        if let Some(max) = max {
            map.entry("maximum").or_insert(max.into());
        }
        map.entry("minimum").or_insert(0.into());
    }
    if let Some(Value::String(text)) = map.get_mut("description") {
        *text = reflow(text);
    }
    for key in ["properties", "patternProperties"] {
        if let Some(Value::Object(named)) = map.get_mut(key) {
            named.values_mut().for_each(tidy_schema);
        }
    }
    for key in [
        "items",
        "additionalProperties",
        "not",
        "allOf",
        "anyOf",
        "oneOf",
    ] {
        match map.get_mut(key) {
            Some(Value::Array(schemas)) => schemas.iter_mut().for_each(tidy_schema),
            Some(one) => tidy_schema(one),
            None => {}
        }
    }
}

/// For an unsigned integer format: its largest value, where it is below the API
/// server's own limit (int64).
fn unsigned_max(format: &str) -> Option<Option<u64>> {
    match format {
        "uint8" => Some(Some(u8::MAX.into())),
        "uint16" => Some(Some(u16::MAX.into())),
        "uint32" => Some(Some(u32::MAX.into())),
        "uint64" | "uint" => Some(None),
        _ => None,
    }
}

/// Joins the lines of each paragraph; blank lines part paragraphs, and a line that
/// starts a list item (`- `) keeps its own line.
pub(super) fn reflow(text: &str) -> String {
    text.split("\n\n")
        .map(|paragraph| {
            let mut out = String::new();
            for line in paragraph.lines().map(str::trim).filter(|l| !l.is_empty()) {
                if !out.is_empty() {
                    out.push(if line.starts_with("- ") { '\n' } else { ' ' });
                }
                out.push_str(line);
            }
            out
        })
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n")
}
