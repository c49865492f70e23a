//! The process's memory as the operating system sees it: resident size, physical memory, and
//! handing freed memory back.

/// The process's resident set size in bytes, where the platform tells it (Linux: `/proc`).
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size()?)
}

/// The machine's physical memory in bytes, where the platform tells it.
pub fn physical_memory() -> Option<u64> {
    // SAFETY: sysconf only reads a system constant.
    let pages = unsafe { libc::sysconf(libc::_SC_PHYS_PAGES) };
    u64::try_from(pages)
        .ok()
        .filter(|&p| p > 0)
        .and_then(|pages| Some(pages * page_size()?))
}

fn page_size() -> Option<u64> {
    // SAFETY: sysconf only reads a system constant.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|&s| s > 0)
}

/// Gives memory freed by an unloaded model back to the system. glibc keeps freed heap in its
/// arenas, so without this the resident size would not drop after an unload.
pub(crate) fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions; it only releases free memory.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_platform_reports_sizes() {
        if cfg!(target_os = "linux") {
            let resident = resident_bytes().expect("linux has /proc/self/statm");
            assert!(resident > 1_000_000, "{resident}");
            assert!(physical_memory().expect("physical memory") > resident);
        }
        trim();
    }
}
