// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! A minimal QMP (QEMU Machine Protocol) client: capability negotiation, the few commands
//! vmclient sends, and the `SHUTDOWN` event, as typed messages one JSON object per line.
//!
//! The `qapi` crate's client is not used: its reads block, while every read here while a VM
//! starts must give up at a deadline or when interrupted, and must take a connection reset as
//! QEMU's exit; and `qapi-qmp` generates types for QEMU's whole schema to serve four commands
//! and one event.

use crate::error::Error;
use crate::run::death_reason::ShutdownCause;
use crate::supervise::POLL_INTERVAL;
use rustix::event::{PollFd, PollFlags, Timespec};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Bounds on reading while a VM starts: QEMU must answer by `deadline`, and raising
/// `interrupt` stops the wait.
#[derive(Clone)]
pub(crate) struct ReadLimit {
    /// When to give up.
    pub(crate) deadline: Instant,
    /// How long that was, for the error.
    pub(crate) timeout: Duration,
    /// Raised by the caller to stop waiting.
    pub(crate) interrupt: Arc<AtomicBool>,
}

/// The commands this client sends; none takes arguments.
#[derive(Clone, Copy, Debug)]
enum Command {
    /// Leaves capability negotiation mode.
    QmpCapabilities,
    /// Lets a paused VM run.
    Cont,
    /// Asks for the instruction count, among other things.
    QueryReplay,
    /// Makes QEMU exit.
    Quit,
}

impl Command {
    /// The command's name in QMP.
    fn name(self) -> &'static str {
        match self {
            Self::QmpCapabilities => "qmp_capabilities",
            Self::Cont => "cont",
            Self::QueryReplay => "query-replay",
            Self::Quit => "quit",
        }
    }
}

/// A command as it goes on the wire: `{"execute": name}`.
#[derive(Serialize)]
struct Execute {
    execute: &'static str,
}

/// A message from QEMU: its greeting, the answer to a command, or an event.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Message {
    /// The greeting, sent once on connection; its contents are not needed.
    Greeting {
        #[serde(rename = "QMP")]
        _qmp: IgnoredAny,
    },
    /// A command succeeded with this value.
    Return {
        #[serde(rename = "return")]
        value: Value,
    },
    /// A command failed.
    Error { error: QmpError },
    /// Something happened in the VM.
    Event(Event),
}

/// The `error` of a failed command.
#[derive(Debug, Deserialize)]
struct QmpError {
    class: String,
    desc: String,
}

impl fmt::Display for QmpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.class, self.desc)
    }
}

/// The events this client looks at; the others are ignored.
#[derive(Debug, Deserialize)]
#[serde(tag = "event")]
enum Event {
    /// The VM stopped or is about to exit.
    #[serde(rename = "SHUTDOWN")]
    Shutdown { data: ShutdownData },
    #[serde(other)]
    Other,
}

/// The `data` of a `SHUTDOWN` event.
#[derive(Debug, Deserialize)]
struct ShutdownData {
    #[serde(default)]
    reason: ShutdownCause,
}

/// The answer to `query-replay`.
#[derive(Debug, Deserialize)]
struct ReplayInfo {
    /// Instructions executed since reset, under `-icount`.
    icount: u64,
}

/// How QEMU answered a command.
enum Reply {
    /// The command succeeded with this `return` value.
    Return(Value),
    /// The command failed.
    Error(QmpError),
    /// QEMU closed the monitor (it exited) before answering.
    Closed,
}

/// A connected QMP monitor.
pub(crate) struct QmpClient {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    /// The cause of the first `SHUTDOWN` event seen.
    shutdown_cause: Option<ShutdownCause>,
    /// While set, every read is bounded by it.
    read_limit: Option<ReadLimit>,
}

impl QmpClient {
    /// Wraps a stream connected to QEMU's QMP monitor.
    pub(crate) fn new(stream: UnixStream) -> Result<Self, Error> {
        let writer = stream
            .try_clone()
            .map_err(Error::io("clone the QMP socket"))?;
        Ok(Self {
            reader: BufReader::new(stream),
            writer,
            shutdown_cause: None,
            read_limit: None,
        })
    }

