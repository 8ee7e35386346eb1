//! The node's GPUs, through NVML, for the sampler: how busy each of a
//! job's GPUs was since the previous look, and its memory in use. NVML
//! (`libnvidia-ml.so.1`, from the NVIDIA driver) is loaded at the first
//! look at a job that has GPUs, so a node without NVIDIA GPUs never loads
//! it; where it cannot be, jobs have no GPU figures, and that is said once.

use std::collections::HashMap;

use nvml_wrapper::enum_wrappers::device::Sampling;
use nvml_wrapper::enums::device::SampleValue;
use nvml_wrapper::Nvml;
use usage::gpu::{self, GpuSample};

/// NVML, once loaded, and the newest utilisation sample seen of each GPU.
#[derive(Default)]
pub struct Gpus {
    /// None until a job with GPUs is looked at.
    nvml: Option<Result<Nvml, String>>,
    last_seen: HashMap<u32, u64>,
    /// Why NVML could not be loaded, until the sampler has said it.
    unsaid: Option<String>,
}

fn percent(v: &SampleValue) -> f64 {
    match *v {
        SampleValue::F64(x) => x,
        SampleValue::U32(x) => f64::from(x),
        SampleValue::U64(x) => x as f64,
        SampleValue::I64(x) => x as f64,
    }
}

impl Gpus {
    /// The figures of the GPUs `indexes` since `since_us` (the job's
    /// registration, in µs since the epoch) or the previous look, whichever
    /// is newer. A GPU NVML does not answer for is left out: that costs
    /// this look only.
    pub fn look(&mut self, indexes: &[u32], since_us: u64) -> Vec<GpuSample> {
        if indexes.is_empty() {
            return Vec::new();
        }
        let nvml = self.nvml.get_or_insert_with(|| {
            Nvml::init().map_err(|e| {
                let why = format!(
                    "NVML could not be loaded ({e}): jobs' GPUs are not measured on this node"
                );
                self.unsaid = Some(why.clone());
                why
            })
        });
        let Ok(nvml) = nvml else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(indexes.len());
        for &index in indexes {
            let Ok(device) = nvml.device_by_index(index) else {
                continue;
            };
            let Ok(memory) = device.memory_info() else {
                continue;
            };
            let after = self
                .last_seen
                .get(&index)
                .copied()
                .unwrap_or(0)
                .max(since_us);
            let samples: Vec<(u64, f64)> = device
                .samples(Sampling::GpuUtilization, after)
                .map(|s| s.iter().map(|s| (s.timestamp, percent(&s.value))).collect())
                .unwrap_or_default();
            let busy = gpu::mean_busy(&samples, after).map(|(busy, last)| {
                self.last_seen.insert(index, last);
                busy
            });
            out.push(GpuSample {
                index,
                busy,
                memory_used_bytes: memory.used,
                memory_total_bytes: memory.total,
            });
        }
        out
    }

    /// Why NVML could not be loaded, once.
    pub fn take_failure(&mut self) -> Option<String> {
        self.unsaid.take()
    }
}
