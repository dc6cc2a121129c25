// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The input files a boot loads, each opened and checked once: what is loaded is what was
//! checked.

use crate::config::VirtualMachineRawConfig;
use crate::error::Error;
use crate::layout::FDT_MAX_SIZE;
use rustix::fs::OFlags;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// An input file checked through one open, and loaded from that open file: what is loaded is
/// what was checked, even if the file changes meanwhile.
#[derive(Debug)]
pub(crate) struct InputFile {
    /// What it is for, e.g. "initrd".
    pub(crate) role: &'static str,
    /// The path it was opened at.
    pub(crate) path: PathBuf,
    /// The open file.
    pub(crate) file: File,
    /// Its size when checked: what is loaded.
    pub(crate) size: u64,
}

impl InputFile {
    /// Writes the `size` bytes that were checked to `destination` (mode 0600), read through
    /// the open file; refuses a file that shrank since.
    pub(crate) fn copy_to(&self, destination: &Path) -> Result<(), Error> {
        let mut output = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(destination)
            .map_err(Error::io("copy an input file"))?;
        let mut buffer = vec![0; 1 << 20];
        let mut offset = 0;
        while offset < self.size {
            let wanted = buffer.len().min((self.size - offset) as usize);
            let count = match self.file.read_at(&mut buffer[..wanted], offset) {
                Ok(0) => {
                    return Err(Error::InputChanged {
                        role: self.role,
                        path: self.path.clone(),
                        size: self.size,
                        now: offset,
                    });
                }
                Ok(count) => count,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(Error::ImageUnreadable {
                        role: self.role,
                        path: self.path.clone(),
                        source,
                    });
                }
            };
            output
                .write_all(&buffer[..count])
                .map_err(Error::io("copy an input file"))?;
            offset += count as u64;
        }
        Ok(())
    }
}

/// The device tree given in `config`, opened and checked, to load instead of a generated one.
pub(super) fn given_device_tree(
    config: &VirtualMachineRawConfig,
) -> Result<Option<InputFile>, Error> {
    let given_device_tree = match &config.device_tree {
        Some(device_tree) => {
            let (tree, _) = regular_file_start("device tree", device_tree, 0)?;
            if tree.size > FDT_MAX_SIZE {
                return Err(Error::GivenDeviceTreeTooLarge {
                    path: device_tree.clone(),
                    size: tree.size,
                });
            }
            if config.params.is_some() {
                return Err(Error::ParamsWithGivenDeviceTree {
                    path: device_tree.clone(),
                });
            }
            Some(tree)
        }
        None => None,
    };
    Ok(given_device_tree)
}

/// The pKVM double's image: `out/pkvm_double.bin` of the repository `vm` was built from, which
/// `make guests` (and `make vm`) build.
pub(super) fn pkvm_double() -> Result<InputFile, Error> {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../out/pkvm_double.bin"
    ));
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let path = path.components().collect::<PathBuf>();
    match regular_file_start("pKVM double", &path, 0) {
        Ok((double, _)) => Ok(double),
        Err(Error::NotAFile { path, .. }) => Err(Error::PkvmDoubleMissing {
            path,
            source: std::io::Error::other("not a regular file"),
        }),
        Err(Error::ImageUnreadable { path, source, .. }) => {
            Err(Error::PkvmDoubleMissing { path, source })
        }
        Err(other) => Err(other),
    }
}

/// Opens the regular file at `path` (a `role`, for errors) for reading, once, and reads its
/// first `length` bytes (fewer if it is shorter) through that open. Nothing waits: a FIFO is
/// opened without blocking and refused, like anything else that is not a regular file.
pub(super) fn regular_file_start(
    role: &'static str,
    path: &Path,
    length: usize,
) -> Result<(InputFile, Vec<u8>), Error> {
    let unreadable = |source| Error::ImageUnreadable {
        role,
        path: path.to_owned(),
        source,
    };
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(unreadable)?;
    let metadata = file.metadata().map_err(unreadable)?;
    if !metadata.is_file() {
        return Err(Error::NotAFile {
            role,
            path: path.to_owned(),
        });
    }
    let mut start = vec![0; length.min(usize::try_from(metadata.len()).unwrap_or(usize::MAX))];
    file.read_exact_at(&mut start, 0).map_err(unreadable)?;
    let input = InputFile {
        role,
        path: path.to_owned(),
        file,
        size: metadata.len(),
    };
    Ok((input, start))
}

/// What [`regular_file_start`] says of a file that it accepts and that is not empty.
pub(super) fn non_empty_file_start(
    role: &'static str,
    path: &Path,
    length: usize,
) -> Result<(InputFile, Vec<u8>), Error> {
    match regular_file_start(role, path, length)? {
        (InputFile { size: 0, .. }, _) => Err(Error::FileEmpty {
            role,
            path: path.to_owned(),
        }),
        file_and_start => Ok(file_and_start),
    }
}
