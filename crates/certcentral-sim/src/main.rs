//! `certcentral-sim`: the CertCentral simulator as a program (the chart's
//! `simulator.enabled`, the demo, staging). The operator's binary does not contain it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use certcentral::Window;
use certcentral_sim::{ApiKeyConfig, SeedFile, SimulatorConfig};
use clap::{Parser, ValueEnum};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "certcentral-sim",
    version,
    about = "A CertCentral simulator: DigiCert's Services API v2 over HTTPS, signing from its own test CA. For tests and staging, never production."
)]
struct Cli {
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `certcentral_sim=debug`.
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    log_level: String,
    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// YAML or JSON file with `api_keys`, `orders` and optional `rate_limits`,
    /// `domains`, `reuse_schedule`, `status_changes_range_offset_hours`,
    /// `status_changes_max_days`, `reissue_answer_chain` and `webhook` (`{url, key,
    /// ca_file}`).
    #[arg(long)]
    orders: Option<PathBuf>,
    /// Accept this API key (repeatable; with approver rights). Without any key given
    /// here or in the orders file, every non-empty key is accepted.
    #[arg(long = "api-key", env = "SIMULATOR_API_KEYS", value_delimiter = ',')]
    api_keys: Vec<String>,
    /// Keep CA, orders and clock in this file across restarts.
    #[arg(long)]
    state_file: Option<PathBuf>,
    /// The UTC offset (hours) a status-changes `filters[status_last_updated]` range is
    /// read in: -7 (US Mountain time, as third parties report DigiCert reads it) or 0
    /// (UTC). The orders file's `status_changes_range_offset_hours` wins.
    #[arg(
        long,
        alias = "status-changes-range-offset",
        default_value_t = certcentral_sim::settings::DEFAULT_RANGE_OFFSET_HOURS,
        allow_hyphen_values = true
    )]
    status_changes_range_offset_hours: i8,
    /// How many days back a status-changes window may reach (DigiCert: 7); further
    /// is a 400 `invalid_input`.
    #[arg(long, default_value_t = certcentral_sim::settings::DEFAULT_STATUS_CHANGES_DAYS)]
    status_changes_max_days: u32,
    /// Put the certificate chain (leaf, intermediate, root) into the answer of a
    /// reissue issued at once (seen in third parties' clients; not documented).
    #[arg(long)]
    reissue_answer_chain: bool,
    /// POST certificate events (certificate_issued, certificate_revoked,
    /// order_rejected) to this http:// or https:// URL. Unset: no webhooks, as on real
    /// accounts. The orders file's `webhook` wins.
    #[arg(long, env = "SIMULATOR_WEBHOOK_URL")]
    webhook_url: Option<String>,
    /// The shared key sent in X-WEBHOOK-KEY with every webhook.
    #[arg(long, env = "SIMULATOR_WEBHOOK_KEY", requires = "webhook_url")]
    webhook_key: Option<String>,
    /// CA certificates (PEM) an https webhook URL is verified against (default: the
    /// system's roots).
    #[arg(long, requires = "webhook_url")]
    webhook_ca_file: Option<PathBuf>,
    /// Write the simulator's CA certificate (PEM) here, for clients to trust.
    #[arg(long)]
    ca_bundle_out: Option<PathBuf>,
    /// Write `{"base_url", "admin_url", "ca_bundle"}` here once serving.
    #[arg(long)]
    ready_file: Option<PathBuf>,
    /// Extra DNS names or IPs for the generated server certificate (repeatable).
    #[arg(long = "tls-name", value_delimiter = ',')]
    tls_names: Vec<String>,
    /// Serve this certificate chain (PEM) instead of a generated one; needs --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Turn off CertCentral's rate limits (100 requests / 5 s and 1000 / 3 min per key).
    #[arg(long)]
    no_rate_limit: bool,
    /// Require `Authorization: Bearer <token>` on the admin API.
    #[arg(long, env = "SIMULATOR_ADMIN_TOKEN")]
    admin_token: Option<String>,
    /// Seed for fault injection by fraction, so runs repeat.
    #[arg(long, default_value_t = 0)]
    fault_seed: u64,
    /// Values of `PUT .../status` accepted as cancel (case-sensitive).
    #[arg(long, value_delimiter = ',', default_value = "canceled")]
    cancel_status: Vec<String>,
    /// Start the simulator's clock at this time (RFC 3339), e.g. 2029-06-01T00:00:00Z.
    #[arg(long, value_parser = parse_rfc3339)]
    clock_start: Option<time::OffsetDateTime>,
    /// DNS server (ip:port) asked for DCV TXT and CNAME records.
    #[arg(long)]
    dns_server: Option<SocketAddr>,
    /// Where DCV HTTP requests go (ip:port), sent with `Host: <domain>`; without it,
    /// the domain's own address, port 80.
    #[arg(long)]
    http_validation_address: Option<SocketAddr>,
    /// Divide DigiCert's DCV polling intervals by this (1 = real schedule).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    dcv_poll_speedup: u32,
    /// Do not accept the TXT token at `_dnsauth.<domain>`, only at the domain.
    #[arg(long)]
    no_txt_dnsauth: bool,
    /// Error code answered when a DCV CNAME is missing (DigiCert does not document it).
    #[arg(long, default_value = "invalid_dns_cname")]
    cname_error_code: String,
    /// Seconds from a reissue that removes names to DigiCert revoking the order's older
    /// certificates and duplicates (DigiCert: 48 to 72 hours).
    #[arg(long = "revocation-delay", value_name = "SECONDS", default_value_t = certcentral_sim::DEFAULT_REVOCATION_DELAY_SECONDS)]
    revocation_delay: u64,
    /// Turn the account's duplicate certificate feature off.
    #[arg(long)]
    no_duplicates: bool,
    /// Error code answered when a duplicate is refused because domain validation
    /// lapsed (DigiCert does not document it).
    #[arg(long, default_value = certcentral_sim::DEFAULT_DCV_ERROR_CODE)]
    duplicate_dcv_error_code: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn parse_rfc3339(s: &str) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("{s:?} is not an RFC 3339 time: {e}"))
}

