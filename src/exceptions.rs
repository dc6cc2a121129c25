// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Exception reports: decoding `ESR_EL1`, and what happens when the binary does not handle an
//! exception itself.
//!
//! exceptions.S calls the C-ABI handlers named in vmbase's README (`sync_exception_current`,
//! `irq_current`, ... `serr_lower`) as `extern "C" fn(elr: u64, spsr: u64, frame: &mut
//! ExceptionFrame)`; a handler that does not need the [`ExceptionFrame`] may take only the first
//! two. A binary may define any of them; those it does not define are weak defaults that print a
//! [`report`] and reboot. A fault inside a handler goes to a separate path that reports it and
//! reboots too.
//!
//! A handler written by hand (`#[no_mangle] extern "C" fn irq_current(...)`) is not
//! checked: a misspelt name, a missing `no_mangle` or a wrong signature still builds, and the
//! vector keeps its default. [`exception_handler!`](crate::exception_handler) checks all three at
//! build time.

use core::fmt;

/// The vector an exception arrived through.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Vector {
    /// Synchronous exception from the current EL (`sync_exception_current`).
    SyncCurrent,
    /// IRQ at the current EL (`irq_current`).
    IrqCurrent,
    /// FIQ at the current EL (`fiq_current`).
    FiqCurrent,
    /// SError at the current EL (`serr_current`).
    SErrorCurrent,
    /// Synchronous exception from a lower EL (`sync_lower`).
    SyncLower,
    /// IRQ from a lower EL (`irq_lower`).
    IrqLower,
    /// FIQ from a lower EL (`fiq_lower`).
    FiqLower,
    /// SError from a lower EL (`serr_lower`).
    SErrorLower,
}

impl Vector {
    /// The vector with number `index` in the order exceptions.S numbers them (0 to 7).
    pub fn from_index(index: u64) -> Option<Self> {
        const ALL: [Vector; 8] = [
            Vector::SyncCurrent,
            Vector::IrqCurrent,
            Vector::FiqCurrent,
            Vector::SErrorCurrent,
            Vector::SyncLower,
            Vector::IrqLower,
            Vector::FiqLower,
            Vector::SErrorLower,
        ];
        ALL.get(usize::try_from(index).ok()?).copied()
    }

    /// Whether `ESR_EL1` and `FAR_EL1` describe this exception (they do not for interrupts).
    pub fn has_syndrome(self) -> bool {
        matches!(
            self,
            Self::SyncCurrent | Self::SyncLower | Self::SErrorCurrent | Self::SErrorLower
        )
    }
}

impl fmt::Display for Vector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::SyncCurrent => "synchronous exception at the current EL",
            Self::IrqCurrent => "IRQ at the current EL",
            Self::FiqCurrent => "FIQ at the current EL",
            Self::SErrorCurrent => "SError at the current EL",
            Self::SyncLower => "synchronous exception from a lower EL",
            Self::IrqLower => "IRQ from a lower EL",
            Self::FiqLower => "FIQ from a lower EL",
            Self::SErrorLower => "SError from a lower EL",
        })
    }
}

