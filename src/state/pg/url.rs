//! A `postgres://` URL into where and how to connect, following libpq's conventions
//! where the client library does not: the password from `PGPASSWORD` or the pgpass file
//! (`PGPASSFILE`, else `~/.pgpass`), the user defaulting to the OS account, `sslmode` and
//! `sslrootcert` (read here, done by `tls.rs`). A unix-socket `host`
//! (`?host=/run/postgresql`) is parsed by the client.

use super::tls::Tls;
use postgres::config::Host;
use postgres::{Client, Config};
use std::str::FromStr;

/// Where and how to connect to one database.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    config: Config,
    tls: Tls,
}

impl Target {
    /// A new connection (TLS as `sslmode` asks).
    pub(super) fn connect(&self) -> Result<Client, postgres::Error> {
        self.tls.connect(&self.config)
    }

    /// `host:port` of the (first) server, for messages.
    pub(super) fn server(&self) -> String {
        let host = match self.config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        format!("{host}:{port}")
    }

    /// When `e` (from [`Target::connect`]) is about TLS: what went wrong and the fix.
    pub(super) fn explain(&self, e: &postgres::Error) -> Option<(String, String)> {
        self.tls.explain(e, &self.server())
    }
}

/// Where `url` points and the URL as it may be shown (never with a password).
pub(super) fn config(url: &str) -> Result<(Target, String), String> {
    let shown = strip_password(url);
    let (rest, sslmode, sslrootcert) = take_ssl_params(url);
    let mut config = Config::from_str(&rest).map_err(|e| {
        format!(
            "`{shown}` is not a PostgreSQL URL: {}",
            super::conn::describe(&e)
        )
    })?;
    if config.get_user().is_none() {
        config.user(&crate::journal::current_user());
    }
    if config.get_password().is_none() {
        if let Some(p) = std::env::var("PGPASSWORD").ok().filter(|p| !p.is_empty()) {
            config.password(p);
        } else if let Some(p) = from_pgpass(&config) {
            config.password(p);
        }
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(std::time::Duration::from_secs(10));
    }
    let tls = Tls::new(&mut config, sslmode.as_deref(), sslrootcert.as_deref())
        .map_err(|e| format!("`{shown}`: {e}"))?;
    Ok((Target { config, tls }, shown))
}

/// Where the query string starts: after the credentials, which (as the client reads
/// them) run to the first `@`.
fn query_start(url: &str) -> Option<usize> {
    let from = url.find('@').map_or(0, |at| at + 1);
    url[from..].find('?').map(|q| from + q)
}

/// `url` without its `sslmode` and `sslrootcert` parameters (the client refuses
/// `verify-*` and knows no root certificates), and their values, percent-decoded.
fn take_ssl_params(url: &str) -> (String, Option<String>, Option<String>) {
    let Some(q) = query_start(url) else {
        return (url.to_string(), None, None);
    };
    let (mut sslmode, mut sslrootcert) = (None, None);
    let mut kept = Vec::new();
    for param in url[q + 1..].split('&') {
        match param.split_once('=') {
            Some(("sslmode", v)) => sslmode = Some(percent_decode(v)),
            Some(("sslrootcert", v)) => sslrootcert = Some(percent_decode(v)),
            _ => kept.push(param),
        }
    }
    let mut rest = url[..q].to_string();
    if !kept.is_empty() {
        rest.push('?');
        rest.push_str(&kept.join("&"));
    }
    (rest, sslmode, sslrootcert)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `url` without any password: the one between `user:` and `@` (the credentials run to
/// the first `@`, as the client reads them, so a password holding `/` or `?` is still
/// found) and a `password=` parameter.
pub(super) fn strip_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let mut out = url.to_string();
    if let Some(q) = query_start(&out) {
        let kept: Vec<&str> = out[q + 1..]
            .split('&')
            .filter(|p| !p.starts_with("password="))
            .collect();
        out = if kept.is_empty() {
            out[..q].to_string()
        } else {
            format!("{}?{}", &out[..q], kept.join("&"))
        };
    }
    let rest = &out[scheme_end..];
    if let Some(at) = rest.find('@') {
        if let Some(colon) = rest[..at].find(':') {
            return format!("{}{}{}", &out[..scheme_end], &rest[..colon], &rest[at..]);
        }
    }
    out
}

fn from_pgpass(config: &Config) -> Option<String> {
    let path = std::env::var_os("PGPASSFILE")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".pgpass")))?;
    let text = std::fs::read_to_string(path).ok()?;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(_)) | None => "localhost".to_string(),
        #[cfg(not(unix))]
        None => "localhost".to_string(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let user = config.get_user().unwrap_or_default();
    let db = config.get_dbname().unwrap_or(user);
    pgpass_lookup(&text, &[&host, &port, db, user])
}

