//! Cooperative cancellation shared by the scheduler, step actions and child processes.
//!
//! A [`CancelToken`] is cheap to clone; blocking code polls [`CancelToken::reason`],
//! async code awaits [`CancelToken::cancelled`]. The first reason set wins, so a
//! timeout that races with Ctrl-C reports whichever happened first.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

/// Why a piece of work was asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelReason {
    /// The attempt's `timeout` expired.
    Timeout,
    /// The operator pressed Ctrl-C or the process got SIGTERM.
    Interrupted,
}

#[derive(Debug, Default)]
struct Inner {
    // 0 = live, 1 = timeout, 2 = interrupted
    state: AtomicU8,
    notify: Notify,
}

/// A shareable "please stop" flag.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<Inner>);

impl CancelToken {
    /// A fresh, uncancelled token.
    pub fn new() -> Self {
        Self::default()
    }

    /// Ask the work to stop; the first reason given is kept.
    pub fn cancel(&self, reason: CancelReason) {
        let code = match reason {
            CancelReason::Timeout => 1,
            CancelReason::Interrupted => 2,
        };
        if self
            .0
            .state
            .compare_exchange(0, code, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            self.0.notify.notify_waiters();
        }
    }

    /// Why the work was cancelled, or `None` while it may go on.
    pub fn reason(&self) -> Option<CancelReason> {
        match self.0.state.load(Ordering::SeqCst) {
            0 => None,
            1 => Some(CancelReason::Timeout),
            _ => Some(CancelReason::Interrupted),
        }
    }

    /// True once [`CancelToken::cancel`] has been called.
    pub fn is_cancelled(&self) -> bool {
        self.reason().is_some()
    }

    /// Resolves when the token is cancelled (immediately if it already is).
    pub async fn cancelled(&self) -> CancelReason {
        loop {
            let notified = self.0.notify.notified();
            if let Some(r) = self.reason() {
                return r;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_reason_wins() {
        let t = CancelToken::new();
        assert_eq!(t.reason(), None);
        t.cancel(CancelReason::Timeout);
        t.cancel(CancelReason::Interrupted);
        assert_eq!(t.reason(), Some(CancelReason::Timeout));
        assert!(t.clone().is_cancelled());
    }

    #[tokio::test]
    async fn cancelled_wakes_waiters() {
        let t = CancelToken::new();
        let t2 = t.clone();
        let h = tokio::spawn(async move { t2.cancelled().await });
        tokio::task::yield_now().await;
        t.cancel(CancelReason::Interrupted);
        assert_eq!(h.await.unwrap(), CancelReason::Interrupted);
    }
}
