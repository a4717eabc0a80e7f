//! Which CPUs the host has set aside for latency-critical threads.
//!
//! Linux reports isolated CPUs (`isolcpus=`) in `/sys/devices/system/cpu/isolated` and tickless
//! CPUs in `/sys/devices/system/cpu/nohz_full` (absent on kernels built without it, `(null)` when
//! unset); both are also visible on the kernel command line. The files use the kernel's CPU list
//! syntax, `"0,2-3"`, which [`parse_cpu_list`] reads. A pinned thread on a core that is neither
//! isolated nor tickless shares it with the scheduler's housekeeping and other tasks, which the
//! start-up report says plainly.
//!
//! Reading never fails the run: a file that is missing or unreadable becomes a note in the report.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Highest CPU number accepted in a list. Bounds the memory a hostile or corrupt list can make
/// the parser allocate; far above any real machine.
pub const MAX_CPU: usize = 4095;

/// Why a CPU list did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CpuListError {
    /// An entry is not a number or a `lo-hi` range of numbers.
    #[error("CPU list entry {0:?} is not a number or a lo-hi range")]
    BadEntry(String),
    /// A range whose end is below its start.
    #[error("CPU range {lo}-{hi} runs backwards")]
    Backwards {
        /// Start of the range.
        lo: usize,
        /// End of the range.
        hi: usize,
    },
    /// A CPU number above [`MAX_CPU`].
    #[error("CPU {0} is above the supported maximum {MAX_CPU}")]
    TooLarge(usize),
}

/// Parses the kernel's CPU list syntax (`""`, `"2-3"`, `"1,3-5"`, with surrounding whitespace and
/// `(null)` accepted as empty) into a sorted list without duplicates.
pub fn parse_cpu_list(s: &str) -> Result<Vec<usize>, CpuListError> {
    let s = s.trim();
    let mut cpus = Vec::new();
    if s.is_empty() || s == "(null)" {
        return Ok(cpus);
    }
    for entry in s.split(',') {
        let entry = entry.trim();
        let (lo, hi) = match entry.split_once('-') {
            Some((lo, hi)) => (parse_cpu(lo, entry)?, parse_cpu(hi, entry)?),
            None => {
                let c = parse_cpu(entry, entry)?;
                (c, c)
            }
        };
        if hi < lo {
            return Err(CpuListError::Backwards { lo, hi });
        }
        cpus.extend(lo..=hi);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

fn parse_cpu(s: &str, entry: &str) -> Result<usize, CpuListError> {
    let n: usize = s
        .trim()
        .parse()
        .map_err(|_| CpuListError::BadEntry(entry.to_owned()))?;
    if n > MAX_CPU {
        return Err(CpuListError::TooLarge(n));
    }
    Ok(n)
}

/// The value of `key=` on a kernel command line, if present (the last one wins, as in the kernel).
fn cmdline_value<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline
        .split_whitespace()
        .filter_map(|arg| arg.strip_prefix(key)?.strip_prefix('='))
        .next_back()
}

/// The CPU list of an `isolcpus=` value, skipping its leading flags (`nohz`, `domain`,
/// `managed_irq`).
fn isolcpus_list(value: &str) -> &str {
    let mut rest = value;
    while let Some((head, tail)) = rest.split_once(',') {
        if head.chars().all(|c| c.is_ascii_alphabetic() || c == '_') {
            rest = tail;
        } else {
            break;
        }
    }
    if rest.chars().all(|c| c.is_ascii_alphabetic() || c == '_') {
        ""
    } else {
        rest
    }
}

/// The host's isolated and tickless CPUs, with notes on anything that could not be read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostIsolation {
    /// CPUs removed from general scheduling (`isolcpus`).
    pub isolated: Vec<usize>,
    /// CPUs running without the periodic tick (`nohz_full`).
    pub nohz_full: Vec<usize>,
    /// Where each list came from, and any file that was missing or did not parse.
    pub notes: Vec<String>,
}

impl HostIsolation {
    /// Reads the running host's settings from `/sys` and `/proc/cmdline`.
    pub fn read() -> HostIsolation {
        let read = |p: &str| std::fs::read_to_string(p).ok();
        HostIsolation::from_sources(
            read("/sys/devices/system/cpu/isolated").as_deref(),
            read("/sys/devices/system/cpu/nohz_full").as_deref(),
            read("/proc/cmdline").as_deref(),
        )
    }

    /// Builds the picture from the contents of the sysfs files and the kernel command line
    /// (`None` for a file that could not be read). The sysfs files win; the command line fills
    /// in where a file is missing.
    pub fn from_sources(
        isolated_file: Option<&str>,
        nohz_full_file: Option<&str>,
        cmdline: Option<&str>,
    ) -> HostIsolation {
        let mut host = HostIsolation::default();
        host.isolated = pick_list(
            &mut host.notes,
            "isolated",
            isolated_file,
            cmdline.and_then(|c| cmdline_value(c, "isolcpus").map(isolcpus_list)),
        );
        host.nohz_full = pick_list(
            &mut host.notes,
            "nohz_full",
            nohz_full_file,
            cmdline.and_then(|c| cmdline_value(c, "nohz_full")),
        );
        host
    }

