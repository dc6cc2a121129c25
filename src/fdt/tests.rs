// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Host tests of the reader, and the test trees the rest of the crate's tests use.

use super::header::*;
use super::walk::*;
use super::*;
use crate::memory::AddressRange;

/// Builds FDT blobs for tests.
pub(crate) struct FdtBuilder {
    structure: Vec<u8>,
    strings: Vec<u8>,
}

impl FdtBuilder {
    pub(crate) fn new() -> Self {
        Self {
            structure: Vec::new(),
            strings: Vec::new(),
        }
    }

    pub(crate) fn token(&mut self, token: u32) -> &mut Self {
        self.structure.extend_from_slice(&token.to_be_bytes());
        self
    }

    pub(crate) fn begin(&mut self, name: &str) -> &mut Self {
        self.token(FDT_BEGIN_NODE);
        self.structure.extend_from_slice(name.as_bytes());
        self.structure.push(0);
        self.structure
            .resize(self.structure.len().next_multiple_of(4), 0);
        self
    }

    pub(crate) fn end(&mut self) -> &mut Self {
        self.token(FDT_END_NODE)
    }

    pub(crate) fn prop(&mut self, name: &str, value: &[u8]) -> &mut Self {
        let name_offset = self.strings.len() as u32;
        self.strings.extend_from_slice(name.as_bytes());
        self.strings.push(0);
        self.token(FDT_PROP);
        self.structure
            .extend_from_slice(&(value.len() as u32).to_be_bytes());
        self.structure.extend_from_slice(&name_offset.to_be_bytes());
        self.structure.extend_from_slice(value);
        self.structure
            .resize(self.structure.len().next_multiple_of(4), 0);
        self
    }

    pub(crate) fn prop_u32s(&mut self, name: &str, cells: &[u32]) -> &mut Self {
        let value: Vec<u8> = cells.iter().flat_map(|c| c.to_be_bytes()).collect();
        self.prop(name, &value)
    }

    pub(crate) fn build(&mut self) -> Vec<u8> {
        self.token(FDT_END);
        let reserve_map = HEADER_SIZE;
        let structure = reserve_map + 16;
        let strings = structure + self.structure.len();
        let total = strings + self.strings.len();
        let mut blob = Vec::new();
        for field in [
            FDT_MAGIC,
            total as u32,
            structure as u32,
            strings as u32,
            reserve_map as u32,
            17,
            16,
            0,
            self.strings.len() as u32,
            self.structure.len() as u32,
        ] {
            blob.extend_from_slice(&field.to_be_bytes());
        }
        blob.extend_from_slice(&[0; 16]);
        blob.extend_from_slice(&self.structure);
        blob.extend_from_slice(&self.strings);
        blob
    }
}

/// The shape of crosvm's tree: ns16550a serial at 0x3f8, stdout-path to it.
pub(crate) fn crosvm_like() -> Vec<u8> {
    FdtBuilder::new()
        .begin("")
        .prop_u32s("#address-cells", &[2])
        .prop_u32s("#size-cells", &[2])
        .begin("chosen")
        .prop("stdout-path", b"/U6_16550A@3f8\0")
        .end()
        .begin("U6_16550A@3f8")
        .prop("compatible", b"ns16550a\0")
        .prop_u32s("reg", &[0, 0x3f8, 0, 8])
        .end()
        .end()
        .build()
}

/// QEMU virt's tree, dumped with `-M virt,gic-version=3,dumpdtb=...` (QEMU 7.2).
const QEMU_VIRT_DTB: &[u8] = include_bytes!("../../tests/data/qemu-virt.dtb");

/// The inputs in `tests/data/fdt-regressions/`: the fuzzer's seeds, hand-made malformed
/// trees and every input the fuzzer (`fuzz/`) ever crashed on. Never empty: a test that
/// replays them must replay something.
pub(crate) fn regression_inputs() -> Vec<Vec<u8>> {
    // Cargo runs the tests with the package's path at hand; Soong sets no CARGO_MANIFEST_DIR and
    // installs the test's `data` files under the test binary's directory (Android.bp).
    let base = match option_env!("CARGO_MANIFEST_DIR") {
        Some(package) => std::path::PathBuf::from(package),
        None => std::env::current_exe()
            .unwrap()
            .parent()
            .unwrap()
            .to_path_buf(),
    };
    let dir = base.join("tests/data/fdt-regressions");
    let inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
        .collect();
    assert!(!inputs.is_empty(), "no inputs in {}", dir.display());
    inputs
}

