//! Where records come from: the [`StreamSource`] port and its two built-in sources, a
//! (possibly growing) file and a byte stream such as stdin.
//!
//! Both built-in sources deliver JSON lines and count their position in bytes, so a
//! checkpoint can say exactly where to resume. A line is only delivered once its newline has
//! arrived: a writer that is half-way through a line is never read half-way.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use wharf_core::{Result, WharfError};

/// One record handed out by a source, with what is needed to acknowledge it exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The record's bytes (one JSON line, without its line ending).
    pub payload: Vec<u8>,
    /// Where the record starts in the source (a byte offset for files and stdin).
    pub offset: u64,
    /// The position just past the record: committing it means "everything before here is
    /// done". Offset sources store it in the checkpoint; a broker adapter keeps its own
    /// acknowledgement token beside it.
    pub end: u64,
    /// A key that names this record across redeliveries (`<source>@<offset>`), so a
    /// downstream consumer can drop duplicates when the sink is only at-least-once.
    pub key: String,
    /// How many times the record has been delivered (1 for the first time). Offset sources
    /// always say 1; brokers count redeliveries of unacknowledged messages.
    pub attempt: u32,
    /// What the broker needs to acknowledge this record (a Redis entry id); `None` for
    /// offset sources, whose acknowledgement is the checkpoint's offset.
    pub token: Option<String>,
}

/// What a broker source did besides handing out new records, shared with whoever started
/// the job (which owns the source), so it can be reported when the job ends.
#[derive(Debug, Default)]
pub struct BrokerStats {
    reclaimed: AtomicU64,
    dead_lettered: AtomicU64,
    duplicates: AtomicU64,
}

impl BrokerStats {
    /// Records taken over from another consumer (or from this consumer's earlier life)
    /// because they stayed unacknowledged too long.
    pub fn reclaimed(&self) -> u64 {
        self.reclaimed.load(Ordering::Relaxed)
    }
    /// Records moved to the dead-letter stream.
    pub fn dead_lettered(&self) -> u64 {
        self.dead_lettered.load(Ordering::Relaxed)
    }
    /// Results not written because another consumer had already committed the same record
    /// (it was reclaimed while this one was still scoring it).
    pub fn duplicates(&self) -> u64 {
        self.duplicates.load(Ordering::Relaxed)
    }
    /// Adds `n` to [`reclaimed`](Self::reclaimed) (for broker adapters).
    pub fn add_reclaimed(&self, n: u64) {
        self.reclaimed.fetch_add(n, Ordering::Relaxed);
    }
    /// Adds `n` to [`dead_lettered`](Self::dead_lettered).
    pub fn add_dead_lettered(&self, n: u64) {
        self.dead_lettered.fetch_add(n, Ordering::Relaxed);
    }
    /// Adds `n` to [`duplicates`](Self::duplicates).
    pub fn add_duplicates(&self, n: u64) {
        self.duplicates.fetch_add(n, Ordering::Relaxed);
    }
}

/// The answer of [`StreamSource::poll`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Polled {
    /// At least one record, at most the number asked for.
    Records(Vec<Delivery>),
    /// Nothing arrived within the wait; more may come later.
    Idle,
    /// The source is finished (end of a file not followed, stdin closed).
    End,
}

/// A source of records for a streaming job.
///
/// # Contract
///
/// - [`poll`](Self::poll) returns at most `max` records, waiting at most about `wait` for the
///   first one; records come in source order, each exactly once per process lifetime.
/// - [`seek`](Self::seek) is called at most once, before the first `poll`, with a position a
///   previous run committed (a [`Delivery::end`]); the next record delivered is the one that
///   starts there. A source that cannot reach that position answers an error rather than
///   skipping or repeating data.
/// - [`commit`](Self::commit) is called after the results of `deliveries` are durably
///   written. Offset sources need do nothing (the job's checkpoint holds the offset); a
///   broker adapter acknowledges the messages there.
pub trait StreamSource: Send {
    /// The dataset name for lineage and checkpoints (`file:events.jsonl`, `stdin`).
    fn name(&self) -> String;
    /// Resumes at `position`, a [`Delivery::end`] committed by an earlier run.
    fn seek(&mut self, position: u64) -> Result<()>;
    /// Up to `max` records, waiting at most about `wait` for the first.
    fn poll(&mut self, max: usize, wait: Duration) -> Result<Polled>;
    /// Acknowledges records whose results are durably written.
    fn commit(&mut self, deliveries: &[Delivery]) -> Result<()> {
        let _ = deliveries;
        Ok(())
    }
}

