//! The process's own metrics, as Prometheus's client libraries name them
//! (`process_cpu_seconds_total`, `process_resident_memory_bytes`, ...), read from
//! `/proc/self` at each scrape. Elsewhere than on Linux there are none.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Linux's USER_HZ, the unit of `/proc` CPU times, is 100 on every architecture.
const TICKS_PER_SECOND: f64 = 100.0;

#[derive(Debug)]
pub struct ProcessCollector;

/// What the collector reads of the process.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sample {
    pub cpu_seconds: f64,
    pub resident_bytes: f64,
    pub virtual_bytes: f64,
    pub start_time_seconds: f64,
    pub open_fds: Option<f64>,
    pub max_fds: Option<f64>,
}

/// Parses `/proc/self/stat` (CPU times, sizes, start in ticks after boot), the boot
/// time from `/proc/stat`, and the page size: `None` when they do not read.
pub fn parse(stat: &str, proc_stat: &str, page_size: f64) -> Option<Sample> {
    // The command name (field 2) may hold spaces: fields count from its closing ')'.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // fields[0] is field 3 (state): field n is fields[n - 3].
    let field = |n: usize| fields.get(n - 3)?.parse::<f64>().ok();
    let boot = proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse::<f64>()
        .ok()?;
    Some(Sample {
        cpu_seconds: (field(14)? + field(15)?) / TICKS_PER_SECOND,
        virtual_bytes: field(23)?,
        resident_bytes: field(24)? * page_size,
        start_time_seconds: boot + field(22)? / TICKS_PER_SECOND,
        open_fds: None,
        max_fds: None,
    })
}

/// `VmRSS` of `/proc/self/status`, in KiB.
pub fn vm_rss_kib(status: &str) -> Option<f64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    line.split_whitespace().next()?.parse().ok()
}

/// The soft limit on open files, from `/proc/self/limits`.
pub fn max_fds(limits: &str) -> Option<f64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(target_os = "linux")]
fn read() -> Option<Sample> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let proc_stat = std::fs::read_to_string("/proc/stat").ok()?;
    let mut sample = parse(&stat, &proc_stat, 4096.0)?;
    // `stat` counts resident pages; `status` says the size itself, whatever the page.
    if let Some(kib) = std::fs::read_to_string("/proc/self/status")
        .ok()
        .as_deref()
        .and_then(vm_rss_kib)
    {
        sample.resident_bytes = kib * 1024.0;
    }
    sample.open_fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|d| d.count() as f64);
    sample.max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .as_deref()
        .and_then(max_fds);
    Some(sample)
}

#[cfg(not(target_os = "linux"))]
fn read() -> Option<Sample> {
    None
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(s) = read() else {
            return Ok(());
        };
        let cpu = ConstCounter::new(s.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            cpu.metric_type(),
        )?)?;
        let gauges = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                Some(s.resident_bytes),
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                Some(s.virtual_bytes),
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch in seconds",
                Some(s.start_time_seconds),
            ),
            (
                "process_open_fds",
                "Number of open file descriptors",
                s.open_fds,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors",
                s.max_fds,
            ),
        ];
        for (name, help, value) in gauges {
            if let Some(v) = value {
                let gauge = ConstGauge::new(v);
                gauge.encode(encoder.encode_descriptor(
                    name,
                    help,
                    None,
                    gauge.metric_type(),
                )?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_read_as_the_process_metrics() {
        // A command name with a space and a parenthesis, as the kernel writes it.
        let stat = "4242 (digi cert) op) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 150 0 0 20 0 9 0 12345 104857600 2560 18446744073709551615";
        let proc_stat = "cpu  1 2 3\nbtime 1780000000\nprocesses 9\n";
        let s = parse(stat, proc_stat, 4096.0).expect("parses");
        assert_eq!(s.cpu_seconds, 4.0);
        assert_eq!(s.virtual_bytes, 104_857_600.0);
        assert_eq!(s.resident_bytes, 2560.0 * 4096.0);
        assert_eq!(s.start_time_seconds, 1_780_000_000.0 + 123.45);
        assert_eq!(parse("garbage", proc_stat, 4096.0), None);
        assert_eq!(parse(stat, "cpu 1 2 3\n", 4096.0), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1048576              1048576              files\n";
        assert_eq!(max_fds(limits), Some(1_048_576.0));
        assert_eq!(vm_rss_kib("Name:\tx\nVmRSS:\t   10240 kB\n"), Some(10240.0));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_is_measured() {
        let s = read().expect("/proc is there");
        assert!(s.resident_bytes > 0.0 && s.open_fds.unwrap() > 0.0, "{s:?}");
        // Whole seconds: the start may lie within the current one.
        let now = time::OffsetDateTime::now_utc().unix_timestamp() as f64 + 1.0;
        assert!(
            s.start_time_seconds <= now && s.start_time_seconds > now - 86_400.0,
            "{s:?}"
        );
    }
}
