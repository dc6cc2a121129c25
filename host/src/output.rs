// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Copies QEMU's output (the guest's console, QEMU's own messages) to where the caller wants
//! it, so that a write error there is seen instead of lost inside QEMU.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, PipeReader, Read, Write};
use std::thread::{self, JoinHandle};

/// How much of the end of QEMU's messages is kept to explain a failed start.
const TAIL_LIMIT: usize = 8 * 1024;

/// What a copy saw once QEMU closed its end of the pipe.
#[derive(Debug, Default)]
pub(crate) struct Copied {
    /// The first error writing to the destination; the rest of the output was discarded.
    pub(crate) write_error: Option<io::Error>,
    /// The last bytes that went through, up to [`TAIL_LIMIT`].
    pub(crate) tail: Vec<u8>,
}

/// A thread copying one of QEMU's output pipes to a file.
pub(crate) struct Copier(Option<JoinHandle<Copied>>);

impl Copier {
    /// Starts copying `source` to `destination` (or only keeping its tail, without one).
    pub(crate) fn start(
        name: &str,
        source: PipeReader,
        destination: Option<File>,
    ) -> io::Result<Self> {
        thread::Builder::new()
            .name(format!("vmclient-{name}"))
            .spawn(move || copy(source, destination))
            .map(|handle| Self(Some(handle)))
    }

    /// Waits until QEMU closed the pipe and everything was copied. Only call it once QEMU has
    /// exited, or it waits for that.
    pub(crate) fn finish(&mut self) -> Copied {
        self.0
            .take()
            .and_then(|handle| handle.join().ok())
            .unwrap_or_default()
    }
}

/// Copies until end of file; after a write error, keeps reading (so that QEMU never blocks on
/// a full pipe) but drops the data.
fn copy(mut source: impl Read, mut destination: Option<impl Write>) -> Copied {
    let mut copied = Copied::default();
    let mut tail = VecDeque::new();
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let count = match source.read(&mut buffer) {
            Ok(0) => break,
            Ok(count) => count,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let data = &buffer[..count];
        tail.extend(data);
        if tail.len() > TAIL_LIMIT {
            tail.drain(..tail.len() - TAIL_LIMIT);
        }
        if copied.write_error.is_none()
            && let Some(destination) = destination.as_mut()
            && let Err(error) = destination.write_all(data)
        {
            copied.write_error = Some(error);
        }
    }
    copied.tail = tail.into();
    copied
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_everything_and_keeps_the_tail() {
        let input: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let mut output = Vec::new();
        let copied = copy(input.as_slice(), Some(&mut output));
        assert_eq!(output, input);
        assert!(copied.write_error.is_none());
        assert_eq!(copied.tail, input[input.len() - TAIL_LIMIT..]);
    }

    #[test]
    fn a_write_error_is_kept_and_the_source_still_drained() {
        let input = vec![7; 200_000];
        let mut source = input.as_slice();
        let full = File::options().write(true).open("/dev/full").unwrap();
        let copied = copy(&mut source, Some(full));
        assert_eq!(
            copied.write_error.map(|error| error.raw_os_error()),
            Some(Some(28)) // ENOSPC
        );
        assert!(source.is_empty());
    }
}
