//! Benchmark 5: key pair + CSR generation, ours (rcgen on aws-lc-rs, as the operator
//! does it) against `openssl req -newkey`, interleaved in one run on one machine.

use std::process::{Command, Stdio};
use std::time::Instant;

use digicert_operator::keys::{self, KeyKind};

#[derive(Debug, serde::Serialize)]
pub struct Outcome {
    pub key: String,
    pub iterations: usize,
    pub ours_median_ms: f64,
    pub openssl_median_ms: f64,
    /// ours / openssl (below 1: ours is faster).
    pub ratio: f64,
    /// The same with openssl's process start (`openssl version`) taken off.
    pub ratio_without_process_start: f64,
}

pub struct Case {
    pub kind: KeyKind,
    pub label: &'static str,
    pub openssl_newkey: &'static [&'static str],
    pub iterations: usize,
}

pub fn cases(scale: f64) -> Vec<Case> {
    let n = |full: usize| ((full as f64 * scale).ceil() as usize).max(3);
    vec![
        Case {
            kind: KeyKind::Rsa(2048),
            label: "RSA-2048",
            openssl_newkey: &["-newkey", "rsa:2048"],
            iterations: n(40),
        },
        Case {
            kind: KeyKind::Rsa(3072),
            label: "RSA-3072",
            openssl_newkey: &["-newkey", "rsa:3072"],
            iterations: n(20),
        },
        Case {
            kind: KeyKind::Rsa(4096),
            label: "RSA-4096",
            openssl_newkey: &["-newkey", "rsa:4096"],
            iterations: n(12),
        },
        Case {
            kind: KeyKind::Ecdsa(256),
            label: "ECDSA P-256",
            openssl_newkey: &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            iterations: n(100),
        },
        Case {
            kind: KeyKind::Ecdsa(384),
            label: "ECDSA P-384",
            openssl_newkey: &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
            iterations: n(100),
        },
    ]
}

fn openssl(args: &[&str]) -> f64 {
    let started = Instant::now();
    let status = Command::new("openssl")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success(), "openssl {args:?} failed");
    started.elapsed().as_secs_f64() * 1000.0
}

/// Runs every case; blocking (call from a blocking thread).
pub fn run(scale: f64) -> Vec<Outcome> {
    let process_start = super::median(&(0..20).map(|_| openssl(&["version"])).collect::<Vec<_>>());
    let names = vec!["www.example.com".to_string()];
    cases(scale)
        .into_iter()
        .map(|case| {
            let mut ours = Vec::new();
            let mut theirs = Vec::new();
            let mut args = vec![
                "req",
                "-new",
                "-nodes",
                "-keyout",
                "/dev/null",
                "-out",
                "/dev/null",
            ];
            args.extend_from_slice(case.openssl_newkey);
            args.extend_from_slice(&[
                "-subj",
                "/CN=example.com",
                "-addext",
                "subjectAltName=DNS:example.com,DNS:www.example.com",
            ]);
            for _ in 0..case.iterations {
                let started = Instant::now();
                let key = keys::generate(case.kind).expect("key generation");
                let csr = keys::csr_pem(&key, "example.com", &names).expect("CSR");
                std::hint::black_box(csr);
                ours.push(started.elapsed().as_secs_f64() * 1000.0);
                theirs.push(openssl(&args));
            }
            let ours_median_ms = super::median(&ours);
            let openssl_median_ms = super::median(&theirs);
            Outcome {
                key: case.label.to_string(),
                iterations: case.iterations,
                ours_median_ms,
                openssl_median_ms,
                ratio: ours_median_ms / openssl_median_ms,
                ratio_without_process_start: ours_median_ms
                    / (openssl_median_ms - process_start).max(0.001),
            }
        })
        .collect()
}