/// QEMU virt's tree, in a heap buffer (8-byte aligned, unlike `include_bytes!`).
pub(crate) fn qemu_virt() -> Vec<u8> {
    QEMU_VIRT_DTB.to_vec()
}

#[test]
fn scans_stop_and_resume() {
    let blob = qemu_virt();
    let fdt = Fdt::new(&blob).unwrap();
    let root = fdt.root().unwrap();
    let all: Vec<_> = root.children().map(|c| c.unwrap().name()).collect();
    let mut first = Vec::new();
    let after = root
        .scan_children(None, |child| {
            first.push(child.name());
            Ok(child.name() == b"fw-cfg@9020000")
        })
        .unwrap();
    let mut rest = Vec::new();
    let end = root
        .scan_children(after, |child| {
            rest.push(child.name());
            Ok(false)
        })
        .unwrap();
    assert_eq!(end, None);
    assert_eq!(first.len(), 4);
    assert_eq!([first, rest].concat(), all);
}

#[test]
fn child_offsets_name_each_child_and_resume() {
    let blob = qemu_virt();
    let fdt = Fdt::new(&blob).unwrap();
    let root = fdt.root().unwrap();
    let (cells, children) = root.cells_and_children().unwrap();
    let all: Vec<_> = root.children().map(|c| c.unwrap()).collect();
    let mut first = Vec::new();
    let after = root
        .scan_child_offsets(children, |offset, name_len, first_bytes| {
            first.push((offset, name_len, first_bytes));
            offset == all[3].offset()
        })
        .unwrap();
    let mut rest = Vec::new();
    let end = root
        .scan_child_offsets(after.unwrap(), |offset, name_len, first_bytes| {
            rest.push((offset, name_len, first_bytes));
            false
        })
        .unwrap();
    assert_eq!(end, None);
    assert_eq!(first.len(), 4);
    let seen = [first, rest].concat();
    assert_eq!(seen.len(), all.len());
    for ((offset, name_len, first_bytes), child) in seen.into_iter().zip(&all) {
        assert_eq!(offset, child.offset());
        assert_eq!(name_len, child.name().len());
        let mut padded = child.name().to_vec();
        padded.resize(4.max(padded.len()), 0);
        assert_eq!(first_bytes, padded[..4]);
        assert_eq!(fdt.node_at(offset, cells).unwrap().name(), child.name());
    }
}

#[test]
fn stdout_path_ends_at_the_first_colon_or_nul() {
    assert_eq!(split_stdout_path(b"/uart@1\0"), (&b"/uart@1"[..], &b""[..]));
    assert_eq!(split_stdout_path(b"serial0"), (&b"serial0"[..], &b""[..]));
    assert_eq!(
        split_stdout_path(b"serial0:115200n8\0:x"),
        (&b"serial0"[..], &b"115200n8"[..])
    );
    assert_eq!(split_stdout_path(b"/a\0:b\0"), (&b"/a"[..], &b""[..]));
    assert_eq!(split_stdout_path(b":9600"), (&b""[..], &b"9600"[..]));
}