    /// Bounds every later read by `limit`, or lifts the bound with `None`.
    pub(crate) fn limit_reads(&mut self, limit: Option<ReadLimit>) {
        self.read_limit = limit;
    }

    /// Returns once a message can be read without blocking past the read limit, if any.
    fn wait_readable(&self) -> Result<(), Error> {
        let Some(limit) = &self.read_limit else {
            return Ok(());
        };
        let poll_interval = Timespec::try_from(POLL_INTERVAL).unwrap_or_default();
        while self.reader.buffer().is_empty() {
            let mut fds = [PollFd::new(self.reader.get_ref(), PollFlags::IN)];
            match rustix::event::poll(&mut fds, Some(&poll_interval)) {
                Ok(0) | Err(rustix::io::Errno::INTR) => {}
                Ok(_) => return Ok(()),
                Err(errno) => return Err(Error::io("wait for QMP")(errno.into())),
            }
            if limit.interrupt.load(Ordering::Relaxed) {
                return Err(Error::Interrupted);
            }
            if Instant::now() >= limit.deadline {
                return Err(Error::QemuStartTimeout(limit.timeout));
            }
        }
        Ok(())
    }

    /// Leaves capability negotiation mode, after which QEMU sends events, and reads QEMU's
    /// greeting and its answer.
    ///
    /// The command is sent before the greeting is read: QEMU, still starting, finds it waiting
    /// and answers as soon as its monitor runs, without a round trip through this process
    /// while the VM's start waits.
    pub(crate) fn negotiate(&mut self) -> Result<(), Error> {
        let command = Command::QmpCapabilities;
        if !self.send(command)? {
            return Err(Error::Qmp(
                "QEMU closed its QMP monitor before greeting".to_owned(),
            ));
        }
        match self.read_message()? {
            Some(Message::Greeting { .. }) => self.check_reply(command),
            Some(other) => Err(Error::Qmp(format!(
                "expected the QMP greeting, got {other:?}"
            ))),
            None => Err(Error::Qmp(
                "QEMU closed its QMP monitor before greeting".to_owned(),
            )),
        }
    }

    /// Lets the VM run: QEMU was started paused.
    pub(crate) fn cont(&mut self) -> Result<(), Error> {
        self.execute(Command::Cont)
    }

    /// Runs `command` and waits for its successful return.
    fn execute(&mut self, command: Command) -> Result<(), Error> {
        if !self.send(command)? {
            return Err(Error::Qmp(format!(
                "QEMU closed its QMP monitor during `{}`",
                command.name()
            )));
        }
        self.check_reply(command)
    }

    /// Reads the answer to `command`, sent already, and says whether it succeeded.
    fn check_reply(&mut self, command: Command) -> Result<(), Error> {
        let name = command.name();
        match self.read_reply()? {
            Reply::Return(_) => Ok(()),
            Reply::Error(error) => Err(Error::Qmp(format!("`{name}` failed: {error}"))),
            Reply::Closed => Err(Error::Qmp(format!(
                "QEMU closed its QMP monitor during `{name}`"
            ))),
        }
    }

    /// Reads until the first `SHUTDOWN` event, which may have come already, and returns its
    /// cause; `None` if QEMU closed the monitor without one.
    pub(crate) fn wait_for_shutdown(&mut self) -> Result<Option<ShutdownCause>, Error> {
        while self.shutdown_cause.is_none() {
            if self.read_message()?.is_none() {
                break;
            }
        }
        Ok(self.shutdown_cause)
    }

    /// Asks QEMU how many instructions the guest executed (`query-replay`, under `-icount`);
    /// `None` when QEMU does not say (it refused, or it is gone).
    pub(crate) fn instruction_count(&mut self) -> Result<Option<u64>, Error> {
        Ok(match self.request(Command::QueryReplay)? {
            Reply::Return(value) => serde_json::from_value::<ReplayInfo>(value)
                .ok()
                .map(|info| info.icount),
            Reply::Error(_) | Reply::Closed => None,
        })
    }

