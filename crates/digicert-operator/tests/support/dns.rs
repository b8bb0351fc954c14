//! A real authoritative DNS server for the tests: Knot DNS (`knotd`, installed by
//! `hack/dns/install.sh`) as a child process with a configuration of its own in a temp
//! dir, on a free loopback port (UDP and TCP), serving a few zones that accept dynamic
//! updates (RFC 2136) signed with a TSIG key (hmac-sha256, random secret) and nothing
//! else. Killed when dropped; its log is printed when the test panics.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use hickory_client::client::{Client, ClientHandle};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use hickory_proto::runtime::TokioRuntimeProvider;
use hickory_proto::udp::UdpClientStream;

/// The zones of [`AuthoritativeDns::start_default`].
pub const DEFAULT_ZONES: &[&str] = &["example.com", "example.org"];

/// The TXT record every zone has at its apex before a test changes anything.
pub const APEX_SPF: &str = "v=spf1 -all";

/// The TSIG key's name as the server knows it.
pub const KEY_NAME: &str = "dcv-test-key";
pub const KEY_ALGORITHM: &str = "hmac-sha256";

pub struct AuthoritativeDns {
    child: Option<Child>,
    addr: SocketAddr,
    secret: String,
    zones: Vec<String>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// The knotd binary: `DIGICERT_TEST_KNOTD`, else where `hack/dns/install.sh` finds it
/// (installing the package when missing).
pub fn knotd_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("DIGICERT_TEST_KNOTD") {
        return p.into();
    }
    let script = super::cluster::repo_root().join("hack/dns/install.sh");
    let out = Command::new(&script)
        .stderr(Stdio::inherit())
        .output()
        .expect("hack/dns/install.sh runs");
    assert!(out.status.success(), "hack/dns/install.sh failed");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    PathBuf::from(text.lines().last().expect("a directory").trim()).join("knotd")
}

impl AuthoritativeDns {
    /// Knot serving [`DEFAULT_ZONES`].
    pub async fn start_default() -> Self {
        Self::start(DEFAULT_ZONES).await
    }

    /// Knot serving `zones` (SOA, NS, `ns1` A, `www` A and the apex TXT [`APEX_SPF`]
    /// each), answering once this returns.
    pub async fn start(zones: &[&str]) -> Self {
        let knotd = tokio::task::spawn_blocking(knotd_bin).await.unwrap();
        // A free port can be taken between probing and knotd binding it: try again.
        let mut last_log = String::new();
        for _ in 0..5 {
            let mut dns = Self::spawn(&knotd, zones);
            if dns.wait_answering(Duration::from_secs(15)).await {
                return dns;
            }
            last_log = dns.log();
            dns.kill();
        }
        panic!("knotd did not start answering:\n{last_log}");
    }

