//! The CertCentral endpoints the operator talks to: one service (HTTP client and a
//! rate limiter per API key) per endpoint and trusted CA, shared by every account
//! and order that uses it; and which endpoints a namespace's own key may use.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::certcentral::{
    BaseUrl, CallObserver, ClientConfig, LimiterFactory, Service, TrustRoots,
};

/// The CertCentral endpoints in use: one `Service` (connections, and a rate limiter per
/// API key) per endpoint and CA bundle, created when first needed.
pub struct Endpoints {
    /// The operator's --certcentral-url, timeouts and retry policy.
    config: ClientConfig,
    /// The operator's --ca-bundle: trusted for every endpoint.
    operator_ca: Option<Vec<u8>>,
    new_limiter: LimiterFactory,
    observer: Option<Arc<dyn CallObserver>>,
    services: Mutex<HashMap<(String, Option<String>), Service>>,
    /// Endpoints keys of an order's own namespace may go to (endpoint ids).
    pub(crate) namespace_key_endpoints: Vec<String>,
}

impl Endpoints {
    pub fn new(
        config: ClientConfig,
        operator_ca: Option<Vec<u8>>,
        new_limiter: LimiterFactory,
        observer: Option<Arc<dyn CallObserver>>,
    ) -> Self {
        let mut namespace_key_endpoints = vec![
            endpoint_id(&BaseUrl::Us),
            endpoint_id(&BaseUrl::Eu),
            endpoint_id(&config.base_url),
        ];
        namespace_key_endpoints.dedup();
        Endpoints {
            config,
            operator_ca,
            new_limiter,
            observer,
            services: Mutex::new(HashMap::new()),
            namespace_key_endpoints,
        }
    }

    /// Also lets keys of an order's own namespace go to `url`.
    pub fn allow_for_namespace_keys(&mut self, url: &BaseUrl) {
        self.namespace_key_endpoints.push(endpoint_id(url));
    }

    /// The operator's --certcentral-url: for own-namespace keys that name none.
    pub fn default_url(&self) -> &BaseUrl {
        &self.config.base_url
    }

    /// The service for `url` trusting `ca_bundle` too, and the endpoint's identity (its
    /// full URL, for claims).
    pub fn service(
        &self,
        url: &BaseUrl,
        ca_bundle: Option<&str>,
    ) -> Result<(Service, String), certcentral::Error> {
        let id = endpoint_id(url);
        let key = (id.clone(), ca_bundle.map(str::to_string));
        let mut services = self.services.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = services.get(&key) {
            return Ok((s.clone(), id));
        }
        let mut pem = self.operator_ca.clone().unwrap_or_default();
        if let Some(extra) = ca_bundle {
            pem.push(b'\n');
            pem.extend_from_slice(extra.as_bytes());
        }
        let trust = if self.operator_ca.is_none() && ca_bundle.is_none() {
            TrustRoots::System
        } else {
            TrustRoots::SystemAnd(pem)
        };
        let config = ClientConfig {
            base_url: url.clone(),
            trust,
            ..self.config.clone()
        };
        let service = Service::observed(config, self.new_limiter.clone(), self.observer.clone())?;
        services.insert(key, service.clone());
        Ok((service, id))
    }
}

/// An endpoint's full URL with a trailing slash: `us` and its URL are one endpoint.
pub fn endpoint_id(url: &BaseUrl) -> String {
    let mut u = url.url();
    if !u.path().ends_with('/') {
        u.set_path(&format!("{}/", u.path()));
    }
    u.to_string()
}
