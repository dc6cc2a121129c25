// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! AOSP's `vm run` JSON config format, read into a [`VirtualMachineRawConfig`].

use crate::bounded_read::read_regular_file;
use crate::config::Accelerator;
use crate::config::{DEFAULT_PLATFORM_VERSION, DiskImage, VirtualMachineRawConfig};
use crate::error::Error;
use crate::host::host_cpu_count;
use serde::Deserialize;
use std::io;
use std::path::{Path, PathBuf};

/// How many CPUs a JSON config asks for, with AOSP's names.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum CpuTopology {
    /// One vCPU.
    OneCpu,
    /// As many vCPUs as the host has CPUs.
    MatchHost,
}

/// The JSON config file of `vm run`, with AOSP's field names.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VmConfigJson {
    name: Option<String>,
    bootloader: Option<PathBuf>,
    kernel: Option<PathBuf>,
    initrd: Option<PathBuf>,
    params: Option<String>,
    /// This project's extension to AOSP's format: see [`VirtualMachineRawConfig::firmware`].
    firmware: Option<PathBuf>,
    #[serde(default)]
    disks: Vec<DiskImage>,
    #[serde(default)]
    protected: bool,
    memory_mib: Option<u32>,
    cpu_topology: Option<CpuTopology>,
    num_cpus: Option<u32>,
    platform_version: Option<String>,
    /// This project's extension: see [`VirtualMachineRawConfig::accelerator`].
    #[serde(default)]
    accel: Accelerator,
}

impl VirtualMachineRawConfig {
    /// Reads an AOSP `vm run` JSON config; relative paths are taken from the file's directory.
    pub fn from_json_file(path: &Path) -> Result<Self, Error> {
        Self::from_json_file_with_differences(path).map(|(config, _)| config)
    }

    /// Reads an AOSP `vm run` JSON config, and says where AOSP's `vm` (Android 15) would read
    /// the same file differently (docs/android.md lists the differences).
    pub fn from_json_file_with_differences(path: &Path) -> Result<(Self, Vec<String>), Error> {
        let text = read_config(path).map_err(|source| Error::ConfigUnreadable {
            path: path.to_owned(),
            source,
        })?;
        let base_dir = path.parent().unwrap_or(Path::new(""));
        Self::parse_json(&text, path, base_dir)
    }

    /// Parses an AOSP `vm run` JSON config; `path` names it in errors and relative paths are
    /// taken from `base_dir`.
    pub fn from_json_str(text: &str, path: &Path, base_dir: &Path) -> Result<Self, Error> {
        Self::parse_json(text, path, base_dir).map(|(config, _)| config)
    }

    /// The config, and where AOSP's `vm` would read it differently.
    fn parse_json(text: &str, path: &Path, base_dir: &Path) -> Result<(Self, Vec<String>), Error> {
        let json: VmConfigJson =
            serde_json::from_str(text).map_err(|error| Error::ConfigMalformed {
                path: path.to_owned(),
                line: error.line(),
                column: error.column(),
                message: json_error_message(&error),
            })?;
        let differences = aosp_differences(&json, base_dir);
        let num_cpus = match (json.cpu_topology, json.num_cpus) {
            (Some(_), Some(_)) => {
                return Err(Error::ConfigInvalid {
                    path: path.to_owned(),
                    reason: "give either `cpu_topology` or `num_cpus`, not both".to_owned(),
                });
            }
            (Some(CpuTopology::OneCpu), None) | (None, None) => 1,
            (Some(CpuTopology::MatchHost), None) => host_cpu_count(),
            (None, Some(num_cpus)) => num_cpus,
        };
        refuse_empty_paths(&json, path)?;
        let resolve = |relative: PathBuf| base_dir.join(relative);
        let defaults = Self::default();
        let config = Self {
            name: json.name.unwrap_or(defaults.name),
            bootloader: json.bootloader.map(resolve),
            kernel: json.kernel.map(resolve),
            initrd: json.initrd.map(resolve),
            params: json.params,
            firmware: json.firmware.map(resolve),
            disks: json
                .disks
                .into_iter()
                .map(|disk| DiskImage {
                    image: resolve(disk.image),
                    writable: disk.writable,
                })
                .collect(),
            protected_vm: json.protected,
            memory_mib: json.memory_mib.unwrap_or(defaults.memory_mib),
            num_cpus,
            platform_version: json.platform_version.unwrap_or(defaults.platform_version),
            gdb_port: None,
            icount_shift: None,
            device_tree: None,
            accelerator: json.accel,
            ..defaults
        };
        Ok((config, differences))
    }
}