#[test]
fn qemu_virt_nodes_and_properties() {
    let blob = qemu_virt();
    let fdt = Fdt::new(&blob).unwrap();
    fdt.check().unwrap();
    let uart = fdt.node(b"/pl011@9000000").unwrap().unwrap();
    assert!(uart.is_compatible(b"arm,pl011").unwrap());
    assert_eq!(
        uart.parent_cells(),
        Cells {
            address: 2,
            size: 2
        }
    );
    let reg: Vec<_> = uart.reg().unwrap().unwrap().collect();
    assert_eq!(reg, [[0x900_0000, 0x1000]]);
    assert_eq!(
        fdt.node(b"/pl011").unwrap().unwrap().name(),
        b"pl011@9000000"
    );
    assert!(fdt.node(b"/pl011@1").unwrap().is_none());
    let memory: Vec<_> = fdt.memory().unwrap().map(Result::unwrap).collect();
    assert_eq!(
        memory,
        vec![AddressRange::from(0x4000_0000..0x4000_0000 + 0x52c0_0000)]
    );
    let chosen = fdt.chosen().unwrap().unwrap();
    assert_eq!(chosen.stdout_path, Some(&b"/pl011@9000000"[..]));
    assert_eq!(chosen.initrd, None);
    let intc: Vec<_> = fdt
        .compatible_nodes(b"arm,gic-v3")
        .map(|node| node.unwrap().name())
        .collect();
    assert_eq!(intc, [b"intc@8000000"]);
    let names: Vec<_> = fdt
        .node(b"/psci")
        .unwrap()
        .unwrap()
        .properties()
        .map(|p| p.unwrap().name)
        .collect();
    assert!(names.contains(&&b"method"[..]));
}

#[test]
fn aliases_and_translated_buses() {
    let blob = FdtBuilder::new()
        .begin("")
        .begin("aliases")
        .prop("serial0", b"/soc/uart@1000\0")
        .prop("soc", b"/soc\0")
        .end()
        .begin("chosen")
        .prop("stdout-path", b"serial0:115200n8\0")
        .prop("bootargs", b"console=ttyS0\0")
        .prop_u32s("linux,initrd-start", &[0x8100_0000])
        .prop("linux,initrd-end", &0x8200_0000u64.to_be_bytes())
        .end()
        .begin("soc")
        .prop_u32s("#address-cells", &[1])
        .prop_u32s("#size-cells", &[1])
        .prop_u32s("ranges", &[0x1000, 0, 0x2000_1000, 0x1000])
        .begin("uart@1000")
        .prop("compatible", b"vendor,uart\0arm,pl011\0")
        .prop_u32s("reg", &[0x1000, 0x100, 0x3000, 0x10])
        .end()
        .end()
        .end()
        .build();
    let fdt = Fdt::new(&blob).unwrap();
    fdt.check().unwrap();
    let chosen = fdt.chosen().unwrap().unwrap();
    assert_eq!(chosen.bootargs, Some(&b"console=ttyS0"[..]));
    assert_eq!(
        chosen.initrd,
        Some(AddressRange::from(0x8100_0000..0x8200_0000))
    );
    let (path, options) = split_stdout_path(chosen.stdout_path.unwrap());
    assert_eq!((path, options), (&b"serial0"[..], &b"115200n8"[..]));
    let uart = fdt.resolve(path).unwrap().unwrap();
    assert_eq!(uart.name(), b"uart@1000");
    assert_eq!(
        fdt.resolve(b"soc/uart").unwrap().unwrap().name(),
        b"uart@1000"
    );
    assert!(fdt.resolve(b"serial1").unwrap().is_none());
    let reg: Vec<_> = uart.reg().unwrap().unwrap().collect();
    assert_eq!(reg, [[0x1000, 0x100], [0x3000, 0x10]]);
    let soc = fdt.node(b"/soc").unwrap().unwrap();
    let ranges: Vec<_> = soc.ranges().unwrap().unwrap().collect();
    assert_eq!(ranges, [[0x1000, 0x2000_1000, 0x1000]]);
    let found: Vec<_> = fdt
        .compatible_nodes(b"arm,pl011")
        .map(|n| n.unwrap().name())
        .collect();
    assert_eq!(found, [b"uart@1000"]);
}

