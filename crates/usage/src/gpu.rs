//! What a job's GPUs did, as NVML (the NVIDIA Management Library) tells
//! the module on their node: how busy each was over the sampling period,
//! and the memory in use on it. The GPUs are the ones the job was
//! allocated on the node (its rank information's `gpus` idset), which Flux
//! numbers as NVML does: in PCI bus order.

use serde::{Deserialize, Serialize};

/// One GPU of a job on one node, at one look.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuSample {
    /// The GPU's index on the node (Flux's, and NVML's).
    pub index: u32,
    /// The share of the period in which a kernel ran on it (0 to 1), from
    /// the utilisation samples NVML kept since the previous look; None
    /// where NVML had none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub busy: Option<f64>,
    pub memory_used_bytes: u64,
    pub memory_total_bytes: u64,
}

/// The mean of NVML's GPU utilisation samples (timestamp in µs, percent)
/// newer than `after`, as a share, and the newest timestamp: the next look
/// asks for samples after it. None where there is none.
pub fn mean_busy(samples: &[(u64, f64)], after: u64) -> Option<(f64, u64)> {
    let newer: Vec<&(u64, f64)> = samples.iter().filter(|(t, _)| *t > after).collect();
    let last = newer.iter().map(|(t, _)| *t).max()?;
    let mean = newer.iter().map(|(_, v)| v.clamp(0.0, 100.0)).sum::<f64>() / newer.len() as f64;
    Some((mean / 100.0, last))
}

/// GPUs' worth of busy time: the shares summed over `gpus`, of those that
/// had samples. None where none had.
pub fn gpus_busy(gpus: &[GpuSample]) -> Option<f64> {
    let busy: Vec<f64> = gpus.iter().filter_map(|g| g.busy).collect();
    (!busy.is_empty()).then(|| busy.iter().sum())
}

/// How many of `gpus` had utilisation samples.
pub fn measured(gpus: &[GpuSample]) -> u64 {
    gpus.iter().filter(|g| g.busy.is_some()).count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NVML_GPU_UTILIZATION_SAMPLES as nvmlDeviceGetSamples returns them
    /// (about six a second; the buffer holds the newest), for an A100 at a
    /// training job's step boundary: timestamps in µs, values in percent.
    const SAMPLES: [(u64, f64); 6] = [
        (1_764_990_000_000_000, 98.0),
        (1_764_990_000_166_000, 100.0),
        (1_764_990_000_333_000, 100.0),
        (1_764_990_000_500_000, 41.0),
        (1_764_990_000_666_000, 0.0),
        (1_764_990_000_833_000, 93.0),
    ];

    #[test]
    fn the_mean_counts_only_samples_since_the_last_look() {
        let (all, last) = mean_busy(&SAMPLES, 0).unwrap();
        assert!((all - 0.72).abs() < 1e-9, "{all}");
        assert_eq!(last, 1_764_990_000_833_000);
        let (since, _) = mean_busy(&SAMPLES, 1_764_990_000_333_000).unwrap();
        assert!((since - 134.0 / 300.0).abs() < 1e-9, "{since}");
        assert_eq!(mean_busy(&SAMPLES, last), None);
        assert_eq!(mean_busy(&[], 0), None);
        // A value out of range (a driver's error) is held to 0-100.
        assert_eq!(mean_busy(&[(5, 250.0)], 0), Some((1.0, 5)));
    }

    #[test]
    fn busy_gpus_are_summed_over_the_measured_ones() {
        let gpu = |index, busy| GpuSample {
            index,
            busy,
            memory_used_bytes: 1 << 30,
            memory_total_bytes: 40 << 30,
        };
        let gpus = [gpu(0, Some(0.5)), gpu(1, Some(1.0)), gpu(2, None)];
        assert_eq!(gpus_busy(&gpus), Some(1.5));
        assert_eq!(measured(&gpus), 2);
        assert_eq!(gpus_busy(&gpus[2..]), None);
        let text = serde_json::to_string(&gpus[2]).unwrap();
        assert_eq!(
            text,
            r#"{"index":2,"memory_used_bytes":1073741824,"memory_total_bytes":42949672960}"#
        );
    }
}
