//! The command line for people: `status`, `renew`, `cancel`, `allow-revocation`, `inspect`. The same
//! binary installed as `kubectl-digicert` is a kubectl plugin (`kubectl digicert status`).
//! Uses the current kubeconfig.

use std::fmt::Write as _;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::controller::secret::{TLS_CRT, TLS_KEY};
use crate::controller::status::{ISSUING, READY, find, rfc3339};
use crate::crd::{
    ALLOW_REVOCATION_ANNOTATION, CANCEL_ANNOTATION, DigicertOrder, RENEW_ANNOTATION, ReissueState,
    ReissueStatus,
};
use crate::error::{Error, Result};
use crate::keys;

/// Where to look: one namespace (default: the kubeconfig's) or all.
pub struct Scope {
    pub namespace: Option<String>,
    pub all_namespaces: bool,
}

pub async fn client() -> Result<(Client, String)> {
    crate::tls::install_crypto_provider();
    let config = kube::Config::infer()
        .await
        .map_err(|e| Error::Config(format!("no usable kubeconfig: {e}")))?;
    let default_ns = config.default_namespace.clone();
    let client = Client::try_from(config)?;
    Ok((client, default_ns))
}

fn age(t: Option<&Time>, now: time::OffsetDateTime) -> String {
    let Some(t) = t.map(crate::controller::status::offset) else {
        return "-".into();
    };
    let d = t - now;
    let (sign, d) = if d.is_negative() { ("-", -d) } else { ("", d) };
    let days = d.whole_days();
    if days >= 2 {
        format!("{sign}{days}d")
    } else if d.whole_hours() >= 2 {
        format!("{sign}{}h", d.whole_hours())
    } else {
        format!("{sign}{}m", d.whole_minutes())
    }
}

/// Where the reissue in flight stands and why it was started, in words:
/// `Submitted, request 500001 (pending at DigiCert); renewal`.
pub fn describe_reissue(order: &DigicertOrder) -> Option<String> {
    let status = order.status.as_ref()?;
    let reissue = status.reissue.as_ref()?;
    // The Issuing condition says what DigiCert does with a sent request.
    let at_digicert = find(&status.conditions, ISSUING)
        .filter(|c| c.status == "True")
        .map(|c| match c.reason.as_str() {
            "Pending" => "pending at DigiCert",
            "NeedsApproval" => "waiting for approval",
            "Approved" => "approved, waiting for issuance",
            "ValidationPending" => "waiting for domain validation",
            _ => "sent to DigiCert",
        })
        .unwrap_or("sent to DigiCert");
    let dup = if reissue.duplicate { " duplicate" } else { "" };
    let state = match (reissue.state, reissue.request_id) {
        (ReissueState::Prepared, _) => format!("Prepared{dup}, not sent yet"),
        (ReissueState::Submitting, _) => format!("Submitting{dup} to DigiCert"),
        (ReissueState::Submitted, Some(id)) => {
            format!("Submitted,{dup} request {id} ({at_digicert})")
        }
        (ReissueState::Submitted, None) => format!("Submitted{dup} ({at_digicert})"),
    };
    Some(format!("{state}; {}", reissue_cause(reissue)))
}

/// Why a reissue was started, from its recorded reason (`ReissueReason::as_str`).
fn reissue_cause(reissue: &ReissueStatus) -> &str {
    match reissue.reason.as_str() {
        "Missing" => "no certificate in the Secret",
        "Invalid" => "the Secret is unusable",
        "NamesChanged" => "names changed",
        "KeyChanged" => "key settings changed",
        "OrderChanged" => "the Secret was for another order",
        "ForeignCertificate" => "a certificate the operator did not store",
        "Renewal" => "renewal",
        "Manual" => "renewal requested",
        "Revoked" => "certificate revoked",
        "OrderReissued" => "the order was reissued",
        other => other,
    }
}

/// The rows of `status`, as text (one line per order).
pub fn status_table(orders: &[DigicertOrder], show_namespace: bool) -> String {
    let now = time::OffsetDateTime::now_utc();
    let mut rows: Vec<Vec<String>> = vec![
        [
            "NAMESPACE",
            "NAME",
            "ORDER",
            "READY",
            "DIGICERT",
            "EXPIRES IN",
            "RENEWAL IN",
            "REISSUE",
            "LAST ERROR",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    ];
    for o in orders {
        let status = o.status.clone().unwrap_or_default();
        let ready = find(&status.conditions, READY);
        let last_error = match ready {
            Some(c) if c.status != "True" => format!("{}: {}", c.reason, c.message),
            _ => "-".into(),
        };
        rows.push(vec![
            o.namespace().unwrap_or_default(),
            o.name_any(),
            o.spec.order_id.to_string(),
            ready.map_or("Unknown".into(), |c| c.status.clone()),
            status.order_status.clone().unwrap_or_else(|| "-".into()),
            age(status.certificate.as_ref().map(|c| &c.not_after), now),
            age(status.renewal_time.as_ref(), now),
            describe_reissue(o).unwrap_or_else(|| "-".into()),
            last_error,
        ]);
    }
    let skip = usize::from(!show_namespace);
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .skip(skip)
            .map(|(i, c)| {
                if i + 1 == row.len() {
                    c.clone()
                } else {
                    format!("{c:<width$}", width = widths[i])
                }
            })
            .collect();
        let _ = writeln!(out, "{}", cells.join("   ").trim_end());
    }
    out
}

