// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Ending the VM. By convention [`shutdown`] means success and [`reboot`] means failure: crosvm
//! never reboots a VM, it ends it, and the host reports which of the two the guest asked for.

use crate::eprintln;
use smccc::{psci, Call};

/// Powers the VM off (PSCI `SYSTEM_OFF` over HVC): the host sees a clean shutdown.
#[cfg(target_arch = "aarch64")]
pub fn shutdown() -> ! {
    shutdown_via::<smccc::Hvc>()
}

/// Resets the VM (PSCI `SYSTEM_RESET` over HVC): the host sees the VM fail.
#[cfg(target_arch = "aarch64")]
pub fn reboot() -> ! {
    reboot_via::<smccc::Hvc>()
}

/// [`shutdown`] through the given SMCCC conduit. Falls back to a reset if the call fails.
pub fn shutdown_via<C: Call>() -> ! {
    let error = psci::system_off::<C>();
    eprintln!("vmbase: PSCI SYSTEM_OFF returned {error:?}; resetting instead");
    reboot_via::<C>()
}

/// [`reboot`] through the given SMCCC conduit. Halts the CPU if the call fails.
pub fn reboot_via<C: Call>() -> ! {
    let error = psci::system_reset::<C>();
    eprintln!("vmbase: PSCI SYSTEM_RESET returned {error:?}; halting");
    halt()
}

/// Stops this CPU for good.
fn halt() -> ! {
    loop {
        #[cfg(target_arch = "aarch64")]
        // SAFETY: wfi only waits for an interrupt; it touches no memory or registers.
        unsafe {
            core::arch::asm!("wfi", options(nomem, nostack, preserves_flags));
        }
        #[cfg(not(target_arch = "aarch64"))]
        core::hint::spin_loop();
    }
}