/// `ESR_EL1.EC`, bits \[31:26\]: the exception class, named for those vmbase can run into.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum ExceptionClass {
    /// 0x00: unknown reason, typically an undefined instruction.
    Unknown,
    /// 0x01: trapped WFI or WFE.
    WfiWfe,
    /// 0x07: trapped FP or SIMD access.
    FpAccess,
    /// 0x0d: branch target identification failure.
    BranchTarget,
    /// 0x0e: illegal execution state.
    IllegalState,
    /// 0x15: SVC in AArch64.
    Svc,
    /// 0x16: HVC in AArch64.
    Hvc,
    /// 0x17: SMC in AArch64.
    Smc,
    /// 0x18: trapped system register access.
    SystemRegister,
    /// 0x1c: pointer authentication failure.
    PointerAuthentication,
    /// 0x20: instruction abort from a lower EL.
    InstructionAbortLower,
    /// 0x21: instruction abort at the same EL.
    InstructionAbort,
    /// 0x22: PC alignment fault.
    PcAlignment,
    /// 0x24: data abort from a lower EL.
    DataAbortLower,
    /// 0x25: data abort at the same EL.
    DataAbort,
    /// 0x26: SP alignment fault.
    SpAlignment,
    /// 0x2c: trapped floating-point exception.
    FpException,
    /// 0x2f: SError interrupt.
    SError,
    /// 0x30, 0x31: breakpoint.
    Breakpoint,
    /// 0x32, 0x33: software step.
    SoftwareStep,
    /// 0x34, 0x35: watchpoint.
    Watchpoint,
    /// 0x3c: BRK instruction (as `core::intrinsics::abort` and `udf`-less traps produce).
    Brk,
    /// Any other class; holds EC.
    Other(u8),
}

impl ExceptionClass {
    /// Decodes EC.
    pub fn from_ec(ec: u8) -> Self {
        match ec {
            0x00 => Self::Unknown,
            0x01 => Self::WfiWfe,
            0x07 => Self::FpAccess,
            0x0d => Self::BranchTarget,
            0x0e => Self::IllegalState,
            0x15 => Self::Svc,
            0x16 => Self::Hvc,
            0x17 => Self::Smc,
            0x18 => Self::SystemRegister,
            0x1c => Self::PointerAuthentication,
            0x20 => Self::InstructionAbortLower,
            0x21 => Self::InstructionAbort,
            0x22 => Self::PcAlignment,
            0x24 => Self::DataAbortLower,
            0x25 => Self::DataAbort,
            0x26 => Self::SpAlignment,
            0x2c => Self::FpException,
            0x2f => Self::SError,
            0x30 | 0x31 => Self::Breakpoint,
            0x32 | 0x33 => Self::SoftwareStep,
            0x34 | 0x35 => Self::Watchpoint,
            0x3c => Self::Brk,
            other => Self::Other(other),
        }
    }
}

impl fmt::Display for ExceptionClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown => f.write_str("undefined instruction (unknown reason)"),
            Self::WfiWfe => f.write_str("trapped WFI/WFE"),
            Self::FpAccess => f.write_str("trapped FP/SIMD access"),
            Self::BranchTarget => f.write_str("branch target identification failure"),
            Self::IllegalState => f.write_str("illegal execution state"),
            Self::Svc => f.write_str("SVC"),
            Self::Hvc => f.write_str("HVC"),
            Self::Smc => f.write_str("SMC"),
            Self::SystemRegister => f.write_str("trapped system register access"),
            Self::PointerAuthentication => f.write_str("pointer authentication failure"),
            Self::InstructionAbortLower => f.write_str("instruction abort from a lower EL"),
            Self::InstructionAbort => f.write_str("instruction abort"),
            Self::PcAlignment => f.write_str("PC alignment fault"),
            Self::DataAbortLower => f.write_str("data abort from a lower EL"),
            Self::DataAbort => f.write_str("data abort"),
            Self::SpAlignment => f.write_str("SP alignment fault"),
            Self::FpException => f.write_str("floating-point exception"),
            Self::SError => f.write_str("SError"),
            Self::Breakpoint => f.write_str("breakpoint"),
            Self::SoftwareStep => f.write_str("software step"),
            Self::Watchpoint => f.write_str("watchpoint"),
            Self::Brk => f.write_str("BRK instruction"),
            Self::Other(ec) => write!(f, "exception class {ec:#04x}"),
        }
    }
}