    /// True if `core` is isolated from general scheduling.
    pub fn is_isolated(&self, core: usize) -> bool {
        self.isolated.binary_search(&core).is_ok()
    }

    /// True if `core` runs tickless.
    pub fn is_nohz_full(&self, core: usize) -> bool {
        self.nohz_full.binary_search(&core).is_ok()
    }
}

fn pick_list(
    notes: &mut Vec<String>,
    what: &str,
    file: Option<&str>,
    cmdline: Option<&str>,
) -> Vec<usize> {
    let (source, text) = match (file, cmdline) {
        (Some(f), _) => ("sysfs", f),
        (None, Some(c)) => ("kernel command line", c),
        (None, None) => {
            notes.push(format!(
                "{what}: not reported by this kernel (taken as none)"
            ));
            return Vec::new();
        }
    };
    match parse_cpu_list(text) {
        Ok(list) => list,
        Err(e) => {
            notes.push(format!("{what} from {source}: {e} (taken as none)"));
            Vec::new()
        }
    }
}

/// Formats a CPU list back into the kernel's syntax (`1,3-5`), `none` when empty.
#[derive(Debug, Clone, Copy)]
pub struct CpuList<'a>(pub &'a [usize]);

impl fmt::Display for CpuList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        let mut i = 0;
        let mut first = true;
        while i < self.0.len() {
            let lo = self.0[i];
            let mut hi = lo;
            while i + 1 < self.0.len() && self.0[i + 1] == hi + 1 {
                i += 1;
                hi = self.0[i];
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if hi == lo {
                write!(f, "{lo}")?;
            } else {
                write!(f, "{lo}-{hi}")?;
            }
            i += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_kernel_list_syntax() {
        assert_eq!(parse_cpu_list(""), Ok(vec![]));
        assert_eq!(parse_cpu_list("\n"), Ok(vec![]));
        assert_eq!(parse_cpu_list("(null)\n"), Ok(vec![]));
        assert_eq!(parse_cpu_list("2-3"), Ok(vec![2, 3]));
        assert_eq!(parse_cpu_list("1,3-5\n"), Ok(vec![1, 3, 4, 5]));
        assert_eq!(parse_cpu_list("5,1,1-2"), Ok(vec![1, 2, 5]));
    }

    #[test]
    fn rejects_malformed_lists() {
        assert_eq!(
            parse_cpu_list("1,x"),
            Err(CpuListError::BadEntry("x".into()))
        );
        assert_eq!(
            parse_cpu_list("3-1"),
            Err(CpuListError::Backwards { lo: 3, hi: 1 })
        );
        assert_eq!(
            parse_cpu_list("0-99999999"),
            Err(CpuListError::TooLarge(99_999_999))
        );
        assert!(parse_cpu_list("1-").is_err());
        assert!(parse_cpu_list(",").is_err());
    }

    #[test]
    fn formats_lists_back_compactly() {
        assert_eq!(CpuList(&[1, 3, 4, 5]).to_string(), "1,3-5");
        assert_eq!(CpuList(&[]).to_string(), "none");
        assert_eq!(CpuList(&[0, 1, 2, 7]).to_string(), "0-2,7");
    }

    #[test]
    fn sysfs_wins_and_the_command_line_fills_gaps() {
        let cmdline = "quiet isolcpus=managed_irq,domain,2-3 nohz_full=2-3 rcu_nocbs=2-3";
        let h = HostIsolation::from_sources(Some("2-3\n"), None, Some(cmdline));
        assert_eq!(h.isolated, vec![2, 3]);
        assert_eq!(h.nohz_full, vec![2, 3]);
        assert!(h.is_isolated(3) && !h.is_isolated(1));
        assert!(h.is_nohz_full(2));

        let h = HostIsolation::from_sources(None, Some("(null)\n"), Some(cmdline));
        assert_eq!(h.isolated, vec![2, 3]);
        assert!(h.nohz_full.is_empty());

        let h = HostIsolation::from_sources(Some(""), None, Some("quiet"));
        assert!(h.isolated.is_empty() && h.nohz_full.is_empty());
        assert_eq!(h.notes.len(), 1, "{:?}", h.notes);

        let h = HostIsolation::from_sources(Some("1,zz"), Some(""), None);
        assert!(h.isolated.is_empty());
        assert!(h.notes[0].contains("zz"), "{:?}", h.notes);
    }

    #[test]
    fn isolcpus_flags_only_means_no_list() {
        assert_eq!(isolcpus_list("domain,managed_irq,1,3-4"), "1,3-4");
        assert_eq!(isolcpus_list("nohz"), "");
        assert_eq!(isolcpus_list("2-3"), "2-3");
    }
}
