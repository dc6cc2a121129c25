// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The Android backend: vmbase_example.bin (the test's `data`, installed next to the test
//! binary) booted as the bootloader of a VM, protected (pKVM) or not, by VirtualizationService,
//! through AOSP's `vmclient`. Written against Android 15's API (android-15.0.0_r1):
//! `VirtualMachineRawConfig` has a `cpuTopology` enum (one CPU, or as many as the host) and a
//! `protectedVm` flag, `VmInstance::create` takes the service, the config, console out, console
//! in, log and callback, and `start` takes nothing.

use super::{BOOT_TIMEOUT, Run};
use android_system_virtualizationservice::{
    aidl::android::system::virtualizationservice::{
        CpuTopology::CpuTopology, VirtualMachineConfig::VirtualMachineConfig,
        VirtualMachineRawConfig::VirtualMachineRawConfig,
    },
    binder::{ParcelFileDescriptor, ProcessState},
};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::thread;
use vmclient::{VirtualizationService, VmInstance};

/// Boots the example with `memory_mib` of RAM, in a protected VM if `protected`, and waits for it
/// to end; a VM still running after the timeout fails the test. Android 15 cannot ask for a CPU
/// count: one CPU is `ONE_CPU`, more is `MATCH_HOST`, as many as the device has.
pub fn boot_example(memory_mib: u32, num_cpus: u32, protected: bool) -> Run {
    // Binder needs its thread pool for the death notification that ends the wait.
    ProcessState::start_thread_pool();
    let image = std::env::current_exe()
        .expect("find the test binary")
        .with_file_name("vmbase_example.bin");
    let bootloader =
        File::open(&image).unwrap_or_else(|error| panic!("open {}: {error}", image.display()));
    let config = VirtualMachineConfig::RawConfig(VirtualMachineRawConfig {
        name: "VmBaseTest".to_owned(),
        bootloader: Some(ParcelFileDescriptor::new(bootloader)),
        memoryMib: memory_mib.try_into().expect("memory size fits an i32"),
        cpuTopology: if num_cpus > 1 {
            CpuTopology::MATCH_HOST
        } else {
            CpuTopology::ONE_CPU
        },
        protectedVm: protected,
        platformVersion: "~1.0".to_owned(),
        ..Default::default()
    });

    let virtmgr = VirtualizationService::new().expect("spawn VirtualizationService");
    let service = virtmgr.connect().expect("connect to VirtualizationService");
    let (reader, writer) = nix::unistd::pipe().expect("create console pipe");
    let console = thread::spawn(move || {
        BufReader::new(File::from(reader))
            .lines()
            .map_while(Result::ok)
            .collect()
    });
    let vm = VmInstance::create(
        service.as_ref(),
        &config,
        Some(File::from(writer)),
        None,
        None,
        None,
    )
    .expect("create the VM");
    vm.start().expect("start the VM");
    let reason = vm
        .wait_for_death_with_timeout(BOOT_TIMEOUT)
        .expect("the example did not end within the timeout");
    // Letting go of the VM lets VirtualizationService close the console's last write end, which
    // ends the reader.
    drop(vm);
    Run {
        reason,
        console: console.join().expect("console reader"),
    }
}
