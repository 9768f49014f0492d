//! The standard `process_*` metrics of the Prometheus client libraries (CPU seconds,
//! resident and virtual memory, open and maximum file descriptors, start time), with the
//! names and units every Prometheus client exports, so the dashboards and alerts written for
//! them work on `wharf serve` unchanged. Read from `/proc` at scrape time: nothing is kept
//! between scrapes. On systems without `/proc` there are none.

use std::fmt::Write;

/// Appends the process metrics to a text exposition.
pub(crate) fn render(out: &mut String) {
    let Some(stat) = Stat::read() else { return };
    let gauge = |out: &mut String, name: &str, help: &str, value: f64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
    };
    let _ = writeln!(
        out,
        "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n\
         # TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {}",
        stat.cpu_seconds
    );
    gauge(out, "process_resident_memory_bytes", "Resident memory size in bytes.", stat.resident_bytes);
    gauge(out, "process_virtual_memory_bytes", "Virtual memory size in bytes.", stat.virtual_bytes);
    if let Some(start) = stat.start_time_seconds {
        gauge(out, "process_start_time_seconds", "Start time of the process since unix epoch in seconds.", start);
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        gauge(out, "process_open_fds", "Number of open file descriptors.", fds.count() as f64);
    }
    if let Some(max) = max_fds() {
        gauge(out, "process_max_fds", "Maximum number of open file descriptors.", max);
    }
}

/// What `/proc/self/stat` says.
struct Stat {
    cpu_seconds: f64,
    resident_bytes: f64,
    virtual_bytes: f64,
    start_time_seconds: Option<f64>,
}

impl Stat {
    fn read() -> Option<Stat> {
        let text = std::fs::read_to_string("/proc/self/stat").ok()?;
        let (ticks, page) = units()?;
        Stat::parse(&text, ticks, page, boot_time())
    }

    /// Parses `/proc/self/stat`. The command name (field 2) is in parentheses and may hold
    /// spaces and parentheses itself, so fields are counted after its last `)`: the first
    /// after it is field 3 (state), so field k is at index k - 3.
    fn parse(text: &str, ticks_per_second: f64, page_bytes: f64, boot_time: Option<f64>) -> Option<Stat> {
        let rest = &text[text.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |k: usize| fields.get(k - 3).and_then(|f| f.parse::<f64>().ok());
        let (utime, stime) = (field(14)?, field(15)?);
        Some(Stat {
            cpu_seconds: (utime + stime) / ticks_per_second,
            resident_bytes: field(24)? * page_bytes,
            virtual_bytes: field(23)?,
            start_time_seconds: boot_time.zip(field(22)).map(|(boot, start)| boot + start / ticks_per_second),
        })
    }
}

/// Clock ticks per second and bytes per page.
fn units() -> Option<(f64, f64)> {
    #[cfg(unix)]
    {
        // SAFETY: sysconf reads a configuration value; it touches no memory of ours.
        let (ticks, page) = unsafe { (libc::sysconf(libc::_SC_CLK_TCK), libc::sysconf(libc::_SC_PAGESIZE)) };
        (ticks > 0 && page > 0).then_some((ticks as f64, page as f64))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// When the system booted, in seconds since the epoch (`btime` of `/proc/stat`).
fn boot_time() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    text.lines().find_map(|l| l.strip_prefix("btime ")).and_then(|v| v.trim().parse().ok())
}

/// The soft limit on open files (`Max open files` of `/proc/self/limits`).
fn max_fds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        // A command name with a space and a parenthesis, as a process may name itself.
        let text = "4242 (wharf (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 \
                    1000 123456789 300 18446744073709551615";
        let stat = Stat::parse(text, 100.0, 4096.0, Some(1_700_000_000.0)).unwrap();
        assert_eq!(stat.cpu_seconds, 3.0);
        assert_eq!(stat.resident_bytes, 300.0 * 4096.0);
        assert_eq!(stat.virtual_bytes, 123_456_789.0);
        assert_eq!(stat.start_time_seconds, Some(1_700_000_010.0));
        assert!(Stat::parse("4242 (wharf) S 1", 100.0, 4096.0, None).is_none());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_them() {
        let mut out = String::new();
        render(&mut out);
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_start_time_seconds",
        ] {
            assert!(out.lines().any(|l| l.starts_with(&format!("{name} "))), "{name} in\n{out}");
        }
    }
}
