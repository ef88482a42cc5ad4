//! The system calls a child makes between `clone` and `execve`, without libc.
//!
//! A held child (`spawn.rs`) runs in waymark's memory *while the thread that started it
//! runs on* — it records the child's process group meanwhile. libc's wrappers set
//! `errno`, which lives in that thread's thread-local storage, which the child shares:
//! a failed call in one would change what the other reads (and glibc's cancellable
//! calls update that thread's cancellation state too). So on the architectures below
//! the child makes its system calls directly and gets the error back as a value;
//! elsewhere [`CONCURRENT`] is false and `spawn.rs` keeps the spawning thread
//! suspended (`CLONE_VFORK`) while the child runs, with libc's wrappers.
//!
//! Each function returns the call's result, or `-errno` when it failed.

use std::os::fd::RawFd;

/// Whether a child may run while its spawning thread does (the calls below touch
/// nothing of that thread's).
pub(super) const CONCURRENT: bool = cfg!(any(target_arch = "x86_64", target_arch = "aarch64"));

#[cfg(target_arch = "x86_64")]
unsafe fn syscall(n: libc::c_long, a: [usize; 4]) -> isize {
    let ret: isize;
    // SAFETY (caller): `n` and its arguments form a valid system call.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") n as isize => ret,
            in("rdi") a[0],
            in("rsi") a[1],
            in("rdx") a[2],
            in("r10") a[3],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

#[cfg(target_arch = "aarch64")]
unsafe fn syscall(n: libc::c_long, a: [usize; 4]) -> isize {
    let ret: isize;
    // SAFETY (caller): `n` and its arguments form a valid system call.
    unsafe {
        std::arch::asm!(
            "svc 0",
            in("x8") n,
            inlateout("x0") a[0] => ret,
            in("x1") a[1],
            in("x2") a[2],
            in("x3") a[3],
            options(nostack),
        );
    }
    ret
}

/// Elsewhere: libc's generic wrapper (only ever called with the spawning thread
/// suspended, see [`CONCURRENT`]).
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
unsafe fn syscall(n: libc::c_long, a: [usize; 4]) -> isize {
    // SAFETY (caller): `n` and its arguments form a valid system call.
    let r = unsafe { libc::syscall(n, a[0], a[1], a[2], a[3]) } as isize;
    if r < 0 {
        // SAFETY: reads this thread's errno.
        -(unsafe { *libc::__errno_location() } as isize)
    } else {
        r
    }
}

/// The kernel's `struct sigaction` (handler, flags, restorer, 64-bit mask) on these
/// architectures; only the handler is read, and zero means `SIG_DFL`, no flags.
type KernelSigaction = [usize; 4];
const SIGSET_SIZE: usize = 8;

/// Whether `sig` has a handler of waymark's (not `SIG_DFL`/`SIG_IGN`); `Err` when it is
/// not a signal one may look at.
pub(super) unsafe fn has_handler(sig: i32) -> Result<bool, isize> {
    let mut old: KernelSigaction = [0; 4];
    // SAFETY: the kernel writes one struct sigaction into `old`.
    let r = unsafe {
        syscall(
            libc::SYS_rt_sigaction,
            [sig as usize, 0, old.as_mut_ptr() as usize, SIGSET_SIZE],
        )
    };
    if r < 0 {
        return Err(r);
    }
    Ok(old[0] != libc::SIG_DFL && old[0] != libc::SIG_IGN)
}

/// Set `sig` back to its default action.
pub(super) unsafe fn default_action(sig: i32) -> isize {
    let dfl: KernelSigaction = [0; 4];
    // SAFETY: the kernel reads one struct sigaction from `dfl`.
    unsafe {
        syscall(
            libc::SYS_rt_sigaction,
            [sig as usize, dfl.as_ptr() as usize, 0, SIGSET_SIZE],
        )
    }
}

/// Unblock every signal.
pub(super) unsafe fn unblock_all() -> isize {
    let empty: u64 = 0;
    // SAFETY: the kernel reads one 64-bit signal set.
    unsafe {
        syscall(
            libc::SYS_rt_sigprocmask,
            [
                libc::SIG_SETMASK as usize,
                &empty as *const u64 as usize,
                0,
                SIGSET_SIZE,
            ],
        )
    }
}

/// `dup2` (as `dup3`, which every architecture has; `fd != target` always here).
pub(super) unsafe fn dup2(fd: RawFd, target: RawFd) -> isize {
    // SAFETY: plain descriptor numbers.
    unsafe { syscall(libc::SYS_dup3, [fd as usize, target as usize, 0, 0]) }
}

pub(super) unsafe fn setpgid_self() -> isize {
    // SAFETY: no pointers.
    unsafe { syscall(libc::SYS_setpgid, [0, 0, 0, 0]) }
}

pub(super) unsafe fn die_with_parent() -> isize {
    // SAFETY: no pointers.
    unsafe {
        syscall(
            libc::SYS_prctl,
            [
                libc::PR_SET_PDEATHSIG as usize,
                libc::SIGKILL as usize,
                0,
                0,
            ],
        )
    }
}

pub(super) unsafe fn chdir(path: *const libc::c_char) -> isize {
    // SAFETY (caller): `path` is a C string.
    unsafe { syscall(libc::SYS_chdir, [path as usize, 0, 0, 0]) }
}

pub(super) unsafe fn close(fd: RawFd) -> isize {
    // SAFETY: a plain descriptor number.
    unsafe { syscall(libc::SYS_close, [fd as usize, 0, 0, 0]) }
}

pub(super) unsafe fn getpid() -> isize {
    // SAFETY: no arguments.
    unsafe { syscall(libc::SYS_getpid, [0; 4]) }
}

pub(super) unsafe fn getppid() -> isize {
    // SAFETY: no arguments.
    unsafe { syscall(libc::SYS_getppid, [0; 4]) }
}

/// Sleep while `*word == expected` (or until a wake-up or signal).
pub(super) unsafe fn futex_wait(word: *mut i32, expected: i32) -> isize {
    // SAFETY (caller): `word` points to an int that stays alive; no timeout.
    unsafe {
        syscall(
            libc::SYS_futex,
            [
                word as usize,
                (libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG) as usize,
                expected as u32 as usize,
                0,
            ],
        )
    }
}

pub(super) unsafe fn write(fd: RawFd, buf: &[u8]) -> isize {
    // SAFETY: the kernel reads `buf`.
    unsafe {
        syscall(
            libc::SYS_write,
            [fd as usize, buf.as_ptr() as usize, buf.len(), 0],
        )
    }
}

pub(super) unsafe fn read(fd: RawFd, buf: &mut [u8]) -> isize {
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
    unsafe {
        syscall(
            libc::SYS_read,
            [fd as usize, buf.as_mut_ptr() as usize, buf.len(), 0],
        )
    }
}

/// Returns only on failure.
pub(super) unsafe fn execve(
    path: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
) -> isize {
    // SAFETY (caller): C strings and NULL-terminated arrays of them.
    unsafe {
        syscall(
            libc::SYS_execve,
            [path as usize, argv as usize, envp as usize, 0],
        )
    }
}

/// End the child (`_exit`: no destructors, no atexit handlers, only this process).
pub(super) unsafe fn exit(code: i32) -> ! {
    loop {
        // SAFETY: ends the calling process; it returns never.
        unsafe { syscall(libc::SYS_exit_group, [code as usize, 0, 0, 0]) };
    }
}
