//! Parsing of Java `.properties` files (the `server.properties` format).

use std::collections::BTreeMap;

/// Parses `key=value` / `key: value` / `key value` lines. `#` and `!` start comments, a trailing
/// backslash continues a line, and `\t \n \\ \= \:` escapes are understood.
pub fn parse(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut logical = String::new();
    for raw in text.lines() {
        let line = raw.trim_start();
        if logical.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
        {
            continue;
        }
        let continued = ends_with_odd_backslashes(line);
        logical.push_str(if continued {
            &line[..line.len() - 1]
        } else {
            line
        });
        if continued {
            continue;
        }
        if let Some((k, v)) = split_pair(&logical) {
            out.insert(k, v);
        }
        logical.clear();
    }
    if let Some((k, v)) = split_pair(&logical) {
        out.insert(k, v);
    }
    out
}

fn ends_with_odd_backslashes(s: &str) -> bool {
    s.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1
}

fn split_pair(line: &str) -> Option<(String, String)> {
    let line = line.trim();
    if line.is_empty() {
        return None;
    }
    let mut key = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    key.push(unescape(n));
                }
            }
            '=' | ':' => break,
            c if c.is_whitespace() => {
                while let Some(n) = chars.peek() {
                    if n.is_whitespace() {
                        chars.next();
                    } else {
                        break;
                    }
                }
                if let Some('=' | ':') = chars.peek() {
                    chars.next();
                }
                break;
            }
            c => key.push(c),
        }
    }
    let rest: String = chars.collect();
    let mut value = String::new();
    let mut it = rest.trim_start().chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            if let Some(n) = it.next() {
                value.push(unescape(n));
            }
        } else {
            value.push(c);
        }
    }
    Some((key, value.trim_end().to_owned()))
}

fn unescape(c: char) -> char {
    match c {
        't' => '\t',
        'n' => '\n',
        'r' => '\r',
        'f' => '\x0c',
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn parses_server_properties() {
        let p = parse(
            "# comment\nbroker.id=0\n  listeners = PLAINTEXT://:9092\nlog.dirs: /tmp/k\n! bang\n\
             a.b c\nlong=one,\\\n   two\nzookeeper.connect=localhost:2181\n",
        );
        assert_eq!(p["broker.id"], "0");
        assert_eq!(p["listeners"], "PLAINTEXT://:9092");
        assert_eq!(p["log.dirs"], "/tmp/k");
        assert_eq!(p["a.b"], "c");
        assert_eq!(p["long"], "one,two");
        assert_eq!(p.len(), 6);
    }
}
