//! A mocked Kubernetes API server for unit tests of the reconcile phases, the
//! controller-rs `fixtures.rs` way: a `tower_test` service behind a real
//! `kube::Client`. It keeps objects by path and answers GET (an object or a list),
//! POST, PUT (also `/status`, with the resourceVersion precondition), PATCH (merge,
//! server-side apply, JSON patch) and DELETE (with a uid precondition) as the API
//! server does for the calls the operator makes; every request is recorded, so a
//! test asserts the effects of a phase in milliseconds.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use serde_json::{Value, json};

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// A request the operator made: method, path (no query), content type, body.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub content_type: String,
    pub body: Value,
}

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Value>,
    requests: Vec<Recorded>,
    version: u64,
}

pub struct ApiServer {
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ApiServer {
    /// The server and a client of it.
    pub fn start() -> (kube::Client, ApiServer) {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let state = Arc::new(Mutex::new(State::default()));
        let task = tokio::spawn(serve(handle, state.clone()));
        (
            kube::Client::new(service, "default"),
            ApiServer { state, task },
        )
    }

    /// Stores `object` (apiVersion, kind, metadata.name and, if namespaced,
    /// metadata.namespace) as if it had been created.
    pub fn put(&self, object: Value) {
        let path = object_path(&object);
        let mut state = self.state.lock().unwrap();
        let stored = state.created(object);
        state.objects.insert(path, stored);
    }

    /// The object at `path` (e.g. `/api/v1/namespaces/ns/secrets/tls`), if any.
    pub fn get(&self, path: &str) -> Option<Value> {
        self.state.lock().unwrap().objects.get(path).cloned()
    }

    /// Every request that changed something, in order.
    pub fn writes(&self) -> Vec<Recorded> {
        let state = self.state.lock().unwrap();
        state
            .requests
            .iter()
            .filter(|r| r.method != Method::GET)
            .cloned()
            .collect()
    }

    /// `METHOD path` of every request, reads included.
    pub fn request_lines(&self) -> Vec<String> {
        let state = self.state.lock().unwrap();
        state
            .requests
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }

    /// `METHOD path` of every request that changed something, for readable asserts.
    pub fn write_lines(&self) -> Vec<String> {
        self.writes()
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }
}

/// An Event is one object with two views, core/v1 and events.k8s.io/v1 (a series
/// count or a note patched through one shows in the other): both paths name one.
fn one_event_view(path: &str) -> String {
    match path.strip_prefix("/api/v1/namespaces/") {
        Some(rest) if rest.split('/').nth(1) == Some("events") => {
            format!("/apis/events.k8s.io/v1/namespaces/{rest}")
        }
        _ => path.to_string(),
    }
}

/// Where an object lives: `/api/v1/…` for the core group, `/apis/GROUP/VERSION/…`.
pub fn object_path(object: &Value) -> String {
    let api_version = object["apiVersion"].as_str().expect("apiVersion");
    let kind = object["kind"].as_str().expect("kind");
    let name = object["metadata"]["name"].as_str().expect("metadata.name");
    let prefix = if api_version.contains('/') {
        format!("/apis/{api_version}")
    } else {
        format!("/api/{api_version}")
    };
    let plural = format!("{}s", kind.to_ascii_lowercase());
    match object["metadata"]["namespace"].as_str() {
        Some(ns) => format!("{prefix}/namespaces/{ns}/{plural}/{name}"),
        None => format!("{prefix}/{plural}/{name}"),
    }
}

/// Whether `path` names a collection (`…/secrets`) rather than one object.
fn is_collection(path: &str) -> bool {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    // api/v1/… or apis/GROUP/VERSION/…
    let rest = match segments.first() {
        Some(&"api") => &segments[2..],
        _ => &segments[3.min(segments.len())..],
    };
    match rest {
        ["namespaces"] => true,
        ["namespaces", _] => false,
        ["namespaces", _, _] => true,
        ["namespaces", _, _, ..] => false,
        [_] => true,
        _ => false,
    }
}

impl State {
    fn next_version(&mut self) -> String {
        self.version += 1;
        self.version.to_string()
    }

