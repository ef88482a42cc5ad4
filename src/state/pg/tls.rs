//! TLS to the database as libpq's `sslmode` means it, so a URL that works with `psql`
//! works with waymark and checks what it checks.
//!
//! The client library knows only disable/prefer/require and no root certificates; the
//! verifying modes are read here (from the URL, else `PGSSLMODE` / `PGSSLROOTCERT`) and
//! become a native-tls connector (the system's OpenSSL):
//!
//! | sslmode | TLS | certificate checked against the roots | host name checked |
//! | --- | --- | --- | --- |
//! | `disable` | never | — | — |
//! | `prefer` (default) | if the server offers it | no | no |
//! | `require` | always | only when a root certificate is given (libpq's rule) | no |
//! | `verify-ca` | always | yes | no |
//! | `verify-full` | always | yes | yes |
//!
//! The roots are `sslrootcert=PATH` (PEM, one or more certificates), `sslrootcert=system`
//! (the system's trusted roots), else `~/.postgresql/root.crt` as with libpq. Over a
//! unix socket there is no TLS whatever the mode (the server offers none there either).
//! When a connection fails because of TLS, [`Tls::explain`] says which server, what did
//! not match and the fix.
//!
//! The native-tls connector is built on the first handshake, not before: building it
//! loads the system's certificate bundle (~20 ms quiet, 70 ms on a busy machine,
//! measured), which every command would pay even when the server offers no TLS.

use native_tls::{Certificate, TlsConnector, TlsConnectorBuilder};
use postgres::config::{Host, SslMode as WireMode};
use postgres::tls::{MakeTlsConnect, TlsConnect};
use postgres::{Config, Socket};
use postgres_native_tls::TlsStream;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};

/// libpq's `sslmode` values that waymark supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Result<SslMode, String> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            "allow" => {
                return Err(
                    "sslmode=allow is not supported: use `prefer` (TLS when the server offers it) or `disable`"
                        .into(),
                )
            }
            other => {
                return Err(format!(
                    "sslmode={other} is not one of disable, prefer, require, verify-ca, verify-full"
                ))
            }
        })
    }

    fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Where the trusted root certificates come from.
#[derive(Debug, Clone)]
enum Roots {
    /// None given (and no `~/.postgresql/root.crt`): only `prefer`/`require` are possible.
    None,
    /// A PEM file of one or more certificates.
    File(PathBuf),
    /// `sslrootcert=system`: the system's trusted roots.
    System,
}

impl Roots {
    fn describe(&self) -> String {
        match self {
            Roots::None => "no root certificate".into(),
            Roots::File(p) => format!("the root certificate {}", p.display()),
            Roots::System => "the system's trusted roots".into(),
        }
    }
}

/// How to secure connections to one database: the mode and the connector that does it.
#[derive(Clone)]
pub(super) struct Tls {
    mode: SslMode,
    roots: Roots,
    connector: Lazy,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tls(sslmode={}, {:?})", self.mode.name(), self.roots)
    }
}