/// Where AOSP's `vm run` (Android 15's `libs/vmconfig`) would read this config differently,
/// one sentence each: it has no `num_cpus` or `firmware` (and ignores them), it refuses a config
/// without `platform_version`, and it opens relative paths from its working directory.
fn aosp_differences(json: &VmConfigJson, base_dir: &Path) -> Vec<String> {
    let mut differences = Vec::new();
    if json.num_cpus.is_some() {
        differences.push(
            "`num_cpus` is this vm's own field: AOSP's vm ignores it and boots one CPU (its \
             `cpu_topology` offers \"one_cpu\" or \"match_host\")"
                .to_owned(),
        );
    }
    if json.firmware.is_some() {
        differences.push("`firmware` is this vm's own field: AOSP's vm ignores it".to_owned());
    }
    if json.platform_version.is_none() {
        differences.push(format!(
            "no `platform_version`: AOSP's vm refuses a config without one; this vm takes \
             {DEFAULT_PLATFORM_VERSION:?}"
        ));
    }
    let relative: Vec<String> = [
        ("`bootloader`", &json.bootloader),
        ("`kernel`", &json.kernel),
        ("`initrd`", &json.initrd),
    ]
    .into_iter()
    .filter(|(_, value)| value.as_deref().is_some_and(Path::is_relative))
    .map(|(field, _)| field.to_owned())
    .chain(
        json.disks
            .iter()
            .enumerate()
            .filter(|(_, disk)| disk.image.is_relative())
            .map(|(index, _)| format!("`image` of disk {index}")),
    )
    .collect();
    if !relative.is_empty() && !is_working_directory(base_dir) {
        differences.push(format!(
            "relative paths ({}) are taken from the config's folder {} here, from the working \
             directory by AOSP's vm",
            relative.join(", "),
            base_dir.display()
        ));
    }
    differences
}

/// Whether `dir` (`""` for a config named without a folder) is the working directory.
fn is_working_directory(dir: &Path) -> bool {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    match (dir.canonicalize(), Path::new(".").canonicalize()) {
        (Ok(dir), Ok(working)) => dir == working,
        _ => false,
    }
}

/// The most a config file may hold: more than any `params` a device tree (at most 2 MiB) can
/// carry, and little enough that reading it costs nothing.
const MAX_CONFIG_SIZE: u64 = 4 << 20;

/// The text of the config file at `path`: a regular file of at most [`MAX_CONFIG_SIZE`] bytes.
fn read_config(path: &Path) -> io::Result<String> {
    let bytes = read_regular_file(path, MAX_CONFIG_SIZE)?;
    // Most likely an image given where the config goes (`vm run image.bin`).
    String::from_utf8(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "it is not a JSON config (it is not UTF-8 text): to boot an image, give it with \
             --bootloader PATH (or --kernel PATH for a Linux kernel)",
        )
    })
}

/// Refuses a path field that is `""`: joined to the config's directory it would name the
/// directory itself, or nothing.
fn refuse_empty_paths(json: &VmConfigJson, path: &Path) -> Result<(), Error> {
    let named = [
        ("`bootloader`", &json.bootloader),
        ("`kernel`", &json.kernel),
        ("`initrd`", &json.initrd),
        ("`firmware`", &json.firmware),
    ];
    let empty = named
        .into_iter()
        .find(|(_, value)| {
            value
                .as_ref()
                .is_some_and(|value| value.as_os_str().is_empty())
        })
        .map(|(field, _)| field.to_owned())
        .or_else(|| {
            json.disks
                .iter()
                .position(|disk| disk.image.as_os_str().is_empty())
                .map(|index| format!("`image` of disk {index}"))
        });
    match empty {
        Some(field) => Err(Error::ConfigInvalid {
            path: path.to_owned(),
            reason: format!("{field} is an empty path"),
        }),
        None => Ok(()),
    }
}

