//! `kubectl digicert`: the verbs, kubectl's flags, and one `error: …` line on failure.
//! The `kubectl-digicert` binary is this alone; `digicert-operator` hands its plugin
//! verbs here too.

use std::ffi::OsString;
use std::io::Write as _;
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{ArgGroup, CommandFactory, FromArgMatches, Parser, Subcommand};

use super::{KubeFlags, Output, Selection};
use crate::error::Error;

/// The program kubectl runs for `kubectl digicert`.
pub const PROGRAM: &str = "kubectl-digicert";

#[derive(Parser)]
#[command(
    name = PROGRAM,
    bin_name = "kubectl digicert",
    version,
    about = "Look after DigicertOrders: their certificates, renewals, and reissues waiting for \
             approval. The operator acts on what these commands ask; they need no DigiCert API key."
)]
pub struct Plugin {
    #[command(flatten)]
    pub kube: KubeFlags,
    #[command(subcommand)]
    pub verb: Verb,
}

#[derive(Subcommand)]
pub enum Verb {
    /// A table of DigicertOrders: Ready, DigiCert status, expiry, renewal, reissue, last
    /// error (or the objects, with -o json|yaml).
    Status {
        /// One DigicertOrder (default: all of the namespace).
        #[arg(conflicts_with_all = ["all_namespaces", "selector"])]
        name: Option<String>,
        /// All namespaces.
        #[arg(short = 'A', long)]
        all_namespaces: bool,
        /// Only the DigicertOrders matching this label selector, e.g. `team=web`.
        #[arg(short = 'l', long, value_name = "SELECTOR")]
        selector: Option<String>,
        /// Output format: wide (more columns), json or yaml (the objects, as kubectl
        /// prints them).
        #[arg(short = 'o', long, value_enum)]
        output: Option<Output>,
    },
    /// Request a reissue now: of the named DigicertOrders, of all of them (--all), or of
    /// those matching a label selector (-l).
    #[command(group(ArgGroup::new("which").required(true).args(["names", "all", "selector"])))]
    Renew {
        /// DigicertOrders of the namespace.
        names: Vec<String>,
        /// Every DigicertOrder of the namespace (or of all namespaces, with -A).
        #[arg(long, conflicts_with_all = ["names", "selector"])]
        all: bool,
        /// The DigicertOrders matching this label selector, e.g. `team=web`.
        #[arg(short = 'l', long, value_name = "SELECTOR", conflicts_with = "names")]
        selector: Option<String>,
        /// With --all or -l: in all namespaces.
        #[arg(short = 'A', long, conflicts_with = "names")]
        all_namespaces: bool,
    },
    /// Cancel a DigicertOrder's reissue in flight (at DigiCert too) and hold further
    /// reissues of its spec until the spec changes or a renewal is requested. With no
    /// reissue in flight it says so and changes nothing.
    Cancel { name: String },
    /// Show the certificate in a DigicertOrder's Secret: subject, SANs, issuer, serial,
    /// validity, and whether the key matches.
    Inspect { name: String },
    /// Agree to the reissue a DigicertOrder holds because it drops names (DigiCert then
    /// revokes the order's earlier certificates and duplicates): shows what would be
    /// revoked and sets the allow-revocation annotation to the names' fingerprint.
    AllowRevocation { name: String },
    /// Approve the reissue request of a DigicertOrder that waits for approval at
    /// DigiCert: the operator approves it, if the order's DigicertAccount allows
    /// approval (allowApproval).
    Approve { name: String },
    /// Reject at DigiCert the reissue request of a DigicertOrder that waits for
    /// approval (if the order's DigicertAccount allows approval), and hold further
    /// reissues of its spec until the spec changes or a renewal is requested.
    Deny {
        name: String,
        /// Why: DigiCert records it with the rejection.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Print a shell completion script for kubectl-digicert, e.g.
    /// `source <(kubectl-digicert completion bash)`.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Whether `word` is a verb `digicert-operator` hands to the plugin.
pub fn is_verb(word: &str) -> bool {
    !matches!(word, "completion" | "help")
        && Plugin::command()
            .get_subcommands()
            .any(|c| c.get_name() == word)
}

/// Runs the plugin on `args` (the program first); `bin_name` is how usage names it.
pub fn main(args: impl IntoIterator<Item = OsString>, bin_name: &str) -> ExitCode {
    let command = Plugin::command().bin_name(bin_name.to_string());
    let matches = match command.try_get_matches_from(args) {
        Ok(m) => m,
        Err(e) => return clap_failure(&e, bin_name),
    };
    let plugin = match Plugin::from_arg_matches(&matches) {
        Ok(p) => p,
        Err(e) => return clap_failure(&e, bin_name),
    };
    if let Verb::Completion { shell } = plugin.verb {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut Plugin::command(), PROGRAM, &mut script);
        return write_out(&script);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return failure(&format!("cannot start the async runtime: {e}")),
    };
    match runtime.block_on(run(plugin)) {
        Ok(text) => write_out(text.as_bytes()),
        Err(message) => failure(&message),
    }
}

async fn run(plugin: Plugin) -> Result<String, String> {
    let kube = plugin.kube.connect().await.map_err(|e| explain(&e))?;
    verb(&kube, plugin.verb).await.map_err(|e| match e {
        // Not an answer of the API server: say which one was asked.
        Error::Kube(ref k) if !matches!(k, kube::Error::Api(_)) => {
            format!(
                "cannot reach the Kubernetes API at {}: {}",
                kube.server,
                explain(&e)
            )
        }
        e => explain(&e),
    })
}

async fn verb(kube: &super::Kube, verb: Verb) -> crate::error::Result<String> {
    match verb {
        Verb::Status {
            name,
            all_namespaces,
            selector,
            output,
        } => {
            super::status(
                kube,
                name.as_deref(),
                all_namespaces,
                selector.as_deref(),
                output,
            )
            .await
        }
        Verb::Renew {
            names,
            all,
            selector,
            all_namespaces,
        } => {
            let selection = match (all, selector) {
                (true, _) => Selection::All,
                (false, Some(selector)) => Selection::Labels(selector),
                (false, None) => Selection::Names(names),
            };
            super::renew(kube, selection, all_namespaces).await
        }
        Verb::Cancel { name } => super::cancel(kube, &name).await,
        Verb::Inspect { name } => super::inspect(kube, &name).await,
        Verb::AllowRevocation { name } => super::allow_revocation(kube, &name).await,
        Verb::Approve { name } => super::approve(kube, &name).await,
        Verb::Deny { name, reason } => super::deny(kube, &name, reason.as_deref()).await,
        // Answered before connecting.
        Verb::Completion { .. } => Ok(String::new()),
    }
}

/// Help and version go to stdout as clap writes them; a usage error is one line.
fn clap_failure(e: &clap::Error, bin_name: &str) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
        }
        _ => {
            // clap's first paragraph (a list of missing arguments spans lines), as one line.
            let text = e.render().to_string();
            let first: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            let first = first.join(" ");
            let first = first.strip_prefix("error: ").unwrap_or(&first);
            let _ = writeln!(
                std::io::stderr(),
                "error: {first} (see '{bin_name} --help')"
            );
            ExitCode::from(2)
        }
    }
}

