use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use digicert_operator::certcentral::{self, BaseUrl, ClientConfig, TrustRoots};
use digicert_operator::controller::{self, Context, OperatorConfig};
use digicert_operator::telemetry::{self, LogFormat};
use digicert_operator::{cli, operator};

#[derive(Parser)]
#[command(
    name = "digicert-operator",
    version,
    about = "Keeps DigiCert CertCentral certificates valid in Kubernetes TLS Secrets",
    after_help = "The kubectl plugin's commands (status, renew, cancel, inspect, \
                  allow-revocation, approve, deny) work here too, e.g. \
                  `digicert-operator status --help`; installed as kubectl-digicert they are \
                  `kubectl digicert`."
)]
struct Cli {
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `digicert_operator=debug`
    /// (which covers the CertCentral client's crate, `certcentral`, too).
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
    /// Run the controller: keep every DigicertOrder's Secret holding a valid certificate,
    /// and sign cert-manager requests for DigicertIssuers and DigicertClusterIssuers.
    Run(Box<RunArgs>),
    /// Print the CustomResourceDefinitions: DigicertAccount, DigicertOrder,
    /// DigicertIssuer and DigicertClusterIssuer (YAML).
    Crd {
        /// Write them into this directory instead, one file each (named by their
        /// plural: `digicertorders.yaml`, ...), as `crds/` holds them.
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
    /// Moved: the CertCentral simulator is a program of its own, `certcentral-sim`.
    #[command(hide = true, disable_help_flag = true)]
    Simulator {
        /// Whatever followed, so the same flags can be handed to `certcentral-sim`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(Args)]
struct RunArgs {
    /// CertCentral for own-namespace API keys (spec.apiKeySecretRef) that name no
    /// endpoint: `us`, `eu`, or an https URL (e.g. the simulator's). Accounts name
    /// their own.
    #[arg(long, env = "CERTCENTRAL_URL", default_value = "us")]
    certcentral_url: String,
    /// Also trust the CA certificates in this PEM file for every CertCentral endpoint
    /// (e.g. a TLS-inspecting proxy's, or the simulator's CA).
    #[arg(long, env = "CERTCENTRAL_CA_BUNDLE")]
    ca_bundle: Option<PathBuf>,
    /// The operator's own namespace: the API key Secrets of DigicertAccounts and the
    /// claim Leases of orders live there.
    #[arg(long, env = "POD_NAMESPACE", default_value = "digicert-operator")]
    namespace: String,
    /// The DigicertAccount of orders that name neither spec.accountRef nor
    /// spec.apiKeySecretRef (its namespaceSelector still applies). Without it such
    /// orders are refused.
    #[arg(long, env = "DEFAULT_ACCOUNT")]
    default_account: Option<String>,
    /// Removed: use a DigicertAccount and --default-account (see the README).
    #[arg(long, env = "API_KEY_SECRET", hide = true)]
    api_key_secret: Option<String>,
    /// Removed with --api-key-secret.
    #[arg(long, env = "API_KEY_SECRET_KEY", hide = true)]
    api_key_secret_key: Option<String>,
    /// Serve what is assigned to no operator: DigicertAccounts that name no
    /// spec.operatorNamespace, DigicertOrders that name no account (the default
    /// account's) and DigicertOrders with an API key of their own namespace. With
    /// several operators in one cluster, all but one run with --serve-unassigned=false.
    #[arg(long, env = "SERVE_UNASSIGNED", default_value_t = true, action = clap::ArgAction::Set)]
    serve_unassigned: bool,
    /// How often an order that its account refuses, or whose CertCentral order another
    /// DigicertOrder drives, is looked at again.
    #[arg(long, env = "ACCESS_RECHECK", default_value = "1m", value_parser = parse_duration)]
    access_recheck: std::time::Duration,
    /// Watch only these namespaces (repeatable or comma-separated); default: all.
    #[arg(
        long = "watch-namespace",
        env = "WATCH_NAMESPACES",
        value_delimiter = ','
    )]
    watch_namespaces: Vec<String>,
    /// How often each order is checked in full at DigiCert (order info and its
    /// reissues: what the change feed cannot show, such as a certificate revoked by
    /// hand) when nothing else happens, e.g. 168h, 6h. Without a working change feed
    /// an order is checked at least every 6h.
    #[arg(long, env = "RESYNC_PERIOD", default_value = "168h", value_parser = parse_duration)]
    resync: std::time::Duration,
    /// How often each account key's change feed (DigiCert's account-wide status
    /// changes, one call per key) is read; it wakes the orders that changed. 0 turns
    /// the feed off: every order is then checked on its own (at most every 6h).
    #[arg(long, env = "FEED_INTERVAL", default_value = "2m", value_parser = parse_duration_or_zero)]
    feed_interval: std::time::Duration,
    /// Listen for CertCentral webhooks on this address (e.g. 0.0.0.0:8443): a call
    /// that carries the shared key makes the orders of the order it names look at
    /// DigiCert at once. Unset: no webhook receiver.
    #[arg(long, env = "WEBHOOK_LISTEN")]
    webhook_listen: Option<SocketAddr>,
    /// A file holding the shared key CertCentral sends in X-WEBHOOK-KEY (required
    /// with --webhook-listen).
    #[arg(long, env = "WEBHOOK_KEY_FILE")]
    webhook_key_file: Option<PathBuf>,
    /// Give certificate Secrets an owner reference, so they are deleted with their
    /// DigicertOrder (by default they stay).
    #[arg(long, env = "SECRET_OWNER_REFERENCES")]
    secret_owner_references: bool,
    /// Reconciles at once.
    #[arg(long, env = "CONCURRENCY", default_value_t = 8)]
    concurrency: u16,
    /// How watches read what exists when they start: `streaming` (the watch sends it,
    /// Kubernetes' streaming lists), `paged` (list pages, then a watch), or `auto`:
    /// streaming where the server offers it.
    #[arg(long, env = "INITIAL_LIST", value_enum, default_value = "auto")]
    initial_list: digicert_operator::controller::InitialList,

    /// Address of the HTTP endpoint: /healthz, /readyz, /metrics.
    #[arg(long, env = "HEALTH_ADDR", default_value = "0.0.0.0:8080")]
    health_addr: SocketAddr,
    /// Run controllers only while holding a Lease (for more than one replica).
    #[arg(long, env = "LEADER_ELECT")]
    leader_elect: bool,
    /// Name of the Lease in --namespace.
    #[arg(long, env = "LEASE_NAME", default_value = "digicert-operator")]
    lease_name: String,
    /// How long a Lease holds without renewal; a standby takes over after it.
    #[arg(long, env = "LEASE_DURATION", default_value = "15s", value_parser = parse_duration)]
    lease_duration: std::time::Duration,
    /// This replica's identity in the Lease (default: POD_NAME, else host name and pid).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Limit for one CertCentral call (connection included) before it counts as failed
    /// (at most 5m: a call holds its rate-limit slot until it ends).
    #[arg(long, env = "CERTCENTRAL_TIMEOUT", default_value = "30s", value_parser = parse_call_timeout)]
    certcentral_timeout: std::time::Duration,
    /// A CertCentral URL that DigicertOrders with a key of their own namespace
    /// (spec.apiKeySecretRef) may name, besides us, eu and --certcentral-url
    /// (repeatable or comma-separated).
    #[arg(
        long = "namespace-key-endpoint",
        env = "NAMESPACE_KEY_ENDPOINTS",
        value_delimiter = ','
    )]
    namespace_key_endpoints: Vec<String>,
    /// How long ahead of an order's end (its Multi-year Plan) the OrderExpiring
    /// condition and a Warning event say so.
    #[arg(long, env = "ORDER_EXPIRY_WARNING", default_value = "720h", value_parser = parse_duration)]
    order_expiry_warning: std::time::Duration,
    /// How long the deletion of a DigicertOrder with deletionPolicy CancelPending may
    /// wait for DigiCert before it gives up (with a Warning event) and lets it go.
    #[arg(long, env = "DELETION_TIMEOUT", default_value = "15m", value_parser = parse_duration)]
    deletion_timeout: std::time::Duration,
    /// Serve DigiCert's file-based domain validation (http-token) on this address
    /// (e.g. 0.0.0.0:8089). Unset: http-token is not offered.
    #[arg(long, env = "DCV_HTTP_LISTEN")]
    dcv_http_listen: Option<std::net::SocketAddr>,
    /// The Service (in the operator's namespace) in front of the solver listener,
    /// NAME:PORT: the Ingresses and HTTPRoutes of http-token send DigiCert there.
    #[arg(
        long,
        env = "DCV_HTTP_SERVICE",
        default_value = "digicert-operator-dcv-solver:80"
    )]
    dcv_http_service: String,
    /// The ConfigMap (in the operator's namespace) holding the values the solver
    /// serves; every operator pod follows it.
    #[arg(
        long,
        env = "DCV_HTTP_CONFIGMAP",
        default_value = "digicert-operator-dcv-http"
    )]
    dcv_http_configmap: String,
    /// The DNS server (HOST:PORT) asked whether a record published through a
    /// DNSEndpoint is out yet. Default: the first nameserver of /etc/resolv.conf.
    #[arg(long, env = "DCV_DNS_RESOLVER")]
    dcv_dns_resolver: Option<std::net::SocketAddr>,
    /// Do not pace calls to CertCentral's rate limits (100 requests / 5 s and 1000 /
    /// 3 min per API key). Only for a simulator started with --no-rate-limit.
    #[arg(long, env = "NO_RATE_LIMIT")]
    no_rate_limit: bool,
}

