//! A minimal HTTP/1.1 client for webhook notifications: one `POST` of a JSON body over
//! plain TCP, success on any 2xx status.
//!
//! Why hand-written: a webhook is one request with a small body and a status line to
//! read; an HTTP crate would bring an async stack or a TLS stack for that. Why plain
//! `http://` only: TLS needs a TLS library and a root-certificate store, a large
//! dependency for this one call. Receivers behind HTTPS are reached through a command
//! hook (`["curl", "--data-binary", "@-", URL]`), which also brings the operator's own
//! proxy and certificate settings. [`parse_url`] says so when given `https://`.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// A parsed `http://HOST[:PORT][/PATH]` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpUrl {
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port (80 when not given).
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl HttpUrl {
    /// The `Host` header value.
    fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 80 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// Parse a webhook URL, or say why it cannot be used.
pub(crate) fn parse_url(url: &str) -> Result<HttpUrl, String> {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("https://") {
        return Err(format!(
            "webhook `{url}`: https:// is not supported (waymark has no TLS client); use an \
             http:// receiver on a trusted network, or a command hook that posts the payload \
             from stdin, e.g. command: [\"curl\", \"-sSf\", \"-H\", \"Content-Type: application/json\", \"--data-binary\", \"@-\", \"{url}\"]"
        ));
    }
    let Some(rest) = lower.starts_with("http://").then(|| &url[7..]) else {
        return Err(format!(
            "webhook `{url}` is not an http:// URL (for example http://hooks.example:8080/waymark)"
        ));
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_string()),
    };
    if authority.contains('@') {
        return Err(format!(
            "webhook `{url}`: user:password@ in the URL is not supported; put a token in the path or use a command hook"
        ));
    }
    if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "webhook `{url}`: the path contains spaces or control characters; percent-encode them"
        ));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("webhook `{url}`: unclosed `[` in the host"))?;
        (h, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(format!("webhook `{url}` has no host"));
    }
    let port = match port {
        None => 80,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| format!("webhook `{url}`: `{p}` is not a port number"))?,
    };
    Ok(HttpUrl {
        host: host.to_string(),
        port,
        path,
    })
}

/// `POST` `body` as JSON to `url`; `Ok` on a 2xx status, else what went wrong.
pub(crate) fn post_json(url: &HttpUrl, body: &[u8], timeout: Duration) -> Result<u16, String> {
    let addrs: Vec<_> = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", url.host))?
        .collect();
    let mut last = format!("{} resolves to no address", url.host);
    let mut stream = None;
    for a in &addrs {
        match TcpStream::connect_timeout(a, timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = format!("cannot connect to {a}: {e}"),
        }
    }
    let mut stream = stream.ok_or(last)?;
    let io = |e: std::io::Error| format!("{}:{}: {e}", url.host, url.port);
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: waymark/{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        url.path,
        url.host_header(),
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    stream.write_all(head.as_bytes()).map_err(io)?;
    stream.write_all(body).map_err(io)?;
    stream.flush().map_err(io)?;
    // Only the status line matters; read until it is complete (bounded).
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 256];
    while !buf.contains(&b'\n') && buf.len() < 8192 {
        let n = stream.read(&mut chunk).map_err(io)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let line = String::from_utf8_lossy(&buf);
    let line = line.lines().next().unwrap_or("");
    let code = line
        .strip_prefix("HTTP/1.")
        .and_then(|r| r.get(2..5))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| {
            format!(
                "{}:{} answered something that is not HTTP: {:?}",
                url.host,
                url.port,
                line.chars().take(80).collect::<String>()
            )
        })?;
    if (200..300).contains(&code) {
        Ok(code)
    } else {
        Err(format!(
            "{}:{} answered {}",
            url.host,
            url.port,
            line.trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_ports_paths_and_ipv6() {
        let u = parse_url("http://hooks.example:8080/waymark/hook?x=1").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("hooks.example", 8080, "/waymark/hook?x=1")
        );
        let u = parse_url("HTTP://h").unwrap();
        assert_eq!((u.port, u.path.as_str()), (80, "/"));
        assert_eq!(u.host_header(), "h");
        let u = parse_url("http://[::1]:9/x").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 9));
        assert_eq!(u.host_header(), "[::1]:9");
        let u = parse_url("http://h?q").unwrap();
        assert_eq!(u.path, "/?q");
    }

    #[test]
    fn unusable_urls_say_why() {
        let e = parse_url("https://hooks.slack.example/T0").unwrap_err();
        assert!(e.contains("not supported") && e.contains("curl"), "{e}");
        assert!(parse_url("ftp://x").unwrap_err().contains("not an http://"));
        assert!(parse_url("http://:80/").unwrap_err().contains("no host"));
        assert!(parse_url("http://h:0/").unwrap_err().contains("port"));
        assert!(parse_url("http://h:99999/").unwrap_err().contains("port"));
        assert!(parse_url("http://u:p@h/")
            .unwrap_err()
            .contains("user:password"));
        assert!(parse_url("http://h/a b").unwrap_err().contains("spaces"));
        assert!(parse_url("http://[::1/").unwrap_err().contains("unclosed"));
        assert!(parse_url("").is_err());
    }
}
