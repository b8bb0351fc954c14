//! The command line for people, the kubectl plugin `kubectl digicert` (the
//! `kubectl-digicert` binary; also `digicert-operator status` and the other verbs):
//! `status`, `renew`, `cancel`, `allow-revocation`, `inspect`, `approve`, `deny`. It
//! writes annotations the operator acts on, so it needs no DigiCert API key.

pub mod complete;
pub mod plugin;

use std::fmt::Write as _;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::controller::secret::{TLS_CRT, TLS_KEY};
use crate::controller::status::{ISSUING, READY, find, rfc3339};
use crate::crd::{
    ALLOW_REVOCATION_ANNOTATION, APPROVE_ANNOTATION, CANCEL_ANNOTATION, DENY_ANNOTATION,
    DENY_REASON_ANNOTATION, DigicertOrder, RENEW_ANNOTATION, ReissueState, ReissueStatus,
};
use crate::error::{Error, Result};
use crate::keys;

/// kubectl's flags for which cluster, as which user, in which namespace.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct KubeFlags {
    /// Path to the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current context).
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// The kubeconfig cluster to use (default: the context's).
    #[arg(long, global = true, value_name = "NAME")]
    pub cluster: Option<String>,
    /// The kubeconfig user to use (default: the context's).
    #[arg(long, global = true, value_name = "NAME")]
    pub user: Option<String>,
    /// The namespace (default: the context's, else `default`).
    #[arg(short = 'n', long, global = true, value_name = "NAME")]
    pub namespace: Option<String>,
}

/// A client for the cluster the flags chose, and the namespace they chose.
pub struct Kube {
    pub client: Client,
    pub namespace: String,
    /// The API server's URL, to say which one did not answer.
    pub server: String,
}

impl Kube {
    fn orders(&self) -> Api<DigicertOrder> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// The DigicertOrder `name` of the namespace; a missing one is an error.
    async fn order(&self, name: &str) -> Result<DigicertOrder> {
        self.orders()
            .get_opt(name)
            .await?
            .ok_or_else(|| not_found(&self.namespace, name))
    }
}

fn not_found(namespace: &str, name: &str) -> Error {
    Error::Config(format!("DigicertOrder {namespace}/{name} not found"))
}

impl KubeFlags {
    /// Connects as kubectl would: the kubeconfig of --kubeconfig, else $KUBECONFIG
    /// (its list of files merged), else ~/.kube/config; with no kubeconfig and no
    /// flag naming one of its parts, the pod's service account.
    pub async fn connect(&self) -> Result<Kube> {
        crate::tls::install_crypto_provider();
        let options = KubeConfigOptions {
            context: self.context.clone(),
            cluster: self.cluster.clone(),
            user: self.user.clone(),
        };
        let chosen =
            options.context.is_some() || options.cluster.is_some() || options.user.is_some();
        let config = match &self.kubeconfig {
            Some(path) => {
                std::fs::metadata(path).map_err(|e| {
                    Error::Config(format!(
                        "cannot read the kubeconfig {}: {e}",
                        path.display()
                    ))
                })?;
                let file = Kubeconfig::read_from(path)
                    .map_err(|e| Error::Config(format!("kubeconfig {}: {e}", path.display())))?;
                kube::Config::from_custom_kubeconfig(file, &options)
                    .await
                    .map_err(|e| Error::Config(format!("kubeconfig {}: {e}", path.display())))?
            }
            None if chosen => kube::Config::from_kubeconfig(&options)
                .await
                .map_err(|e| Error::Config(format!("kubeconfig: {e}")))?,
            None => kube::Config::infer()
                .await
                .map_err(|e| Error::Config(format!("no usable kubeconfig: {e}")))?,
        };
        let namespace = self
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let server = config.cluster_url.to_string();
        let client = Client::try_from(config)?;
        Ok(Kube {
            client,
            namespace,
            server,
        })
    }
}

/// Which DigicertOrders `renew` asks for.
pub enum Selection {
    Names(Vec<String>),
    /// Every one of the namespace (or of all namespaces).
    All,
    /// Those matching a label selector.
    Labels(String),
}

/// How `status` prints: a table, a wider one, or the objects as kubectl does.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Wide,
    Json,
    Yaml,
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