pub async fn status(scope: Scope) -> Result<String> {
    let (client, default_ns) = client().await?;
    let api: Api<DigicertOrder> = if scope.all_namespaces {
        Api::all(client)
    } else {
        Api::namespaced(client, &scope.namespace.unwrap_or(default_ns))
    };
    let mut orders = api.list(&ListParams::default()).await?.items;
    orders.sort_by_key(|o| (o.namespace(), o.name_any()));
    if orders.is_empty() {
        return Ok("No DigicertOrders found.\n".into());
    }
    Ok(status_table(&orders, scope.all_namespaces))
}

async fn annotate(name: &str, namespace: Option<String>, annotation: &str) -> Result<String> {
    let (client, default_ns) = client().await?;
    let ns = namespace.unwrap_or(default_ns);
    let api: Api<DigicertOrder> = Api::namespaced(client, &ns);
    let value = rfc3339(time::OffsetDateTime::now_utc());
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {annotation: value}}})),
    )
    .await
    .map_err(|e| match e {
        kube::Error::Api(s) if s.code == 404 => {
            Error::Config(format!("DigicertOrder {ns}/{name} not found"))
        }
        other => other.into(),
    })?;
    Ok(value)
}

pub async fn renew(name: &str, namespace: Option<String>) -> Result<String> {
    let at = annotate(name, namespace, RENEW_ANNOTATION).await?;
    Ok(format!(
        "Requested a reissue of {name} ({RENEW_ANNOTATION}={at}); follow it with: kubectl get dco {name} -w\n"
    ))
}

/// Cancels the reissue in flight, if there is one: the cancel annotation holds further
/// reissues of the spec, so it is set only when there is something to cancel, and only
/// on the object whose status was read (its resourceVersion goes with the patch).
pub async fn cancel(name: &str, namespace: Option<String>) -> Result<String> {
    let (client, default_ns) = client().await?;
    let ns = namespace.unwrap_or(default_ns);
    let api: Api<DigicertOrder> = Api::namespaced(client, &ns);
    for _ in 0..5 {
        let order = api
            .get_opt(name)
            .await?
            .ok_or_else(|| Error::Config(format!("DigicertOrder {ns}/{name} not found")))?;
        let Some(reissue) = describe_reissue(&order) else {
            return Ok(nothing_to_cancel(name));
        };
        let at = rfc3339(time::OffsetDateTime::now_utc());
        let patch = json!({"metadata": {
            "resourceVersion": order.resource_version(),
            "annotations": {CANCEL_ANNOTATION: at},
        }});
        match api
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Ok(_) => return Ok(canceling(name, &reissue, &at)),
            // Changed since it was read (the reissue may have ended): read it again.
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(kube::Error::Api(s)) if s.code == 404 => {
                return Err(Error::Config(format!(
                    "DigicertOrder {ns}/{name} not found"
                )));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Config(format!(
        "DigicertOrder {ns}/{name} kept changing while the cancel was requested; nothing \
         was changed: try again"
    )))
}

/// What `cancel` says when it sets the annotation.
fn canceling(name: &str, reissue: &str, at: &str) -> String {
    format!(
        "Requested canceling the reissue in flight of {name} ({reissue}) with \
         {CANCEL_ANNOTATION}={at}. The operator cancels it (at DigiCert too, once sent) and \
         starts no new reissue of this spec until the spec changes or a renewal is requested \
         (kubectl digicert renew {name}).\n"
    )
}

/// What `cancel` says when there is nothing to cancel.
fn nothing_to_cancel(name: &str) -> String {
    format!(
        "{name} has no reissue in flight: nothing to cancel. Nothing was changed, and \
         renewals go on as planned.\n"
    )
}

/// What a held reissue would revoke, as `allow-revocation` prints it.
pub fn describe_guard(order: &DigicertOrder) -> Option<String> {
    let guard = order.status.as_ref()?.revocation_guard.as_ref()?;
    let mut out = format!(
        "The reissue of {} drops {}. DigiCert revokes within 72 hours:\n",
        order.name_any(),
        guard.dropped_names.join(", ")
    );
    for c in &guard.would_revoke {
        let _ = writeln!(
            out,
            "  {} certificate {}{}{}",
            c.kind,
            c.certificate_id,
            c.serial_number
                .as_deref()
                .map(|s| format!(" (serial {s})"))
                .unwrap_or_default(),
            if c.secrets.is_empty() {
                String::new()
            } else {
                format!(" in {}", c.secrets.join(", "))
            }
        );
    }
    if guard.would_revoke.is_empty() {
        out.push_str("  the order's earlier certificates and duplicates\n");
    }
    Some(out)
}

/// Sets the allow-revocation annotation to the fingerprint the held reissue shows.
pub async fn allow_revocation(name: &str, namespace: Option<String>) -> Result<String> {
    let (client, default_ns) = client().await?;
    let ns = namespace.unwrap_or(default_ns);
    let api: Api<DigicertOrder> = Api::namespaced(client, &ns);
    let order = api
        .get_opt(name)
        .await?
        .ok_or_else(|| Error::Config(format!("DigicertOrder {ns}/{name} not found")))?;
    let (Some(text), Some(guard)) = (
        describe_guard(&order),
        order
            .status
            .as_ref()
            .and_then(|s| s.revocation_guard.clone()),
    ) else {
        return Err(Error::Config(format!(
            "DigicertOrder {ns}/{name} holds no reissue for consent; nothing was changed"
        )));
    };
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {
            ALLOW_REVOCATION_ANNOTATION: guard.fingerprint
        }}})),
    )
    .await?;
    Ok(format!(
        "{text}Agreed ({ALLOW_REVOCATION_ANNOTATION}={}); the reissue goes ahead.\n",
        guard.fingerprint
    ))
}

