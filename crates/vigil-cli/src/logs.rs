//! What vigil writes on stderr: its logs (`VIGIL_LOG` filters them, default `warn`) and the commands' own
//! notes, warnings and errors, as text or, with `--log-format json` (`VIGIL_LOG_FORMAT=json`), as one JSON
//! object per line:
//!
//! ```json
//! {"timestamp":"2026-01-02T03:04:05.123456Z","level":"WARN","target":"vigil_kafka::consumer","message":"...","fields":{"partition":3}}
//! ```
//!
//! - `timestamp`: UTC, RFC 3339 with microseconds. `level`: `ERROR`, `WARN`, `INFO`, `DEBUG` or `TRACE`.
//!   `target`: the Rust module that logged it (`vigil` for the command's own messages).
//! - `message`: the text. `fields`: the event's other fields, always an object (empty when there are
//!   none), never flattened, so that no field can clash with the five names above. Numbers and booleans
//!   stay JSON numbers and booleans; everything else is a string.
//! - Exactly these five keys on every line, whatever wrote it: a log event, a command's note (`validate`'s
//!   warnings, `vigil: stopping ...`), the run summary when alerts go to stdout (`fields.summary` holds it as
//!   JSON), the final error (`fields.class`, `fields.exit_code`) and a panic (`fields.location`).
//!
//! Messages are built without secrets; as a last net every message and string field passes through
//! `vigil_schema::redact::text` here, as the final error did before. Text logs are coloured only when
//! stderr is a terminal and `NO_COLOR` is unset or empty; JSON is never coloured.

use std::fmt;
use std::io::{IsTerminal, Write};
use std::sync::OnceLock;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use vigil_schema::redact;

/// `--log-format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Lines for people (coloured on a terminal).
    #[default]
    Text,
    /// One JSON object per line: timestamp, level, target, message, fields.
    Json,
}

static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// The format chosen at start (text until then).
pub fn format() -> LogFormat {
    FORMAT.get().copied().unwrap_or_default()
}

/// Whether text on stderr may be coloured: a terminal, and no `NO_COLOR` (<https://no-color.org>).
pub fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Sets up the logs: `VIGIL_LOG` as the filter (default `warn`), `format` for every line on stderr.
pub fn init(format: LogFormat) {
    let _ = FORMAT.set(format);
    let filter = tracing_subscriber::EnvFilter::try_from_env("VIGIL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(colour()).init(),
        LogFormat::Json => {
            builder.with_ansi(false).event_format(JsonLines).init();
            std::panic::set_hook(Box::new(|info| {
                let message = match (info.payload().downcast_ref::<&str>(), info.payload().downcast_ref::<String>()) {
                    (Some(s), _) => (*s).to_string(),
                    (_, Some(s)) => s.clone(),
                    _ => "panic".to_string(),
                };
                let mut fields = Map::new();
                if let Some(at) = info.location() {
                    fields.insert("location".into(), format!("{}:{}", at.file(), at.line()).into());
                }
                if let Some(name) = std::thread::current().name() {
                    fields.insert("thread".into(), name.into());
                }
                let backtrace = std::backtrace::Backtrace::capture();
                if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
                    fields.insert("backtrace".into(), backtrace.to_string().into());
                }
                write_line(&json_line(&Level::ERROR, "vigil", &format!("panicked: {message}"), fields));
            }));
        }
    }
}

/// A message of the command itself (a note, warning or error for the person running it): as it is in
/// text, one JSON line at `level` with `fields` in JSON. Always shown, whatever `VIGIL_LOG` says.
pub fn say_with(level: Level, message: &str, fields: Map<String, Value>) {
    match format() {
        LogFormat::Text => eprintln!("{}", redact::text(message)),
        LogFormat::Json => write_line(&json_line(&level, "vigil", message, fields)),
    }
}

/// [`say_with`] without fields.
pub fn say(level: Level, message: &str) {
    say_with(level, message, Map::new());
}

fn write_line(line: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(line.as_bytes());
}

/// One JSON log line (with its newline); the message and string fields redacted.
fn json_line(level: &Level, target: &str, message: &str, mut fields: Map<String, Value>) -> String {
    fields.values_mut().for_each(redact_strings);
    let timestamp = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    let text = |s: &str| Value::from(s).to_string();
    format!(
        "{{\"timestamp\":{},\"level\":{},\"target\":{},\"message\":{},\"fields\":{}}}\n",
        text(&timestamp),
        text(level.as_str()),
        text(target),
        text(&redact::text(message)),
        Value::Object(fields)
    )
}

/// Every string in `value`, however deep, through `redact::text`.
fn redact_strings(value: &mut Value) {
    match value {
        Value::String(s) => {
            if let std::borrow::Cow::Owned(clean) = redact::text(s) {
                *s = clean;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_strings),
        Value::Object(map) => map.values_mut().for_each(redact_strings),
        _ => {}
    }
}

/// `tracing` events as [`json_line`]s.
struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        writer.write_str(&json_line(meta.level(), meta.target(), &fields.message, fields.fields))
    }
}

/// An event's `message` and its other fields.
#[derive(Default)]
struct Fields {
    message: String,
    fields: Map<String, Value>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            self.message = match value {
                Value::String(s) => s,
                other => other.to_string(),
            };
        } else {
            self.fields.insert(field.name().to_string(), value);
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_string()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let mut text = value.to_string();
        let mut source = value.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        self.put(field, Value::String(text));
    }
}
