# Copyright 2026 The vmbase Authors
# SPDX-License-Identifier: Apache-2.0
#
# A thin layer over cargo. Guests are built for aarch64-unknown-none and turned into raw images
# under out/ (what Soong's raw_binary does); host tools and tests build for the host. Every
# target first installs what is missing (tools/install-deps.sh).

TARGET := aarch64-unknown-none
GUEST_BUILD := target/$(TARGET)/release
OUT := out
VM := target/release/vm
# `vm` for arm64 Linux hosts: static, no C toolchain needed (.cargo/config.toml links it).
VM_AARCH64_TARGET := aarch64-unknown-linux-musl
# Guest packages, and the raw images they produce.
GUEST_PACKAGES := vmbase_example vmbase_linuxboot vmbase_faults vmbase_hello baseline_hello \
	vmbase_virtio pkvm_double
GUEST_IMAGES := vmbase_example vmbase_linuxboot vmbase_faults vmbase_faults_early vmbase_hello \
	baseline_hello vmbase_virtio pkvm_double
# The guests' host tests (each guest's tests/ folder), and the host crates that tests, benchmarks
# and guest builds share.
GUEST_TEST_PACKAGES := vmbase_example_tests vmbase_faults_tests vmbase_virtio_tests \
	vmbase_linuxboot_checks
HOST_TOOL_PACKAGES := vmbase_test_harness vmbase_console_check vmbase_bench vmbase_guest_build

.DEFAULT_GOAL := vmbase_example
.PHONY: deps vmbase_example guests vm vm-aarch64 install run test lint fuzz stress bench clean

deps:
	@tools/install-deps.sh

# Debian's arm64 kernel and busybox, cached outside the repository, for the tests that boot Linux.
.PHONY: linux-deps kvm-deps
linux-deps: deps
	@tools/install-deps.sh linux

# Also Debian's arm64 QEMU and its libraries, for the nested-KVM tests (`cargo test kvm`).
kvm-deps: linux-deps
	@tools/install-deps.sh qemu-arm64

# Debian's U-Boot and EDK2 for QEMU, which `make bench` compares vmbase_linuxboot with.
.PHONY: peer-deps
peer-deps: deps
	@tools/install-deps.sh peers

# out/vmbase_example.bin
vmbase_example: deps
	@cargo build --quiet --release --target $(TARGET) -p vmbase_example
	@mkdir -p $(OUT)
	@llvm-objcopy -O binary $(GUEST_BUILD)/vmbase_example $(OUT)/vmbase_example.bin

# Every guest image the tests boot.
guests: deps
	@cargo build --quiet --release --target $(TARGET) $(addprefix -p ,$(GUEST_PACKAGES))
	@mkdir -p $(OUT)
	@for image in $(GUEST_IMAGES); do \
		llvm-objcopy -O binary $(GUEST_BUILD)/$$image $(OUT)/$$image.bin || exit 1; \
	done

# vm, and the pKVM double that `vm run --protected` runs the guest under.
vm: deps
	@cargo build --quiet --release -p vmclient --bin vm
	@cargo build --quiet --release --target $(TARGET) -p pkvm_double
	@mkdir -p $(OUT)
	@llvm-objcopy -O binary $(GUEST_BUILD)/pkvm_double $(OUT)/pkvm_double.bin

# target/aarch64-unknown-linux-musl/release/vm, for arm64 hosts (and the nested-KVM tests).
vm-aarch64: deps
	@cargo build --quiet --release --target $(VM_AARCH64_TARGET) -p vmclient --bin vm

# `vm` on PATH (~/.cargo/bin), for cargo-runner.sh and your own crates.
install: deps
	cargo install --quiet --locked --path host

run: vmbase_example vm
	@$(VM) run --bootloader $(OUT)/vmbase_example.bin

lint: deps
	cargo fmt --all -- --check
	cargo fmt --manifest-path fuzz/Cargo.toml -- --check
	CARGO_TARGET_DIR=fuzz/target/replay RUSTFLAGS="--cfg fuzzing" \
		cargo clippy --quiet --manifest-path fuzz/Cargo.toml --lib --bins -- -D warnings
	cargo clippy --quiet $(addprefix -p ,vmbase vmclient pkvm_double $(HOST_TOOL_PACKAGES) $(GUEST_TEST_PACKAGES)) --all-targets -- -D warnings
	cargo clippy --quiet --release --target $(TARGET) $(addprefix -p ,vmbase vmbase_linuxboot_checks $(GUEST_PACKAGES)) -- -D warnings
	# The example as Soong builds it: without its default `sha2` feature (docs/android.md).
	cargo clippy --quiet --release --target $(TARGET) -p vmbase_example --no-default-features -- -D warnings
	rustfmt --edition 2021 --check template/build.rs template/src/main.rs
	RUSTDOCFLAGS="-D warnings" cargo doc --quiet --no-deps -p vmbase -p vmclient
	RUSTDOCFLAGS="-D warnings" cargo doc --quiet --no-deps -p vmbase --target $(TARGET)
	python3 tools/check_soong.py
	python3 tools/build_as_soong.py
	python3 -m unittest discover --quiet -s tools -p 'test_*.py'
	python3 tools/check_snippets.py

test: lint guests vm vm-aarch64
	cargo test --workspace
	tools/test-workspace.sh
	tools/test-template.sh
	tools/test-fuzz.sh

fuzz: deps
	@tools/fuzz.sh

stress: vmbase_example vm
	@tools/stress.sh

bench: guests vm linux-deps peer-deps
	@cargo run --quiet --release -p vmbase_bench

clean:
	cargo clean
	rm -rf $(OUT)