/// A duration, where 0 means "off".
fn parse_duration_or_zero(text: &str) -> Result<std::time::Duration, String> {
    if text.trim() == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    parse_duration(text)
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    digicert_operator::controller::decide::parse_duration(text)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{text:?} is not a duration such as 6h or 30m"))
}

/// A call holds its rate-limit slot until it is answered or times out, so an
/// unbounded timeout could stall every later call of the key behind one hung request.
fn parse_call_timeout(text: &str) -> Result<std::time::Duration, String> {
    let timeout = parse_duration(text)?;
    if timeout > std::time::Duration::from_secs(300) {
        return Err(format!("{text:?} is longer than the 5m a call may take"));
    }
    Ok(timeout)
}

/// The simulator left the operator's binary (and image): say where it went, with the
/// command line that does what the user asked.
fn simulator_moved(args: &[String]) -> anyhow::Error {
    let mut command = vec!["certcentral-sim".to_string()];
    command.extend(args.iter().cloned());
    anyhow::anyhow!(
        "the CertCentral simulator is no longer part of digicert-operator: it is a program \
         of its own, with the same flags. Run:\n  {}\n(build it with `cargo build -p \
         certcentral-sim`; its image is the Dockerfile's `simulator` target)",
        command.join(" ")
    )
}