/// The rows of `status`, as text (one line per order); `wide` adds the Secret, the
/// account, the certificate's id and its end.
pub fn status_table(orders: &[DigicertOrder], show_namespace: bool, wide: bool) -> String {
    let now = time::OffsetDateTime::now_utc();
    let mut header = vec![
        "NAMESPACE",
        "NAME",
        "ORDER",
        "READY",
        "DIGICERT",
        "EXPIRES IN",
        "RENEWAL IN",
        "REISSUE",
    ];
    if wide {
        header.extend(["SECRET", "ACCOUNT", "CERTIFICATE", "NOT AFTER"]);
    }
    header.push("LAST ERROR");
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for o in orders {
        let status = o.status.clone().unwrap_or_default();
        let ready = find(&status.conditions, READY);
        let last_error = match ready {
            Some(c) if c.status != "True" => format!("{}: {}", c.reason, c.message),
            _ => "-".into(),
        };
        let mut row = vec![
            o.namespace().unwrap_or_default(),
            o.name_any(),
            o.spec.order_id.to_string(),
            ready.map_or("Unknown".into(), |c| c.status.clone()),
            status.order_status.clone().unwrap_or_else(|| "-".into()),
            age(status.certificate.as_ref().map(|c| &c.not_after), now),
            age(status.renewal_time.as_ref(), now),
            describe_reissue(o).unwrap_or_else(|| "-".into()),
        ];
        if wide {
            let certificate = status.certificate.as_ref();
            row.extend([
                o.spec.secret_name.clone(),
                status.account.clone().unwrap_or_else(|| "-".into()),
                certificate.map_or("-".into(), |c| c.id.to_string()),
                certificate.map_or("-".into(), |c| {
                    rfc3339(crate::controller::status::offset(&c.not_after))
                }),
            ]);
        }
        row.push(last_error);
        rows.push(row);
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

/// An order as `kubectl get -o json` shows it: with its kind, without managed fields.
fn as_object(order: &DigicertOrder) -> Result<serde_json::Value> {
    let mut value = serde_json::to_value(order)?;
    if let Some(object) = value.as_object_mut() {
        object.insert(
            "apiVersion".into(),
            json!(crate::crd::GROUP.to_string() + "/v1alpha1"),
        );
        object.insert("kind".into(), json!("DigicertOrder"));
    }
    if let Some(meta) = value.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        meta.remove("managedFields");
    }
    Ok(value)
}

/// JSON or YAML text of `value`, as kubectl prints it.
fn render(value: &serde_json::Value, output: Output) -> Result<String> {
    Ok(match output {
        Output::Yaml => serde_yaml::to_string(value)
            .map_err(|e| Error::Config(format!("cannot write YAML: {e}")))?,
        _ => serde_json::to_string_pretty(value)? + "\n",
    })
}

/// `status`: one order (`name`), or those of the namespace (or all namespaces)
/// matching `selector`; as a table or the objects.
pub async fn status(
    kube: &Kube,
    name: Option<&str>,
    all_namespaces: bool,
    selector: Option<&str>,
    output: Option<Output>,
) -> Result<String> {
    let mut orders = match name {
        Some(name) => vec![kube.order(name).await?],
        None => {
            let api: Api<DigicertOrder> = if all_namespaces {
                Api::all(kube.client.clone())
            } else {
                kube.orders()
            };
            list(&api, selector).await?
        }
    };
    orders.sort_by_key(|o| (o.namespace(), o.name_any()));
    match output {
        Some(format @ (Output::Json | Output::Yaml)) => {
            let mut items = orders.iter().map(as_object).collect::<Result<Vec<_>>>()?;
            let value = match (name, items.pop()) {
                (Some(_), Some(one)) => one,
                (_, last) => {
                    items.extend(last);
                    json!({"apiVersion": "v1", "kind": "List", "items": items,
                           "metadata": {"resourceVersion": ""}})
                }
            };
            render(&value, format)
        }
        _ if orders.is_empty() => Ok(if all_namespaces {
            "No DigicertOrders found.\n".into()
        } else {
            format!("No DigicertOrders found in namespace {}.\n", kube.namespace)
        }),
        wide => Ok(status_table(
            &orders,
            all_namespaces,
            wide == Some(Output::Wide),
        )),
    }
}

/// The orders `api` lists, those matching `selector` if given; a selector the API
/// server cannot parse is named in the error.
async fn list(api: &Api<DigicertOrder>, selector: Option<&str>) -> Result<Vec<DigicertOrder>> {
    let mut params = ListParams::default();
    if let Some(selector) = selector {
        params = params.labels(selector);
    }
    match api.list(&params).await {
        Ok(list) => Ok(list.items),
        Err(kube::Error::Api(s)) if s.code == 400 && selector.is_some() => {
            Err(Error::Config(format!(
                "label selector {:?}: {}",
                selector.unwrap_or_default(),
                s.message
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// Sets `annotations` (a JSON object; null removes one) on an order, as of the
/// version read when `resource_version` is given (a 409 then says it changed).
async fn annotate(
    api: &Api<DigicertOrder>,
    namespace: &str,
    name: &str,
    annotations: serde_json::Value,
    resource_version: Option<String>,
) -> Result<()> {
    let mut metadata = json!({"annotations": annotations});
    if let Some(version) = resource_version {
        metadata["resourceVersion"] = json!(version);
    }
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": metadata})),
    )
    .await
    .map_err(|e| match e {
        kube::Error::Api(s) if s.code == 404 => not_found(namespace, name),
        other => other.into(),
    })?;
    Ok(())
}

/// `renew`: sets the renew annotation on the chosen orders. Names are all checked
/// before any is annotated, so a wrong one changes nothing.
pub async fn renew(kube: &Kube, selection: Selection, all_namespaces: bool) -> Result<String> {
    let targets: Vec<(String, String)> = match &selection {
        Selection::Names(names) => {
            for name in names {
                kube.order(name).await?;
            }
            names
                .iter()
                .map(|n| (kube.namespace.clone(), n.clone()))
                .collect()
        }
        Selection::All | Selection::Labels(_) => {
            let api: Api<DigicertOrder> = if all_namespaces {
                Api::all(kube.client.clone())
            } else {
                kube.orders()
            };
            let selector = match &selection {
                Selection::Labels(selector) => Some(selector.as_str()),
                _ => None,
            };
            let mut found: Vec<_> = list(&api, selector)
                .await?
                .iter()
                .map(|o| (o.namespace().unwrap_or_default(), o.name_any()))
                .collect();
            found.sort();
            if found.is_empty() {
                let place = if all_namespaces {
                    "in any namespace".to_string()
                } else {
                    format!("in namespace {}", kube.namespace)
                };
                let which = match &selection {
                    Selection::Labels(selector) => format!(" matches {selector:?}"),
                    _ => " exists".into(),
                };
                return Err(Error::Config(format!(
                    "no DigicertOrder {place}{which}; nothing was changed"
                )));
            }
            found
        }
    };
    let at = rfc3339(time::OffsetDateTime::now_utc());
    let mut out = String::new();
    for (namespace, name) in &targets {
        let api: Api<DigicertOrder> = Api::namespaced(kube.client.clone(), namespace);
        annotate(&api, namespace, name, json!({RENEW_ANNOTATION: at}), None).await?;
        let _ = writeln!(
            out,
            "Requested a reissue of {namespace}/{name} ({RENEW_ANNOTATION}={at})"
        );
    }
    let follow = match targets.as_slice() {
        [(namespace, name)] => format!("kubectl get dco {name} -n {namespace} -w"),
        _ => "kubectl digicert status".into(),
    };
    let _ = writeln!(out, "Follow it with: {follow}");
    Ok(out)
}

/// Cancels the reissue in flight, if there is one: the cancel annotation holds further
/// reissues of the spec, so it is set only when there is something to cancel, and only
/// on the object whose status was read (its resourceVersion goes with the patch).
pub async fn cancel(kube: &Kube, name: &str) -> Result<String> {
    let ns = &kube.namespace;
    let api = kube.orders();
    for _ in 0..5 {
        let order = kube.order(name).await?;
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
pub async fn allow_revocation(kube: &Kube, name: &str) -> Result<String> {
    let ns = &kube.namespace;
    let api = kube.orders();
    let order = kube.order(name).await?;
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

/// The id of the reissue request of `order` that waits for approval at DigiCert, as
/// its status says; else why there is none.
pub fn request_waiting_for_approval(order: &DigicertOrder) -> std::result::Result<u64, String> {
    let status = order.status.as_ref();
    let issuing = status.and_then(|s| find(&s.conditions, ISSUING));
    let waiting = issuing.is_some_and(|c| c.status == "True" && c.reason == "NeedsApproval");
    let request = status
        .and_then(|s| s.reissue.as_ref())
        .filter(|r| r.state == ReissueState::Submitted)
        .and_then(|r| r.request_id);
    match (waiting, request) {
        (true, Some(id)) => Ok(id),
        _ => Err(match (describe_reissue(order), issuing) {
            (None, _) => "has no reissue in flight".into(),
            (Some(reissue), Some(c)) if c.status == "True" => {
                format!(
                    "has no request waiting for approval ({reissue}: {})",
                    c.message
                )
            }
            (Some(reissue), _) => format!("has no request waiting for approval ({reissue})"),
        }),
    }
}

/// The order and its request that waits for approval; else an error that says why
/// nothing was changed.
async fn waiting_request(kube: &Kube, name: &str) -> Result<(DigicertOrder, u64)> {
    let order = kube.order(name).await?;
    match request_waiting_for_approval(&order) {
        Ok(id) => Ok((order, id)),
        Err(why) => Err(Error::Config(format!(
            "DigicertOrder {}/{name} {why}; nothing was changed",
            kube.namespace
        ))),
    }
}

/// Sets `annotations(request id)` on the order whose request waits for approval, as
/// of the version whose status showed it waiting: when the order changed meanwhile
/// (the request may have been decided), it is read again. Returns the request id.
async fn decide_waiting(
    kube: &Kube,
    name: &str,
    annotations: impl Fn(u64) -> serde_json::Value,
) -> Result<u64> {
    for _ in 0..5 {
        let (order, id) = waiting_request(kube, name).await?;
        let version = order.resource_version();
        match annotate(
            &kube.orders(),
            &kube.namespace,
            name,
            annotations(id),
            version,
        )
        .await
        {
            Ok(()) => return Ok(id),
            Err(e) if e.is_conflict() => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::Config(format!(
        "DigicertOrder {}/{name} kept changing while it was being annotated; nothing was \
         changed: try again",
        kube.namespace
    )))
}

/// `approve`: asks the operator to approve the request that waits (the approve
/// annotation names it); a deny of the same request is withdrawn.
pub async fn approve(kube: &Kube, name: &str) -> Result<String> {
    let id = decide_waiting(kube, name, |id| {
        json!({
            APPROVE_ANNOTATION: id.to_string(),
            DENY_ANNOTATION: null,
            DENY_REASON_ANNOTATION: null,
        })
    })
    .await?;
    Ok(format!(
        "Asked the operator to approve request {id} of {name} ({APPROVE_ANNOTATION}={id}); it \
         does when the order's DigicertAccount allows approval (allowApproval). Follow it \
         with: kubectl get dco {name} -w\n"
    ))
}

/// `deny`: asks the operator to reject the request that waits at DigiCert (the deny
/// annotation names it, the reason goes with it) and to hold further reissues of the
/// spec until it changes or a renewal is requested.
pub async fn deny(kube: &Kube, name: &str, reason: Option<&str>) -> Result<String> {
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    let id = decide_waiting(kube, name, |id| {
        json!({
            DENY_ANNOTATION: id.to_string(),
            DENY_REASON_ANNOTATION: reason,
            APPROVE_ANNOTATION: null,
        })
    })
    .await?;
    Ok(format!(
        "Asked the operator to reject request {id} of {name} at DigiCert ({DENY_ANNOTATION}={id}); \
         it does when the order's DigicertAccount allows approval (allowApproval), and starts \
         no new reissue of this spec until the spec changes or a renewal is requested \
         (kubectl digicert renew {name}).\n"
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

pub async fn inspect(kube: &Kube, name: &str) -> Result<String> {
    let ns = &kube.namespace;
    let order = kube.order(name).await?;
    let secrets: Api<Secret> = Api::namespaced(kube.client.clone(), ns);
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
            let table = status_table(&[o], false, false);
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
