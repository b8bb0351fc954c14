//! Logging set-up: text or JSON lines, filtered by an EnvFilter expression.

use tracing_subscriber::EnvFilter;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The operator's own crates beside `digicert_operator`: a level set for it covers
/// them too (the CertCentral client logs each call under `certcentral`).
const OWN_CRATES: [&str; 2] = ["certcentral", "pki"];

/// `filter` with every `digicert_operator=LEVEL` directive repeated for the
/// operator's other crates, unless the filter names them itself.
pub fn expand_filter(filter: &str) -> String {
    let mut directives: Vec<String> = filter
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_string)
        .collect();
    let levels: Vec<String> = directives
        .iter()
        .filter_map(|d| d.strip_prefix("digicert_operator="))
        .map(str::to_string)
        .collect();
    for level in levels {
        for krate in OWN_CRATES {
            let named = directives
                .iter()
                .any(|d| d == krate || d.starts_with(&format!("{krate}=")));
            if !named {
                directives.push(format!("{krate}={level}"));
            }
        }
    }
    directives.join(",")
}

/// Installs the global subscriber. Logs go to stderr so stdout stays for output.
pub fn init(filter: &str, format: LogFormat) -> Result<(), String> {
    let filter = EnvFilter::try_new(expand_filter(filter))
        .map_err(|e| format!("invalid log level {filter:?}: {e}"))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_level_for_the_operator_covers_its_client_crates() {
        let cases = [
            ("info", "info"),
            (
                "info,digicert_operator=debug",
                "info,digicert_operator=debug,certcentral=debug,pki=debug",
            ),
            (
                "digicert_operator=trace",
                "digicert_operator=trace,certcentral=trace,pki=trace",
            ),
            // Named on their own: left as they are.
            (
                "digicert_operator=debug,certcentral=warn",
                "digicert_operator=debug,certcentral=warn,pki=debug",
            ),
            (
                "warn, digicert_operator::controller=debug",
                "warn,digicert_operator::controller=debug",
            ),
        ];
        for (filter, want) in cases {
            assert_eq!(expand_filter(filter), want, "{filter}");
            assert!(EnvFilter::try_new(expand_filter(filter)).is_ok());
        }
    }
}
