//! What a log line looks like: one flat JSON object,
//! `{"timestamp":"2026-11-25T20:22:47.653109Z","message":"request",<fields>}` for the everyday
//! `INFO` lines, and `{"timestamp":…,"level":"WARN","message":…,<fields>,"target":"…"}` for the
//! others. Operators pay for every byte ingested (Application Insights bills by the gigabyte) at
//! the rate requests arrive, so the lines written per request say only what varies: a line
//! without `level` is `INFO`, and only lines that call for a look (`WARN`, `ERROR`, and debug
//! output) name the module that wrote them.
//!
//! tracing-subscriber's own JSON formatter produces the same shape, but through serde, a visitor
//! per value and `fmt` for the time; on the request path it was ~10 % of the handler's CPU.
//! This one writes straight into the line buffer, escaping with [`crate::json`].
//!
//! The request line, written once per request, does not go through `tracing` at all: [`Line`]
//! writes the same shape field by field (a `tracing` event with the request line's 21 optional
//! fields costs a value set, a visitor call and a `fmt` pass per field, most of them empty).

use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::json;

/// The event formatter installed by [`crate::telemetry::init`].
pub struct FlatJson;

impl<S, N> FormatEvent<S, N> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let metadata = event.metadata();
        writer.write_str("{\"timestamp\":\"")?;
        write_rfc3339_micros(&mut writer, SystemTime::now())?;
        writer.write_char('"')?;
        let everyday = *metadata.level() == tracing::Level::INFO;
        if !everyday {
            write!(writer, ",\"level\":\"{}\"", metadata.level())?;
        }
        let mut fields = Fields {
            out: &mut writer,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        if !everyday {
            writer.write_str(",\"target\":")?;
            write_string(&mut writer, metadata.target())?;
        }
        writer.write_str("}\n")
    }
}

/// Writes each field as `,"name":value`.
struct Fields<'a, 'w> {
    out: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = self
                .out
                .write_char(',')
                .and_then(|()| write_string(self.out, field.name()))
                .and_then(|()| self.out.write_char(':'))
                .and_then(|()| value(self.out));
        }
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, |out| write_string(out, value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |out| write!(out, "{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |out| write!(out, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |out| write!(out, "{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // Rust prints finite floats as plain decimals, which are JSON numbers; JSON has no NaN.
        if value.is_finite() {
            self.field(field, |out| write!(out, "{value}"));
        } else {
            self.field(field, |out| out.write_str("null"));
        }
    }

    /// The message (`format_args!`) and `%display` / `?debug` values: a JSON string.
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, |out| {
            out.write_char('"')?;
            write!(Escaping(out), "{value:?}")?;
            out.write_char('"')
        });
    }
}

fn write_string(out: &mut impl fmt::Write, value: &str) -> fmt::Result {
    out.write_char('"')?;
    Escaping(out).write_str(value)?;
    out.write_char('"')
}

/// Escapes whatever is written through it.
struct Escaping<'a, W: fmt::Write + ?Sized>(&'a mut W);

impl<W: fmt::Write + ?Sized> fmt::Write for Escaping<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut result = Ok(());
        json::escape(text, |piece| {
            if result.is_ok() {
                result = self.0.write_str(piece);
            }
        });
        result
    }
}

/// One INFO line written field by field, in the shape [`FlatJson`] gives an event:
/// `{"timestamp":…,"message":…,"name":value,…}`. Each value may be given as an `Option`; a
/// field whose value is `None` is left out, as `tracing` leaves out an empty `Option`.
pub struct Line {
    text: String,
}

impl Line {
    /// Starts a line with its timestamp (now) and message.
    pub fn info(message: &str) -> Line {
        let mut text = String::with_capacity(512);
        text.push_str("{\"timestamp\":\"");
        // Writing to a String cannot fail.
        let _ = write_rfc3339_micros(&mut text, SystemTime::now());
        text.push_str("\",\"message\":");
        let _ = write_string(&mut text, message);
        Line { text }
    }

    fn name(&mut self, name: &str) {
        self.text.push_str(",\"");
        self.text.push_str(name);
        self.text.push_str("\":");
    }