/// The fault status code of an abort (`DFSC`/`IFSC`, ESR bits \[5:0\]).
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum FaultStatus {
    /// Address size fault at a translation level.
    AddressSize(u8),
    /// Translation fault (nothing mapped) at a translation level.
    Translation(u8),
    /// Access flag fault at a translation level.
    AccessFlag(u8),
    /// Permission fault at a translation level.
    Permission(u8),
    /// Synchronous external abort, not on a table walk.
    External,
    /// Synchronous external abort on a table walk at a translation level.
    ExternalOnWalk(u8),
    /// Alignment fault.
    Alignment,
    /// TLB conflict abort.
    TlbConflict,
    /// Any other code.
    Other(u8),
}

impl FaultStatus {
    /// Decodes a 6-bit fault status code.
    pub fn from_code(code: u8) -> Self {
        let level = code & 0b11;
        match code & 0b11_1111 {
            0b00_0000..=0b00_0011 => Self::AddressSize(level),
            0b00_0100..=0b00_0111 => Self::Translation(level),
            0b00_1000..=0b00_1011 => Self::AccessFlag(level),
            0b00_1100..=0b00_1111 => Self::Permission(level),
            0b01_0000 => Self::External,
            0b01_0100..=0b01_0111 => Self::ExternalOnWalk(level),
            0b10_0001 => Self::Alignment,
            0b11_0000 => Self::TlbConflict,
            other => Self::Other(other),
        }
    }
}

impl fmt::Display for FaultStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AddressSize(level) => write!(f, "address size fault, level {level}"),
            Self::Translation(level) => write!(f, "translation fault, level {level}"),
            Self::AccessFlag(level) => write!(f, "access flag fault, level {level}"),
            Self::Permission(level) => write!(f, "permission fault, level {level}"),
            Self::External => f.write_str("synchronous external abort"),
            Self::ExternalOnWalk(level) => write!(f, "external abort on table walk, level {level}"),
            Self::Alignment => f.write_str("alignment fault"),
            Self::TlbConflict => f.write_str("TLB conflict"),
            Self::Other(code) => write!(f, "fault status {code:#04x}"),
        }
    }
}

/// An `ESR_EL1` value (the exception syndrome), decoded. Its `Display` is one line, such as
/// "data abort: translation fault, level 3, on write". (AOSP libvmbase's `Esr` is another
/// thing: an enum of three data-abort kinds.)
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct Syndrome(pub u64);

impl Syndrome {
    /// The exception class.
    pub fn class(self) -> ExceptionClass {
        ExceptionClass::from_ec(((self.0 >> 26) & 0x3f) as u8)
    }

    /// The fault status, for instruction and data aborts.
    pub fn fault_status(self) -> Option<FaultStatus> {
        match self.class() {
            ExceptionClass::DataAbort
            | ExceptionClass::DataAbortLower
            | ExceptionClass::InstructionAbort
            | ExceptionClass::InstructionAbortLower => {
                Some(FaultStatus::from_code((self.0 & 0x3f) as u8))
            }
            _ => None,
        }
    }

    /// For data aborts: whether the access was a write (ISS.WnR, bit 6).
    pub fn is_write(self) -> Option<bool> {
        matches!(
            self.class(),
            ExceptionClass::DataAbort | ExceptionClass::DataAbortLower
        )
        .then_some(self.0 & (1 << 6) != 0)
    }

    /// Whether `FAR_EL1` holds the faulting address: aborts where ISS.FnV (bit 10) is clear,
    /// and PC alignment faults.
    pub fn far_is_valid(self) -> bool {
        match self.class() {
            ExceptionClass::PcAlignment | ExceptionClass::Watchpoint => true,
            _ => self.fault_status().is_some() && self.0 & (1 << 10) == 0,
        }
    }
}

impl fmt::Display for Syndrome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.class())?;
        if let Some(status) = self.fault_status() {
            write!(f, ": {status}")?;
        }
        match self.is_write() {
            Some(true) => f.write_str(", on write"),
            Some(false) => f.write_str(", on read"),
            None => Ok(()),
        }
    }
}