impl<T: StreamSource + ?Sized> StreamSource for Box<T> {
    fn name(&self) -> String {
        (**self).name()
    }
    fn seek(&mut self, position: u64) -> Result<()> {
        (**self).seek(position)
    }
    fn poll(&mut self, max: usize, wait: Duration) -> Result<Polled> {
        (**self).poll(max, wait)
    }
    fn commit(&mut self, deliveries: &[Delivery]) -> Result<()> {
        (**self).commit(deliveries)
    }
}

/// Splits bytes into lines and keeps track of their byte offsets. Shared by both built-in
/// sources so a file and a pipe cut lines identically.
#[derive(Debug)]
struct LineSplitter {
    source: String,
    /// Bytes received but not yet cut into a complete line.
    partial: Vec<u8>,
    /// The offset of `partial[0]`.
    partial_start: u64,
    /// Complete lines not yet handed out.
    ready: VecDeque<Delivery>,
}

impl LineSplitter {
    fn new(source: String, start: u64) -> Self {
        LineSplitter { source, partial: Vec::new(), partial_start: start, ready: VecDeque::new() }
    }

    /// The position of the first byte not yet delivered.
    fn reset(&mut self, start: u64) {
        self.partial.clear();
        self.ready.clear();
        self.partial_start = start;
    }

    fn push(&mut self, bytes: &[u8]) {
        self.partial.extend_from_slice(bytes);
        let mut cut = 0;
        while let Some(nl) = self.partial[cut..].iter().position(|&b| b == b'\n') {
            let end = cut + nl + 1;
            self.emit(cut, end, end - 1);
            cut = end;
        }
        self.partial.drain(..cut);
        self.partial_start += cut as u64;
    }

    /// Delivers the bytes after the last newline as a final line (the input is complete).
    fn finish(&mut self) {
        if !self.partial.is_empty() {
            let len = self.partial.len();
            self.emit(0, len, len);
            self.partial_start += len as u64;
            self.partial.clear();
        }
    }

    /// Queues `partial[from..to]` as a record whose payload ends at `payload_end`. Blank
    /// lines are consumed without a record.
    fn emit(&mut self, from: usize, to: usize, payload_end: usize) {
        let mut payload = &self.partial[from..payload_end];
        if payload.last() == Some(&b'\r') {
            payload = &payload[..payload.len() - 1];
        }
        let offset = self.partial_start + from as u64;
        let end = self.partial_start + to as u64;
        if payload.iter().all(u8::is_ascii_whitespace) {
            // Still a position to commit past: carried by the next record or the final
            // checkpoint through `consumed`.
            return;
        }
        self.ready.push_back(Delivery {
            payload: payload.to_vec(),
            offset,
            end,
            key: format!("{}@{offset}", self.source),
            attempt: 1,
            token: None,
        });
    }

    fn take(&mut self, max: usize) -> Vec<Delivery> {
        let n = max.min(self.ready.len());
        self.ready.drain(..n).collect()
    }
}

/// How often a followed file is checked for new bytes.
const FOLLOW_POLL: Duration = Duration::from_millis(20);

/// Reads JSON lines from a file, optionally following it as it grows (`tail -f`).
///
/// Positions are byte offsets in the file. Without `follow` the end of the file ends the
/// stream, and a last line without a newline still counts. With `follow` the source waits
/// for more bytes, and a last line without a newline is not read until its newline comes,
/// because its writer may not be done with it. A file that shrinks below what was read
/// (truncated or replaced) is an error: the offsets would no longer mean anything.
#[derive(Debug)]
pub struct FileSource {
    path: PathBuf,
    file: File,
    follow: bool,
    /// Bytes read from the file so far.
    read_pos: u64,
    lines: LineSplitter,
    at_end: bool,
}

