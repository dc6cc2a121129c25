// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Where the VM's output goes: output files opened only once the VM starts, and threads that
//! copy QEMU's output (the guest's consoles, QEMU's own messages) there, so that a write error
//! is seen instead of lost inside QEMU, and a reader that stalls cannot stall the caller.

use crate::error::Error;
use rustix::fs::{Access, OFlags};
use rustix::io::Errno;
use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::thread;
use std::time::{Duration, Instant};

/// How much of the end of QEMU's messages is kept to explain a failed start.
const TAIL_LIMIT: usize = 8 * 1024;

/// How much output is held while its destination is not yet open (QEMU starts paused, so only
/// its own early messages can come then); beyond that the oldest is dropped.
const PENDING_LIMIT: usize = 1 << 20;

/// How often a wait here looks at the interrupt flag.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// How long a copy may still take to reach its destination once the caller's interrupt flag is
/// raised (a signal, the timeout): enough to write what QEMU left in the pipe, not enough to
/// make a stalled reader felt.
const FLUSH_GRACE: Duration = Duration::from_millis(300);

/// What a copy saw once QEMU closed its end of the pipe.
#[derive(Debug, Default)]
pub(crate) struct Copied {
    /// The first error writing to the destination; the rest of the output was discarded.
    pub(crate) write_error: Option<io::Error>,
    /// The last bytes that went through, up to [`TAIL_LIMIT`].
    pub(crate) tail: Vec<u8>,
}

/// A thread copying one of QEMU's outputs (a pipe or FIFO) to a file given later.
pub(crate) struct Copier {
    /// Gives the thread its destination, once; dropped unused, the output is discarded.
    destination: Option<Sender<Option<File>>>,
    /// What the thread saw, once its source ended.
    result: Receiver<Copied>,
    /// Set once the result was taken.
    finished: Option<Copied>,
}

impl Copier {
    /// Starts reading `source`, holding what it reads until [`Copier::deliver`] says where it
    /// goes.
    pub(crate) fn start(name: &str, source: impl Read + Send + 'static) -> io::Result<Self> {
        let (destination, destinations) = mpsc::channel();
        let (sender, result) = mpsc::channel();
        thread::Builder::new()
            .name(format!("vmclient-{name}"))
            .spawn(move || {
                // Nobody waits any more only when the copier was dropped or gave up.
                let _ = sender.send(copy(source, &destinations));
            })?;
        Ok(Self {
            destination: Some(destination),
            result,
            finished: None,
        })
    }

    /// Sends what was read so far, and all that follows, to `destination` (or discards it);
    /// only the first call counts.
    pub(crate) fn deliver(&mut self, destination: Option<File>) {
        if let Some(sender) = self.destination.take() {
            // The thread only ends after it received a destination or lost the sender.
            let _ = sender.send(destination);
        }
    }

    /// Waits until the source ended and everything was copied: call it once QEMU has exited.
    /// Output not yet delivered anywhere is discarded. A destination that does not take the
    /// output (a FIFO whose reader stalls) is waited for only until `interrupt` is raised, and
    /// [`FLUSH_GRACE`] more: then the copy is abandoned with an error saying so.
    pub(crate) fn finish(&mut self, interrupt: &AtomicBool) -> &Copied {
        self.destination = None;
        let mut give_up_at: Option<Instant> = None;
        while self.finished.is_none() {
            match self.result.recv_timeout(POLL_INTERVAL) {
                Ok(copied) => self.finished = Some(copied),
                Err(RecvTimeoutError::Disconnected) => self.finished = Some(Copied::default()),
                Err(RecvTimeoutError::Timeout) => {
                    if give_up_at.is_none() && interrupt.load(Ordering::Relaxed) {
                        give_up_at = Some(Instant::now() + FLUSH_GRACE);
                    }
                    if give_up_at.is_some_and(|at| Instant::now() >= at) {
                        self.finished = Some(Copied {
                            write_error: Some(io::Error::new(
                                io::ErrorKind::TimedOut,
                                "its reader stopped taking the output; the rest was dropped",
                            )),
                            tail: Vec::new(),
                        });
                    }
                }
            }
        }
        self.finished.as_ref().unwrap_or_else(|| unreachable!())
    }
}