    /// `"name":"value"`, escaped.
    pub fn str<'v>(&mut self, name: &str, value: impl Into<Option<&'v str>>) -> &mut Line {
        if let Some(value) = value.into() {
            self.name(name);
            let _ = write_string(&mut self.text, value);
        }
        self
    }

    /// `"name":"first second …"`: `words` joined by spaces, escaped. Written piece by piece, not
    /// through `Display`: `core::fmt` cost ~1.3k instructions a token for the jti and scopes.
    pub fn words<'v>(&mut self, name: &str, words: impl IntoIterator<Item = &'v str>) -> &mut Line {
        self.name(name);
        self.text.push('"');
        for (i, word) in words.into_iter().enumerate() {
            if i > 0 {
                self.text.push(' ');
            }
            let _ = Escaping(&mut self.text).write_str(word);
        }
        self.text.push('"');
        self
    }

    /// `"name":123`.
    pub fn u64(&mut self, name: &str, value: impl Into<Option<u64>>) -> &mut Line {
        if let Some(value) = value.into() {
            self.name(name);
            push_u64(&mut self.text, value);
        }
        self
    }

    /// `"name":0.068`: a duration in milliseconds, to the microsecond, printed as Rust prints
    /// the `f64` `micros / 1000` (no trailing zeros; `0` for zero).
    pub fn milliseconds(&mut self, name: &str, value: std::time::Duration) -> &mut Line {
        self.name(name);
        let micros = u64::try_from(value.as_micros()).unwrap_or(u64::MAX);
        push_u64(&mut self.text, micros / 1000);
        let mut fraction = micros % 1000;
        if fraction != 0 {
            self.text.push('.');
            let mut digits = 3;
            while fraction % 10 == 0 {
                fraction /= 10;
                digits -= 1;
            }
            let mut buffer = [b'0'; 3];
            for digit in buffer[..digits].iter_mut().rev() {
                *digit = b'0' + (fraction % 10) as u8;
                fraction /= 10;
            }
            self.text
                .push_str(std::str::from_utf8(&buffer[..digits]).unwrap_or_default());
        }
        self
    }

    /// The line, closed and ending in a newline.
    pub fn finish(mut self) -> String {
        self.text.push_str("}\n");
        self.text
    }
}

