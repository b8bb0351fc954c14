//! The DigiCert side of the simulator: `/services/v2/...`.
//!
//! Every call goes through the same steps, in the order CertCentral's own front would
//! meet them: route, count, injected faults, API key, rate limit, then the state
//! change, then faults that act after the work was done.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

mod routes;

use super::dcv_api::DomainQuery;
use super::faults::{FaultAction, Phase};
use super::{Inner, Simulator, clock};
use crate::rules::duplicate as duplicates;
use crate::store::{ApiError, ApiKeyConfig, State};
use certcentral::dcv::*;
use certcentral::duplicate::*;
use certcentral::types::*;
use routes::{Call, route};
use time::OffsetDateTime;

pub fn router(sim: Arc<Simulator>) -> Router {
    Router::new()
        .route("/services/v2/{*path}", axum::routing::any(handle))
        .with_state(sim)
}

fn error_response(err: &ApiError) -> Response {
    let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        axum::Json(ErrorBody::single(err.code.clone(), err.message.clone())),
    )
        .into_response()
}

fn json_response(status: StatusCode, value: &impl Serialize) -> Response {
    (status, axum::Json(value)).into_response()
}

fn fault_response(action: &FaultAction) -> Option<Response> {
    match action {
        FaultAction::Status { status, code } => {
            let code = code.clone().unwrap_or_else(|| match status {
                429 => "request_limit_exceeded".into(),
                500..=599 => "server_error".into(),
                _ => "injected_fault".into(),
            });
            Some(error_response(&ApiError::new(
                *status,
                &code,
                "Injected by the simulator.",
            )))
        }
        FaultAction::RateLimit => Some(rate_limited()),
        FaultAction::Malformed => Some(
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                r#"{"id": 1, "status": "iss"#,
            )
                .into_response(),
        ),
        FaultAction::Drop => Some(dropped_connection()),
        FaultAction::Delay { .. } | FaultAction::Late { .. } => None,
    }
}

fn rate_limited() -> Response {
    error_response(&ApiError::new(
        429,
        "request_limit_exceeded",
        "Request limit exceeded.",
    ))
}

/// A response whose body fails at once: the server aborts the connection, and the
/// client sees it break without a complete answer.
fn dropped_connection() -> Response {
    let stream = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection dropped by fault injection",
        ))
    });
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn outcome_label(response: &Response, dropped: bool) -> String {
    if dropped {
        "dropped".into()
    } else {
        response.status().as_u16().to_string()
    }
}

async fn handle(
    AxumState(sim): AxumState<Arc<Simulator>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().trim_start_matches("/services/v2");
    let query = uri.query().unwrap_or_default().to_string();
    let Some(call) = route(&method, path) else {
        sim.lock().calls.unrouted += 1;
        return error_response(&ApiError::new(
            404,
            "not_found|route",
            format!("No route for {method} {path}."),
        ));
    };
    let op = call.operation();
    let fired = {
        let mut inner = sim.lock();
        inner.calls.operations.entry(op).or_default().total += 1;
        inner.faults.on_call(op)
    };
    tracing::debug!(operation = %op, %method, path, "simulator call");

    let mut after = Vec::new();
    let mut late = None;
    for (phase, action) in fired {
        if phase == Phase::After {
            after.push(action);
        } else if let FaultAction::Delay { millis } = action {
            tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
        } else if let FaultAction::Late { millis } = action {
            late = Some(std::time::Duration::from_millis(millis));
        } else if let Some(response) = fault_response(&action) {
            return record(&sim, op, response, action == FaultAction::Drop);
        }
    }
    let Some(hold) = late else {
        return finish(sim, call, headers, body, query, after).await;
    };
    // Handled in a task of its own: a caller that hangs up does not stop it.
    let task = tokio::spawn(async move {
        tokio::time::sleep(hold).await;
        finish(sim, call, headers, body, query, after).await
    });
    task.await
        .unwrap_or_else(|_| error_response(&ApiError::new(500, "internal", "the held call failed")))
}

/// Handles a call that got past the faults acting before it.
async fn finish(
    sim: Arc<Simulator>,
    call: Call,
    headers: HeaderMap,
    body: Bytes,
    query: String,
    after: Vec<FaultAction>,
) -> Response {
    let op = call.operation();
    let response = answer(&sim, &call, &headers, &body, &query).await;
    if call.mutates()
        && response.status().is_success()
        && let Err(e) = sim.persist().await
    {
        tracing::error!(error = %e, "cannot persist the simulator state");
    }
    // After the work: a delay holds the answer back (the client waits while the
    // change is already made); anything else replaces the answer.
    for action in &after {
        if let FaultAction::Delay { millis } = action {
            tokio::time::sleep(std::time::Duration::from_millis(*millis)).await;
        }
    }
    if let Some(action) = after
        .iter()
        .find(|a| !matches!(a, FaultAction::Delay { .. }))
        && let Some(replaced) = fault_response(action)
    {
        return record(&sim, op, replaced, *action == FaultAction::Drop);
    }
    record(&sim, op, response, false)
}