/// Copies `source` until end of file to the destination that `destinations` gives (holding the
/// output until then), keeping its tail; after a write error, keeps reading (so that QEMU never
/// blocks on a full pipe) but drops the data.
fn copy(mut source: impl Read, destinations: &Receiver<Option<File>>) -> Copied {
    let mut copied = Copied::default();
    let mut tail = VecDeque::new();
    let mut pending = VecDeque::new();
    // `None` until the destination is known.
    let mut destination: Option<Option<File>> = None;
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let count = match source.read(&mut buffer) {
            Ok(0) => break,
            Ok(count) => count,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let data = &buffer[..count];
        keep_last(&mut tail, data, TAIL_LIMIT);
        if destination.is_none() {
            match destinations.try_recv() {
                Ok(given) => destination = Some(given),
                Err(TryRecvError::Disconnected) => destination = Some(None),
                Err(TryRecvError::Empty) => {
                    keep_last(&mut pending, data, PENDING_LIMIT);
                    continue;
                }
            }
            write(&mut destination, &mut copied, pending.make_contiguous());
            pending = VecDeque::new();
        }
        write(&mut destination, &mut copied, data);
    }
    if destination.is_none() {
        // The source ended before the destination was known: it comes, or never will.
        let mut decided = Some(destinations.recv().ok().flatten());
        write(&mut decided, &mut copied, pending.make_contiguous());
    }
    copied.tail = tail.into();
    copied
}

/// Appends `data` to `kept`, dropping the oldest bytes beyond `limit`.
fn keep_last(kept: &mut VecDeque<u8>, data: &[u8], limit: usize) {
    kept.extend(data);
    if kept.len() > limit {
        kept.drain(..kept.len() - limit);
    }
}

/// Writes `data` to `destination` unless an earlier write failed.
fn write(destination: &mut Option<Option<File>>, copied: &mut Copied, data: &[u8]) {
    if copied.write_error.is_none()
        && !data.is_empty()
        && let Some(Some(file)) = destination.as_mut()
        && let Err(error) = file.write_all(data)
    {
        copied.write_error = Some(error);
    }
}

/// An output file named by the caller (`vm run --console`, `--log`, `--virtio-console`),
/// opened for writing but not yet emptied.
#[derive(Debug)]
pub struct OutputFile {
    file: File,
    /// The file this open created (a symbolic link's target, not the link), removed again by
    /// [`OutputFile::remove_if_created`].
    created: Option<PathBuf>,
    /// Whether [`OutputFile::empty`] empties it: a regular file that was there before.
    emptied: bool,
}

impl OutputFile {
    /// Checks, without creating, opening or changing anything, that `path` can be opened for
    /// writing as the `role` output ("console", "log", ...): not a directory or a Unix socket,
    /// writable, or creatable in a writable directory.
    pub fn check(role: &'static str, path: &Path) -> Result<(), Error> {
        let unwritable = |source| Error::OutputUnwritable {
            role,
            path: path.to_owned(),
            source,
        };
        match fs::metadata(path) {
            Ok(metadata) => {
                refuse_type(&metadata).map_err(unwritable)?;
                rustix::fs::access(path, Access::WRITE_OK).map_err(|errno| unwritable(errno.into()))
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                let parent = match path.parent() {
                    Some(parent) if !parent.as_os_str().is_empty() => parent,
                    _ => Path::new("."),
                };
                rustix::fs::access(parent, Access::WRITE_OK | Access::EXEC_OK)
                    .map_err(|errno| unwritable(errno.into()))
            }
            Err(error) => Err(unwritable(error)),
        }
    }

