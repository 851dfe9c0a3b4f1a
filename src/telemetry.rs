//! Logging: a tracing subscriber (text or JSON) filtered by `RUST_LOG` (default `info`), with
//! the node id on every line: `node=N ` in front of a text line, a `"node_id":N` member in
//! every JSON object (so logs of several nodes can be merged and still be told apart).

use crate::cli::LogFormat;
use std::collections::HashMap;
use std::hash::Hash;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// A rate limit for log lines about what clients do (refused requests, failed
/// authentications): at most one line per key per `interval`, so a client that repeats the
/// mistake over many connections cannot flood the log (the metrics still count each). Keys are
/// remembered up to `keys_max`; the memory is cleared when it fills up.
#[derive(Debug)]
pub struct WarnLimiter<K> {
    interval: Duration,
    keys_max: usize,
    last: Mutex<Option<HashMap<K, Instant>>>,
}

impl<K: Eq + Hash> WarnLimiter<K> {
    pub const fn new(interval: Duration, keys_max: usize) -> Self {
        Self {
            interval,
            keys_max,
            last: Mutex::new(None),
        }
    }

    /// Whether a line about `key` may be logged now (and, if so, marks it logged).
    pub fn allow(&self, key: K) -> bool {
        self.allow_at(key, Instant::now())
    }

    fn allow_at(&self, key: K, now: Instant) -> bool {
        let mut guard = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let last = guard.get_or_insert_with(HashMap::new);
        if last.len() >= self.keys_max {
            last.clear();
        }
        match last.get(&key) {
            Some(t) if now.duration_since(*t) < self.interval => false,
            _ => {
                last.insert(key, now);
                true
            }
        }
    }
}

/// Installs the global subscriber. Safe to call once per process.
pub fn init(format: LogFormat, node_id: Option<i32>) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,openraft=warn"));
    use std::io::IsTerminal;
    // Colour only on a terminal: log files and container logs get plain text.
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let writer = NodeTagged {
        tag: node_id.map(|id| match format {
            LogFormat::Text => format!("node={id} "),
            LogFormat::Json => format!("\"node_id\":{id},"),
        }),
        json: format == LogFormat::Json,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
    };
}

/// Writes each formatted event to stderr with the node tag added. The fmt layer formats an
/// event into one buffer and hands it over in one `write_all`; `write` consumes the whole
/// buffer so the tag is added exactly once per event.
#[derive(Debug, Clone)]
struct NodeTagged {
    tag: Option<String>,
    json: bool,
}

#[derive(Debug)]
struct TaggedWriter<'a> {
    tag: Option<&'a str>,
    json: bool,
}

impl<'a> MakeWriter<'a> for NodeTagged {
    type Writer = TaggedWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        TaggedWriter {
            tag: self.tag.as_deref(),
            json: self.json,
        }
    }
}

impl Write for TaggedWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut line = Vec::with_capacity(buf.len() + 16);
        tag_line(&mut line, buf, self.tag, self.json);
        let mut err = std::io::stderr().lock();
        err.write_all(&line)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Appends `buf` to `out` with the tag in front (text) or as the first member (JSON object).
fn tag_line(out: &mut Vec<u8>, buf: &[u8], tag: Option<&str>, json: bool) {
    match tag {
        None => out.extend_from_slice(buf),
        Some(t) if json => match buf.split_first() {
            Some((b'{', rest)) => {
                out.push(b'{');
                out.extend_from_slice(t.as_bytes());
                out.extend_from_slice(rest);
            }
            _ => out.extend_from_slice(buf),
        },
        Some(t) => {
            out.extend_from_slice(t.as_bytes());
            out.extend_from_slice(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_text_and_json_lines() {
        let mut out = Vec::new();
        tag_line(&mut out, b"INFO started\n", Some("node=3 "), false);
        assert_eq!(out, b"node=3 INFO started\n");
        let mut out = Vec::new();
        tag_line(
            &mut out,
            b"{\"level\":\"INFO\"}\n",
            Some("\"node_id\":3,"),
            true,
        );
        let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(v["node_id"], 3);
        assert_eq!(v["level"], "INFO");
        let mut out = Vec::new();
        tag_line(&mut out, b"x", None, true);
        assert_eq!(out, b"x");
    }
}

#[cfg(test)]
mod limiter_tests {
    use super::*;

    #[test]
    fn one_line_per_key_per_interval_and_bounded_memory() {
        let l = WarnLimiter::new(Duration::from_secs(60), 2);
        let t0 = Instant::now();
        assert!(l.allow_at("a", t0));
        assert!(!l.allow_at("a", t0 + Duration::from_secs(59)));
        assert!(l.allow_at("b", t0));
        assert!(l.allow_at("a", t0 + Duration::from_secs(61)));
        // Full: cleared, so a third key is allowed and the others start over.
        assert!(l.allow_at("c", t0 + Duration::from_secs(61)));
        assert!(l.allow_at("b", t0 + Duration::from_secs(62)));
    }
}