/// What exceptions.S saves on the exception stack before calling a handler, and restores when
/// the handler returns. Handlers get it as their third argument, `&mut ExceptionFrame`: it is
/// theirs alone until they return (a nested exception saves its own frame below it).
#[derive(Debug)]
#[repr(C)]
pub struct ExceptionFrame {
    /// x0 to x18, then x30.
    registers: [u64; 20],
    /// `ELR_EL1`: where the interrupted code resumes.
    elr: u64,
    /// `SPSR_EL1`: the PSTATE it resumes with.
    spsr: u64,
    /// `FPSR`, and padding to keep the SIMD registers 16-byte aligned; only exceptions.S uses it.
    _fpsr: [u64; 2],
    /// q0 to q7, then q16 to q31; only exceptions.S uses them.
    _simd: [u128; 24],
}

// exceptions.S's FRAME_ELR and FRAME_SIZE.
const _: () = assert!(core::mem::offset_of!(ExceptionFrame, elr) == 160);
const _: () = assert!(core::mem::size_of::<ExceptionFrame>() == 576);

/// Bytes of an A64 instruction.
const INSTRUCTION_SIZE: u64 = 4;

impl ExceptionFrame {
    /// Where the interrupted code resumes when the handler returns (`ELR_EL1` at the exception,
    /// unless changed): for a synchronous exception, the instruction that caused it.
    pub fn elr(&self) -> u64 {
        self.elr
    }

    /// The PSTATE the interrupted code resumes with (`SPSR_EL1` at the exception).
    pub fn spsr(&self) -> u64 {
        self.spsr
    }

    /// Makes the interrupted code resume at `address` when the handler returns.
    ///
    /// # Safety
    ///
    /// The interrupted code must be able to carry on at `address`, with the registers and stack
    /// it has there, as if it had got there itself: `address` is an A64 instruction of mapped,
    /// executable code, and every assumption the compiler made about the state at that point
    /// holds. (Resuming anywhere else is as unsound as a jump into the middle of a function.)
    pub unsafe fn set_elr(&mut self, address: u64) {
        self.elr = address;
    }

    /// Makes the interrupted code resume after the instruction at [`elr`](Self::elr): the way to
    /// carry on past a synchronous exception that was handled (the instruction is not retried).
    /// For A64 code, which is all vmbase runs.
    ///
    /// # Safety
    ///
    /// The interrupted code must be able to carry on as if the instruction had completed: the
    /// handler did its work (wrote what it loads, for example), or the code does not rely on it
    /// (an instruction placed there to trap, such as the `udf` of a probe). Skipping a load, a
    /// store or a branch the compiler emitted otherwise breaks what the code after it assumes.
    pub unsafe fn skip_instruction(&mut self) {
        self.elr = self.elr.wrapping_add(INSTRUCTION_SIZE);
    }

    /// The value general-purpose register `x{index}` had when the exception was taken, for
    /// `index` 0 to 18 and 30 (the registers exceptions.S saves).
    pub fn register(&self, index: usize) -> Option<u64> {
        match index {
            0..=18 => Some(self.registers[index]),
            30 => Some(self.registers[19]),
            _ => None,
        }
    }
}