/// serde_json's message without its trailing " at line L column C", which the error repeats.
fn json_error_message(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let position = format!(" at line {} column {}", error.line(), error.column());
    let message = message.strip_suffix(&position).unwrap_or(&message);
    if message.starts_with("unknown field") {
        format!(
            "{message} (AOSP's vm ignores fields it does not know; this vm refuses them, so that \
             a misspelt field is not dropped unnoticed)"
        )
    } else {
        message.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_MEMORY_MIB;
    use std::fs;

    fn parse(text: &str) -> Result<VirtualMachineRawConfig, Error> {
        VirtualMachineRawConfig::from_json_str(text, Path::new("vm.json"), Path::new("/configs"))
    }

    #[test]
    fn full_json_config() {
        let config = parse(
            r#"{
                "name": "example",
                "bootloader": "out/vmbase_example.bin",
                "params": "console=pl011",
                "disks": [{"image": "disk.img", "writable": true}, {"image": "/abs/ro.img"}],
                "protected": false,
                "memory_mib": 64,
                "cpu_topology": "one_cpu",
                "platform_version": "~1.0"
            }"#,
        )
        .unwrap();
        assert_eq!(
            config,
            VirtualMachineRawConfig {
                name: "example".to_owned(),
                bootloader: Some("/configs/out/vmbase_example.bin".into()),
                params: Some("console=pl011".to_owned()),
                disks: vec![
                    DiskImage {
                        image: "/configs/disk.img".into(),
                        writable: true
                    },
                    DiskImage {
                        image: "/abs/ro.img".into(),
                        writable: false
                    },
                ],
                memory_mib: 64,
                ..Default::default()
            }
        );
    }

    #[test]
    fn minimal_json_config_takes_defaults() {
        let config = parse(r#"{"bootloader": "a.bin"}"#).unwrap();
        assert_eq!(config.memory_mib, DEFAULT_MEMORY_MIB);
        assert_eq!(config.num_cpus, 1);
        assert_eq!(config.platform_version, "~1.0");
        assert!(!config.protected_vm);
    }

    #[test]
    fn accel_names_the_accelerator_and_defaults_to_auto() {
        let accelerator = |text| parse(text).map(|config| config.accelerator);
        assert_eq!(accelerator(r#"{}"#).unwrap(), Accelerator::Auto);
        assert_eq!(
            accelerator(r#"{"accel": "kvm"}"#).unwrap(),
            Accelerator::Kvm
        );
        assert_eq!(
            accelerator(r#"{"accel": "tcg"}"#).unwrap(),
            Accelerator::Tcg
        );
        assert_eq!(
            accelerator(r#"{"accel": "auto"}"#).unwrap(),
            Accelerator::Auto
        );
        let error = accelerator(r#"{"accel": "hvf"}"#).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("unknown variant `hvf`, expected one of `auto`, `kvm`, `tcg`"),
            "{error}"
        );
    }

    #[test]
    fn match_host_and_num_cpus() {
        assert_eq!(
            parse(r#"{"cpu_topology": "match_host"}"#).unwrap().num_cpus,
            host_cpu_count()
        );
        assert_eq!(parse(r#"{"num_cpus": 3}"#).unwrap().num_cpus, 3);
        let error = parse(r#"{"num_cpus": 3, "cpu_topology": "one_cpu"}"#).unwrap_err();
        assert!(matches!(error, Error::ConfigInvalid { .. }), "{error}");
    }

    /// What AOSP's `vm` would read differently in `text`, a config in /configs.
    fn differences(text: &str) -> Vec<String> {
        VirtualMachineRawConfig::parse_json(text, Path::new("vm.json"), Path::new("/configs"))
            .unwrap()
            .1
    }

    #[test]
    fn a_config_aosp_reads_the_same_way_has_no_differences() {
        let text = r#"{"bootloader": "/abs/a.bin", "cpu_topology": "match_host",
                       "disks": [{"image": "/abs/d.img"}], "platform_version": "~1.0"}"#;
        assert_eq!(differences(text), [] as [String; 0]);
    }

    #[test]
    fn each_difference_from_aosp_is_named() {
        let found = differences(
            r#"{"kernel": "Image", "initrd": "/i.cpio", "firmware": "/fw.bin", "num_cpus": 2,
                "disks": [{"image": "/abs/d.img"}, {"image": "d.img"}]}"#,
        );
        assert_eq!(found.len(), 4, "{found:#?}");
        assert!(found[0].starts_with("`num_cpus` is this vm's own field"));
        assert!(found[1].starts_with("`firmware` is this vm's own field"));
        assert!(found[2].starts_with("no `platform_version`: AOSP's vm refuses"));
        assert_eq!(
            found[3],
            "relative paths (`kernel`, `image` of disk 1) are taken from the config's folder \
             /configs here, from the working directory by AOSP's vm"
        );
    }

    #[test]
    fn relative_paths_in_a_config_in_the_working_directory_read_the_same() {
        let text = r#"{"bootloader": "a.bin", "platform_version": "~1.0"}"#;
        for base_dir in ["", "."] {
            let (_, found) = VirtualMachineRawConfig::parse_json(
                text,
                Path::new("vm.json"),
                Path::new(base_dir),
            )
            .unwrap();
            assert_eq!(found, [] as [String; 0], "{base_dir:?}");
        }
    }

    #[test]
    fn malformed_json_reports_position() {
        let error = parse("{\n  \"bootloader\": \"a.bin\",\n  \"memory_mib\": ,\n}").unwrap_err();
        let Error::ConfigMalformed { line, column, .. } = &error else {
            panic!("{error}")
        };
        assert_eq!((*line, *column), (3, 17));
        assert!(
            error
                .to_string()
                .starts_with("malformed VM config vm.json at line 3, column 17: ")
        );
        assert!(
            !error.to_string().contains(" at line 3 column 17"),
            "{error}"
        );
    }

    #[test]
    fn unknown_field_is_refused_with_position() {
        let error = parse("{\n  \"bootloadr\": \"a.bin\"\n}").unwrap_err();
        let Error::ConfigMalformed { line, message, .. } = &error else {
            panic!("{error}")
        };
        assert_eq!(*line, 2);
        assert!(
            message.starts_with("unknown field `bootloadr`")
                && message.ends_with(
                    "(AOSP's vm ignores fields it does not know; this vm refuses them, so that a \
                     misspelt field is not dropped unnoticed)"
                ),
            "{message}"
        );
    }

    #[test]
    fn unknown_disk_field_and_bad_topology_are_refused() {
        let error = parse(r#"{"disks": [{"image": "a", "partitions": []}]}"#).unwrap_err();
        assert!(
            error.to_string().contains("unknown field `partitions`"),
            "{error}"
        );
        let error = parse(r#"{"cpu_topology": "two_cpus"}"#).unwrap_err();
        assert!(
            error.to_string().contains("unknown variant `two_cpus`"),
            "{error}"
        );
    }

    #[test]
    fn a_config_that_is_a_fifo_a_device_or_too_large_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("vm.json");
        rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, rustix::fs::Mode::RUSR).unwrap();
        let large = dir.path().join("large.json");
        fs::File::create(&large)
            .unwrap()
            .set_len(MAX_CONFIG_SIZE + 1)
            .unwrap();
        for (path, reason) in [
            (fifo.as_path(), "it is not a regular file"),
            (Path::new("/dev/zero"), "it is not a regular file"),
            (&large, "it is larger than 4194304 bytes"),
        ] {
            let error = VirtualMachineRawConfig::from_json_file(path).unwrap_err();
            assert_eq!(
                error.to_string(),
                format!("cannot read VM config {}: {reason}", path.display())
            );
        }
    }

    #[test]
    fn empty_paths_are_refused_naming_the_field() {
        for (text, field) in [
            (r#"{"kernel": "Image", "initrd": ""}"#, "`initrd`"),
            (r#"{"kernel": "", "firmware": "fw.bin"}"#, "`kernel`"),
            (r#"{"kernel": "Image", "firmware": ""}"#, "`firmware`"),
            (r#"{"bootloader": ""}"#, "`bootloader`"),
            (
                r#"{"bootloader": "a.bin", "disks": [{"image": ""}]}"#,
                "`image` of disk 0",
            ),
        ] {
            let error = parse(text).unwrap_err();
            assert!(
                matches!(error, Error::ConfigInvalid { .. })
                    && error
                        .to_string()
                        .contains(&format!("{field} is an empty path")),
                "{text}: {error}"
            );
        }
    }

    #[test]
    fn json_kernel_initrd_and_firmware() {
        let config =
            parse(r#"{"kernel": "Image", "initrd": "/i.cpio", "firmware": "fw.bin"}"#).unwrap();
        assert_eq!(config.kernel, Some("/configs/Image".into()));
        assert_eq!(config.initrd, Some("/i.cpio".into()));
        assert_eq!(config.firmware, Some("/configs/fw.bin".into()));
    }
}