fn push_u64(out: &mut String, value: u64) {
    let mut buffer = [0u8; 20];
    let mut at = buffer.len();
    let mut rest = value;
    loop {
        at -= 1;
        buffer[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&buffer[at..]).unwrap_or_default());
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC, microseconds; years 0–9999).
fn write_rfc3339_micros(out: &mut impl fmt::Write, time: SystemTime) -> fmt::Result {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let (year, month, day) = civil_from_days(seconds / 86_400);
    let second_of_day = seconds % 86_400;
    // Digits by hand: `write!` with padding costs more than the rest of a request line.
    let mut text = *b"0000-00-00T00:00:00.000000Z";
    let mut put = |at: usize, width: usize, mut value: u64| {
        for digit in text[at..at + width].iter_mut().rev() {
            *digit = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, second_of_day / 3600);
    put(14, 2, second_of_day / 60 % 60);
    put(17, 2, second_of_day % 60);
    put(20, 6, u64::from(since_epoch.subsec_micros()));
    // Only ASCII digits and punctuation were written.
    out.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let days = days + 719_468; // days from 0000-03-01
    let era = days / 146_097;
    let day_of_era = days % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use serde_json::Value;

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn lines_of(log: impl FnOnce()) -> Vec<String> {
        let capture = Capture::default();
        let sink = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(FlatJson)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        let bytes = capture.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn a_line_is_one_flat_json_object_in_a_fixed_order() {
        let reason = "bad \"kid\"\n";
        let lines = lines_of(|| {
            tracing::info!(
                mode = "forwarded",
                status = 200u16,
                negative = -3i64,
                latency_ms = 0.071175,
                not_a_number = f64::NAN,
                cached = true,
                reason = %reason,
                debug = ?Some("x"),
                "request"
            );
            tracing::warn!("stopped");
        });
        assert_eq!(lines.len(), 2);
        let line: Value = serde_json::from_str(&lines[0]).unwrap();
        let keys: Vec<&str> = line
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "timestamp",
                "message",
                "mode",
                "status",
                "negative",
                "latency_ms",
                "not_a_number",
                "cached",
                "reason",
                "debug",
            ]
        );
        assert_eq!(line["message"], "request");
        assert_eq!(line["mode"], "forwarded");
        assert_eq!(line["status"], 200);
        assert_eq!(line["negative"], -3);
        assert_eq!(line["latency_ms"], 0.071175);
        assert_eq!(line["not_a_number"], Value::Null);
        assert_eq!(line["cached"], true);
        assert_eq!(line["reason"], reason);
        assert_eq!(line["debug"], "Some(\"x\")");
        // A line that calls for a look says how bad and where from.
        let line: Value = serde_json::from_str(&lines[1]).unwrap();
        let keys: Vec<&str> = line
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["timestamp", "level", "message", "target"]);
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["message"], "stopped");
        assert_eq!(line["target"], module_path!());
    }

    #[test]
    fn a_line_written_field_by_field_is_the_line_of_the_same_event() {
        let reason = "bad \"kid\"\n";
        let mut line = Line::info("request");
        line.str("method", "GET")
            .str("left_out", None::<&str>)
            .u64("status", 200)
            .milliseconds("latency_ms", Duration::from_nanos(67_892_499))
            .str("reason", reason)
            .words("scopes", ["doc:read", "a \"b\""])
            .str("none", None)
            .u64("expires_at", u64::MAX);
        let ours = line.finish();
        assert!(ours.ends_with("}\n") && ours.matches('\n').count() == 1);
        let event = lines_of(|| {
            tracing::info!(
                method = "GET",
                left_out = None::<&str>,
                status = 200u16,
                latency_ms = 67.892,
                reason = reason,
                scopes = "doc:read a \"b\"",
                none = None::<&str>,
                expires_at = u64::MAX,
                "request"
            );
        });
        let without_time = |line: &str| {
            let mut value: Value = serde_json::from_str(line).unwrap();
            value.as_object_mut().unwrap().remove("timestamp").unwrap();
            serde_json::to_string(&value).unwrap()
        };
        assert_eq!(without_time(&ours), without_time(&event[0]));
        assert!(ours.starts_with("{\"timestamp\":\""));
    }

    #[test]
    fn milliseconds_print_as_the_f64_of_the_microseconds() {
        for micros in [
            0u64,
            1,
            7,
            10,
            68,
            100,
            999,
            1000,
            1001,
            1010,
            67_892,
            1_234_500,
            86_400_000_001,
        ] {
            let mut line = Line::info("m");
            line.milliseconds(
                "ms",
                Duration::from_micros(micros) + Duration::from_nanos(999),
            );
            let text = line.finish();
            let printed = text
                .split("\"ms\":")
                .nth(1)
                .unwrap()
                .trim_end_matches("}\n");
            assert_eq!(printed, format!("{}", micros as f64 / 1000.0), "{micros}");
        }
    }

    #[test]
    fn timestamps_are_utc_rfc3339_with_microseconds() {
        // Cross-checked against httpdate's independent calendar, leap days and centuries included.
        for seconds in [
            0u64,
            951_782_400,   // 2000-02-29
            1_795_549_032, // 2026-11-24
            4_107_542_400, // 2100-03-01
            4_102_444_799, // 2099-12-31T23:59:59
            253_402_300_799,
        ] {
            let time = UNIX_EPOCH + Duration::from_secs(seconds) + Duration::from_micros(42);
            let mut ours = String::new();
            write_rfc3339_micros(&mut ours, time).unwrap();
            // "Tue, 29 Feb 2000 00:00:00 GMT"
            let http = httpdate::fmt_http_date(time);
            let parts: Vec<&str> = http.split([' ', ',']).filter(|p| !p.is_empty()).collect();
            let month = [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ]
            .iter()
            .position(|m| *m == parts[2])
            .unwrap()
                + 1;
            let expected = format!("{}-{month:02}-{}T{}.000042Z", parts[3], parts[1], parts[4]);
            assert_eq!(ours, expected, "{seconds}");
        }
    }
}
