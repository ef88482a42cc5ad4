//! One connection to PostgreSQL on its own thread, asked from anywhere, reconnecting.
//!
//! The blocking client of rust-postgres runs a small runtime of its own per call, which
//! must not happen inside tokio's threads; so each connection lives on a dedicated
//! thread and callers hand it jobs over a channel (from async code too: the caller
//! thread only waits on a channel). A job that meets a broken connection (the server
//! restarted, the network blipped) is retried on a fresh connection with a growing
//! delay for as long as the run's lease lasts, so a server restart shorter than that
//! loses nothing.

use super::url::Target;
use crate::diagnostic::Diagnostic;
use postgres::Client;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// How long a job keeps retrying over reconnects before its caller hears the error: the
/// lease's length (at least 5 s), so an outage shorter than the lease loses nothing and
/// a longer one stops the run, which `resume` continues once the database is back.
fn retry_for() -> Duration {
    super::lease::lease_length().max(Duration::from_secs(5))
}

type Job = Box<dyn FnOnce(&mut Worker) + Send>;

/// A cloneable handle on one connection's thread.
#[derive(Clone)]
pub(crate) struct Conn {
    tx: mpsc::Sender<Job>,
    /// The location without its password, for messages.
    pub(crate) shown: Arc<str>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Conn({})", self.shown)
    }
}

pub(crate) struct Worker {
    target: Target,
    client: Option<Client>,
}

impl Worker {
    fn client(&mut self) -> Result<&mut Client, postgres::Error> {
        if self.client.as_ref().is_none_or(|c| c.is_closed()) {
            let mut client = self.target.connect()?;
            // "Durable" means committed and flushed on the server, whatever its default.
            client.batch_execute("SET synchronous_commit = on")?;
            self.client = Some(client);
        }
        Ok(self.client.as_mut().expect("just connected"))
    }
}

/// Whether `e` means the connection, not the request, failed (worth a reconnect).
fn is_connection_error(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        // admin_shutdown, crash_shutdown, cannot_connect_now, connection_* classes
        Some(code) => {
            let c = code.code();
            c.starts_with("08") || c == "57P01" || c == "57P02" || c == "57P03"
        }
        // No SQLSTATE: an I/O or protocol error on the way.
        None => e.as_db_error().is_none(),
    }
}

impl Conn {
    /// Connect to `target` (checked at once, so a wrong URL fails here).
    pub(crate) fn open(target: &Target, shown: &str) -> Result<Conn, String> {
        Conn::open_explained(target, shown).map_err(|d| d.inline())
    }

    /// [`Conn::open`], failing with the cause and its fix apart (the first connection a
    /// command makes, whose error the operator reads).
    pub(super) fn open_explained(target: &Target, shown: &str) -> Result<Conn, Diagnostic> {
        let (tx, rx) = mpsc::channel::<Job>();
        let mut worker = Worker {
            target: target.clone(),
            client: None,
        };
        if let Err(e) = worker.client() {
            return Err(match target.explain(&e) {
                Some((what, fix)) => {
                    Diagnostic::new(format!("cannot connect to {shown}: {what}")).help(fix)
                }
                None => Diagnostic::new(format!("cannot connect to {shown}: {}", describe(&e))),
            });
        }
        std::thread::Builder::new()
            .name("waymark-pg".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    job(&mut worker);
                }
            })
            .map_err(|e| Diagnostic::new(format!("cannot start a thread: {e}")))?;
        Ok(Conn {
            tx,
            shown: Arc::from(shown),
        })
    }

    /// Run `f` on the connection, retrying over reconnects; waits for its answer.
    pub(crate) fn call<R, F>(&self, f: F) -> Result<R, String>
    where
        R: Send + 'static,
        F: FnMut(&mut Client) -> Result<R, postgres::Error> + Send + 'static,
    {
        let rx = self.send(f)?;
        rx.recv()
            .map_err(|_| "the database connection thread is gone".to_string())?
    }

    /// Hand `f` to the connection and return at once; its result is dropped.
    pub(crate) fn spawn<F>(&self, f: F)
    where
        F: FnMut(&mut Client) -> Result<(), postgres::Error> + Send + 'static,
    {
        if let Err(e) = self.send(f) {
            tracing::warn!("{e}");
        }
    }

    fn send<R, F>(&self, mut f: F) -> Result<mpsc::Receiver<Result<R, String>>, String>
    where
        R: Send + 'static,
        F: FnMut(&mut Client) -> Result<R, postgres::Error> + Send + 'static,
    {
        let (rtx, rrx) = mpsc::channel();
        let shown = self.shown.clone();
        let job: Job = Box::new(move |w: &mut Worker| {
            let start = Instant::now();
            let retry_for = retry_for();
            let mut delay = Duration::from_millis(100);
            let mut told = false;
            let out = loop {
                let res = w.client().and_then(&mut f);
                match res {
                    Ok(v) => break Ok(v),
                    Err(e) if is_connection_error(&e) && start.elapsed() < retry_for => {
                        if !told {
                            errln!(
                                "warning: lost the connection to {shown} ({}); retrying",
                                describe(&e)
                            );
                            told = true;
                        }
                        w.client = None;
                        std::thread::sleep(delay);
                        delay = (delay * 2).min(Duration::from_secs(2));
                    }
                    Err(e) => break Err(describe(&e)),
                }
            };
            if told && out.is_ok() {
                errln!("reconnected to {shown}");
            }
            let _ = rtx.send(out);
        });
        self.tx
            .send(job)
            .map_err(|_| "the database connection thread is gone".to_string())?;
        Ok(rrx)
    }
}

/// The server's message when there is one (rust-postgres's Display says only "db
/// error"), else the error with its causes ("error performing TLS handshake" alone says
/// nothing).
pub(super) fn describe(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return db.message().to_string();
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
