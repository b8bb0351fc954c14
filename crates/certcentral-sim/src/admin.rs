//! The simulator's admin API under `/admin`, and a typed client for it.
//!
//! | call | what it does |
//! |---|---|
//! | `GET /admin/healthz` | 200 when serving |
//! | `GET /admin/ca.pem` | the root certificate (trust it for the API and issued chains) |
//! | `GET /admin/orders`, `GET /admin/orders/{id}` | full records: certificates (`origin`: initial, reissue, auto_reissue, duplicate; `revoke_at`: when a name-removing reissue has it revoked; `revoked_at`), requests |
//! | `POST /admin/orders` | add an order ([`OrderSeed`]), or many at once (a list of them) |
//! | `PATCH /admin/orders/{id}` | change settings ([`OrderPatch`]): validation, approval, delays, validity, `revocation_delay_seconds`, `duplicates_enabled` |
//! | `DELETE /admin/orders/{id}` | remove an order |
//! | `GET /admin/clock` | `{"now": ..., "offset_seconds": ...}` |
//! | `POST /admin/clock` | `{"advance_seconds": N}`: move the clock forward (then due work happens) |
//! | `PUT /admin/clock` | `{"now": "2029-06-01T00:00:00Z"}`: set the clock (either direction) |
//! | `GET /admin/domains` | the domain store: methods, random values, approval times, polling |
//! | `POST /admin/domains` | add or reset a domain ([`DomainSeed`]: `name`, `dcv_method`, `validated_at`, `validated`) |
//! | `PATCH /admin/domains/{name}` | change a domain ([`DomainPatch`]): `validated: false` lapses it, `validated_at` sets the approval |
//! | `GET /admin/calls`, `DELETE /admin/calls` | per-operation call counters, and reset |
//! | `GET /admin/faults`, `POST /admin/faults`, `DELETE /admin/faults[/{id}]` | fault rules ([`FaultSpec`]) |
//! | `PUT /admin/rate-limits` | `[{"limit":100,"window_seconds":5}, ...]`; `[]` turns limiting off |
//! | `GET /admin/webhook` | the webhook ([`WebhookView`]): where it goes, the drop switch, deliveries `{sent, failed, dropped}` |
//! | `PUT /admin/webhook`, `DELETE /admin/webhook` | set ([`WebhookConfig`]: `url`, `key`, `ca_file`, `ca_pem`, `instant_issuance`) or clear it |
//! | `PUT /admin/webhook/drop` | `{"drop": true}`: drop every delivery from now on (polling must do without); `false` ends it |
//!
//! With `--admin-token`, every admin call needs `Authorization: Bearer <token>`.

use std::sync::Arc;

use axum::extract::{Path, Request, State as AxumState};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::faults::{FaultRule, FaultSpec};
use super::{
    CallCounts, DomainPatch, DomainSeed, OrderPatch, OrderSeed, RateLimitSpec, Simulator, clock,
};
use crate::store::{ApiError, State};
use crate::webhooks::{WebhookConfig, WebhookView};
use certcentral::Window;

const ADMIN_BODY_LIMIT: usize = 64 << 20;