impl Tls {
    /// The TLS settings `sslmode` / `sslrootcert` ask for (`None`: not in the URL, so
    /// `PGSSLMODE` / `PGSSLROOTCERT` or libpq's defaults), applied to `config`.
    pub(super) fn new(
        config: &mut Config,
        sslmode: Option<&str>,
        sslrootcert: Option<&str>,
    ) -> Result<Tls, String> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let mode = match sslmode.map(str::to_string).or_else(|| env("PGSSLMODE")) {
            Some(m) => SslMode::parse(&m)?,
            None => SslMode::Prefer,
        };
        let explicit = sslrootcert
            .map(str::to_string)
            .or_else(|| env("PGSSLROOTCERT"));
        let roots = match explicit.as_deref() {
            Some("system") => Roots::System,
            Some(path) => Roots::File(PathBuf::from(path)),
            None => match std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".postgresql/root.crt"))
                .filter(|p| p.is_file())
            {
                Some(default) => Roots::File(default),
                None => Roots::None,
            },
        };
        let verify = match mode {
            SslMode::Disable | SslMode::Prefer => false,
            // libpq: `require` with a root certificate checks it, as `verify-ca` does.
            SslMode::Require => !matches!(roots, Roots::None),
            SslMode::VerifyCa | SslMode::VerifyFull => true,
        };
        let mut builder = TlsConnector::builder();
        if verify {
            match &roots {
                Roots::None => {
                    return Err(format!(
                        "sslmode={} needs the certificate of the authority that signed the server's: add sslrootcert=PATH to the URL (a PEM file), or sslrootcert=system for the system's trusted roots",
                        mode.name()
                    ))
                }
                Roots::System => {}
                Roots::File(path) => {
                    let pem = std::fs::read(path).map_err(|e| {
                        format!("cannot read sslrootcert {}: {e}", path.display())
                    })?;
                    let certs = Certificate::stack_from_pem(&pem)
                        .ok()
                        .filter(|c| !c.is_empty())
                        .ok_or_else(|| {
                            format!(
                                "sslrootcert {} holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)",
                                path.display()
                            )
                        })?;
                    builder.disable_built_in_roots(true);
                    for cert in certs {
                        builder.add_root_certificate(cert);
                    }
                }
            }
            builder.danger_accept_invalid_hostnames(mode != SslMode::VerifyFull);
        } else {
            // prefer/require without roots: encrypted, but anyone may be on the other end
            // (libpq's meaning; verify-full is what protects against that).
            builder
                .danger_accept_invalid_certs(true)
                .danger_accept_invalid_hostnames(true);
        }
        let only_sockets = !config.get_hosts().is_empty()
            && config
                .get_hosts()
                .iter()
                .all(|h| !matches!(h, Host::Tcp(_)));
        config.ssl_mode(match mode {
            SslMode::Disable => WireMode::Disable,
            _ if only_sockets => WireMode::Disable,
            SslMode::Prefer => WireMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => WireMode::Require,
        });
        Ok(Tls {
            mode,
            roots,
            connector: Lazy {
                builder: Arc::new(Mutex::new(builder)),
                built: Arc::new(OnceLock::new()),
            },
        })
    }

    /// Open a connection to `config` with these settings.
    pub(super) fn connect(&self, config: &Config) -> Result<postgres::Client, postgres::Error> {
        config.connect(self.connector.clone())
    }

    /// When `e` (from [`Tls::connect`] to `server`) is about TLS: what went wrong, in
    /// words, and how to fix it.
    pub(super) fn explain(&self, e: &postgres::Error, server: &str) -> Option<(String, String)> {
        let mode = self.mode.name();
        let chain = super::conn::describe(e);
        if let Some(db) = e.as_db_error() {
            // 28000: no pg_hba.conf line lets this connection in.
            let refused = db.code().code() == "28000" && db.message().contains("no encryption");
            return refused.then(|| {
                (
                    format!(
                        "server {server} refused a connection without TLS (sslmode={mode}): {}",
                        db.message()
                    ),
                    "it accepts only TLS connections from here (a `hostssl` line in its pg_hba.conf): use sslmode=verify-full with sslrootcert=CA-FILE in the URL (or sslmode=require to encrypt without checking who answers)".into(),
                )
            });
        }
        if chain.contains("server does not support TLS") {
            return Some((
                format!("server {server} does not offer TLS (sslmode={mode})"),
                "turn TLS on at the server (`ssl = on` with a certificate in postgresql.conf), or use sslmode=prefer or disable on a network you trust".into(),
            ));
        }
        // OpenSSL's reason is the parenthesised part after "certificate verify failed".
        let at = chain.find("certificate verify failed")?;
        let reason = chain[at..]
            .split_once(" (")
            .and_then(|(_, r)| r.split_once(')'))
            .map_or("certificate verify failed", |(r, _)| r);
        if reason.contains("mismatch") {
            return Some((
                format!(
                    "the certificate of server {server} was not issued for that name (sslmode={mode}; OpenSSL: {reason})"
                ),
                "connect with the host name the certificate names (its subject alternative names), or use sslmode=verify-ca to check only who signed it".into(),
            ));
        }
        Some((
            format!(
                "the certificate of server {server} is not signed by {} (sslmode={mode}; OpenSSL: {reason})",
                self.roots.describe()
            ),
            "set sslrootcert=PATH in the URL to the certificate of the authority that signed the server's certificate (ask the database's administrator for it), or sslrootcert=system if a public authority signed it".into(),
        ))
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The connector, built from its settings on the first handshake and shared after.
#[derive(Clone)]
struct Lazy {
    builder: Arc<Mutex<TlsConnectorBuilder>>,
    built: Arc<OnceLock<Result<TlsConnector, String>>>,
}

impl Lazy {
    fn get(&self) -> Result<TlsConnector, String> {
        self.built
            .get_or_init(|| {
                let builder = self.builder.lock().unwrap_or_else(|e| e.into_inner());
                builder
                    .build()
                    .map_err(|e| format!("cannot set up TLS: {e}"))
            })
            .clone()
    }
}

impl MakeTlsConnect<Socket> for Lazy {
    type Stream = TlsStream<Socket>;
    type TlsConnect = Handshake;
    type Error = BoxError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<Handshake, BoxError> {
        Ok(Handshake {
            lazy: self.clone(),
            domain: domain.to_string(),
        })
    }
}

/// One handshake with `domain`, once the server said it speaks TLS.
struct Handshake {
    lazy: Lazy,
    domain: String,
}

impl TlsConnect<Socket> for Handshake {
    type Stream = TlsStream<Socket>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<TlsStream<Socket>, BoxError>> + Send>>;

    fn connect(self, stream: Socket) -> Self::Future {
        let connector = self
            .lazy
            .get()
            .map(|c| postgres_native_tls::TlsConnector::new(c, &self.domain));
        Box::pin(async move {
            match connector {
                Ok(c) => c.connect(stream).await.map_err(BoxError::from),
                Err(e) => Err(e.into()),
            }
        })
    }
}