/// What `inspect` shows about a certificate Secret.
pub fn describe_secret(secret: &Secret) -> Result<String> {
    let get = |k: &str| {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(k))
            .map(|b| String::from_utf8_lossy(&b.0).into_owned())
    };
    let crt = get(TLS_CRT).ok_or_else(|| Error::Config("the Secret has no tls.crt".into()))?;
    let certs = keys::certificates_from_pem(&crt)?;
    let leaf = keys::inspect_certificate(&certs[0])?;
    let key_match = match get(TLS_KEY).map(|k| keys::parse_private_key(&k)) {
        Some(Ok(k)) if keys::public_key_bits(&k) == leaf.public_key_bits => "yes".to_string(),
        Some(Ok(_)) => "NO: tls.key does not belong to tls.crt".into(),
        Some(Err(e)) => format!("NO: tls.key does not parse: {e}"),
        None => "NO: no tls.key".into(),
    };
    let now = time::OffsetDateTime::now_utc();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Secret:      {}/{}",
        secret.namespace().unwrap_or_default(),
        secret.name_any()
    );
    let _ = writeln!(out, "Subject:     {}", leaf.subject);
    let _ = writeln!(out, "SANs:        {}", leaf.dns_names.join(", "));
    let _ = writeln!(out, "Issuer:      {}", leaf.issuer);
    let _ = writeln!(out, "Serial:      {}", leaf.serial_number);
    let _ = writeln!(out, "Thumbprint:  {}", leaf.thumbprint);
    let _ = writeln!(out, "Key:         {}", leaf.key);
    let _ = writeln!(out, "Not before:  {}", rfc3339(leaf.not_before));
    let _ = writeln!(
        out,
        "Not after:   {} ({})",
        rfc3339(leaf.not_after),
        if leaf.not_after < now {
            "EXPIRED".to_string()
        } else {
            format!(
                "in {}",
                age(Some(&crate::controller::status::time(leaf.not_after)), now)
            )
        }
    );
    let _ = writeln!(
        out,
        "Chain:       {} certificate(s) in tls.crt",
        certs.len()
    );
    let _ = writeln!(out, "Key match:   {key_match}");
    Ok(out)
}