    /// Tells QEMU to exit; QEMU closing the monitor before answering is as good.
    pub(crate) fn quit(&mut self) -> Result<(), Error> {
        match self.request(Command::Quit)? {
            Reply::Return(_) | Reply::Closed => Ok(()),
            Reply::Error(error) => Err(Error::Qmp(format!("`quit` failed: {error}"))),
        }
    }

    /// Reads until QEMU closes the monitor (it does when it exits); returns the cause of the
    /// first `SHUTDOWN` event, if there was one.
    pub(crate) fn wait_for_close(mut self) -> Result<Option<ShutdownCause>, Error> {
        while self.read_message()?.is_some() {}
        Ok(self.shutdown_cause)
    }

    /// Sends a command without arguments and reads until QEMU answers it or closes the
    /// monitor; events read meanwhile are noted as usual.
    fn request(&mut self, command: Command) -> Result<Reply, Error> {
        if !self.send(command)? {
            while self.read_message()?.is_some() {}
            return Ok(Reply::Closed);
        }
        self.read_reply()
    }

    /// Sends a command without arguments; `false` if QEMU has exited (what it sent before is
    /// still to be read, but its answer never comes).
    fn send(&mut self, command: Command) -> Result<bool, Error> {
        let name = command.name();
        let mut line = serde_json::to_string(&Execute { execute: name })
            .map_err(|error| Error::Qmp(format!("cannot encode `{name}`: {error}")))?;
        line.push('\n');
        match self.writer.write_all(line.as_bytes()) {
            Ok(()) => Ok(true),
            Err(error)
                if matches!(
                    error.kind(),
                    ErrorKind::BrokenPipe | ErrorKind::ConnectionReset
                ) =>
            {
                Ok(false)
            }
            Err(error) => Err(Error::io("send a QMP command")(error)),
        }
    }

    /// Reads until QEMU answers the command sent last or closes the monitor; events read
    /// meanwhile are noted as usual.
    fn read_reply(&mut self) -> Result<Reply, Error> {
        loop {
            match self.read_message()? {
                None => return Ok(Reply::Closed),
                Some(Message::Return { value }) => return Ok(Reply::Return(value)),
                Some(Message::Error { error }) => return Ok(Reply::Error(error)),
                Some(Message::Greeting { .. } | Message::Event(_)) => {}
            }
        }
    }

    /// Reads one message, noting `SHUTDOWN` events; `None` when QEMU closed the monitor.
    fn read_message(&mut self) -> Result<Option<Message>, Error> {
        self.wait_readable()?;
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            // QEMU exiting with input still queued resets the socket instead of closing it;
            // everything it sent before has been read by then.
            Err(error) if error.kind() == ErrorKind::ConnectionReset => return Ok(None),
            Err(error) => return Err(Error::io("read from QMP")(error)),
        }
        let message: Message = serde_json::from_str(&line)
            .map_err(|error| Error::Qmp(format!("bad message {line:?}: {error}")))?;
        if let Message::Event(Event::Shutdown { data }) = &message {
            self.shutdown_cause.get_or_insert(data.reason);
        }
        Ok(Some(message))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Read;
    use std::net::Shutdown;
    use std::thread;