fn main() -> ExitCode {
    // The plugin's verbs need none of the operator's set-up, and print their errors
    // once, without a log line: the plugin's own binary, this one named as it (a
    // link), or this one given a plugin verb.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let program = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_stem())
        .and_then(|n| n.to_str());
    if program == Some(cli::plugin::PROGRAM) {
        return cli::plugin::main(args, "kubectl digicert");
    }
    if program == Some(cli::complete::PROGRAM) {
        return cli::complete::main(args);
    }
    if args
        .get(1)
        .and_then(|a| a.to_str())
        .is_some_and(cli::plugin::is_verb)
    {
        return cli::plugin::main(args, "digicert-operator");
    }
    limit_malloc_arenas();
    let cli = Cli::parse_from(args);
    if let Err(e) = telemetry::init(&cli.log_level, cli.log_format) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    // The operator and the simulator report through their log (text or JSON lines);
    // the commands for people print `error: …` instead, once.
    let logs_errors = matches!(cli.command, Command::Run(_));
    // The work is mostly waiting on the network: two workers do, and a small blocking
    // pool (key generation, file reads) keeps the thread count, and memory, down.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(4)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run_operator(*args).await,
            Command::Crd { out_dir: None } => {
                print!("{}", controller::crd_yaml());
                Ok(())
            }
            Command::Crd { out_dir: Some(dir) } => {
                for crd in digicert_operator::crd::crds() {
                    let path = dir.join(format!("{}.yaml", crd.spec.names.plural));
                    std::fs::write(&path, controller::one_crd_yaml(&crd))
                        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
                }
                Ok(())
            }
            Command::Simulator { args } => Err(simulator_moved(&args)),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if logs_errors {
                tracing::error!("{e:#}");
            } else {
                eprintln!("error: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn run_operator(args: RunArgs) -> anyhow::Result<()> {
    digicert_operator::tls::install_crypto_provider();
    if args.api_key_secret.is_some() || args.api_key_secret_key.is_some() {
        anyhow::bail!(
            "--api-key-secret (API_KEY_SECRET) and --api-key-secret-key were removed: they let \
             every namespace use the operator's key. Create a DigicertAccount for the key (its \
             namespaceSelector says which namespaces may use it) and start the operator with \
             --default-account NAME; see the README's \"Accounts\" section"
        );
    }
    let base_url: BaseUrl = args.certcentral_url.parse()?;
    let operator_ca = match &args.ca_bundle {
        Some(path) => Some(
            std::fs::read(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?,
        ),
        None => None,
    };
    let metrics = std::sync::Arc::new(digicert_operator::metrics::Metrics::new());
    let endpoints = endpoints(&args, &base_url, operator_ca, metrics.clone())?;
    // A bad --ca-bundle stops the operator here, not at the first order.
    endpoints.service(&base_url, None)?;
    let client = kube::Client::try_default()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach Kubernetes: {e}"))?;
    operator::check_kubernetes_version(&client).await;
    let dcv = dcv_config(&args, &client).await?;
    let config = operator_config(&args, dcv);
    tracing::info!(
        certcentral = %base_url,
        default_account = config.default_account.as_deref().unwrap_or("none"),
        namespaces = %match config.namespaces.as_slice() {
            [] => "all".to_string(),
            some => some.join(","),
        },
        resync_s = config.resync.as_secs(),
        feed_interval_s = config.feed_interval.map(|d| d.as_secs()),
        "starting digicert-operator {}",
        env!("CARGO_PKG_VERSION")
    );
    let leader_election = leader_election(&args);
    let webhook = webhook(&args)?;
    let ctx = std::sync::Arc::new(Context::new(client, endpoints, config, metrics));
    operator::run(
        ctx,
        operator::Options {
            health_addr: args.health_addr,
            leader_election,
            webhook,
        },
    )
    .await?;
    Ok(())
}

/// The CertCentral endpoints: the default one, those a namespace's own key may use,
/// the rate limiter per key (or none) and the metrics observing every call.
fn endpoints(
    args: &RunArgs,
    base_url: &BaseUrl,
    operator_ca: Option<Vec<u8>>,
    metrics: std::sync::Arc<digicert_operator::metrics::Metrics>,
) -> anyhow::Result<controller::accounts::Endpoints> {
    let mut endpoints = controller::accounts::Endpoints::new(
        ClientConfig {
            base_url: base_url.clone(),
            trust: TrustRoots::System,
            timeout: args.certcentral_timeout,
            connect_timeout: args
                .certcentral_timeout
                .min(ClientConfig::default().connect_timeout),
            ..ClientConfig::default()
        },
        operator_ca,
        if args.no_rate_limit {
            std::sync::Arc::new(certcentral::RateLimiter::unlimited)
        } else {
            std::sync::Arc::new(certcentral::RateLimiter::certcentral)
        },
        Some(metrics),
    );
    for url in &args.namespace_key_endpoints {
        endpoints.allow_for_namespace_keys(&url.parse()?);
    }
    Ok(endpoints)
}

fn operator_config(args: &RunArgs, dcv: controller::DcvConfig) -> OperatorConfig {
    OperatorConfig {
        namespace: args.namespace.clone(),
        default_account: args.default_account.clone().filter(|a| !a.is_empty()),
        access_recheck: args.access_recheck,
        resync: args.resync,
        secret_owner_references: args.secret_owner_references,
        namespaces: args.watch_namespaces.clone(),
        concurrency: args.concurrency.max(1),
        initial_list: args.initial_list,
        order_expiry_warning: args.order_expiry_warning,
        call_timeout: args.certcentral_timeout,
        deletion_timeout: args.deletion_timeout,
        dcv,
        serve_unassigned: args.serve_unassigned,
        feed_interval: Some(args.feed_interval).filter(|d| !d.is_zero()),
    }
}

/// The webhook receiver, when asked for: its address and the key from its file.
fn webhook(
    args: &RunArgs,
) -> anyhow::Result<Option<(SocketAddr, digicert_operator::webhook::WebhookKey)>> {
    let Some(addr) = args.webhook_listen else {
        return Ok(None);
    };
    let path = args
        .webhook_key_file
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("--webhook-listen needs --webhook-key-file"))?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    let key = digicert_operator::webhook::WebhookKey::new(&text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(Some((addr, key)))
}

/// Leader election, when asked for: this process's identity is the host name and
/// the process id unless given.
fn leader_election(args: &RunArgs) -> Option<operator::LeaderElection> {
    args.leader_elect.then(|| operator::LeaderElection {
        lease_name: args.lease_name.clone(),
        namespace: args.namespace.clone(),
        identity: args.identity.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "digicert-operator".into());
            format!("{host}-{}", std::process::id())
        }),
        duration: args.lease_duration,
    })
}