    /// Opens `path` for writing as the `role` output, creating it if needed but not emptying
    /// it yet. A FIFO without a reader is waited on (`vm: waiting for a reader …` is said
    /// through `waiting`, once) until a reader opens it or `interrupt` is raised.
    pub fn open(
        role: &'static str,
        path: &Path,
        interrupt: &AtomicBool,
        waiting: impl FnOnce(),
    ) -> Result<Self, Error> {
        let unwritable = |source| Error::OutputUnwritable {
            role,
            path: path.to_owned(),
            source,
        };
        let mut waiting = Some(waiting);
        let (file, created) = loop {
            match open_for_writing(path) {
                Ok(opened) => break opened,
                // A FIFO without a reader, or a socket: only the first is worth waiting for.
                Err(error) if error.raw_os_error() == Some(Errno::NXIO.raw_os_error()) => {
                    if let Ok(metadata) = fs::metadata(path) {
                        refuse_type(&metadata).map_err(unwritable)?;
                    }
                    if let Some(say) = waiting.take() {
                        say();
                    }
                    if interrupt.load(Ordering::Relaxed) {
                        return Err(Error::Interrupted);
                    }
                    thread::sleep(POLL_INTERVAL);
                }
                Err(error) => return Err(unwritable(error)),
            }
        };
        let flags = rustix::fs::fcntl_getfl(&file).map_err(|errno| unwritable(errno.into()))?;
        rustix::fs::fcntl_setfl(&file, flags - OFlags::NONBLOCK)
            .map_err(|errno| unwritable(errno.into()))?;
        let is_file = file.metadata().map_err(unwritable)?.is_file();
        let created = if created {
            // The target of a symbolic link is what was created, not the link.
            fs::canonicalize(path).ok()
        } else {
            None
        };
        Ok(Self {
            emptied: created.is_none() && is_file,
            file,
            created,
        })
    }

    /// The open file, to write to.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Empties the file if it is a regular file that was there before: call it when the VM
    /// starts.
    pub fn empty(&self) -> Result<(), Error> {
        if self.emptied {
            self.file
                .set_len(0)
                .map_err(Error::io("empty an output file"))?;
        }
        Ok(())
    }

    /// Removes the file if this open created it and it is still there, for a VM that did not
    /// start.
    pub fn remove_if_created(&self) {
        let Some(path) = &self.created else {
            return;
        };
        let same = match (self.file.metadata(), fs::symlink_metadata(path)) {
            (Ok(open), Ok(named)) => (open.dev(), open.ino()) == (named.dev(), named.ino()),
            _ => false,
        };
        if same {
            let _ = fs::remove_file(path);
        }
    }
}

/// Refuses what no output can be: a directory, or a Unix socket (which `open` cannot open, and
/// which would otherwise look like a FIFO without a reader, waited on forever).
fn refuse_type(metadata: &fs::Metadata) -> io::Result<()> {
    let file_type = metadata.file_type();
    let reason = if file_type.is_dir() {
        "it is a directory"
    } else if file_type.is_socket() {
        "it is a Unix socket, which cannot be opened as a file"
    } else {
        return Ok(());
    };
    Err(io::Error::new(io::ErrorKind::InvalidInput, reason))
}

