// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The `-bios` stub that gives the guest crosvm's entry state, which no QEMU loader provides.

use crate::plan::placement::EntryState;

/// The stub's instructions; the values they load follow them. QEMU runs them from address 0
/// at EL1h (at EL2 for a protected VM, whose pKVM double then runs first) with the MMU off and
/// DAIF masked, so loading the argument registers and branching is all that is left to do. Each
/// `ldr` is PC-relative (LDR literal: `0x5800_0000 | (offset / 4) << 5 | Rt`); the values start
/// at byte 24, 8-byte aligned.
const INSTRUCTIONS: [u32; 6] = [
    0x5800_00c0, // ldr x0, [pc + 24]   // from byte 24: x0
    0x5800_00e1, // ldr x1, [pc + 28]   // from byte 32: x1
    0x5800_0102, // ldr x2, [pc + 32]   // from byte 40: x2
    0x5800_0123, // ldr x3, [pc + 36]   // from byte 48: x3
    0x5800_0144, // ldr x4, [pc + 40]   // from byte 56: the entry point
    0xd61f_0080, // br  x4
];

/// The boot stub as the little-endian bytes QEMU loads at address 0 (`-bios`): it enters a
/// bootloader image at `0x8020_0000` with crosvm's registers. Useful to run QEMU by hand.
pub fn boot_stub() -> Vec<u8> {
    boot_stub_for(&EntryState::BOOTLOADER)
}

/// The boot stub that starts the guest in `entry`.
pub(crate) fn boot_stub_for(entry: &EntryState) -> Vec<u8> {
    INSTRUCTIONS
        .iter()
        .flat_map(|instruction| instruction.to_le_bytes())
        .chain(
            [entry.x0, entry.x1, entry.x2, entry.x3, entry.pc]
                .iter()
                .flat_map(|value| value.to_le_bytes()),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::process::Command;

    /// The assembly the constants above claim to encode, for some entry state.
    const BOOT_STUB_ASSEMBLY: &str = "
        ldr x0, x0_value
        ldr x1, x1_value
        ldr x2, x2_value
        ldr x3, x3_value
        ldr x4, pc_value
        br  x4
        x0_value: .quad 0x8fdf0000
        x1_value: .quad 0x80000000
        x2_value: .quad 0x1f6e000
        x3_value: .quad 0x7fc00000
        pc_value: .quad 0x40000000
    ";

    #[test]
    fn stub_matches_assembler_output() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("stub.S");
        let object = dir.path().join("stub.o");
        let binary = dir.path().join("stub.bin");
        fs::write(&source, BOOT_STUB_ASSEMBLY).unwrap();
        let status = Command::new("clang")
            .args(["--target=aarch64-none-elf", "-c", "-o"])
            .arg(&object)
            .arg(&source)
            .status()
            .expect("clang is needed to check the boot stub (apt-get install clang)");
        assert!(status.success(), "clang failed: {status}");
        let status = Command::new("llvm-objcopy")
            .args(["-O", "binary", "-j", ".text"])
            .arg(&object)
            .arg(&binary)
            .status()
            .expect("llvm-objcopy is needed to check the boot stub (apt-get install llvm)");
        assert!(status.success(), "llvm-objcopy failed: {status}");
        let firmware_entry = EntryState {
            pc: 0x7fc0_0000,
            x0: 0x8fdf_0000,
            x1: 0x8000_0000,
            x2: 0x1f6_e000,
            x3: 0,
        };
        assert_eq!(
            boot_stub_for(&firmware_entry.behind_double(0x4000_0000)),
            fs::read(&binary).unwrap()
        );
    }

    #[test]
    fn bootloader_stub_is_little_endian_and_six_instructions() {
        let stub = boot_stub();
        assert_eq!(stub[..4], [0xc0, 0x00, 0x00, 0x58]);
        assert_eq!(stub.len(), 4 * 6 + 8 * 5);
        assert_eq!(stub[24..32], 0x8000_0000_u64.to_le_bytes());
        assert_eq!(stub[48..56], [0; 8]);
        assert_eq!(stub[56..64], 0x8020_0000_u64.to_le_bytes());
    }
}
