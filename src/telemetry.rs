//! Logging: a tracing subscriber (text or JSON) filtered by `RUST_LOG` (default `info`), with
//! the node id on every line: `node=N ` in front of a text line, a `"node_id":N` member in
//! every JSON object (so logs of several nodes can be merged and still be told apart).

use crate::cli::LogFormat;
use std::io::Write;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

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