impl FileSource {
    /// Opens `path`; `follow` keeps polling for growth instead of ending at the end.
    pub fn open(path: impl AsRef<Path>, follow: bool) -> Result<FileSource> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|e| WharfError::io(&path, e))?;
        let name = format!("file:{}", path.display());
        Ok(FileSource { path, file, follow, read_pos: 0, lines: LineSplitter::new(name, 0), at_end: false })
    }

    /// Reads what is there now; true when the end of the file was reached.
    fn fill(&mut self, want: usize) -> Result<bool> {
        let len = self.file.metadata().map_err(|e| WharfError::io(&self.path, e))?.len();
        if len < self.read_pos {
            return Err(WharfError::invalid(
                self.path.display().to_string(),
                format!("the file shrank to {len} bytes after {} were read (truncated or replaced)", self.read_pos),
            ));
        }
        let mut buf = vec![0u8; 64 * 1024];
        while self.lines.ready.len() < want {
            let n = self.file.read(&mut buf).map_err(|e| WharfError::io(&self.path, e))?;
            if n == 0 {
                return Ok(true);
            }
            self.read_pos += n as u64;
            self.lines.push(&buf[..n]);
        }
        Ok(false)
    }
}

impl StreamSource for FileSource {
    fn name(&self) -> String {
        self.lines.source.clone()
    }

    fn seek(&mut self, position: u64) -> Result<()> {
        let len = self.file.metadata().map_err(|e| WharfError::io(&self.path, e))?.len();
        if len < position {
            return Err(WharfError::invalid(
                self.path.display().to_string(),
                format!("the checkpoint is at byte {position} but the file has only {len} bytes"),
            ));
        }
        self.file.seek(SeekFrom::Start(position)).map_err(|e| WharfError::io(&self.path, e))?;
        self.read_pos = position;
        self.lines.reset(position);
        Ok(())
    }

    fn poll(&mut self, max: usize, wait: Duration) -> Result<Polled> {
        let deadline = Instant::now() + wait;
        let max = max.max(1);
        loop {
            let eof = self.fill(max)?;
            if eof && !self.follow {
                self.lines.finish();
                self.at_end = true;
            }
            let records = self.lines.take(max);
            if !records.is_empty() {
                return Ok(Polled::Records(records));
            }
            if self.at_end {
                return Ok(Polled::End);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Polled::Idle);
            }
            thread::sleep(FOLLOW_POLL.min(deadline - now));
        }
    }
}

/// What the reader thread of a [`ReaderSource`] sends.
enum ReadEvent {
    Bytes(Vec<u8>),
    End,
    Failed(std::io::Error),
}

/// Reads JSON lines from any byte stream (stdin, a pipe, a socket) on a background thread,
/// so the job can wait with a timeout (the micro-batch latency bound) and notice a stop
/// request while no data comes.
///
/// Positions count the bytes read since the stream began. A stream cannot be rewound, so
/// resuming from a checkpoint expects the producer to replay the stream from its start:
/// [`seek`](StreamSource::seek) skips the bytes already committed. If the stream ends before
/// that point it is an error, not a silent skip.
pub struct ReaderSource {
    name: String,
    chunks: Receiver<ReadEvent>,
    lines: LineSplitter,
    /// Bytes still to discard to reach the resume position.
    skip: u64,
    received: u64,
    ended: bool,
}

impl std::fmt::Debug for ReaderSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReaderSource").field("name", &self.name).field("received", &self.received).finish()
    }
}

impl ReaderSource {
    /// The process's standard input.
    pub fn stdin() -> ReaderSource {
        Self::spawn("stdin", std::io::stdin())
    }

    /// Any reader, named `name` in lineage and errors.
    pub fn spawn(name: impl Into<String>, mut reader: impl Read + Send + 'static) -> ReaderSource {
        let name = name.into();
        // A small bound keeps a fast producer from filling memory while the job scores.
        let (tx, rx) = mpsc::sync_channel(16);
        thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let chunk = match reader.read(&mut buf) {
                    Ok(0) => ReadEvent::End,
                    Ok(n) => ReadEvent::Bytes(buf[..n].to_vec()),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => ReadEvent::Failed(e),
                };
                let last = !matches!(chunk, ReadEvent::Bytes(_));
                if tx.send(chunk).is_err() || last {
                    return;
                }
            }
        });
        ReaderSource { lines: LineSplitter::new(name.clone(), 0), name, chunks: rx, skip: 0, received: 0, ended: false }
    }

    fn accept(&mut self, bytes: &[u8]) {
        self.received += bytes.len() as u64;
        let skipped = (self.skip.min(bytes.len() as u64)) as usize;
        self.skip -= skipped as u64;
        self.lines.push(&bytes[skipped..]);
    }
}

impl StreamSource for ReaderSource {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn seek(&mut self, position: u64) -> Result<()> {
        self.skip = position.saturating_sub(self.received);
        self.lines.reset(position.max(self.received));
        Ok(())
    }

