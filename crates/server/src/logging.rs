//! The log: text for a terminal, or one JSON object per line (`log_format = "json"`), each
//! event's fields as members. The line of each model call (target `keygate::model_call`)
//! carries its request id, key id, workspace, model, protocol, status, tokens and timings
//! (docs/CONTRACT.md#usage); no line carries a key.

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::settings::LogFormat;

/// Starts the log on stderr in `format`, filtered by `RUST_LOG` (default `info`).
pub fn init(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).try_init(),
        LogFormat::Json => builder.with_ansi(false).event_format(JsonLines).try_init(),
    };
}

/// Formats each event as one JSON object: `timestamp` (Unix milliseconds), `level`,
/// `target`, `message` and the event's fields.
#[derive(Debug, Clone, Copy)]
pub struct JsonLines;

struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_string(), Value::from(format!("{value:?}")));
    }
}

/// The JSON object of one event.
pub fn event_json(event: &Event<'_>, now_milliseconds: i64) -> Value {
    let mut fields = Fields(Map::new());
    fields.0.insert("timestamp".into(), Value::from(now_milliseconds));
    fields.0.insert("level".into(), Value::from(event.metadata().level().as_str()));
    fields.0.insert("target".into(), Value::from(event.metadata().target()));
    event.record(&mut fields);
    Value::Object(fields.0)
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _context: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        writeln!(writer, "{}", event_json(event, crate::clock::now_millis()))
    }
}
