// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The `-bios` stub that gives the guest crosvm's entry state, which no QEMU loader provides.

use crate::layout::{FDT_ADDRESS, IMAGE_ADDRESS};

/// The stub's instructions. QEMU runs them from address 0 at EL1h with the MMU off and DAIF
/// masked, so setting the argument registers and branching is all that is left to do.
const BOOT_STUB: [u32; 6] = [
    0xd2b0_0000, // movz x0, #0x8000, lsl #16   // x0 = FDT_ADDRESS
    0xaa1f_03e1, // mov  x1, xzr
    0xaa1f_03e2, // mov  x2, xzr
    0xaa1f_03e3, // mov  x3, xzr
    0xd2b0_0404, // movz x4, #0x8020, lsl #16   // x4 = IMAGE_ADDRESS
    0xd61f_0080, // br   x4
];

// The immediates above are hand-encoded: tie them to the layout they implement.
const _: () = assert!(FDT_ADDRESS == 0x8000 << 16);
const _: () = assert!(IMAGE_ADDRESS == 0x8020 << 16);

/// The boot stub as the little-endian bytes QEMU loads at address 0 (`-bios`): it enters the
/// image at `0x8020_0000` with crosvm's registers. Useful to run QEMU by hand.
pub fn boot_stub() -> Vec<u8> {
    BOOT_STUB
        .iter()
        .flat_map(|instruction| instruction.to_le_bytes())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::process::Command;

    /// The assembly the constants above claim to encode.
    const BOOT_STUB_ASSEMBLY: &str = "
        movz x0, #0x8000, lsl #16
        mov  x1, xzr
        mov  x2, xzr
        mov  x3, xzr
        movz x4, #0x8020, lsl #16
        br   x4
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
        assert_eq!(boot_stub(), fs::read(&binary).unwrap());
    }

    #[test]
    fn stub_is_little_endian() {
        assert_eq!(boot_stub()[..4], [0x00, 0x00, 0xb0, 0xd2]);
        assert_eq!(boot_stub().len(), 4 * BOOT_STUB.len());
    }
}