/// Logs go to stderr; stdout carries the addresses for whoever started the program.
fn init_logging(filter: &str, format: LogFormat) -> Result<(), String> {
    let filter =
        EnvFilter::try_new(filter).map_err(|e| format!("invalid log level {filter:?}: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    result.map_err(|e| format!("cannot install the logger: {e}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = init_logging(&cli.log_level, cli.log_format) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Cli) -> anyhow::Result<()> {
    let mut seed = match &args.orders {
        Some(path) => SeedFile::load(path)?,
        None => SeedFile::default(),
    };
    seed.api_keys
        .extend(args.api_keys.iter().map(|k| ApiKeyConfig::new(k.trim())));
    let config = SimulatorConfig {
        listen: args.listen,
        tls_names: args.tls_names,
        tls_cert: args.tls_cert.zip(args.tls_key),
        seed,
        state_file: args.state_file,
        rate_limits: if args.no_rate_limit {
            Vec::<Window>::new()
        } else {
            SimulatorConfig::default().rate_limits
        },
        admin_token: args.admin_token,
        fault_seed: args.fault_seed,
        cancel_values: args.cancel_status,
        clock_start: args.clock_start,
        reuse_schedule: SimulatorConfig::default().reuse_schedule,
        dcv: certcentral_sim::VaConfig {
            dns_server: args.dns_server,
            http_address: args.http_validation_address,
            txt_at_dnsauth: !args.no_txt_dnsauth,
            cname_error_code: args.cname_error_code,
            poll_speedup: args.dcv_poll_speedup,
            ..certcentral_sim::VaConfig::default()
        },
        revocation_delay_seconds: args.revocation_delay,
        duplicates_enabled: !args.no_duplicates,
        duplicate_dcv_error_code: args.duplicate_dcv_error_code,
        feed: certcentral_sim::FeedSettings {
            range_offset_hours: args.status_changes_range_offset_hours,
            longest_window: time::Duration::days(args.status_changes_max_days.into()),
            reissue_answer_chain: args.reissue_answer_chain,
        },
        webhook: args
            .webhook_url
            .map(|url| certcentral_sim::webhooks::WebhookConfig {
                key: args.webhook_key,
                ca_file: args.webhook_ca_file,
                ..certcentral_sim::webhooks::WebhookConfig::new(url)
            }),
    };
    let running = certcentral_sim::start(config).await?;
    if let Some(path) = &args.ca_bundle_out {
        std::fs::write(path, running.ca_pem())
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    }
    if let Some(path) = &args.ready_file {
        let ready = serde_json::json!({
            "base_url": running.base_url(),
            "admin_url": running.admin_url(),
            "ca_bundle": args.ca_bundle_out,
        });
        // Written whole and renamed, so a reader never sees half a file.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(&ready)?)?;
        std::fs::rename(&tmp, path)?;
    }
    println!("CertCentral simulator: {}", running.base_url());
    println!("admin API:             {}", running.admin_url());
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate() => {}
    }
    tracing::info!("stopping");
    running.stop().await;
    Ok(())
}

#[cfg(unix)]
async fn terminate() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn terminate() {
    std::future::pending().await
}