pub fn router(sim: Arc<Simulator>) -> Router {
    Router::new()
        .route("/admin/healthz", get(|| async { "ok" }))
        .route("/admin/ca.pem", get(ca_pem))
        .route("/admin/orders", get(list_orders).post(add_order))
        .route(
            "/admin/orders/{id}",
            get(get_order).patch(patch_order).delete(delete_order),
        )
        .route(
            "/admin/clock",
            get(get_clock).post(move_clock).put(set_clock),
        )
        .route("/admin/domains", get(list_domains).post(add_domain))
        .route("/admin/domains/{name}", axum::routing::patch(patch_domain))
        .route("/admin/calls", get(get_calls).delete(reset_calls))
        .route(
            "/admin/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .route("/admin/faults/{id}", delete(remove_fault))
        .route("/admin/rate-limits", axum::routing::put(set_rate_limits))
        .route(
            "/admin/webhook",
            get(get_webhook).put(set_webhook).delete(clear_webhook),
        )
        .route("/admin/webhook/drop", axum::routing::put(drop_webhooks))
        // Bulk seeding sends thousands of orders in one body.
        .layer(axum::extract::DefaultBodyLimit::max(ADMIN_BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(sim.clone(), authorize))
        .with_state(sim)
}

async fn authorize(
    AxumState(sim): AxumState<Arc<Simulator>>,
    req: Request,
    next: Next,
) -> Response {
    if let Some(token) = &sim.admin_token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given != Some(token.as_str()) {
            return admin_error(StatusCode::UNAUTHORIZED, "admin token missing or wrong");
        }
    }
    next.run(req).await
}

fn admin_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

fn api_error(e: ApiError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, Json(json!({ "error": e.message, "code": e.code }))).into_response()
}

async fn persist(sim: &Simulator) {
    if let Err(e) = sim.persist().await {
        tracing::error!(error = %e, "cannot persist the simulator state");
    }
}

async fn ca_pem(AxumState(sim): AxumState<Arc<Simulator>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        sim.ca_pem().to_string(),
    )
        .into_response()
}

/// An order with its certificates and requests, as the admin API shows it.
pub(super) fn order_record(state: &State, id: u64) -> Option<Value> {
    let order = state.orders.get(&id)?;
    let certificates: Vec<_> = order
        .certificates
        .iter()
        .filter_map(|c| state.certificates.get(c))
        .collect();
    let requests: Vec<_> = state
        .requests
        .values()
        .filter(|r| r.order_id == id)
        .collect();
    Some(json!({
        "order": order,
        "certificates": certificates,
        "requests": requests,
    }))
}

async fn list_orders(AxumState(sim): AxumState<Arc<Simulator>>) -> Response {
    let ids: Vec<u64> = sim.lock().state.orders.keys().copied().collect();
    let records: Vec<Value> = ids
        .into_iter()
        .filter_map(|id| sim.order_record(id))
        .collect();
    Json(records).into_response()
}

async fn get_order(AxumState(sim): AxumState<Arc<Simulator>>, Path(id): Path<u64>) -> Response {
    match sim.order_record(id) {
        Some(r) => Json(r).into_response(),
        None => admin_error(StatusCode::NOT_FOUND, format!("order {id} not found")),
    }
}

/// One order, or many (seeded under one lock and persisted once).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Seeds {
    One(Box<OrderSeed>),
    Many(Vec<OrderSeed>),
}