    /// `object` as the server stores a new one: uid, resourceVersion, generation.
    fn created(&mut self, mut object: Value) -> Value {
        let version = self.next_version();
        let meta = &mut object["metadata"];
        meta["resourceVersion"] = json!(version);
        meta["uid"] = json!(format!("uid-{version}"));
        if meta.get("generation").is_none() {
            meta["generation"] = json!(1);
        }
        if meta.get("creationTimestamp").is_none() {
            meta["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
        object
    }

    fn answer(&mut self, method: &Method, path: &str, content_type: &str, body: Value) -> Reply {
        let path = &one_event_view(path);
        let (object_path, status_only) = match path.strip_suffix("/status") {
            Some(p) => (p.to_string(), true),
            None => (path.to_string(), false),
        };
        match *method {
            Method::GET if is_collection(path) => {
                let items: Vec<Value> = self
                    .objects
                    .iter()
                    .filter(|(k, _)| {
                        k.strip_prefix(path)
                            .and_then(|r| r.strip_prefix('/'))
                            .is_some_and(|r| !r.contains('/'))
                    })
                    .map(|(_, v)| v.clone())
                    .collect();
                let version = self.version.to_string();
                ok(json!({"apiVersion": "v1", "kind": "List",
                    "metadata": {"resourceVersion": version}, "items": items}))
            }
            Method::GET => self.objects.get(path).cloned().map_or_else(not_found, ok),
            Method::POST => self.create(path, body),
            Method::PUT => self.replace(&object_path, status_only, body),
            Method::PATCH => self.patch(&object_path, content_type, body),
            Method::DELETE => self.delete(&object_path, &body),
            _ => fail(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "not here",
            ),
        }
    }

    fn create(&mut self, collection: &str, mut object: Value) -> Reply {
        let name = match object["metadata"]["name"].as_str() {
            Some(n) => n.to_string(),
            None => {
                let base = object["metadata"]["generateName"].as_str().unwrap_or("x");
                let name = format!("{base}{}", self.version + 1);
                object["metadata"]["name"] = json!(name);
                name
            }
        };
        let path = format!("{collection}/{name}");
        if self.objects.contains_key(&path) {
            return fail(StatusCode::CONFLICT, "AlreadyExists", "already exists");
        }
        let stored = self.created(object);
        self.objects.insert(path, stored.clone());
        Ok((StatusCode::CREATED, stored))
    }

    fn replace(&mut self, path: &str, status_only: bool, body: Value) -> Reply {
        let Some(existing) = self.objects.get(path).cloned() else {
            return not_found();
        };
        let wanted = body["metadata"]["resourceVersion"].as_str();
        if wanted.is_some_and(|v| Some(v) != existing["metadata"]["resourceVersion"].as_str()) {
            return fail(
                StatusCode::CONFLICT,
                "Conflict",
                "the object has been modified",
            );
        }
        let mut object = if status_only {
            let mut o = existing.clone();
            o["status"] = body["status"].clone();
            o
        } else {
            let mut o = body;
            o["metadata"]["uid"] = existing["metadata"]["uid"].clone();
            o
        };
        object["metadata"]["resourceVersion"] = json!(self.next_version());
        self.objects.insert(path.to_string(), object.clone());
        ok(object)
    }

    fn patch(&mut self, path: &str, content_type: &str, body: Value) -> Reply {
        let existing = self.objects.get(path).cloned();
        let wanted = body["metadata"]["resourceVersion"].as_str();
        if let (Some(existing), Some(wanted)) = (&existing, wanted)
            && Some(wanted) != existing["metadata"]["resourceVersion"].as_str()
        {
            return fail(
                StatusCode::CONFLICT,
                "Conflict",
                "the object has been modified",
            );
        }
        let mut object = match (existing, content_type) {
            (None, "application/apply-patch+yaml") => self.created(body),
            (None, _) => return not_found(),
            (Some(mut o), "application/json-patch+json") => {
                if let Err(why) = json_patch(&mut o, &body) {
                    return fail(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", &why);
                }
                o
            }
            (Some(mut o), _) => {
                merge(&mut o, &body);
                o
            }
        };
        object["metadata"]["resourceVersion"] = json!(self.next_version());
        self.objects.insert(path.to_string(), object.clone());
        ok(object)
    }

    fn delete(&mut self, path: &str, options: &Value) -> Reply {
        let Some(existing) = self.objects.get(path) else {
            return not_found();
        };
        let uid = options["preconditions"]["uid"].as_str();
        if uid.is_some_and(|u| Some(u) != existing["metadata"]["uid"].as_str()) {
            return fail(StatusCode::CONFLICT, "Conflict", "the uid differs");
        }
        let gone = self.objects.remove(path).expect("present");
        ok(gone)
    }
}

type Reply = std::result::Result<(StatusCode, Value), (StatusCode, Value)>;

fn ok(object: Value) -> Reply {
    Ok((StatusCode::OK, object))
}

fn fail(code: StatusCode, reason: &str, message: &str) -> Reply {
    Err((
        code,
        json!({"apiVersion": "v1", "kind": "Status", "status": "Failure",
            "message": message, "reason": reason, "code": code.as_u16()}),
    ))
}

fn not_found() -> Reply {
    fail(StatusCode::NOT_FOUND, "NotFound", "not found")
}

/// RFC 7386 JSON merge patch (server-side apply is stored as a merge too: enough for
/// one manager).
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// The JSON patch operations kube's finalizer helper sends: test, add, remove,
/// replace, on paths of objects and arrays.
fn json_patch(target: &mut Value, ops: &Value) -> std::result::Result<(), String> {
    for op in ops.as_array().ok_or("not a JSON patch")? {
        let path = op["path"].as_str().ok_or("no path")?;
        let (parent, last) = path.rsplit_once('/').ok_or("bad path")?;
        let last = last.replace("~1", "/").replace("~0", "~");
        match op["op"].as_str() {
            Some("test") => {
                if target.pointer(path) != Some(&op["value"]) {
                    return Err(format!("test of {path} failed"));
                }
            }
            Some(verb @ ("add" | "replace" | "remove")) => {
                let node = target.pointer_mut(parent).ok_or(format!("no {parent}"))?;
                match node {
                    Value::Array(items) => {
                        let at = if last == "-" {
                            items.len()
                        } else {
                            last.parse().map_err(|_| format!("bad index {last}"))?
                        };
                        match verb {
                            "add" => items.insert(at.min(items.len()), op["value"].clone()),
                            "replace" => items[at] = op["value"].clone(),
                            _ => {
                                items.remove(at);
                            }
                        }
                    }
                    Value::Object(map) => {
                        if verb == "remove" {
                            map.remove(&last);
                        } else {
                            map.insert(last, op["value"].clone());
                        }
                    }
                    _ => return Err(format!("{parent} is no container")),
                }
            }
            other => return Err(format!("op {other:?} not supported")),
        }
    }
    Ok(())
}

async fn serve(mut handle: Handle, state: Arc<Mutex<State>>) {
    while let Some((request, send)) = handle.next_request().await {
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        let content_type = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let bytes = request
            .into_body()
            .collect_bytes()
            .await
            .unwrap_or_default();
        let body: Value = serde_json::from_slice(&bytes)
            .or_else(|_| serde_yaml::from_slice(&bytes))
            .unwrap_or(Value::Null);
        let reply = {
            let mut state = state.lock().unwrap();
            state.requests.push(Recorded {
                method: method.clone(),
                path: path.clone(),
                content_type: content_type.clone(),
                body: body.clone(),
            });
            state.answer(&method, &path, &content_type, body)
        };
        let (code, value) = reply.unwrap_or_else(|e| e);
        let response = Response::builder()
            .status(code)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Body::from(serde_json::to_vec(&value).expect("JSON")))
            .expect("a response");
        send.send_response(response);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collections_and_objects_are_told_apart() {
        let cases = [
            ("/api/v1/namespaces", true),
            ("/api/v1/namespaces/ns", false),
            ("/api/v1/namespaces/ns/secrets", true),
            ("/api/v1/namespaces/ns/secrets/tls", false),
            (
                "/apis/digicert-operator.dev/v1alpha1/digicertaccounts",
                true,
            ),
            (
                "/apis/digicert-operator.dev/v1alpha1/digicertaccounts/a",
                false,
            ),
            ("/apis/coordination.k8s.io/v1/namespaces/op/leases", true),
            ("/apis/coordination.k8s.io/v1/namespaces/op/leases/l", false),
        ];
        for (path, want) in cases {
            assert_eq!(is_collection(path), want, "{path}");
        }
    }

    #[test]
    fn json_patches_as_the_finalizer_helper_sends_them() {
        let mut object = json!({"metadata": {"finalizers": ["a"]}});
        let add = json!([{"op": "test", "path": "/metadata/finalizers", "value": ["a"]},
            {"op": "add", "path": "/metadata/finalizers/-", "value": "b"}]);
        json_patch(&mut object, &add).unwrap();
        assert_eq!(object["metadata"]["finalizers"], json!(["a", "b"]));
        let stale = json!([{"op": "test", "path": "/metadata/finalizers", "value": ["a"]}]);
        assert!(json_patch(&mut object, &stale).is_err());
        let remove = json!([{"op": "remove", "path": "/metadata/finalizers/0"}]);
        json_patch(&mut object, &remove).unwrap();
        assert_eq!(object["metadata"]["finalizers"], json!(["b"]));
    }
}
