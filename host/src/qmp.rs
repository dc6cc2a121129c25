// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! A minimal QMP (QEMU Machine Protocol) client: capability negotiation, commands and the
//! `SHUTDOWN` event, one JSON object per line.

use crate::error::Error;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::os::unix::net::UnixStream;

/// A connected QMP monitor.
pub(crate) struct QmpClient {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    /// The `reason` of the first `SHUTDOWN` event seen, a QAPI `ShutdownCause`.
    shutdown_cause: Option<String>,
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
        })
    }

    /// Reads QEMU's greeting and leaves capability negotiation mode, after which QEMU sends
    /// events.
    pub(crate) fn negotiate(&mut self) -> Result<(), Error> {
        match self.read_message()? {
            Some(greeting) if greeting.get("QMP").is_some() => self.execute("qmp_capabilities"),
            Some(other) => Err(Error::Qmp(format!(
                "expected the QMP greeting, got {other}"
            ))),
            None => Err(Error::Qmp(
                "QEMU closed its QMP monitor before greeting".to_owned(),
            )),
        }
    }

    /// Runs a command without arguments and waits for its successful return.
    pub(crate) fn execute(&mut self, command: &str) -> Result<(), Error> {
        let mut line = json!({ "execute": command }).to_string();
        line.push('\n');
        self.writer
            .write_all(line.as_bytes())
            .map_err(Error::io("send a QMP command"))?;
        loop {
            let Some(message) = self.read_message()? else {
                return Err(Error::Qmp(format!(
                    "QEMU closed its QMP monitor during `{command}`"
                )));
            };
            if message.get("return").is_some() {
                return Ok(());
            }
            if let Some(error) = message.get("error") {
                return Err(Error::Qmp(format!("`{command}` failed: {error}")));
            }
        }
    }

    /// Reads until QEMU closes the monitor (it does when it exits) and returns the cause of the
    /// first `SHUTDOWN` event, if there was one.
    pub(crate) fn wait_for_close(mut self) -> Result<Option<String>, Error> {
        while self.read_message()?.is_some() {}
        Ok(self.shutdown_cause)
    }

    /// Reads one message, noting `SHUTDOWN` events; `None` when QEMU closed the monitor.
    fn read_message(&mut self) -> Result<Option<Value>, Error> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            // QEMU exiting with input still queued resets the socket instead of closing it;
            // everything it sent before has been read by then.
            Err(error) if error.kind() == ErrorKind::ConnectionReset => return Ok(None),
            Err(error) => return Err(Error::io("read from QMP")(error)),
        }
        let message: Value = serde_json::from_str(&line)
            .map_err(|error| Error::Qmp(format!("bad message {line:?}: {error}")))?;
        if message.get("event").and_then(Value::as_str) == Some("SHUTDOWN")
            && self.shutdown_cause.is_none()
        {
            self.shutdown_cause = Some(
                message
                    .pointer("/data/reason")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown")
                    .to_owned(),
            );
        }
        Ok(Some(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::Shutdown;
    use std::thread;

    /// Plays QEMU's side of a conversation: sends `script` after reading one command per
    /// `"<command>"` entry.
    fn fake_qemu(script: &'static [&'static str]) -> (UnixStream, thread::JoinHandle<Vec<String>>) {
        let (client, mut server) = UnixStream::pair().unwrap();
        let qemu = thread::spawn(move || {
            let mut commands = Vec::new();
            let mut reader = BufReader::new(server.try_clone().unwrap());
            for line in script {
                if *line == "<command>" {
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

    const GREETING: &str = r#"{"QMP": {"version": {}, "capabilities": ["oob"]}}"#;

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
        client.execute("cont").unwrap();
        assert_eq!(
            client.wait_for_close().unwrap().as_deref(),
            Some("guest-reset")
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
        client.execute("cont").unwrap();
        assert_eq!(
            client.wait_for_close().unwrap().as_deref(),
            Some("guest-shutdown")
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
        let cause = QmpClient::new(client).unwrap().wait_for_close().unwrap();
        assert_eq!(cause.as_deref(), Some("guest-shutdown"));
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
