// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Ending the VM. By convention [`shutdown`] means success and [`reboot`] means failure: crosvm
//! never reboots a VM, it ends it, and the host reports which of the two the guest asked for.

use core::fmt;
use smccc::{psci, Call};

/// Powers the VM off (PSCI `SYSTEM_OFF` over HVC): the host sees a clean shutdown.
///
/// Only on aarch64: the VM's architecture (host builds have it in their documentation only).
#[cfg(any(doc, target_arch = "aarch64"))]
pub fn shutdown() -> ! {
    shutdown_via::<smccc::Hvc>()
}

/// Resets the VM (PSCI `SYSTEM_RESET` over HVC): the host sees the VM fail.
///
/// Only on aarch64: the VM's architecture (host builds have it in their documentation only).
#[cfg(any(doc, target_arch = "aarch64"))]
pub fn reboot() -> ! {
    reboot_via::<smccc::Hvc>()
}

/// [`shutdown`] through the given SMCCC conduit. Falls back to a reset, then to halting this
/// CPU, if the calls fail, saying so on the console.
pub fn shutdown_via<C: Call>() -> ! {
    end_vm_or_halt::<C>(Request::PowerOff)
}

/// [`reboot`] through the given SMCCC conduit. Halts this CPU if the call fails, saying so on
/// the console.
pub fn reboot_via<C: Call>() -> ! {
    end_vm_or_halt::<C>(Request::Reset)
}

/// How a VM is asked to end.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
enum Request {
    PowerOff,
    Reset,
}

/// [`end_vm`], saying on the console what failed, then halts if the VM is still running.
fn end_vm_or_halt<C: Call>(request: Request) -> ! {
    end_vm::<C>(request, &mut |message| {
        crate::console::emergency_write_args(format_args!("{message}\n"))
    });
    halt()
}

/// Asks the hypervisor through conduit `C` to end the VM as `request` says: `SYSTEM_OFF`, and
/// `SYSTEM_RESET` if that returns; or `SYSTEM_RESET` alone. Passes `report` a line for each call
/// that returned. Returns only if every call returned, for the caller to halt.
fn end_vm<C: Call>(request: Request, report: &mut dyn FnMut(fmt::Arguments)) {
    if request == Request::PowerOff {
        let error = psci::system_off::<C>();
        report(format_args!(
            "vmbase: PSCI SYSTEM_OFF returned {error:?}; resetting instead"
        ));
    }
    let error = psci::system_reset::<C>();
    report(format_args!(
        "vmbase: PSCI SYSTEM_RESET returned {error:?}; halting"
    ));
}

/// Stops this CPU for good.
fn halt() -> ! {
    loop {
        #[cfg(target_arch = "aarch64")]
        crate::arch::aarch64::wfi();
        #[cfg(not(target_arch = "aarch64"))]
        core::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smccc::psci::{PSCI_SYSTEM_OFF, PSCI_SYSTEM_RESET};
    use std::cell::RefCell;

    thread_local! {
        /// The function IDs the fake conduit was called with, on this test's thread.
        static CALLS: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    }

    /// A hypervisor that has no PSCI: every call returns NOT_SUPPORTED (-1).
    struct NoPsci;

    impl Call for NoPsci {
        fn call32(function: u32, _: [u32; 7]) -> [u32; 8] {
            CALLS.with_borrow_mut(|calls| calls.push(function));
            [u32::MAX, 0, 0, 0, 0, 0, 0, 0]
        }

        fn call64(function: u32, _: [u64; 17]) -> [u64; 18] {
            CALLS.with_borrow_mut(|calls| calls.push(function));
            let mut result = [0; 18];
            result[0] = u64::MAX;
            result
        }
    }

    /// Runs end_vm on the fake conduit: the calls it made and the lines it reported.
    fn end_vm_without_psci(request: Request) -> (Vec<u32>, Vec<String>) {
        CALLS.with_borrow_mut(Vec::clear);
        let mut reports = Vec::new();
        end_vm::<NoPsci>(request, &mut |message| reports.push(message.to_string()));
        (CALLS.with_borrow(Clone::clone), reports)
    }

    #[test]
    fn power_off_falls_back_to_reset_then_halt() {
        let (calls, reports) = end_vm_without_psci(Request::PowerOff);
        assert_eq!(calls, [PSCI_SYSTEM_OFF, PSCI_SYSTEM_RESET]);
        assert_eq!(
            reports,
            [
                "vmbase: PSCI SYSTEM_OFF returned Err(NotSupported); resetting instead",
                "vmbase: PSCI SYSTEM_RESET returned Err(NotSupported); halting",
            ]
        );
    }

    #[test]
    fn reset_falls_back_to_halt() {
        let (calls, reports) = end_vm_without_psci(Request::Reset);
        assert_eq!(calls, [PSCI_SYSTEM_RESET]);
        assert_eq!(
            reports,
            ["vmbase: PSCI SYSTEM_RESET returned Err(NotSupported); halting"]
        );
    }
}