/// The password of the first `host:port:database:user:password` line matching `want`
/// (`*` matches anything; `\:` and `\\` are escapes), as libpq reads it.
fn pgpass_lookup(text: &str, want: &[&str; 4]) -> Option<String> {
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut fields = Vec::new();
        let mut cur = String::new();
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => cur.extend(chars.next()),
                ':' if fields.len() < 4 => fields.push(std::mem::take(&mut cur)),
                c => cur.push(c),
            }
        }
        fields.push(cur);
        if fields.len() == 5
            && fields[..4]
                .iter()
                .zip(want)
                .all(|(f, w)| f == "*" || f == w)
        {
            return fields.pop();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_never_shows() {
        assert_eq!(
            strip_password("postgres://wm:s3cret@db.example:5432/waymark"),
            "postgres://wm@db.example:5432/waymark"
        );
        assert_eq!(
            strip_password("postgresql://wm@db/waymark?sslmode=require"),
            "postgresql://wm@db/waymark?sslmode=require"
        );
        assert_eq!(
            strip_password("postgres:///waymark?host=/run/postgresql"),
            "postgres:///waymark?host=/run/postgresql"
        );
    }

    #[test]
    fn pgpass_lines_match_like_libpq() {
        let text = "# comment\ndb:5432:other:wm:no\n*:5432:waymark:wm:yes\\:colon\n";
        assert_eq!(
            pgpass_lookup(text, &["db", "5432", "waymark", "wm"]).as_deref(),
            Some("yes:colon")
        );
        assert_eq!(pgpass_lookup(text, &["db", "5433", "waymark", "wm"]), None);
    }

    #[test]
    fn a_password_anywhere_in_the_url_never_shows() {
        for url in [
            "postgres://wm:pa/ss?w@db/waymark",
            "postgres://wm@db/waymark?password=s3cret",
            "postgres://wm@db/waymark?sslmode=require&password=s3cret&application_name=x",
        ] {
            let shown = strip_password(url);
            assert!(
                !shown.contains("s3cret") && !shown.contains("pa/ss"),
                "{shown}"
            );
        }
        let e = config("postgres://wm:s3cret@db/waymark?port=nope").unwrap_err();
        assert!(
            !e.contains("s3cret") && e.contains("postgres://wm@db"),
            "{e}"
        );
    }

    #[test]
    fn unix_socket_hosts_and_sslmode_are_understood() {
        let (t, _) = config("postgres://wm@%2Frun%2Fpostgresql/waymark?sslmode=disable").unwrap();
        assert_eq!(t.config.get_dbname(), Some("waymark"));
        let e = config("postgres://wm@db/waymark?sslmode=bogus").unwrap_err();
        assert!(e.contains("sslmode=bogus is not one of"), "{e}");
        // The client refuses the verifying modes and `sslrootcert`; they are read here.
        let (t, _) = config(
            "postgres://wm@db/waymark?sslmode=verify-full&sslrootcert=system&connect_timeout=3",
        )
        .unwrap();
        assert_eq!(t.config.get_ssl_mode(), postgres::config::SslMode::Require);
        assert_eq!(
            t.config.get_connect_timeout(),
            Some(&std::time::Duration::from_secs(3))
        );
        // Without a root certificate there is nothing to verify against.
        let e = config(
            "postgres://wm@db/waymark?sslmode=verify-ca&sslrootcert=%2Fnonexistent%2Fca.crt",
        )
        .unwrap_err();
        assert!(
            e.contains("cannot read sslrootcert /nonexistent/ca.crt"),
            "{e}"
        );
        // No TLS over a unix socket, whatever the mode (as libpq).
        let (t, _) = config("postgres:///waymark?host=/run/postgresql&sslmode=require").unwrap();
        assert_eq!(t.config.get_ssl_mode(), postgres::config::SslMode::Disable);
    }
}
