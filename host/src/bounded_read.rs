// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Reading a small file whose path may name anything: a FIFO, a device, a huge file.

use rustix::fs::OFlags;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The contents of the regular file at `path`, of at most `limit` bytes. Anything else is an
/// `InvalidInput` error, found without waiting: a FIFO would block the read where no signal can
/// stop it, and a device such as `/dev/zero` would never end.
pub(crate) fn read_regular_file(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    // Non-blocking, so that opening a FIFO nobody writes returns at once.
    let file = File::options()
        .read(true)
        .custom_flags(OFlags::NONBLOCK.bits() as i32)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "it is not a regular file",
        ));
    }
    let mut contents = Vec::new();
    file.take(limit + 1).read_to_end(&mut contents)?;
    if contents.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("it is larger than {limit} bytes"),
        ));
    }
    Ok(contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_small_file_and_refuses_fifos_devices_and_large_files_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small");
        std::fs::write(&small, b"1234").unwrap();
        assert_eq!(read_regular_file(&small, 4).unwrap(), b"1234");
        let fifo = dir.path().join("fifo");
        rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, rustix::fs::Mode::RUSR).unwrap();
        for (path, reason) in [
            (small.as_path(), "it is larger than 3 bytes"),
            (&fifo, "it is not a regular file"),
            (Path::new("/dev/zero"), "it is not a regular file"),
        ] {
            let error = read_regular_file(path, 3).unwrap_err();
            assert_eq!(
                (error.kind(), error.to_string()),
                (io::ErrorKind::InvalidInput, reason.to_owned()),
                "{}",
                path.display()
            );
        }
    }
}
