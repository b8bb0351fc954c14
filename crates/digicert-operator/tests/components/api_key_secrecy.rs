//! The API key never appears in a log line (at any level, from any crate) or in an
//! error's text, whatever the call and however it fails.

use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::support::*;
use certcentral_sim::faults::FaultSpec;
use digicert_operator::certcentral::{ApiKey, DownloadFormat};

const SECRET: &str = "LEAKCHECK-5c1e9a7d0b3f42e8";

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_api_key_never_reaches_logs_or_errors() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .try_init()
        .expect("this test owns its process's subscriber");

    let sim = simulator(vec![order(1001)]).await;
    let good = client(&sim, KEY).with_api_key(ApiKey::new(SECRET).unwrap());
    let mut errors: Vec<String> = Vec::new();
    let mut record = |e: digicert_operator::certcentral::Error| {
        errors.push(e.to_string());
        errors.push(format!("{e:?}"));
    };

    // The simulator does not know the key: every call is a 401.
    if let Err(e) = good.order_info(1001).await {
        record(e);
    }
    // Known key: every endpoint, successes and failures, with faults on the way.
    let sim2 = simulator_with_key(SECRET).await;
    let c = client(&sim2, SECRET);
    for spec in [
        r#"{"kind":"status","status":503,"nth":1}"#,
        r#"{"kind":"rate_limit","nth":2}"#,
        r#"{"kind":"drop","nth":3}"#,
        r#"{"kind":"malformed","nth":4}"#,
    ] {
        sim2.simulator()
            .add_fault(serde_json::from_str::<FaultSpec>(spec).unwrap())
            .unwrap();
    }
    let (_, req) = example_reissue();
    let results = [
        c.order_info(1001).await.map(drop),
        c.order_info(4242).await.map(drop),
        c.reissue(1001, &req).await.map(drop),
        c.list_reissues(1001).await.map(drop),
        c.set_auto_reissue(1001, true).await,
        c.cancel(1001, "nothing pending").await,
        c.download_order_certificate(1001, DownloadFormat::PemAll)
            .await
            .map(drop),
        c.request_info(1).await.map(drop),
        c.approve_request(1, "x").await,
    ];
    for r in results {
        if let Err(e) = r {
            record(e);
        }
    }

    assert!(errors.len() >= 6, "error paths were exercised: {errors:?}");
    for e in &errors {
        assert!(!e.contains(SECRET), "error text leaks the key: {e}");
    }
    assert!(!format!("{c:?}").contains(SECRET));
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.lines().count() > 20,
        "trace logging captured the calls"
    );
    assert!(
        logs.contains("CertCentral"),
        "the client's own logs are captured"
    );
    for line in logs.lines() {
        assert!(!line.contains(SECRET), "log line leaks the key: {line}");
    }
}

async fn simulator_with_key(key: &str) -> certcentral_sim::RunningSimulator {
    use certcentral_sim::{ApiKeyConfig, SeedFile, SimulatorConfig};
    certcentral_sim::start(SimulatorConfig {
        seed: SeedFile {
            api_keys: vec![ApiKeyConfig::new(key)],
            orders: vec![order(1001)],
            rate_limits: None,
            ..SeedFile::default()
        },
        rate_limits: Vec::new(),
        ..SimulatorConfig::default()
    })
    .await
    .unwrap()
}