fn record(sim: &Simulator, op: Operation, response: Response, dropped: bool) -> Response {
    let label = outcome_label(&response, dropped);
    *sim.lock()
        .calls
        .operations
        .entry(op)
        .or_default()
        .by_outcome
        .entry(label)
        .or_default() += 1;
    response
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            400,
            "bad_request_format",
            format!("The request body is not valid: {e}"),
        )
    })
}

/// A body every field of which is optional: an empty one is the default.
fn parse_or_default<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        parse(body)
    }
}

/// 204 when revoked at once, else 201 with the request waiting for approval.
fn revoke_response(request: Option<RevokeRequestInfo>) -> Result<Response, ApiError> {
    Ok(match request {
        None => StatusCode::NO_CONTENT.into_response(),
        Some(r) => json_response(StatusCode::CREATED, &r),
    })
}

/// Authenticates, rate-limits and runs the call against the state.
async fn answer(
    sim: &Simulator,
    call: &Call,
    headers: &HeaderMap,
    body: &[u8],
    query: &str,
) -> Response {
    let caller = {
        let mut inner = sim.lock();
        let caller = match authenticate(&inner, headers) {
            Ok(c) => c,
            Err(e) => return error_response(&e),
        };
        if !inner.limits.admit(&caller.key, Instant::now()) {
            return rate_limited();
        }
        caller
    };
    let result = match call {
        // Real checks: the state lock is not held while looking.
        Call::CheckOrderDcv(id) => check_order_dcv(sim, *id).await,
        Call::CheckDomainDcv(id) => check_domain_dcv(sim, *id).await,
        // What the clock brought, then what the call did (webhooks go out after).
        _ => sim.changing(|inner, now| {
            inner.state.settle(&sim.ca, now);
            if call.is_dcv() {
                answer_dcv(&mut inner.state, call, body, query, now)
            } else {
                answer_orders(sim, &mut inner.state, call, &caller, body, query, now)
            }
        }),
    };
    result.unwrap_or_else(|e| error_response(&e))
}