fn failure(message: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "error: {message}");
    ExitCode::FAILURE
}

/// Writes to stdout; a closed pipe (`| head`) is no failure worth a panic.
fn write_out(bytes: &[u8]) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(bytes).and_then(|()| out.flush());
    ExitCode::SUCCESS
}

/// An error as one line: the API server's own message for its refusals, else the
/// error and its causes.
pub fn explain(e: &Error) -> String {
    let text = match e {
        Error::Kube(kube::Error::Api(s)) => format!("{} ({})", s.message, s.reason),
        // The API server's words without the wrapper's prefix.
        Error::Kube(k) => crate::certcentral::error_chain(k),
        _ => crate::certcentral::error_chain(e),
    };
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verbs_are_the_plugins_only() {
        Plugin::command().debug_assert();
        let verbs: Vec<String> = Plugin::command()
            .get_subcommands()
            .map(|c| c.get_name().to_string())
            .collect();
        for verb in ["status", "renew", "cancel", "inspect", "approve", "deny"] {
            assert!(verbs.iter().any(|v| v == verb), "{verbs:?}");
            assert!(is_verb(verb));
        }
        for server in ["run", "crd", "simulator", "completion", "help"] {
            assert!(!is_verb(server), "{server}");
        }
    }

    #[test]
    fn renew_needs_to_know_which_orders() {
        let parse = |args: &[&str]| {
            Plugin::try_parse_from(std::iter::once("kubectl-digicert").chain(args.iter().copied()))
        };
        assert!(parse(&["renew"]).is_err());
        assert!(parse(&["renew", "web", "--all"]).is_err());
        assert!(parse(&["renew", "web", "-A"]).is_err());
        assert!(parse(&["renew", "--all", "-l", "a=b"]).is_err());
        assert!(parse(&["renew", "web", "api"]).is_ok());
        assert!(parse(&["renew", "--all", "-A"]).is_ok());
        assert!(parse(&["--context", "c", "renew", "-l", "a=b", "-n", "x"]).is_ok());
        assert!(parse(&["status", "-o", "table"]).is_err());
    }
}
