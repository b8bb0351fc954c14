//! Logging set-up: text or JSON lines, filtered by an EnvFilter expression. A JSON
//! line is one flat object: the event's fields beside those of the spans it happens
//! in (an order's `namespace`, `order_name`, `order_id`), never nested under `span`.

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

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
        LogFormat::Json => builder
            .fmt_fields(JsonFields::new())
            .event_format(FlatJson)
            .try_init(),
    };
    result.map_err(|e| format!("cannot install the logger: {e}"))
}

/// JSON lines with the fields of the event and of its spans at the top level
/// (`timestamp`, `level`, `target`, `span`: the innermost span's name, then the
/// fields, the event's last so they win a clash).
pub struct FlatJson;

impl<S, N> FormatEvent<S, N> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = Map::new();
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        line.insert("timestamp".into(), now.into());
        let meta = event.metadata();
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("target".into(), meta.target().into());
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                line.insert("span".into(), span.name().into());
                let extensions = span.extensions();
                // JsonFields keeps a span's fields as a JSON object.
                if let Some(fields) = extensions.get::<FormattedFields<N>>()
                    && let Ok(Value::Object(fields)) = serde_json::from_str(fields.as_str())
                {
                    line.extend(fields);
                }
            }
        }
        event.record(&mut FieldsInto(&mut line));
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// Puts an event's fields into a JSON object: numbers and booleans as such, anything
/// else as its text (`%` fields by Display; `?` ones by Debug, which the operator does
/// not use for values).
struct FieldsInto<'a>(&'a mut Map<String, Value>);

impl Visit for FieldsInto<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer the test reads back.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_lines_are_flat_and_carry_plain_values() {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .fmt_fields(JsonFields::new())
            .event_format(FlatJson)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("reconcile", namespace = "shop", order_name = "web");
            let _in = span.enter();
            let inner = tracing::info_span!("step", order_id = 1001u64);
            let _in = inner.enter();
            tracing::info!(step = "issued", serial = %"0A1B", ready = true, "certificate issued");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let line: Value = serde_json::from_str(text.trim()).expect(&text);
        assert_eq!(line["namespace"], "shop", "{line}");
        assert_eq!(line["order_name"], "web");
        assert_eq!(line["order_id"], 1001);
        assert_eq!(line["step"], "issued");
        assert_eq!(line["serial"], "0A1B");
        assert_eq!(line["ready"], true);
        assert_eq!(line["message"], "certificate issued");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["span"], "step");
        assert!(line.get("fields").is_none() && line.get("spans").is_none());
    }

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
