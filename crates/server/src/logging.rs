//! The log: text for a terminal, or one JSON object per line (`log_format = "json"`), each
//! event's fields as members. The line of each model call (target `keygate::model_call`)
//! carries its request id, key id, workspace, model, protocol, status, tokens and timings
//! (docs/CONTRACT.md#usage); no line carries a key. In JSON, every line written while a
//! request is handled carries the fields of the spans it is in (the `request` span of
//! `request_context`: its `request_id`), so that a request's lines can be found together.

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use crate::settings::LogFormat;

/// Starts the log on stderr in `format`, filtered by `RUST_LOG` (default `info`).
pub fn init(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match format {
        LogFormat::Text => {
            let lines = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
            registry.with(lines.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))).try_init()
        }
        LogFormat::Json => {
            let lines = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(false).event_format(JsonLines);
            registry.with(SpanFieldsLayer).with(lines).try_init()
        }
    };
}

/// Keeps each span's fields as JSON values, for [`JsonLines`] to add to the lines written
/// inside it.
#[derive(Debug, Clone, Copy)]
pub struct SpanFieldsLayer;

/// The fields of one span, kept in its extensions.
struct SpanFields(Map<String, Value>);

impl<S> Layer<S> for SpanFieldsLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, context: Context<'_, S>) {
        if let Some(span) = context.span(id) {
            let mut fields = Fields(Map::new());
            attributes.record(&mut fields);
            span.extensions_mut().insert(SpanFields(fields.0));
        }
    }
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
    fn format_event(&self, context: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let mut line = event_json(event, crate::clock::now_millis());
        if let (Some(scope), Value::Object(members)) = (context.event_scope(), &mut line) {
            // The event's own fields win over its spans'.
            for span in scope.from_root() {
                if let Some(SpanFields(fields)) = span.extensions().get::<SpanFields>() {
                    for (name, value) in fields {
                        members.entry(name.clone()).or_insert_with(|| value.clone());
                    }
                }
            }
        }
        writeln!(writer, "{line}")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn each_event_is_one_json_object_with_its_fields() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).event_format(JsonLines).finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "keygate::model_call", request_id = "R-1", key_id = 7_i64, model = %"qwen-plus", input_tokens = 12_i64, first_byte_ms = Some(1.5), "model call");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        let line: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["target"], "keygate::model_call");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["message"], "model call");
        assert_eq!(line["request_id"], "R-1");
        assert_eq!(line["key_id"], 7);
        assert_eq!(line["model"], "qwen-plus");
        assert_eq!(line["input_tokens"], 12);
        assert_eq!(line["first_byte_ms"], 1.5);
    }

    #[test]
    fn a_line_written_inside_a_request_carries_its_request_id() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::registry()
            .with(SpanFieldsLayer)
            .with(tracing_subscriber::fmt::layer().with_writer(move || writer.clone()).with_ansi(false).event_format(JsonLines));
        tracing::subscriber::with_default(subscriber, || {
            let _request = tracing::info_span!("request", request_id = %"R-2").entered();
            tracing::warn!(cause = "connection refused", "upstream unreachable");
            tracing::info!(request_id = "R-own", "an event's own field wins");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!((lines[0]["request_id"].as_str(), lines[0]["cause"].as_str()), (Some("R-2"), Some("connection refused")));
        assert_eq!(lines[1]["request_id"], "R-own");
    }
}
