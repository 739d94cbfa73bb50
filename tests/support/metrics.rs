//! Scraping a node's metrics endpoint in tests: a plain HTTP/1.1 GET over a socket, and a
//! strict reader of Prometheus's text format (a line it cannot read fails the test, so a
//! malformed exposition is caught too).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bound on one HTTP exchange.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends `request` as it is and reads until the node closes; the answer's status code (0 if
/// none came) and whole text. Errors writing are ignored: a node may close early on a
/// request it refuses, and the answer is what counts.
pub async fn http_exchange(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect to metrics");
        let _ = stream.write_all(request).await;
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        answer
    };
    let answer = tokio::time::timeout(HTTP_TIMEOUT, exchange)
        .await
        .expect("the metrics endpoint answered in time");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// `GET path`: the status and the body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let (status, text) = http_exchange(addr, request.as_bytes()).await;
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, body)| body)
        .to_owned();
    (status, body)
}

/// One sample: a metric name, its labels, its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// A scrape, read.
#[derive(Debug, Clone)]
pub struct Scrape {
    pub samples: Vec<Sample>,
    pub text: String,
}

impl Scrape {
    /// Reads Prometheus's text format; panics on a line it cannot read.
    pub fn parse(text: &str) -> Scrape {
        let samples = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| parse_sample(l).unwrap_or_else(|| panic!("unreadable line {l:?}")))
            .collect();
        Scrape {
            samples,
            text: text.to_owned(),
        }
    }

    /// The value of the sample `name` with exactly these labels (in any order).
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut want: Vec<_> = labels.to_vec();
        want.sort_unstable();
        self.samples
            .iter()
            .find(|s| {
                let mut have: Vec<_> = s
                    .labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                have.sort_unstable();
                s.name == name && have == want
            })
            .map(|s| s.value)
    }

    /// As [`Scrape::get`], panicking (with the scrape) if the sample is missing.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels)
            .unwrap_or_else(|| panic!("no {name}{labels:?} in\n{}", self.text))
    }
}

fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    let valid_name = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    if name.is_empty() || !name.chars().all(valid_name) {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = after;
        loop {
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let (key, after) = rest.split_once("=\"")?;
            let (value, after) = read_quoted(after)?;
            labels.push((key.to_owned(), value));
            rest = after.strip_prefix(',').unwrap_or(after);
        }
    }
    let value = match rest.strip_prefix(' ')? {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// A label value up to its closing quote, unescaped; and what follows.
fn read_quoted(text: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &text[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => value.push('\n'),
                other => value.push(other),
            },
            c => value.push(c),
        }
    }
    None
}

/// Scrapes `GET /metrics`, which must answer 200.
pub async fn scrape(addr: SocketAddr) -> Scrape {
    let (status, body) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200, "GET /metrics answered {status}: {body}");
    Scrape::parse(&body)
}

/// Scrapes until the sample `name{labels}` equals `want` (bounded): the positive signal
/// that the node has done what a test waits for. Returns that scrape.
pub async fn wait_for_metric(
    addr: SocketAddr,
    name: &str,
    labels: &[(&str, &str)],
    want: f64,
) -> Scrape {
    wait_until_metric(addr, name, labels, &format!("{want}"), |now| {
        now == Some(want)
    })
    .await
}

/// Scrapes until the sample `name{labels}` satisfies `ok` (bounded, 15 s); `wanted` says
/// what `ok` waits for, for the failure message. Returns that scrape.
pub async fn wait_until_metric(
    addr: SocketAddr,
    name: &str,
    labels: &[(&str, &str)],
    wanted: &str,
    ok: impl Fn(Option<f64>) -> bool,
) -> Scrape {
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        let scrape = scrape(addr).await;
        let now = scrape.get(name, labels);
        if ok(now) {
            return scrape;
        }
        assert!(
            Instant::now() < end,
            "{name}{labels:?} is {now:?}, never {wanted}; last scrape:\n{}",
            scrape.text
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_names_labels_escapes_and_special_values() {
        let text = "# HELP x_total a help\n# TYPE x_total counter\n\
                    x_total{reason=\"wrong_key\"} 3\n\
                    y 0.25\n\
                    z_bucket{typeid=\"a\\\"b\",le=\"+Inf\"} 7\n\
                    w{a=\"1\",b=\"2\"} +Inf\n";
        let s = Scrape::parse(text);
        assert_eq!(s.get("x_total", &[("reason", "wrong_key")]), Some(3.0));
        assert_eq!(s.get("y", &[]), Some(0.25));
        assert_eq!(
            s.get("z_bucket", &[("le", "+Inf"), ("typeid", "a\"b")]),
            Some(7.0)
        );
        assert_eq!(s.get("w", &[("b", "2"), ("a", "1")]), Some(f64::INFINITY));
        assert_eq!(s.get("x_total", &[]), None, "labels must match exactly");
    }

    #[test]
    #[should_panic(expected = "unreadable line")]
    fn a_malformed_line_fails() {
        Scrape::parse("x{reason=\"open 3\n");
    }
}
