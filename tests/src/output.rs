//! The recent output of a child process, read to the end of its pipes in threads: a
//! process blocked on a full pipe would look like a hung process.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread;

/// Lines kept for failure messages.
const LINES_KEPT: usize = 200;

/// The last lines a process printed, shared with the threads reading its pipes.
#[derive(Clone, Debug, Default)]
pub(crate) struct OutputLog(Arc<Mutex<VecDeque<String>>>);

impl OutputLog {
    pub(crate) fn push(&self, line: String) {
        let mut lines = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if lines.len() >= LINES_KEPT {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    pub(crate) fn text(&self) -> String {
        let lines = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        lines.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Reads `pipe` line by line in a thread until it closes, keeping each line (after
    /// `prefix`) and passing it on to `lines` if given.
    pub(crate) fn forward(
        &self,
        pipe: impl Read + Send + 'static,
        prefix: &'static str,
        lines: Option<mpsc::Sender<String>>,
    ) {
        let log = self.clone();
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if let Some(lines) = &lines {
                    let _ = lines.send(line.clone());
                }
                log.push(format!("{prefix}{line}"));
            }
        });
    }
}
