//! Choosing where tensors live: `auto`, `cpu`, `cuda` or `cuda:N`.

use tch::Device;

use crate::error::{Error, Result};

/// Parses a device name. `auto` picks the first GPU when libtorch sees one, else the CPU.
pub fn parse(name: &str) -> Result<Device> {
    let bad = |reason: String| Err(Error::param("device", reason));
    match name {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        "cuda" | "gpu" => {
            if tch::Cuda::is_available() {
                Ok(Device::Cuda(0))
            } else {
                bad("cuda was asked for but libtorch sees no GPU".into())
            }
        }
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) if n < tch::Cuda::device_count() as usize => Ok(Device::Cuda(n)),
            Some(Ok(n)) => bad(format!(
                "cuda:{n} does not exist ({} GPUs visible)",
                tch::Cuda::device_count()
            )),
            _ => bad(format!("{other:?} is not auto, cpu, cuda or cuda:N")),
        },
    }
}

/// A short human name of a device, with the CPU thread count.
pub fn describe(device: Device) -> String {
    match device {
        Device::Cpu => format!("cpu ({} threads)", tch::get_num_threads()),
        Device::Cuda(n) => format!("cuda:{n}"),
        other => format!("{other:?}"),
    }
}