pub async fn inspect(name: &str, namespace: Option<String>) -> Result<String> {
    let (client, default_ns) = client().await?;
    let ns = namespace.unwrap_or(default_ns);
    let orders: Api<DigicertOrder> = Api::namespaced(client.clone(), &ns);
    let order = orders
        .get_opt(name)
        .await?
        .ok_or_else(|| Error::Config(format!("DigicertOrder {ns}/{name} not found")))?;
    let secrets: Api<Secret> = Api::namespaced(client, &ns);
    let secret = secrets
        .get_opt(&order.spec.secret_name)
        .await?
        .ok_or_else(|| {
            Error::Config(format!(
                "Secret {ns}/{} does not exist (yet)",
                order.spec.secret_name
            ))
        })?;
    let mut out = format!(
        "DigicertOrder: {ns}/{name} (order {})\n",
        order.spec.order_id
    );
    out.push_str(&describe_secret(&secret)?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::decide::ReissueReason;

    fn order(status: serde_json::Value) -> DigicertOrder {
        serde_json::from_value(json!({
            "apiVersion": "digicert-operator.dev/v1alpha1",
            "kind": "DigicertOrder",
            "metadata": {"name": "web", "namespace": "demo"},
            "spec": {"orderId": 1001, "commonName": "example.com", "secretName": "web-tls"},
            "status": status,
        }))
        .unwrap()
    }

    fn reissue(state: &str, reason: &str, more: serde_json::Value) -> serde_json::Value {
        let mut r = json!({
            "state": state, "reason": reason, "csrFingerprint": "c", "specFingerprint": "s",
            "keySecretName": "web-pending-key",
        });
        r.as_object_mut()
            .unwrap()
            .extend(more.as_object().unwrap().clone());
        r
    }

    fn issuing(reason: &str) -> serde_json::Value {
        json!([{"type": "Issuing", "status": "True", "reason": reason, "message": "m",
                "lastTransitionTime": "2026-01-01T00:00:00Z"}])
    }

    #[test]
    fn a_reissue_in_flight_reads_as_words() {
        let cases = [
            (
                json!({"reissue": reissue("Submitted", "Missing", json!({"requestId": 500001})),
                       "conditions": issuing("Pending")}),
                "Submitted, request 500001 (pending at DigiCert); no certificate in the Secret",
            ),
            (
                json!({"reissue": reissue("Submitted", "Manual", json!({"requestId": 7})),
                       "conditions": issuing("NeedsApproval")}),
                "Submitted, request 7 (waiting for approval); renewal requested",
            ),
            (
                json!({"reissue": reissue("Submitted", "Renewal", json!({"certificateId": 9})),
                       "conditions": issuing("ValidationPending")}),
                "Submitted (waiting for domain validation); renewal",
            ),
            (
                json!({"reissue": reissue("Submitted", "OrderReissued",
                                          json!({"requestId": 8, "duplicate": true}))}),
                "Submitted, duplicate request 8 (sent to DigiCert); the order was reissued",
            ),
            (
                json!({"reissue": reissue("Prepared", "NamesChanged", json!({}))}),
                "Prepared, not sent yet; names changed",
            ),
            (
                json!({"reissue": reissue("Submitting", "KeyChanged", json!({}))}),
                "Submitting to DigiCert; key settings changed",
            ),
        ];
        for (status, want) in cases {
            let o = order(status);
            assert_eq!(describe_reissue(&o).as_deref(), Some(want));
            let table = status_table(&[o], false);
            assert!(table.contains(want), "{table}");
            assert!(!table.contains("(Missing)"), "{table}");
        }
        assert_eq!(describe_reissue(&order(json!({}))), None);
    }

    #[test]
    fn every_reissue_reason_has_words() {
        // A new reason stops this from compiling until it is listed below.
        let _listed = |r: ReissueReason| match r {
            ReissueReason::Missing
            | ReissueReason::Invalid(_)
            | ReissueReason::NamesChanged
            | ReissueReason::KeyChanged
            | ReissueReason::OrderChanged
            | ReissueReason::Foreign(_)
            | ReissueReason::Renewal
            | ReissueReason::Manual
            | ReissueReason::Revoked
            | ReissueReason::OrderReissued => (),
        };
        for reason in [
            ReissueReason::Missing,
            ReissueReason::Invalid("x".into()),
            ReissueReason::NamesChanged,
            ReissueReason::KeyChanged,
            ReissueReason::OrderChanged,
            ReissueReason::Foreign("x".into()),
            ReissueReason::Renewal,
            ReissueReason::Manual,
            ReissueReason::Revoked,
            ReissueReason::OrderReissued,
        ] {
            let status: ReissueStatus =
                serde_json::from_value(reissue("Prepared", reason.as_str(), json!({}))).unwrap();
            assert_ne!(reissue_cause(&status), reason.as_str());
        }
    }

    #[test]
    fn cancel_says_what_the_operator_will_do() {
        let text = canceling(
            "web",
            "Submitted, request 7 (pending at DigiCert); renewal",
            "t",
        );
        assert!(text.contains("request 7"), "{text}");
        assert!(text.contains(&format!("{CANCEL_ANNOTATION}=t")), "{text}");
        assert!(text.contains("until the spec changes or a renewal is requested"));
        let text = nothing_to_cancel("web");
        assert!(text.contains("no reissue in flight"), "{text}");
        assert!(text.contains("renewals go on"), "{text}");
        assert!(!text.contains("until the spec changes"), "{text}");
    }
}
