//! The candle device for a requested [`Device`].

use crate::Device;

/// The candle device to run on. Accelerators that are not compiled in or not present fall back to
/// the CPU with a log line that says why; `auto` picks CUDA when it is there.
pub fn device(requested: Device) -> candle_core::Device {
    match requested {
        Device::Cpu => candle_core::Device::Cpu,
        Device::Auto | Device::Cuda | Device::TensorRt => {
            if candle_core::utils::cuda_is_available() {
                match candle_core::Device::new_cuda(0) {
                    Ok(device) => return device,
                    Err(e) => warn_fallback(requested, &e.to_string()),
                }
            } else if requested != Device::Auto {
                warn_fallback(
                    requested,
                    "this build has no CUDA support (rebuild with `--features cuda`) or no GPU is present",
                );
            }
            candle_core::Device::Cpu
        }
        Device::CoreMl => {
            warn_fallback(requested, "candle has no CoreML backend");
            candle_core::Device::Cpu
        }
    }
}

fn warn_fallback(requested: Device, reason: &str) {
    tracing::warn!(device = %requested, reason, "falling back to the CPU");
}
