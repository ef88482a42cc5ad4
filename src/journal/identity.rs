//! Who and where: the OS user and host recorded with runs, approvals and the run lock.
//!
//! These are accountability labels for operators reading `status`, not authentication:
//! they come from the environment the way `whoami` and `hostname` would report them.

/// The OS user running this process (`$USER`, `$LOGNAME`, `%USERNAME%`, else `uid N`).
pub fn current_user() -> String {
    for var in ["USER", "LOGNAME", "USERNAME"] {
        if let Ok(v) = std::env::var(var) {
            let v = v.trim();
            if !v.is_empty() {
                return v.to_string();
            }
        }
    }
    #[cfg(unix)]
    {
        // SAFETY: getuid has no preconditions and cannot fail.
        let uid = unsafe { libc::getuid() };
        format!("uid {uid}")
    }
    #[cfg(not(unix))]
    {
        "unknown-user".to_string()
    }
}

/// This machine's host name, or `unknown-host` when the OS will not say.
pub fn current_host() -> String {
    #[cfg(unix)]
    {
        let mut buf = [0u8; 256];
        // SAFETY: the pointer and length describe `buf`, which outlives the call.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        if rc == 0 {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            let name = String::from_utf8_lossy(&buf[..end]).trim().to_string();
            if !name.is_empty() {
                return name;
            }
        }
    }
    for var in ["COMPUTERNAME", "HOSTNAME"] {
        if let Ok(v) = std::env::var(var) {
            let v = v.trim();
            if !v.is_empty() {
                return v.to_string();
            }
        }
    }
    "unknown-host".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_and_host_are_never_empty() {
        assert!(!current_user().is_empty());
        assert!(!current_host().is_empty());
    }
}