/// The order and request calls.
fn answer_orders(
    sim: &Simulator,
    state: &mut State,
    call: &Call,
    caller: &ApiKeyConfig,
    body: &[u8],
    query: &str,
    now: OffsetDateTime,
) -> Result<Response, ApiError> {
    let ca = &sim.ca;
    match call {
        Call::OrderInfo(id) => Ok(json_response(StatusCode::OK, &state.order_info(*id, now)?)),
        Call::ListReissues(id) => Ok(json_response(
            StatusCode::OK,
            &state.list_reissues(*id, now)?,
        )),
        Call::Reissue(id) => {
            let req: ReissueRequest = parse(body)?;
            let answer = state.reissue(*id, &req, caller, ca, now)?;
            Ok(json_response(StatusCode::CREATED, &answer))
        }
        Call::UpdateOrderStatus(id) => {
            let req: OrderStatusUpdate = parse(body)?;
            state.update_order_status(*id, &req, &sim.rules, now)?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Call::UpdateAutoReissue(id) => {
            let req: AutoReissueUpdate = parse(body)?;
            state.update_auto_reissue(*id, &req, ca, now)?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Call::Download {
            certificate,
            format,
        } => pem_response(state.certificate_pem(*certificate, format, ca)?),
        Call::DownloadByOrder { order, format } => {
            pem_response(state.order_certificate_pem(*order, format, ca)?)
        }
        Call::RequestInfo(id) => Ok(json_response(StatusCode::OK, &state.request_info(*id)?)),
        Call::UpdateRequestStatus(id) => {
            let req: RequestStatusUpdate = parse(body)?;
            state.update_request_status(*id, &req, caller, ca, now)?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Call::Duplicate(id) => {
            let req: DuplicateRequest = parse(body)?;
            let answer = state.duplicate(*id, &req, caller, ca, now)?;
            Ok(json_response(StatusCode::CREATED, &answer))
        }
        Call::ListDuplicates(id) => Ok(json_response(
            StatusCode::OK,
            &state.list_duplicates(*id, duplicates::show_archived(query), now)?,
        )),
        Call::RevokeCertificate(identifier) => {
            let req: RevokeRequest = parse_or_default(body)?;
            revoke_response(state.revoke_certificate(identifier, &req, caller, now)?)
        }
        Call::RevokeOrder(id) => {
            let req: RevokeOrderRequest = parse_or_default(body)?;
            revoke_response(state.revoke_order(*id, &req, caller, now)?)
        }
        Call::StatusChanges => Ok(json_response(
            StatusCode::OK,
            &state.status_changes(query, now)?,
        )),
        Call::ListOrders => Ok(json_response(StatusCode::OK, &state.list_orders(query)?)),
        _ => Err(ApiError::new(
            500,
            "internal_error",
            "call not routed to a handler",
        )),
    }
}

/// The DCV calls that need no real check.
fn answer_dcv(
    state: &mut State,
    call: &Call,
    body: &[u8],
    query: &str,
    now: OffsetDateTime,
) -> Result<Response, ApiError> {
    fn ok<T: Serialize>(v: &T) -> Result<Response, ApiError> {
        Ok(json_response(StatusCode::OK, v))
    }
    match call {
        Call::OrderValidation(id) => ok(&state.order_validation(*id, now)?),
        Call::OrderDcvMethod(id) => {
            let req: DcvMethodUpdate = parse(body)?;
            match state.set_order_dcv_method(*id, req.dcv_method, now)? {
                Some(v) => ok(&v),
                None => Ok(StatusCode::NO_CONTENT.into_response()),
            }
        }
        Call::OrderRandomValue(id) => ok(&state.order_random_value(*id, now)?),
        Call::ListDomains => ok(&state.list_domains(&DomainQuery::parse(query), now)),
        Call::DomainInfo(id) => {
            let q = DomainQuery::parse(query);
            let d = state.domain(*id)?;
            ok(&state.domain_view(d, q.include_dcv, now))
        }
        Call::SubmitDomainValidation(id) => {
            let req: SubmitValidation = parse(body)?;
            match state.submit_validation(*id, &req, now)? {
                Some(v) => Ok(json_response(StatusCode::CREATED, &v)),
                None => Ok(StatusCode::NO_CONTENT.into_response()),
            }
        }
        Call::DomainDcvMethod(id) => {
            let req: DcvMethodUpdate = parse(body)?;
            ok(&state.set_domain_method(*id, req.dcv_method, now)?)
        }
        Call::DomainToken(id) => ok(&state.new_domain_token(*id, now)?),
        _ => Err(ApiError::new(
            500,
            "internal_error",
            "call not routed to a handler",
        )),
    }
}

/// `PUT .../check-dcv`: looks now; approves what was found (for HTTP only when every
/// domain passed), then settles the order so a waiting reissue issues.
async fn check_order_dcv(sim: &Simulator, id: u64) -> Result<Response, ApiError> {
    let (method, targets) = {
        let mut inner = sim.lock();
        let now = clock(&inner.state);
        inner.state.order_check_targets(id, now)?
    };
    let mut passed = Vec::new();
    let mut failures = Vec::new();
    for t in &targets {
        match sim.va.check(t).await {
            Ok(()) => passed.push(t.domain_id),
            Err(e) => failures.push(e),
        }
    }
    sim.changing(|inner, now| {
        let all_or_nothing = method == DcvMethod::HttpToken;
        if failures.is_empty() || !all_or_nothing {
            for d in passed {
                inner.state.approve_domain(d, now);
            }
            inner.state.settle(&sim.ca, now);
        }
        if let Some(first) = failures.first() {
            let messages: Vec<&str> = failures.iter().map(|f| f.message.as_str()).collect();
            return Err(ApiError::bad_request(&first.code, messages.join("; ")));
        }
        Ok(json_response(
            StatusCode::OK,
            &inner.state.check_answer(id, &method, now)?,
        ))
    })
}

/// `PUT /domain/{id}/dcv/validate-token`: looks now; approval is now on success.
async fn check_domain_dcv(sim: &Simulator, id: u64) -> Result<Response, ApiError> {
    let target = {
        let inner = sim.lock();
        inner.state.domain_check(id, clock(&inner.state))?
    };
    let result = sim.va.check(&target).await;
    if let Err(f) = result {
        return Err(ApiError::bad_request(&f.code, f.message));
    }
    sim.changing(|inner, now| {
        inner.state.approve_domain(id, now);
        inner.state.settle(&sim.ca, now);
        let token = inner
            .state
            .domain(id)?
            .token
            .as_ref()
            .map(|t| t.value.clone());
        Ok(json_response(
            StatusCode::OK,
            &ValidateToken {
                token,
                status: "active".into(),
            },
        ))
    })
}

fn pem_response(pem: String) -> Result<Response, ApiError> {
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        pem,
    )
        .into_response())
}

fn authenticate(inner: &Inner, headers: &HeaderMap) -> Result<ApiKeyConfig, ApiError> {
    let key = headers
        .get("x-dc-devkey")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                401,
                "access_denied|invalid_api_key",
                "An API key is required (X-DC-DEVKEY).",
            )
        })?;
    if inner.api_keys.is_empty() {
        return Ok(ApiKeyConfig::new(key));
    }
    inner
        .api_keys
        .iter()
        .find(|k| k.key == key)
        .cloned()
        .ok_or_else(|| {
            ApiError::new(
                401,
                "access_denied|invalid_api_key",
                "The API key is not valid.",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let cases = [
            (
                Method::GET,
                "/order/certificate/12",
                Some(Call::OrderInfo(12)),
            ),
            (
                Method::POST,
                "/order/certificate/12/reissue",
                Some(Call::Reissue(12)),
            ),
            (
                Method::GET,
                "/order/certificate/12/reissue",
                Some(Call::ListReissues(12)),
            ),
            (
                Method::PUT,
                "/order/certificate/12/status",
                Some(Call::UpdateOrderStatus(12)),
            ),
            (
                Method::PUT,
                "/order/certificate/12/auto-reissue",
                Some(Call::UpdateAutoReissue(12)),
            ),
            (
                Method::GET,
                "/certificate/7/download/format/pem_all",
                Some(Call::Download {
                    certificate: 7,
                    format: "pem_all".into(),
                }),
            ),
            (
                Method::GET,
                "/certificate/download/order/12/format/pem_noroot",
                Some(Call::DownloadByOrder {
                    order: 12,
                    format: "pem_noroot".into(),
                }),
            ),
            (Method::GET, "/request/5", Some(Call::RequestInfo(5))),
            (
                Method::PUT,
                "/request/5/status",
                Some(Call::UpdateRequestStatus(5)),
            ),
            (
                Method::GET,
                "/order/certificate/12/validation",
                Some(Call::OrderValidation(12)),
            ),
            (
                Method::PUT,
                "/order/certificate/12/dcv-method",
                Some(Call::OrderDcvMethod(12)),
            ),
            (
                Method::PUT,
                "/order/certificate/12/dcv-random-value",
                Some(Call::OrderRandomValue(12)),
            ),
            (
                Method::PUT,
                "/order/certificate/12/check-dcv",
                Some(Call::CheckOrderDcv(12)),
            ),
            (Method::GET, "/domain", Some(Call::ListDomains)),
            (Method::GET, "/domain/3", Some(Call::DomainInfo(3))),
            (
                Method::POST,
                "/domain/3/validation",
                Some(Call::SubmitDomainValidation(3)),
            ),
            (
                Method::PUT,
                "/domain/3/dcv/method",
                Some(Call::DomainDcvMethod(3)),
            ),
            (
                Method::POST,
                "/domain/3/dcv/token",
                Some(Call::DomainToken(3)),
            ),
            (
                Method::PUT,
                "/domain/3/dcv/validate-token",
                Some(Call::CheckDomainDcv(3)),
            ),
            (
                Method::POST,
                "/order/certificate/12/duplicate",
                Some(Call::Duplicate(12)),
            ),
            (
                Method::GET,
                "/order/certificate/12/duplicate",
                Some(Call::ListDuplicates(12)),
            ),
            (
                Method::PUT,
                "/order/certificate/12/revoke",
                Some(Call::RevokeOrder(12)),
            ),
            (
                Method::PUT,
                "/certificate/7/revoke",
                Some(Call::RevokeCertificate("7".into())),
            ),
            (
                Method::PUT,
                "/certificate/0A1B2C/revoke",
                Some(Call::RevokeCertificate("0A1B2C".into())),
            ),
            (Method::GET, "/certificate/7/revoke", None),
            (Method::PUT, "/order/certificate/12/duplicate", None),
            (Method::POST, "/order/certificate/abc/duplicate", None),
            (Method::GET, "/order/certificate/12/dcv-random-value", None),
            (Method::PUT, "/domain/3/dcv/token", None),
            (Method::DELETE, "/order/certificate/12", None),
            (Method::GET, "/order/certificate/abc", None),
            (Method::GET, "/order/certificate/12/reissue/extra", None),
        ];
        for (method, path, want) in cases {
            assert_eq!(route(&method, path), want, "{method} {path}");
        }
    }
}