async fn add_order(
    AxumState(sim): AxumState<Arc<Simulator>>,
    body: Result<Json<Seeds>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(seeds) = match body {
        Ok(b) => b,
        Err(e) => return admin_error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    match seeds {
        Seeds::One(seed) => {
            let id = seed.id;
            if let Err(e) = sim.seed_order(*seed) {
                return api_error(e);
            }
            persist(&sim).await;
            (StatusCode::CREATED, Json(sim.order_record(id))).into_response()
        }
        Seeds::Many(seeds) => {
            let result = sim.seed_orders(seeds);
            // Those before a refused one stay.
            persist(&sim).await;
            match result {
                Ok(added) => (StatusCode::CREATED, Json(json!({ "added": added }))).into_response(),
                Err(e) => api_error(e),
            }
        }
    }
}

async fn patch_order(
    AxumState(sim): AxumState<Arc<Simulator>>,
    Path(id): Path<u64>,
    body: Result<Json<OrderPatch>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(patch) = match body {
        Ok(b) => b,
        Err(e) => return admin_error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    if let Err(e) = sim.patch_order(id, patch) {
        return api_error(e);
    }
    persist(&sim).await;
    Json(sim.order_record(id)).into_response()
}

async fn delete_order(AxumState(sim): AxumState<Arc<Simulator>>, Path(id): Path<u64>) -> Response {
    let result = sim.lock().state.remove_order(id);
    match result {
        Ok(()) => {
            persist(&sim).await;
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => api_error(e),
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ClockView {
    #[serde(with = "time::serde::rfc3339")]
    pub now: time::OffsetDateTime,
    pub offset_seconds: i64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockMove {
    pub advance_seconds: i64,
}

fn clock_view(sim: &Simulator) -> ClockView {
    let inner = sim.lock();
    ClockView {
        now: clock(&inner.state),
        offset_seconds: inner.state.clock_offset_seconds,
    }
}

async fn get_clock(AxumState(sim): AxumState<Arc<Simulator>>) -> Response {
    Json(clock_view(&sim)).into_response()
}

async fn move_clock(
    AxumState(sim): AxumState<Arc<Simulator>>,
    body: Result<Json<ClockMove>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(m) = match body {
        Ok(b) => b,
        Err(e) => return admin_error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    if m.advance_seconds < 0 {
        return admin_error(StatusCode::BAD_REQUEST, "the clock only moves forward");
    }
    sim.advance_clock(time::Duration::seconds(m.advance_seconds));
    persist(&sim).await;
    Json(clock_view(&sim)).into_response()
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockSet {
    #[serde(with = "time::serde::rfc3339")]
    pub now: time::OffsetDateTime,
}

async fn set_clock(
    AxumState(sim): AxumState<Arc<Simulator>>,
    body: Result<Json<ClockSet>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(m) = match body {
        Ok(b) => b,
        Err(e) => return admin_error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    sim.set_clock(m.now);
    persist(&sim).await;
    Json(clock_view(&sim)).into_response()
}

async fn list_domains(AxumState(sim): AxumState<Arc<Simulator>>) -> Response {
    Json(sim.domains()).into_response()
}

fn domain_record(sim: &Simulator, id: u64) -> Response {
    let domain = sim.domains().into_iter().find(|d| d.id == id);
    Json(domain).into_response()
}

async fn add_domain(
    AxumState(sim): AxumState<Arc<Simulator>>,
    body: Result<Json<DomainSeed>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(seed) = match body {
        Ok(b) => b,
        Err(e) => return admin_error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    match sim.seed_domain(&seed) {
        Ok(id) => {
            persist(&sim).await;
            (StatusCode::CREATED, domain_record(&sim, id)).into_response()
        }
        Err(e) => api_error(e),
    }
}

async fn patch_domain(
    AxumState(sim): AxumState<Arc<Simulator>>,
    Path(name): Path<String>,
    body: Result<Json<DomainPatch>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(patch) = match body {
        Ok(b) => b,
        Err(e) => return admin_error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    match sim.patch_domain(&name, &patch) {
        Ok(id) => {
            persist(&sim).await;
            domain_record(&sim, id)
        }
        Err(e) => api_error(e),
    }
}

async fn get_calls(AxumState(sim): AxumState<Arc<Simulator>>) -> Json<CallCounts> {
    Json(sim.calls())
}

async fn reset_calls(AxumState(sim): AxumState<Arc<Simulator>>) -> StatusCode {
    sim.reset_calls();
    StatusCode::NO_CONTENT
}

async fn list_faults(AxumState(sim): AxumState<Arc<Simulator>>) -> Json<Vec<FaultRule>> {
    Json(sim.faults())
}

async fn add_fault(
    AxumState(sim): AxumState<Arc<Simulator>>,
    body: Result<Json<FaultSpec>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(spec) = match body {
        Ok(b) => b,
        Err(e) => return admin_error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    match sim.add_fault(spec) {
        Ok(id) => (StatusCode::CREATED, Json(json!({ "id": id }))).into_response(),
        Err(e) => admin_error(StatusCode::BAD_REQUEST, e),
    }
}

async fn clear_faults(AxumState(sim): AxumState<Arc<Simulator>>) -> StatusCode {
    sim.clear_faults();
    StatusCode::NO_CONTENT
}

async fn remove_fault(AxumState(sim): AxumState<Arc<Simulator>>, Path(id): Path<u64>) -> Response {
    if sim.remove_fault(id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        admin_error(StatusCode::NOT_FOUND, format!("fault {id} not found"))
    }
}

async fn set_rate_limits(
    AxumState(sim): AxumState<Arc<Simulator>>,
    body: Result<Json<Vec<RateLimitSpec>>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(specs) = match body {
        Ok(b) => b,
        Err(e) => return admin_error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    sim.set_rate_limits(specs.into_iter().map(Window::from).collect());
    StatusCode::NO_CONTENT.into_response()
}

async fn get_webhook(AxumState(sim): AxumState<Arc<Simulator>>) -> Json<WebhookView> {
    Json(sim.webhook())
}

async fn set_webhook(
    AxumState(sim): AxumState<Arc<Simulator>>,
    body: Result<Json<WebhookConfig>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(config) = match body {
        Ok(b) => b,
        Err(e) => return admin_error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    match sim.set_webhook(Some(config)) {
        Ok(()) => Json(sim.webhook()).into_response(),
        Err(e) => admin_error(StatusCode::BAD_REQUEST, e),
    }
}

async fn clear_webhook(AxumState(sim): AxumState<Arc<Simulator>>) -> StatusCode {
    let _ = sim.set_webhook(None);
    StatusCode::NO_CONTENT
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookDrop {
    pub drop: bool,
}

async fn drop_webhooks(
    AxumState(sim): AxumState<Arc<Simulator>>,
    body: Result<Json<WebhookDrop>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(d) = match body {
        Ok(b) => b,
        Err(e) => return admin_error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    sim.drop_webhooks(d.drop);
    Json(sim.webhook()).into_response()
}

/// A typed client for the admin API, for tests and tools that drive a simulator
/// running in another process.
#[derive(Clone, Debug)]
pub struct AdminClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("simulator admin {what}: {message}")]
pub struct AdminError {
    pub what: String,
    pub status: Option<u16>,
    pub message: String,
}

impl AdminClient {
    /// `base` is the admin URL (`https://host:port/admin`); `ca_pem` the simulator's root.
    pub fn new(base: &str, ca_pem: &str, token: Option<String>) -> Result<Self, AdminError> {
        pki::tls::install_crypto_provider();
        let err = |message: String| AdminError {
            what: "client".into(),
            status: None,
            message,
        };
        let certs = reqwest::Certificate::from_pem_bundle(ca_pem.as_bytes())
            .map_err(|e| err(e.to_string()))?;
        let http = reqwest::Client::builder()
            .tls_certs_only(certs)
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| err(e.to_string()))?;
        Ok(AdminClient {
            http,
            base: base.trim_end_matches('/').to_string(),
            token,
        })
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, AdminError> {
        let what = format!("{method} {path}");
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| AdminError {
            what: what.clone(),
            status: None,
            message: e.to_string(),
        })?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(AdminError {
                what,
                status: Some(status.as_u16()),
                message: text,
            });
        }
        if text.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| AdminError {
            what,
            status: Some(status.as_u16()),
            message: e.to_string(),
        })
    }

    pub async fn add_order(&self, seed: &OrderSeed) -> Result<Value, AdminError> {
        let body = serde_json::to_value(seed).expect("seed serialises");
        self.send(reqwest::Method::POST, "/orders", Some(body))
            .await
    }

    /// Adds many orders in one call.
    pub async fn add_orders(&self, seeds: &[OrderSeed]) -> Result<u64, AdminError> {
        let body = serde_json::to_value(seeds).expect("seeds serialise");
        let v = self
            .send(reqwest::Method::POST, "/orders", Some(body))
            .await?;
        Ok(v["added"].as_u64().unwrap_or_default())
    }

    pub async fn webhook(&self) -> Result<WebhookView, AdminError> {
        let v = self.send(reqwest::Method::GET, "/webhook", None).await?;
        serde_json::from_value(v).map_err(|e| AdminError {
            what: "GET /webhook".into(),
            status: None,
            message: e.to_string(),
        })
    }

    /// Sets (or with `None` clears) where webhooks go.
    pub async fn set_webhook(&self, config: Option<&WebhookConfig>) -> Result<(), AdminError> {
        let result = match config {
            Some(c) => {
                let body = serde_json::to_value(c).expect("webhook serialises");
                self.send(reqwest::Method::PUT, "/webhook", Some(body))
                    .await
            }
            None => self.send(reqwest::Method::DELETE, "/webhook", None).await,
        };
        result.map(drop)
    }

    /// Drops every webhook delivery from now on (`true`), or no more.
    pub async fn drop_webhooks(&self, on: bool) -> Result<(), AdminError> {
        let body = serde_json::to_value(WebhookDrop { drop: on }).expect("serialises");
        self.send(reqwest::Method::PUT, "/webhook/drop", Some(body))
            .await
            .map(drop)
    }

    pub async fn order(&self, id: u64) -> Result<Value, AdminError> {
        self.send(reqwest::Method::GET, &format!("/orders/{id}"), None)
            .await
    }

    pub async fn patch_order(&self, id: u64, patch: &OrderPatch) -> Result<Value, AdminError> {
        let body = serde_json::to_value(patch).expect("patch serialises");
        self.send(reqwest::Method::PATCH, &format!("/orders/{id}"), Some(body))
            .await
    }

    pub async fn advance_clock(&self, seconds: i64) -> Result<Value, AdminError> {
        self.send(
            reqwest::Method::POST,
            "/clock",
            Some(json!({ "advance_seconds": seconds })),
        )
        .await
    }

    pub async fn set_clock(&self, now: time::OffsetDateTime) -> Result<Value, AdminError> {
        let body = serde_json::to_value(ClockSet { now }).expect("clock serialises");
        self.send(reqwest::Method::PUT, "/clock", Some(body)).await
    }

    pub async fn domains(&self) -> Result<Value, AdminError> {
        self.send(reqwest::Method::GET, "/domains", None).await
    }

    pub async fn add_domain(&self, seed: &DomainSeed) -> Result<Value, AdminError> {
        let body = serde_json::to_value(seed).expect("domain serialises");
        self.send(reqwest::Method::POST, "/domains", Some(body))
            .await
    }

    pub async fn patch_domain(&self, name: &str, patch: &DomainPatch) -> Result<Value, AdminError> {
        let body = serde_json::to_value(patch).expect("patch serialises");
        self.send(
            reqwest::Method::PATCH,
            &format!("/domains/{name}"),
            Some(body),
        )
        .await
    }

    pub async fn calls(&self) -> Result<CallCounts, AdminError> {
        let v = self.send(reqwest::Method::GET, "/calls", None).await?;
        serde_json::from_value(v).map_err(|e| AdminError {
            what: "GET /calls".into(),
            status: None,
            message: e.to_string(),
        })
    }

    pub async fn reset_calls(&self) -> Result<(), AdminError> {
        self.send(reqwest::Method::DELETE, "/calls", None)
            .await
            .map(drop)
    }

    pub async fn add_fault(&self, spec: &FaultSpec) -> Result<u64, AdminError> {
        let body = serde_json::to_value(spec).expect("fault serialises");
        let v = self
            .send(reqwest::Method::POST, "/faults", Some(body))
            .await?;
        Ok(v["id"].as_u64().unwrap_or_default())
    }

    pub async fn clear_faults(&self) -> Result<(), AdminError> {
        self.send(reqwest::Method::DELETE, "/faults", None)
            .await
            .map(drop)
    }

    pub async fn set_rate_limits(&self, limits: &[RateLimitSpec]) -> Result<(), AdminError> {
        let body = serde_json::to_value(limits).expect("limits serialise");
        self.send(reqwest::Method::PUT, "/rate-limits", Some(body))
            .await
            .map(drop)
    }
}
