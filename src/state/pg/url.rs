//! A `postgres://` URL into a connection config, following libpq's conventions where the
//! client library does not: the password from `PGPASSWORD` or the pgpass file
//! (`PGPASSFILE`, else `~/.pgpass`), the user defaulting to the OS account. `sslmode`
//! and a unix-socket `host` (`?host=/run/postgresql`) are parsed by the client.

use postgres::config::Host;
use postgres::Config;
use std::str::FromStr;

/// The config for `url` and the URL as it may be shown (never with a password).
pub(super) fn config(url: &str) -> Result<(Config, String), String> {
    let mut config = Config::from_str(url)
        .map_err(|e| format!("`{}` is not a PostgreSQL URL: {e}", strip_password(url)))?;
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
    Ok((config, strip_password(url)))
}

/// `url` without the password between `user:` and `@`.
pub(super) fn strip_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}{}",
            &url[..scheme_end],
            &authority[..colon],
            &rest[at..]
        ),
        _ => url.to_string(),
    }
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
    fn unix_socket_hosts_and_sslmode_are_understood() {
        let (c, _) = config("postgres://wm@%2Frun%2Fpostgresql/waymark?sslmode=disable").unwrap();
        assert_eq!(c.get_dbname(), Some("waymark"));
        assert!(config("postgres://wm@db/waymark?sslmode=bogus").is_err());
    }
}