/// Makes the function `handler` the handler of the vector `vector`, checked at build time:
/// `vector` must be one of the eight names exceptions.S calls (`sync_exception_current`,
/// `irq_current`, `fiq_current`, `serr_current`, `sync_lower`, `irq_lower`, `fiq_lower`,
/// `serr_lower`) and `handler` a `fn(elr: u64, spsr: u64, frame: &mut ExceptionFrame)`.
/// It defines the C-ABI symbol `vector` that calls `handler`; an item, at most once per vector
/// (twice fails to link: the symbol is defined twice).
///
/// ```
/// use vmbase::exceptions::ExceptionFrame;
///
/// vmbase::exception_handler!(irq_current, on_irq);
///
/// fn on_irq(_elr: u64, _spsr: u64, _frame: &mut ExceptionFrame) {
///     // Acknowledge the interrupt (at the GIC), then return: the interrupted code resumes.
/// }
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! exception_handler {
    (sync_exception_current, $handler:path) => {
        $crate::__exception_handler!("sync_exception_current", $handler);
    };
    (irq_current, $handler:path) => {
        $crate::__exception_handler!("irq_current", $handler);
    };
    (fiq_current, $handler:path) => {
        $crate::__exception_handler!("fiq_current", $handler);
    };
    (serr_current, $handler:path) => {
        $crate::__exception_handler!("serr_current", $handler);
    };
    (sync_lower, $handler:path) => {
        $crate::__exception_handler!("sync_lower", $handler);
    };
    (irq_lower, $handler:path) => {
        $crate::__exception_handler!("irq_lower", $handler);
    };
    (fiq_lower, $handler:path) => {
        $crate::__exception_handler!("fiq_lower", $handler);
    };
    (serr_lower, $handler:path) => {
        $crate::__exception_handler!("serr_lower", $handler);
    };
    ($vector:ident, $handler:path) => {
        ::core::compile_error!(::core::concat!(
            "`",
            ::core::stringify!($vector),
            "` is not an exception vector of vmbase's; the vectors are sync_exception_current, \
             irq_current, fiq_current, serr_current, sync_lower, irq_lower, fiq_lower and \
             serr_lower"
        ));
    };
}

/// [`exception_handler!`](crate::exception_handler)'s expansion, once the vector's name is
/// checked.
#[doc(hidden)]
#[macro_export]
macro_rules! __exception_handler {
    ($symbol:literal, $handler:path) => {
        const _: () = {
            /// Called by exceptions.S.
            #[export_name = $symbol]
            extern "C" fn exception_handler(
                elr: u64,
                spsr: u64,
                frame: &mut $crate::exceptions::ExceptionFrame,
            ) {
                // An exception handler must have this signature.
                const HANDLER: fn(u64, u64, &mut $crate::exceptions::ExceptionFrame) = $handler;
                HANDLER(elr, spsr, frame)
            }
        };
    };
}

/// Everything known about an exception, printed by [`report`].
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct ExceptionInfo {
    /// The vector it arrived through.
    pub vector: Vector,
    /// `ESR_EL1`, if the vector has a syndrome.
    pub esr: Option<Syndrome>,
    /// `FAR_EL1`, if ESR says it is valid.
    pub far: Option<u64>,
    /// `ELR_EL1`: where the exception was taken.
    pub elr: u64,
    /// `SPSR_EL1`: the interrupted PSTATE.
    pub spsr: u64,
    /// Which stack overflowed, if FAR is in a stack guard page.
    pub stack_overflow: Option<crate::layout::Stack>,
}

impl fmt::Display for ExceptionInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(stack) = self.stack_overflow {
            let name = match stack {
                crate::layout::Stack::Boot => "boot",
                crate::layout::Stack::Exception => "exception",
            };
            writeln!(
                f,
                "vmbase: stack overflow: the {name} stack ran into its guard page"
            )?;
        }
        write!(f, "vmbase: unhandled {}", self.vector)?;
        if let Some(esr) = self.esr {
            write!(f, ": {esr} (ESR={:#010x})", esr.0)?;
        }
        writeln!(f)?;
        if let Some(far) = self.far {
            write!(f, "vmbase: FAR={far:#018x} ")?;
        } else {
            f.write_str("vmbase: ")?;
        }
        write!(f, "ELR={:#018x} SPSR={:#010x}", self.elr, self.spsr)
    }
}