    /// Plays QEMU's side of a conversation: sends `script` after reading one command per
    /// `"<command>"` entry.
    pub(crate) fn fake_qemu(
        script: &[&'static str],
    ) -> (UnixStream, thread::JoinHandle<Vec<String>>) {
        let (client, mut server) = UnixStream::pair().unwrap();
        let script = script.to_vec();
        let qemu = thread::spawn(move || {
            let mut commands = Vec::new();
            let mut reader = BufReader::new(server.try_clone().unwrap());
            for line in script {
                if line == "<command>" {
                    let mut command = String::new();
                    reader.read_line(&mut command).unwrap();
                    commands.push(command);
                } else {
                    writeln!(server, "{line}").unwrap();
                }
            }
            server.shutdown(Shutdown::Write).unwrap();
            let mut rest = String::new();
            reader.read_to_string(&mut rest).unwrap();
            commands
        });
        (client, qemu)
    }

    pub(crate) const GREETING: &str = r#"{"QMP": {"version": {}, "capabilities": ["oob"]}}"#;

    #[test]
    fn negotiates_runs_and_sees_shutdown() {
        let (stream, qemu) = fake_qemu(&[
            GREETING,
            "<command>",
            r#"{"return": {}}"#,
            "<command>",
            r#"{"event": "RESUME", "timestamp": {}}"#,
            r#"{"return": {}}"#,
            r#"{"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-reset"}}"#,
            r#"{"event": "SHUTDOWN", "data": {"guest": false, "reason": "host-signal"}}"#,
        ]);
        let mut client = QmpClient::new(stream).unwrap();
        client.negotiate().unwrap();
        client.cont().unwrap();
        assert_eq!(
            client.wait_for_close().unwrap(),
            Some(ShutdownCause::GuestReset)
        );
        assert_eq!(
            qemu.join().unwrap(),
            [
                "{\"execute\":\"qmp_capabilities\"}\n",
                "{\"execute\":\"cont\"}\n"
            ]
        );
    }

    #[test]
    fn event_during_command_is_kept() {
        let (stream, _qemu) = fake_qemu(&[
            GREETING,
            "<command>",
            r#"{"return": {}}"#,
            "<command>",
            r#"{"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}}"#,
            r#"{"return": {}}"#,
        ]);
        let mut client = QmpClient::new(stream).unwrap();
        client.negotiate().unwrap();
        client.cont().unwrap();
        assert_eq!(
            client.wait_for_close().unwrap(),
            Some(ShutdownCause::GuestShutdown)
        );
    }

    #[test]
    fn reports_errors_and_early_close() {
        let (stream, _qemu) = fake_qemu(&[
            GREETING,
            "<command>",
            r#"{"error": {"class": "GenericError", "desc": "nope"}}"#,
        ]);
        let error = QmpClient::new(stream).unwrap().negotiate().unwrap_err();
        assert!(error.to_string().contains("nope"), "{error}");

        let (stream, _qemu) = fake_qemu(&[]);
        let error = QmpClient::new(stream).unwrap().negotiate().unwrap_err();
        assert!(error.to_string().contains("before greeting"), "{error}");

        let (stream, _qemu) = fake_qemu(&["not json"]);
        assert!(matches!(
            QmpClient::new(stream).unwrap().negotiate(),
            Err(Error::Qmp(_))
        ));
    }

    #[test]
    fn reset_after_shutdown_event_is_a_close() {
        let (mut client, mut qemu) = UnixStream::pair().unwrap();
        writeln!(
            qemu,
            r#"{{"event": "SHUTDOWN", "data": {{"reason": "guest-shutdown"}}}}"#
        )
        .unwrap();
        // Closing with unread input makes the client's next read fail with ECONNRESET.
        client.write_all(b"unread\n").unwrap();
        drop(qemu);
        let ending = QmpClient::new(client).unwrap().wait_for_close().unwrap();
        assert_eq!(ending, Some(ShutdownCause::GuestShutdown));
    }

    #[test]
    fn a_silent_qemu_times_out_or_is_interrupted() {
        let (client, _qemu) = UnixStream::pair().unwrap();
        let mut client = QmpClient::new(client).unwrap();
        let interrupt = Arc::new(AtomicBool::new(false));
        client.limit_reads(Some(ReadLimit {
            deadline: Instant::now(),
            timeout: Duration::from_secs(30),
            interrupt: Arc::clone(&interrupt),
        }));
        assert!(matches!(
            client.negotiate(),
            Err(Error::QemuStartTimeout(timeout)) if timeout == Duration::from_secs(30)
        ));
        interrupt.store(true, Ordering::Relaxed);
        client.limit_reads(Some(ReadLimit {
            deadline: Instant::now() + Duration::from_secs(3600),
            timeout: Duration::from_secs(3600),
            interrupt,
        }));
        assert!(matches!(client.negotiate(), Err(Error::Interrupted)));
    }

    #[test]
    fn no_shutdown_event() {
        let (stream, _qemu) = fake_qemu(&[r#"{"event": "STOP"}"#]);
        assert_eq!(
            QmpClient::new(stream).unwrap().wait_for_close().unwrap(),
            None
        );
    }
}