/// Opens `path` for writing without blocking (a FIFO nobody reads fails at once with `ENXIO`),
/// creating it if needed; says whether this open created it.
fn open_for_writing(path: &Path) -> io::Result<(File, bool)> {
    let options = |create_new: bool, create: bool| {
        let mut options = OpenOptions::new();
        options
            .write(true)
            .create_new(create_new)
            .create(create)
            .custom_flags(OFlags::NONBLOCK.bits() as i32);
        options
    };
    match options(true, false).open(path) {
        Ok(file) => return Ok((file, true)),
        Err(error) if error.kind() != io::ErrorKind::AlreadyExists => return Err(error),
        Err(_) => {}
    }
    match options(false, false).open(path) {
        Ok(file) => Ok((file, false)),
        // A symbolic link to nothing: its target is created.
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            options(false, true).open(path).map(|file| (file, true))
        }
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Copies `input` to a destination given at once.
    fn copy_to(input: &[u8], destination: Option<File>) -> (Copied, usize) {
        let (sender, destinations) = mpsc::channel();
        sender.send(destination).unwrap();
        let mut source = input;
        let copied = copy(&mut source, &destinations);
        (copied, source.len())
    }

    #[test]
    fn copies_everything_and_keeps_the_tail() {
        let input: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let (copied, _) = copy_to(&input, Some(File::create(&path).unwrap()));
        assert_eq!(fs::read(&path).unwrap(), input);
        assert!(copied.write_error.is_none());
        assert_eq!(copied.tail, input[input.len() - TAIL_LIMIT..]);
    }

    #[test]
    fn output_read_before_the_destination_is_known_is_kept_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let (reader, mut writer) = io::pipe().unwrap();
        let mut copier = Copier::start("test", reader).unwrap();
        writer.write_all(b"early ").unwrap();
        std::thread::sleep(Duration::from_millis(100));
        copier.deliver(Some(File::create(&path).unwrap()));
        writer.write_all(b"late").unwrap();
        drop(writer);
        let copied = copier.finish(&AtomicBool::new(false));
        assert!(copied.write_error.is_none());
        assert_eq!(fs::read(&path).unwrap(), b"early late");
    }

    #[test]
    fn a_write_error_is_kept_and_the_source_still_drained() {
        let full = File::options().write(true).open("/dev/full").unwrap();
        let (copied, left) = copy_to(&[7; 200_000], Some(full));
        assert_eq!(
            copied.write_error.map(|error| error.raw_os_error()),
            Some(Some(28)) // ENOSPC
        );
        assert_eq!(left, 0);
    }

    #[test]
    fn a_stalled_destination_is_given_up_once_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let mode = rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR;
        rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, mode).unwrap();
        // A reader that never reads.
        let _reader = File::options()
            .read(true)
            .custom_flags(OFlags::NONBLOCK.bits() as i32)
            .open(&fifo)
            .unwrap();
        let destination = File::options().write(true).open(&fifo).unwrap();
        let (reader, mut writer) = io::pipe().unwrap();
        let mut copier = Copier::start("test", reader).unwrap();
        copier.deliver(Some(destination));
        // More than the FIFO holds, from a thread of its own: the copy stops taking it.
        std::thread::spawn(move || writer.write_all(&[1; 1 << 20]));
        let started = Instant::now();
        let copied = copier.finish(&AtomicBool::new(true));
        assert!(started.elapsed() < Duration::from_secs(5));
        let error = copied.write_error.as_ref().unwrap();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut, "{error}");
    }

    #[test]
    fn outputs_that_cannot_be_opened_are_refused_by_the_check() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("socket");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        for (path, reason) in [
            (dir.path().to_owned(), "it is a directory"),
            (socket.clone(), "it is a Unix socket"),
            (dir.path().join("missing/out"), "No such file or directory"),
        ] {
            let error = OutputFile::check("console", &path).unwrap_err().to_string();
            assert!(error.contains(reason), "{error}");
        }
        OutputFile::check("console", &dir.path().join("new")).unwrap();
        let error = OutputFile::open("console", &socket, &AtomicBool::new(false), || {
            panic!("a socket is not waited on")
        })
        .unwrap_err();
        assert!(error.to_string().contains("it is a Unix socket"), "{error}");
    }

    #[test]
    fn a_created_symlink_target_is_removed_and_the_link_kept() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link");
        let target = dir.path().join("target");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let output = OutputFile::open("console", &link, &AtomicBool::new(false), || {}).unwrap();
        assert!(target.exists());
        output.remove_if_created();
        assert!(!target.exists());
        assert!(
            fs::symlink_metadata(&link).is_ok(),
            "the link itself is kept"
        );
    }
}