    fn spawn(knotd: &Path, zones: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        // knotd does not create its database dir; without it updates fail (SERVFAIL).
        std::fs::create_dir(dir.path().join("db")).expect("db dir");
        let port = free_port();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let secret = encode_base64(&rand::random::<[u8; 32]>());
        let zones: Vec<String> = zones.iter().map(|z| z.to_string()).collect();
        for zone in &zones {
            std::fs::write(dir.path().join(format!("{zone}.zone")), zone_file(zone))
                .expect("zone file");
        }
        let conf = dir.path().join("knot.conf");
        std::fs::write(&conf, config(dir.path(), addr, &secret, &zones)).expect("knot.conf");
        let log = dir.path().join("knotd.log");
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = Command::new(knotd)
            .arg("--config")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("{} starts: {e}", knotd.display()));
        AuthoritativeDns {
            child: Some(child),
            addr,
            secret,
            zones,
            log,
            _dir: dir,
        }
    }

    /// Polls the SOA of the first zone until the server answers.
    async fn wait_answering(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let zone = self.zones[0].clone();
        while Instant::now() < deadline {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.try_wait()) {
                return false;
            }
            if let Ok(answers) = self.query(&zone, RecordType::SOA).await
                && !answers.is_empty()
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// The server's address (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The TSIG key allowed to update the zones: (name, algorithm, base64 secret).
    pub fn tsig(&self) -> (String, String, String) {
        (KEY_NAME.into(), KEY_ALGORITHM.into(), self.secret.clone())
    }

    /// Everything knotd logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The rdata of the `rtype` records at `name`, answered by the server over UDP.
    pub async fn query(&self, name: &str, rtype: RecordType) -> Result<Vec<RData>, String> {
        let stream = UdpClientStream::builder(self.addr, TokioRuntimeProvider::new())
            .with_timeout(Some(Duration::from_secs(2)))
            .build();
        let (mut client, bg) = Client::connect(stream).await.map_err(|e| e.to_string())?;
        let bg = tokio::spawn(bg);
        let name = Name::from_str(&fqdn(name)).map_err(|e| e.to_string())?;
        let result = client.query(name, DNSClass::IN, rtype).await;
        bg.abort();
        let response = result.map_err(|e| e.to_string())?;
        Ok(response
            .answers()
            .iter()
            .filter(|r| r.record_type() == rtype)
            .map(|r| r.data().clone())
            .collect())
    }

    /// The TXT strings at `name`, one per record (its character-strings joined).
    pub async fn txt(&self, name: &str) -> Vec<String> {
        let answers = self.query(name, RecordType::TXT).await;
        let answers = answers.unwrap_or_else(|e| panic!("TXT {name}: {e}\n{}", self.log()));
        let mut texts: Vec<String> = answers
            .iter()
            .filter_map(|d| match d {
                RData::TXT(txt) => Some(
                    txt.txt_data()
                        .iter()
                        .map(|s| String::from_utf8_lossy(s).into_owned())
                        .collect(),
                ),
                _ => None,
            })
            .collect();
        texts.sort();
        texts
    }

    /// The CNAME target at `name`, without the trailing dot.
    pub async fn cname(&self, name: &str) -> Option<String> {
        let answers = self.query(name, RecordType::CNAME).await;
        let answers = answers.unwrap_or_else(|e| panic!("CNAME {name}: {e}\n{}", self.log()));
        answers.iter().find_map(|d| match d {
            RData::CNAME(c) => Some(c.0.to_ascii().trim_end_matches('.').to_string()),
            _ => None,
        })
    }

    /// Polls `check` until it holds; panics after `timeout` with `what` and the log.
    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl AsyncFnMut() -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        while !check().await {
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}\n--- knotd log ---\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for AuthoritativeDns {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- knotd log ---\n{}\n--- end ---", self.log());
        }
        self.kill();
    }
}

/// `name` with a trailing dot.
fn fqdn(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.'))
}

/// A loopback port free for both TCP and UDP (knotd listens on both).
fn free_port() -> u16 {
    loop {
        let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a TCP port");
        let port = tcp.local_addr().expect("local addr").port();
        if UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
}

fn zone_file(zone: &str) -> String {
    format!(
        "$ORIGIN {zone}.\n$TTL 300\n\
         @ SOA ns1.{zone}. hostmaster.{zone}. 1 3600 900 604800 60\n\
         @ NS ns1.{zone}.\n\
         @ TXT \"{APEX_SPF}\"\n\
         ns1 A 127.0.0.1\n\
         www A 192.0.2.1\n"
    )
}

/// knot.conf (Knot 3.2): one listening address, control socket and all state in
/// `dir`, updates only with the TSIG key, zone files never rewritten (changes live in
/// the journal).
fn config(dir: &Path, addr: SocketAddr, secret: &str, zones: &[String]) -> String {
    let dir = dir.display();
    let mut conf = format!(
        "server:\n  rundir: \"{dir}\"\n  listen: {ip}@{port}\n  \
         udp-workers: 1\n  tcp-workers: 1\n  background-workers: 1\n\
         log:\n  - target: stderr\n    any: info\n\
         database:\n  storage: \"{dir}/db\"\n\
         control:\n  listen: \"{dir}/knot.sock\"\n\
         key:\n  - id: {KEY_NAME}\n    algorithm: {KEY_ALGORITHM}\n    secret: {secret}\n\
         acl:\n  - id: update-with-key\n    key: {KEY_NAME}\n    action: update\n\
         template:\n  - id: default\n    storage: \"{dir}\"\n    zonefile-sync: -1\n    \
         zonefile-load: whole\n    journal-content: changes\n    semantic-checks: on\n\
         zone:\n",
        ip = addr.ip(),
        port = addr.port(),
    );
    for zone in zones {
        conf.push_str(&format!(
            "  - domain: {zone}\n    file: \"{zone}.zone\"\n    acl: update-with-key\n"
        ));
    }
    conf
}

/// Standard base64 with padding (for knot.conf's secret).
pub fn encode_base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