    fn poll(&mut self, max: usize, wait: Duration) -> Result<Polled> {
        let deadline = Instant::now() + wait;
        let max = max.max(1);
        loop {
            let records = self.lines.take(max);
            if !records.is_empty() {
                return Ok(Polled::Records(records));
            }
            if self.ended {
                return Ok(Polled::End);
            }
            let timeout = deadline.saturating_duration_since(Instant::now());
            match self.chunks.recv_timeout(timeout) {
                Ok(ReadEvent::Bytes(bytes)) => self.accept(&bytes),
                Ok(ReadEvent::End) | Err(RecvTimeoutError::Disconnected) => {
                    if self.skip > 0 {
                        return Err(WharfError::invalid(
                            self.name.clone(),
                            format!(
                                "the stream ended after {} bytes, before the checkpointed position {}; replay \
                                 it from its start to resume",
                                self.received,
                                self.received + self.skip
                            ),
                        ));
                    }
                    self.lines.finish();
                    self.ended = true;
                }
                Ok(ReadEvent::Failed(e)) => {
                    return Err(WharfError::io(PathBuf::from(&self.name), e));
                }
                Err(RecvTimeoutError::Timeout) => return Ok(Polled::Idle),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(source: &mut dyn StreamSource) -> Vec<(String, u64, u64)> {
        let mut out = Vec::new();
        loop {
            match source.poll(2, Duration::from_millis(200)).expect("poll") {
                Polled::Records(records) => out.extend(
                    records.into_iter().map(|d| (String::from_utf8_lossy(&d.payload).into_owned(), d.offset, d.end)),
                ),
                Polled::Idle | Polled::End => return out,
            }
        }
    }

    #[test]
    fn lines_carry_byte_offsets_and_blank_lines_are_skipped() {
        let mut source = ReaderSource::spawn("test", &b"{\"a\":1}\n\n{\"a\":2}\r\n{\"a\":3}"[..]);
        let got = drain(&mut source);
        assert_eq!(
            got,
            vec![
                ("{\"a\":1}".to_string(), 0, 8),
                ("{\"a\":2}".to_string(), 9, 18),
                // The last line has no newline; the stream is over, so it counts.
                ("{\"a\":3}".to_string(), 18, 25),
            ]
        );
    }

    #[test]
    fn a_reader_resumes_by_skipping_committed_bytes() {
        let mut source = ReaderSource::spawn("test", &b"one\ntwo\nthree\n"[..]);
        source.seek(4).expect("seek");
        let got: Vec<String> = drain(&mut source).into_iter().map(|r| r.0).collect();
        assert_eq!(got, vec!["two", "three"]);

        let mut short = ReaderSource::spawn("test", &b"one\n"[..]);
        short.seek(100).expect("seek");
        let err = short.poll(10, Duration::from_secs(5)).expect_err("stream too short");
        assert!(err.to_string().contains("before the checkpointed position 100"), "{err}");
    }

    #[test]
    fn a_followed_file_waits_for_the_newline_of_a_partial_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("in.jsonl");
        std::fs::write(&path, b"first\nsec").expect("write");
        let mut source = FileSource::open(&path, true).expect("open");
        assert_eq!(drain(&mut source), vec![("first".to_string(), 0, 6)]);
        assert_eq!(source.poll(5, Duration::from_millis(50)).expect("poll"), Polled::Idle);
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).expect("append");
        std::io::Write::write_all(&mut f, b"ond\nthird\n").expect("write");
        assert_eq!(drain(&mut source), vec![("second".to_string(), 6, 13), ("third".to_string(), 13, 19)]);

        // Not followed, the same file ends, and seek resumes mid-file.
        let mut once = FileSource::open(&path, false).expect("open");
        once.seek(13).expect("seek");
        assert_eq!(drain(&mut once), vec![("third".to_string(), 13, 19)]);
        assert_eq!(once.poll(5, Duration::ZERO).expect("poll"), Polled::End);
        assert!(FileSource::open(&path, false).expect("open").seek(1000).is_err(), "past the end");
    }

    #[test]
    fn a_file_that_shrinks_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("in.jsonl");
        std::fs::write(&path, b"aaaa\nbbbb\n").expect("write");
        let mut source = FileSource::open(&path, true).expect("open");
        drain(&mut source);
        std::fs::write(&path, b"a\n").expect("truncate");
        let err = source.poll(5, Duration::from_millis(10)).expect_err("shrunk");
        assert!(err.to_string().contains("shrank"), "{err}");
    }
}