#[test]
fn absurd_cells_and_values_are_errors() {
    let tree = |cells: u32, reg: &[u32]| {
        FdtBuilder::new()
            .begin("")
            .prop_u32s("#address-cells", &[cells])
            .prop_u32s("#size-cells", &[1])
            .begin("memory@0")
            .prop("device_type", b"memory\0")
            .prop_u32s("reg", reg)
            .end()
            .end()
            .build()
    };
    let huge = tree(0xffff_ffff, &[0, 0x1000]);
    let fdt = Fdt::new(&huge).unwrap();
    assert_eq!(fdt.memory().unwrap().next(), Some(Err(FdtError::BadCells)));
    let pci = tree(3, &[0, 0, 0, 0x1000]);
    let fdt = Fdt::new(&pci).unwrap();
    assert_eq!(fdt.memory().unwrap().next(), Some(Err(FdtError::BadCells)));
    let ragged = tree(1, &[0, 0x1000, 7]);
    let fdt = Fdt::new(&ragged).unwrap();
    assert_eq!(fdt.memory().unwrap().next(), Some(Err(FdtError::BadValue)));
    let wraps = tree(1, &[0xffff_ffff, 0xffff_ffff]);
    let fdt = Fdt::new(&wraps).unwrap();
    assert_eq!(
        fdt.memory().unwrap().next(),
        Some(Ok(AddressRange::from(0xffff_ffff..0x1_ffff_fffe)))
    );

    let overflows = tree(2, &[0xffff_ffff, 0xffff_f000, 0x1000]);
    let error = Fdt::new(&overflows).unwrap().memory().unwrap().next();
    assert_eq!(
        error,
        Some(Err(FdtError::RegOverflow {
            address: 0xffff_ffff_ffff_f000,
            size: 0x1000
        }))
    );
    assert_eq!(
        error.unwrap().unwrap_err().to_string(),
        "a reg entry at 0xfffffffffffff000 of size 0x1000 ends past the 64-bit address space"
    );
}

#[test]
fn each_bad_initrd_has_its_own_error() {
    let chosen = |properties: &[(&str, u32)]| {
        let mut builder = FdtBuilder::new();
        builder.begin("").begin("chosen");
        for &(name, value) in properties {
            builder.prop_u32s(name, &[value]);
        }
        builder.end().end().build()
    };
    let cases = [
        (
            chosen(&[("linux,initrd-start", 0x2000), ("linux,initrd-end", 0x1000)]),
            FdtError::InitrdEndBeforeStart {
                start: 0x2000,
                end: 0x1000,
            },
            "/chosen/linux,initrd-end (0x1000) is below linux,initrd-start (0x2000)",
        ),
        (
            chosen(&[("linux,initrd-start", 0x2000)]),
            FdtError::InitrdHalf("linux,initrd-end"),
            "/chosen has only one of linux,initrd-start and linux,initrd-end: no \
             linux,initrd-end",
        ),
        (
            chosen(&[("linux,initrd-end", 0x2000)]),
            FdtError::InitrdHalf("linux,initrd-start"),
            "/chosen has only one of linux,initrd-start and linux,initrd-end: no \
             linux,initrd-start",
        ),
    ];
    for (blob, error, message) in cases {
        assert_eq!(Fdt::new(&blob).unwrap().chosen(), Err(error));
        assert_eq!(error.to_string(), message);
    }
    // A value of the wrong length is still that.
    let three_bytes = FdtBuilder::new()
        .begin("")
        .begin("chosen")
        .prop("linux,initrd-start", &[0, 0, 0])
        .prop_u32s("linux,initrd-end", &[0x1000])
        .end()
        .end()
        .build();
    assert_eq!(
        Fdt::new(&three_bytes).unwrap().chosen(),
        Err(FdtError::BadValue)
    );
}

#[test]
fn component_without_unit_address_matches() {
    assert!(node_name_matches(b"uart@1000", b"uart"));
    assert!(!node_name_matches(b"uart@1000", b"uart@2000"));
    assert!(!node_name_matches(b"uartx", b"uart"));
}

