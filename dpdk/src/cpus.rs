//! Which CPUs a thread runs on. The EAL pins the thread that initializes it to the main
//! lcore's CPU, and every thread spawned from it afterwards inherits that one CPU: workers
//! started after `Eal::init` would all share it. The process's CPU set is read before the
//! EAL starts, and each thread is given its place explicitly.

use crate::error::{Error, Result};

/// The CPUs the calling thread may run on, in ascending order.
pub fn thread_cpus() -> Result<Vec<usize>> {
    // SAFETY: cpu_set_t is plain data; all zeros is an empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is the calling thread; the size passed is the set's own.
    let ret = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if ret != 0 {
        return Err(os_error("sched_getaffinity"));
    }
    // SAFETY: CPU_ISSET only reads the set, for indices below its capacity.
    Ok((0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) }).collect())
}

/// Lets the calling thread run on `cpus` only (none: an error).
pub fn set_thread_cpus(cpus: &[usize]) -> Result<()> {
    // SAFETY: as in `thread_cpus`.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus {
        if c >= libc::CPU_SETSIZE as usize {
            return Err(Error::Dpdk { what: "CPU set", errno: libc::EINVAL, text: format!("no CPU {c}") });
        }
        // SAFETY: c is below the set's capacity (checked).
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: pid 0 is the calling thread; the set is initialized and its size passed.
    let ret = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if ret != 0 {
        return Err(os_error("sched_setaffinity"));
    }
    Ok(())
}

fn os_error(what: &'static str) -> Error {
    let e = std::io::Error::last_os_error();
    Error::Dpdk { what, errno: e.raw_os_error().unwrap_or(0), text: e.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_runs_where_it_is_told() {
        let all = thread_cpus().unwrap();
        assert!(!all.is_empty());
        std::thread::spawn(move || {
            set_thread_cpus(&all[..1]).unwrap();
            assert_eq!(thread_cpus().unwrap(), all[..1]);
            set_thread_cpus(&all).unwrap();
            assert_eq!(thread_cpus().unwrap(), all);
            assert!(set_thread_cpus(&[]).is_err(), "an empty set is refused");
            assert!(set_thread_cpus(&[1 << 20]).is_err());
        })
        .join()
        .unwrap();
    }
}
