//! Host settings that keep the hot path off the page-fault and scheduler-preemption paths:
//! locking the process's memory (`mlockall`) and real-time scheduling (`SCHED_FIFO`).
//!
//! Both usually need privileges (`CAP_IPC_LOCK` or a large `RLIMIT_MEMLOCK`; `CAP_SYS_NICE` or an
//! `RLIMIT_RTPRIO`). Where they are refused the engine runs on and the report says why; it never
//! aborts for this. The two `libc` calls are the only `unsafe` code in the engine, each in one
//! small function.
//!
//! Cautions: `MCL_FUTURE` makes every later mapping locked too, so with a small memlock limit
//! later allocations can fail; it is opt-in. A `SCHED_FIFO` thread that busy-spins on a core
//! shared with other work can starve it (the kernel's RT throttling leaves 5% by default).

use std::io;

/// Outcome of one host setting, for the start-up report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SettingOutcome {
    /// Not asked for in the options.
    NotRequested,
    /// Decided when the threads start (a report made before the run).
    Pending,
    /// Applied.
    Applied,
    /// Refused by the host; the message says why and what would allow it.
    Refused(String),
}

impl SettingOutcome {
    /// True if the setting was asked for and refused.
    pub fn is_refused(&self) -> bool {
        matches!(self, SettingOutcome::Refused(_))
    }
}

impl std::fmt::Display for SettingOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SettingOutcome::NotRequested => f.write_str("not requested"),
            SettingOutcome::Pending => f.write_str("at start-up"),
            SettingOutcome::Applied => f.write_str("applied"),
            SettingOutcome::Refused(why) => write!(f, "REFUSED: {why}"),
        }
    }
}

/// Locks all current and future pages of the process in memory.
pub fn lock_memory() -> SettingOutcome {
    match mlockall_current_and_future() {
        Ok(()) => SettingOutcome::Applied,
        Err(e) => SettingOutcome::Refused(format!(
            "mlockall: {e}; needs CAP_IPC_LOCK or `ulimit -l` above the process size"
        )),
    }
}

/// Puts the calling thread under `SCHED_FIFO` at `priority` (1..=99 on Linux).
pub fn set_fifo_priority(priority: i32) -> SettingOutcome {
    match sched_fifo_current_thread(priority) {
        Ok(()) => SettingOutcome::Applied,
        Err(e) => SettingOutcome::Refused(format!(
            "SCHED_FIFO priority {priority}: {e}; needs CAP_SYS_NICE or `ulimit -r` >= {priority}"
        )),
    }
}

fn mlockall_current_and_future() -> io::Result<()> {
    // SAFETY: mlockall takes only flag bits and touches no memory of ours; MCL_CURRENT|MCL_FUTURE
    // are valid flags on every Linux version. It cannot violate Rust's memory model.
    let rc = unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn sched_fifo_current_thread(priority: i32) -> io::Result<()> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: pid 0 means the calling thread; `param` is a valid, initialised sched_param that
    // outlives the call, which only reads it.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_priority_is_refused_with_a_message_not_an_abort() {
        // Priority 0 is invalid for SCHED_FIFO whatever the privileges, so this is refused
        // everywhere and exercises the error path.
        match set_fifo_priority(0) {
            SettingOutcome::Refused(msg) => assert!(msg.contains("SCHED_FIFO"), "{msg}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}