#[test]
fn header_errors() {
    assert_eq!(Fdt::new(&[]).unwrap_err(), FdtError::Truncated);
    assert_eq!(Fdt::new(&[0; 64]).unwrap_err(), FdtError::BadMagic(0));
    let mut blob = crosvm_like();
    blob.truncate(blob.len() - 1);
    assert_eq!(Fdt::new(&blob).unwrap_err(), FdtError::Truncated);

    let mut blob = crosvm_like();
    blob[8..12].copy_from_slice(&0x7fff_fff0u32.to_be_bytes());
    assert_eq!(Fdt::new(&blob).unwrap_err(), FdtError::BadLayout);

    let mut blob = crosvm_like();
    blob[24..28].copy_from_slice(&99u32.to_be_bytes());
    assert_eq!(
        Fdt::new(&blob).unwrap_err(),
        FdtError::UnsupportedVersion(99)
    );
}

#[test]
fn check_finds_what_lookups_may_skip() {
    let good = crosvm_like();
    Fdt::new(&good).unwrap().check().unwrap();
    // A second root after the first.
    let mut blob = good.clone();
    let structure = u32::from_be_bytes(blob[8..12].try_into().unwrap()) as usize;
    let size = u32::from_be_bytes(blob[36..40].try_into().unwrap()) as usize;
    blob[structure + size - 4..structure + size].copy_from_slice(&FDT_NOP.to_be_bytes());
    assert!(Fdt::new(&blob).unwrap().check().is_err());
}

#[test]
fn corruptions_are_errors_not_panics() {
    for good in [crosvm_like(), QEMU_VIRT_DTB[..2048].to_vec()] {
        // Corrupt each byte of the blob in turn: every outcome must be a value.
        for index in 0..good.len() {
            for value in [0x00, 0x01, 0x02, 0x03, 0x04, 0x09, 0x7f, 0xff] {
                let mut blob = good.clone();
                blob[index] = value;
                read_everything(&blob);
            }
        }
    }
    let good = crosvm_like();
    // And every truncation of a valid tree whose header still claims the full size.
    for len in 0..good.len() {
        assert!(Fdt::new(&good[..len]).is_err());
    }
}

/// The fuzzer's seeds, hand-made malformed trees and any input the fuzzer (`fuzz/`) ever
/// crashed on: each must be read to a result, never a panic.
#[test]
fn fuzz_regressions_never_panic() {
    for blob in regression_inputs() {
        read_everything(&blob);
    }
}

#[test]
fn blobs_are_only_taken_from_inside_the_region() {
    let mut memory = vec![0u8; 4096];
    let tree = crosvm_like();
    memory[256..256 + tree.len()].copy_from_slice(&tree);
    let base = memory.as_ptr() as usize;
    let region = base..base + memory.len();
    let at = |offset: usize| (base + offset) as u64;
    // SAFETY: memory is readable and not written while these slices are used.
    unsafe {
        assert_eq!(
            from_region(at(256), region.clone()),
            Some(&memory[256..256 + tree.len()])
        );
        assert_eq!(from_region(at(0), region.clone()), None, "no FDT magic");
        assert_eq!(from_region(0xdead_beef, region.clone()), None);
        assert_eq!(from_region(u64::MAX, region.clone()), None);
        assert_eq!(
            from_region(at(4096 - 8), region.clone()),
            None,
            "header crosses the end"
        );
        // A header claiming more than the region holds.
        memory[4096 - 64..4096 - 60].copy_from_slice(&FDT_MAGIC.to_be_bytes());
        memory[4096 - 60..4096 - 56].copy_from_slice(&0x1000u32.to_be_bytes());
        assert_eq!(from_region(at(4096 - 64), region.clone()), None);
    }
}

#[test]
fn blobs_larger_than_the_maximum_are_refused_even_in_a_larger_region() {
    let mut memory = vec![0u8; MAX_SIZE + 4096];
    let tree = crosvm_like();
    memory[..tree.len()].copy_from_slice(&tree);
    let base = memory.as_ptr() as usize;
    let region = base..base + memory.len();
    // SAFETY: memory is readable and not written while these slices are used.
    unsafe {
        assert_eq!(
            from_region(base as u64, region.clone()),
            Some(&memory[..tree.len()])
        );
        memory[4..8].copy_from_slice(&(MAX_SIZE as u32 + 8).to_be_bytes());
        assert_eq!(from_region(base as u64, region.clone()), None);
    }
}

