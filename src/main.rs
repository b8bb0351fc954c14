use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use digicert_operator::certcentral::Window;
use digicert_operator::simulator::{self, ApiKeyConfig, SeedFile, SimulatorConfig};
use digicert_operator::telemetry::{self, LogFormat};

#[derive(Parser)]
#[command(
    name = "digicert-operator",
    version,
    about = "Keeps DigiCert CertCentral certificates valid in Kubernetes TLS Secrets"
)]
struct Cli {
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `digicert_operator=debug`.
    #[arg(long, env = "LOG_LEVEL", default_value = "info", global = true)]
    log_level: String,
    /// Log format.
    #[arg(
        long,
        env = "LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the CertCentral simulator: a local HTTPS server that behaves like DigiCert's
    /// API and signs certificates from its own test CA.
    Simulator(SimulatorArgs),
}

#[derive(Args)]
struct SimulatorArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// YAML or JSON file with `api_keys`, `orders` and optional `rate_limits`.
    #[arg(long)]
    orders: Option<PathBuf>,
    /// Accept this API key (repeatable; with approver rights). Without any key given
    /// here or in the orders file, every non-empty key is accepted.
    #[arg(long = "api-key", env = "SIMULATOR_API_KEYS", value_delimiter = ',')]
    api_keys: Vec<String>,
    /// Keep CA, orders and clock in this file across restarts.
    #[arg(long)]
    state_file: Option<PathBuf>,
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = telemetry::init(&cli.log_level, cli.log_format) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Simulator(args) => run_simulator(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run_simulator(args: SimulatorArgs) -> anyhow::Result<()> {
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
    };
    let running = simulator::start(config).await?;
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
