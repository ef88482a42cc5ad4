//! Who and where: the OS account and host recorded with runs, approvals and the run lock.
//!
//! The account is what gates judge (`approvals: N` counts distinct accounts,
//! `separate_approver` refuses the starter's account), so it must not be something a
//! user can claim: it is the real user id of this process, resolved to its name through
//! the password database (`getpwuid_r`), never `$USER`, `$LOGNAME` or any other variable a
//! user can set. `--by NAME` is only a display name recorded beside it.

/// The OS account running this process: its name (`root`, `alice`), or `uid N` when the
/// user database has no entry for the id (e.g. a container started with `--user 1234`).
pub fn current_user() -> String {
    #[cfg(unix)]
    {
        // SAFETY: getuid has no preconditions and cannot fail.
        let uid = unsafe { libc::getuid() };
        account_name(uid)
    }
    #[cfg(not(unix))]
    {
        // Windows has no uid to resolve here; the logon name is the best available label.
        std::env::var("USERNAME")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| "unknown-user".to_string())
    }
}

/// The name of the account with id `uid`, or `uid N` when it has none.
#[cfg(unix)]
pub(crate) fn account_name(uid: u32) -> String {
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: an all-zero passwd is a valid value for getpwuid_r to overwrite.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: `pwd`, `buf` and `found` outlive the call, and the length passed is
        // `buf`'s; the strings `pwd` points at live in `buf`, read before it changes.
        let rc = unsafe {
            libc::getpwuid_r(
                uid,
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut found,
            )
        };
        if rc == libc::ERANGE && buf.len() < (1 << 20) {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if rc != 0 || found.is_null() || pwd.pw_name.is_null() {
            return format!("uid {uid}");
        }
        // SAFETY: on success pw_name is a NUL-terminated string inside `buf`.
        let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
        let name = name.to_string_lossy().trim().to_string();
        return if name.is_empty() {
            format!("uid {uid}")
        } else {
            name
        };
    }
}

/// This machine's name as waymark records it: `WAYMARK_HOST` when set (several "hosts"
/// on one machine, in tests and demos), else the host name, or `unknown-host` when the
/// OS will not say.
pub fn current_host() -> String {
    if let Some(h) = std::env::var("WAYMARK_HOST").ok().filter(|h| !h.is_empty()) {
        return h;
    }
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

    #[cfg(unix)]
    #[test]
    fn root_is_named_root_not_uid_0() {
        assert_eq!(account_name(0), "root");
    }

    #[cfg(unix)]
    #[test]
    fn an_id_without_an_account_is_shown_as_its_number() {
        assert_eq!(account_name(3_999_999_999), "uid 3999999999");
    }
}
