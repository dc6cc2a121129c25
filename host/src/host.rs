// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! What the host offers a VM: its physical memory and the CPUs this process may use.

use std::fs;

/// The host's physical memory (`MemTotal`), if `/proc/meminfo` says.
pub(crate) fn host_memory_mib() -> Option<u64> {
    let meminfo = fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib / 1024)
}

/// The number of CPUs this process may use, for `cpu_topology: "match_host"`.
pub(crate) fn host_cpu_count() -> u32 {
    std::thread::available_parallelism()
        .map_or(1, |count| u32::try_from(count.get()).unwrap_or(u32::MAX))
}