#[test]
fn deep_nesting_is_refused_where_levels_are_tracked() {
    let mut builder = FdtBuilder::new();
    builder.begin("");
    for _ in 0..MAX_DEPTH {
        builder.begin("n");
    }
    for _ in 0..=MAX_DEPTH {
        builder.end();
    }
    let blob = builder.build();
    let fdt = Fdt::new(&blob).unwrap();
    assert!(matches!(
        fdt.compatible_nodes(b"x").next(),
        Some(Err(FdtError::TooDeep))
    ));
    // Path lookups and checks track no levels, so they still work.
    fdt.check().unwrap();
    assert!(fdt.node(b"/n/n/n").unwrap().is_some());
}

#[test]
fn the_walk_stops_where_asked_and_skips_subtrees() {
    let blob = FdtBuilder::new()
        .begin("")
        .prop_u32s("a", &[1])
        .prop("b", b"xyzzy")
        .begin("first")
        .prop_u32s("nested", &[2])
        .begin("grandchild")
        .end()
        .end()
        .begin("second")
        .end()
        .end()
        .build();
    let fdt = Fdt::new(&blob).unwrap();
    let body = fdt.root().unwrap().body / 4;
    let mut properties = Vec::new();
    let mut children = Vec::new();
    let stop = fdt
        .walk(
            body,
            |_, name_offset, value| {
                properties.push((fdt.string(name_offset).unwrap(), fdt.value(value).unwrap()));
                false
            },
            |_, name_len, _| {
                children.push(name_len);
                false
            },
        )
        .unwrap();
    // Only the root's own properties and children: "nested" and "grandchild" are skipped.
    assert_eq!(
        properties,
        [(&b"a"[..], &[0, 0, 0, 1][..]), (b"b", b"xyzzy")]
    );
    assert_eq!(children, ["first".len(), "second".len()]);
    let Stop::End(after) = stop else {
        panic!("{stop:?}");
    };
    assert_eq!(
        fdt.token(after * 4).unwrap().1,
        after * 4 + 4,
        "FDT_END follows"
    );

    let second = fdt
        .walk(body, |_, _, _| false, |_, name_len, _| name_len == 6)
        .unwrap();
    let Stop::Child { begin, body, .. } = second else {
        panic!("{second:?}");
    };
    assert_eq!(
        fdt.node_at(begin * 4, Cells::default()).unwrap().name(),
        b"second"
    );
    assert_eq!(fdt.skip_subtree(body * 4).unwrap() / 4, after - 1);
    let first_property = fdt.walk(body, |_, _, _| true, |_, _, _| true).unwrap();
    assert_eq!(
        first_property,
        Stop::End(after - 1),
        "second has no properties"
    );
}

#[test]
fn the_reader_version_bounds_last_comp_version() {
    let mut blob = crosvm_like();
    for (last_comp_version, readable) in [(16, true), (READER_VERSION, true), (18, false)] {
        blob[24..28].copy_from_slice(&last_comp_version.to_be_bytes());
        assert_eq!(Fdt::new(&blob).is_ok(), readable, "{last_comp_version}");
    }
}

#[test]
fn stdout_is_the_node_and_address_that_stdout_path_names() {
    let blob = qemu_virt();
    let fdt = Fdt::new(&blob).unwrap();
    let stdout = fdt.stdout().unwrap();
    assert_eq!(stdout.node.name(), b"pl011@9000000");
    assert_eq!(stdout.address, 0x900_0000);

    let blob = crosvm_like();
    let fdt = Fdt::new(&blob).unwrap();
    let stdout = fdt.stdout().unwrap();
    assert_eq!(
        (stdout.node.name(), stdout.address),
        (&b"U6_16550A@3f8"[..], 0x3f8)
    );

    let blob = FdtBuilder::new()
        .begin("")
        .begin("chosen")
        .end()
        .end()
        .build();
    assert_eq!(
        Fdt::new(&blob).unwrap().stdout().err(),
        Some(StdoutError::NoStdoutPath)
    );
}