/// What the current exception's registers say: call it first thing in a handler, before
/// anything else can fault and overwrite `ESR_EL1` and `FAR_EL1`.
///
/// Only on aarch64: the VM's architecture (host builds have it in their documentation only).
#[cfg(any(doc, all(target_arch = "aarch64", not(target_os = "linux"), not(test))))]
pub fn current_exception(vector: Vector, elr: u64, spsr: u64) -> ExceptionInfo {
    let esr = vector
        .has_syndrome()
        .then(|| Syndrome(crate::read_sysreg!("esr_el1")));
    let far = esr
        .filter(|esr| esr.far_is_valid())
        .map(|_| crate::read_sysreg!("far_el1"));
    let layout = crate::layout::Layout::current();
    let stack_overflow = far.and_then(|far| layout.overflowed_stack(far as usize));
    ExceptionInfo {
        vector,
        esr,
        far,
        elr,
        spsr,
        stack_overflow,
    }
}

/// Prints what is known about the current exception on the emergency console: the vector, the
/// decoded syndrome, the fault address and the return state. Lock- and allocation-free.
///
/// Only on aarch64: the VM's architecture (host builds have it in their documentation only).
#[cfg(any(doc, all(target_arch = "aarch64", not(target_os = "linux"), not(test))))]
pub fn report(vector: Vector, elr: u64, spsr: u64) {
    crate::eprintln!("{}", current_exception(vector, elr, spsr));
}

/// The default of every handler the binary does not define (see exceptions.S): report, reboot.
#[cfg(any(doc, all(target_arch = "aarch64", not(target_os = "linux"), not(test))))]
#[no_mangle]
extern "C" fn vmbase_default_exception(elr: u64, spsr: u64, vector: u64) -> ! {
    match Vector::from_index(vector) {
        Some(vector) => report(vector, elr, spsr),
        None => crate::console::emergency_write_str("vmbase: exception from an unknown vector\n"),
    }
    crate::power::reboot()
}