/// The domain validation solvers: the http-token listener (on every pod, leader or
/// not, fed from the ConfigMap) and the resolver for DNSEndpoint records.
async fn dcv_config(
    args: &RunArgs,
    client: &kube::Client,
) -> anyhow::Result<controller::DcvConfig> {
    use digicert_operator::dcv::http;
    let http = match args.dcv_http_listen {
        Some(addr) => {
            let (service, port) = args
                .dcv_http_service
                .rsplit_once(':')
                .and_then(|(n, p)| Some((n.to_string(), p.parse::<i32>().ok()?)))
                .filter(|(n, _)| !n.is_empty())
                .ok_or_else(|| anyhow::anyhow!("--dcv-http-service must be NAME:PORT"))?;
            let solver = http::HttpSolver {
                namespace: args.namespace.clone(),
                config_map: args.dcv_http_configmap.clone(),
                service,
                service_port: port,
                tokens: http::Tokens::default(),
            };
            http::serve(addr, solver.tokens.clone())
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
            tokio::spawn(http::follow(
                kube::Api::namespaced(client.clone(), &args.namespace),
                solver.config_map.clone(),
                solver.tokens.clone(),
            ));
            Some(solver)
        }
        None => None,
    };
    let dns_resolver = args
        .dcv_dns_resolver
        .or_else(digicert_operator::dcv::system_resolver);
    Ok(controller::DcvConfig { http, dns_resolver })
}

/// glibc gives each thread that allocates its own arena (up to 8 per core), and
/// memory freed in one is not reused by another: with many short-lived tasks that
/// roughly doubles the resident size. Two arenas are plenty for this workload. Fixed
/// mmap and trim thresholds keep glibc from raising them after the first large
/// answers (pages of a list), so large buffers go back to the system when freed.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 * 1024);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_call_timeout_is_a_positive_duration_of_at_most_five_minutes() {
        let ok = |t: &str| parse_call_timeout(t).map(|d| d.as_secs_f64());
        assert_eq!(ok("30s"), Ok(30.0));
        assert_eq!(ok("5m"), Ok(300.0));
        assert_eq!(ok("1500ms"), Ok(1.5));
        for bad in ["5m1s", "1h", "0s", "", "soon"] {
            assert!(parse_call_timeout(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_call_timeout("10m").unwrap_err().contains("5m"));
    }
}