/// Called by exceptions.S, on a fresh exception stack, for a synchronous exception or SError
/// taken while an exception handler was running. Never returns.
#[cfg(any(doc, all(target_arch = "aarch64", not(target_os = "linux"), not(test))))]
#[no_mangle]
extern "C" fn vmbase_nested_exception(elr: u64, spsr: u64, kind: u64) -> ! {
    use core::sync::atomic::{AtomicBool, Ordering};
    static REPORTING: AtomicBool = AtomicBool::new(false);
    // If reporting faults too, do not try again: reset at once.
    if !REPORTING.swap(true, Ordering::Relaxed) {
        crate::console::emergency_write_str("vmbase: exception inside an exception handler\n");
        let vector = if kind == 0 {
            Vector::SyncCurrent
        } else {
            Vector::SErrorCurrent
        };
        report(vector, elr, spsr);
    }
    crate::power::reboot()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Stack;

    #[test]
    fn data_abort_on_unmapped_write() {
        // EC 0x25, IL, WnR, DFSC translation fault level 3.
        let esr = Syndrome(0x9600_0047);
        assert_eq!(esr.class(), ExceptionClass::DataAbort);
        assert_eq!(esr.fault_status(), Some(FaultStatus::Translation(3)));
        assert_eq!(esr.is_write(), Some(true));
        assert!(esr.far_is_valid());
        assert_eq!(
            esr.to_string(),
            "data abort: translation fault, level 3, on write"
        );
    }

    #[test]
    fn permission_fault_on_read_only_data() {
        let esr = Syndrome(0x9600_004f);
        assert_eq!(
            esr.to_string(),
            "data abort: permission fault, level 3, on write"
        );
    }

    #[test]
    fn instruction_abort_and_others() {
        assert_eq!(
            Syndrome(0x8600_000f).to_string(),
            "instruction abort: permission fault, level 3"
        );
        assert_eq!(Syndrome(0x8600_000f).is_write(), None);
        assert_eq!(
            Syndrome(0x0200_0000).to_string(),
            "undefined instruction (unknown reason)"
        );
        assert_eq!(Syndrome(0x9a00_0000).to_string(), "SP alignment fault");
        assert_eq!(Syndrome(0xf200_0001).class(), ExceptionClass::Brk);
        assert_eq!(
            Syndrome(0x9600_0021).fault_status(),
            Some(FaultStatus::Alignment)
        );
        assert_eq!(
            Syndrome(0x9600_0010).fault_status(),
            Some(FaultStatus::External)
        );
        assert_eq!(Syndrome(0xfc00_0000).class(), ExceptionClass::Other(0x3f));
        // FnV set: FAR is not valid.
        assert!(!Syndrome(0x9600_0410).far_is_valid());
        assert!(!Syndrome(0x0200_0000).far_is_valid());
    }

    #[test]
    fn every_fault_status_decodes() {
        assert_eq!(
            FaultStatus::from_code(0b00_1001),
            FaultStatus::AccessFlag(1)
        );
        assert_eq!(
            FaultStatus::from_code(0b00_0010),
            FaultStatus::AddressSize(2)
        );
        assert_eq!(
            FaultStatus::from_code(0b01_0101),
            FaultStatus::ExternalOnWalk(1)
        );
        assert_eq!(FaultStatus::from_code(0b11_0000), FaultStatus::TlbConflict);
        assert_eq!(FaultStatus::from_code(0b11_1111), FaultStatus::Other(0x3f));
    }

    #[test]
    fn vectors_in_assembly_order() {
        assert_eq!(Vector::from_index(0), Some(Vector::SyncCurrent));
        assert_eq!(Vector::from_index(1), Some(Vector::IrqCurrent));
        assert_eq!(Vector::from_index(7), Some(Vector::SErrorLower));
        assert_eq!(Vector::from_index(8), None);
        assert!(!Vector::IrqCurrent.has_syndrome());
    }

    fn frame(elr: u64) -> ExceptionFrame {
        ExceptionFrame {
            registers: core::array::from_fn(|i| i as u64),
            elr,
            spsr: 0x3c5,
            _fpsr: [0; 2],
            _simd: [0; 24],
        }
    }

    #[test]
    fn handlers_change_where_the_interrupted_code_resumes() {
        let mut saved = frame(0x8020_1000);
        assert_eq!((saved.elr(), saved.spsr()), (0x8020_1000, 0x3c5));
        // SAFETY: Nothing resumes from this frame: it is not on an exception stack.
        unsafe { saved.skip_instruction() };
        assert_eq!(saved.elr(), 0x8020_1004);
        // SAFETY: As above.
        unsafe { saved.set_elr(0x8020_2000) };
        assert_eq!(saved.elr(), 0x8020_2000);
        assert_eq!(saved.spsr(), 0x3c5);
    }

    #[test]
    fn saved_registers_by_name() {
        let saved = frame(0);
        assert_eq!(saved.register(0), Some(0));
        assert_eq!(saved.register(18), Some(18));
        assert_eq!(saved.register(30), Some(19));
        assert_eq!(saved.register(19), None);
        assert_eq!(saved.register(29), None);
        assert_eq!(saved.register(31), None);
    }

    #[test]
    fn report_text() {
        let info = ExceptionInfo {
            vector: Vector::SyncCurrent,
            esr: Some(Syndrome(0x9600_0047)),
            far: Some(0x8042_5ff0),
            elr: 0x8020_1234,
            spsr: 0x3c4,
            stack_overflow: Some(Stack::Boot),
        };
        assert_eq!(
            info.to_string(),
            "vmbase: stack overflow: the boot stack ran into its guard page\n\
             vmbase: unhandled synchronous exception at the current EL: data abort: \
             translation fault, level 3, on write (ESR=0x96000047)\n\
             vmbase: FAR=0x0000000080425ff0 ELR=0x0000000080201234 SPSR=0x000003c4"
        );
        let irq = ExceptionInfo {
            vector: Vector::IrqCurrent,
            esr: None,
            far: None,
            stack_overflow: None,
            ..info
        };
        assert_eq!(
            irq.to_string(),
            "vmbase: unhandled IRQ at the current EL\nvmbase: ELR=0x0000000080201234 SPSR=0x000003c4"
        );
    }
}
