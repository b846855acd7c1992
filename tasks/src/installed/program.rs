//! Task programs kept warm: each is started on its first call and then
//! serves call after call over its stdin and stdout, until it fails, runs
//! past its time, or its owner goes.
//!
//! The calls are written and read with `poll(2)` on non-blocking pipes, so
//! a program that writes its answer before it has read all of its call
//! cannot deadlock the node, and the deadline holds whatever the program
//! does. A program whose state is in doubt after a call (it timed out,
//! exited, or answered with bytes that are not an answer) is killed, with
//! its whole process group, and started afresh on the next call.

use super::protocol::{self, Answer};
use super::{Installed, Manifest};
use crate::Table;
use serde_json::Value;
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::fs::FileExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// Where a program's stderr lines go (the node's log).
pub type Sink = Arc<dyn Fn(&str) + Send + Sync>;

/// The limits programs run under, from the settings; a manifest's own
/// `timeout_ms` and `memory_mb` win.
#[derive(Debug, Clone)]
pub struct Limits {
    /// How long one call may take (`program_timeout_ms`).
    pub timeout: Duration,
    /// Address space in MiB (`program_memory_mb`); 0 for no limit.
    pub memory_mb: u64,
    /// The longest a call on a check's sample may take.
    pub check_timeout: Duration,
    /// A folder to put first on the programs' PYTHONPATH: where the
    /// `rtl_task` helper is.
    pub python_path: Option<PathBuf>,
    /// The most bytes an answer may announce: more than rtl could move
    /// (the larger of `max_message_bytes` and `cache_map_size`), so an
    /// answer announcing more is refused before it is read.
    pub answer_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            timeout: Duration::from_secs(30),
            memory_mb: 4096,
            check_timeout: Duration::from_secs(10),
            python_path: None,
            answer_bytes: 2 << 30,
        }
    }
}

/// The installed tasks of one worker and their warm programs. Not shared
/// between threads: each worker runs one call at a time, so each has its
/// own programs.
pub struct Programs {
    installed: Installed,
    limits: Limits,
    running: RefCell<HashMap<String, Program>>,
    sink: Sink,
}

impl std::fmt::Debug for Programs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Programs")
            .field("installed", &self.installed)
            .field("running", &self.running.borrow().len())
            .finish()
    }
}

impl Programs {
    /// Programs for `installed`, started as calls need them.
    pub fn new(installed: Installed, limits: Limits, sink: Sink) -> Programs {
        Programs {
            installed,
            limits,
            running: RefCell::new(HashMap::new()),
            sink,
        }
    }

    /// The same tasks, limits and sink, with no program started yet.
    pub fn fresh(&self) -> Programs {
        Programs::new(
            self.installed.clone(),
            self.limits.clone(),
            self.sink.clone(),
        )
    }

    /// The installed tasks.
    pub fn installed(&self) -> &Installed {
        &self.installed
    }

    /// Adds the tasks of `more` whose names it lacks (tasks the nodes
    /// have, known by their manifests): checks take their kwargs from them.
    pub fn learn(&mut self, more: &Installed) {
        self.installed = self.installed.merged(more);
    }

    /// Runs installed task `manifest` on `table`: its kwargs checked (and
    /// defaults filled in), the columns they name looked for, then one
    /// call of its program. `checking` runs it on a check's sample, with
    /// the shorter check timeout.
    pub fn call(
        &self,
        manifest: &Manifest,
        kwargs: &Value,
        table: Table,
        checking: bool,
    ) -> Result<Table, String> {
        let kwargs = manifest.kwargs_of(kwargs)?;
        manifest.columns_in(&kwargs, &table)?;
        let mut timeout = manifest
            .timeout_ms
            .map_or(self.limits.timeout, Duration::from_millis);
        if checking {
            timeout = timeout.min(self.limits.check_timeout);
        }
        let memory_mb = manifest.memory_mb.unwrap_or(self.limits.memory_mb);
        let mut running = self.running.borrow_mut();
        // A program that exited after its last answer is gone: this call
        // goes to a fresh one, not to the corpse.
        if running
            .get_mut(&manifest.name)
            .is_some_and(|p| !matches!(p.child.try_wait(), Ok(None)))
        {
            running.remove(&manifest.name);
        }
        let outcome = loop {
            let fresh = !running.contains_key(&manifest.name);
            if fresh {
                let program = Program::start(manifest, memory_mb, &self.limits, &self.sink)?;
                running.insert(manifest.name.clone(), program);
            }
            let program = running
                .get_mut(&manifest.name)
                .ok_or("the program did not start")?;
            let request = protocol::call(&manifest.name, &kwargs, &table, checking, program.shared);
            let outcome = program.exchange(&request, timeout, self.limits.answer_bytes);
            match outcome {
                // It exited just after the check above, between calls: the
                // call goes, once, to a fresh program.
                Err(Fault::EndedUnread) if !fresh => {
                    if let Some(gone) = running.remove(&manifest.name) {
                        gone.stop();
                    }
                }
                outcome => break outcome,
            }
        };
        let in_sync = matches!(outcome, Ok((_, true)));
        let fault = match outcome {
            Ok((answer, _)) => {
                if !in_sync {
                    // It answered before reading all of the call: the rest
                    // of the call would be read as the next one.
                    if let Some(program) = running.remove(&manifest.name) {
                        program.stop();
                    }
                }
                return match answer {
                    Answer::Columns(columns) => protocol::table(columns, table),
                    Answer::Error(message) => Err(with_memory_note(
                        program_message(message),
                        manifest,
                        memory_mb,
                    )),
                };
            }
            Err(fault) => fault,
        };
        let Some(program) = running.remove(&manifest.name) else {
            return Err("the program went away".into());
        };
        let what = format!("the program `{}`", manifest.command_line());
        let message = match fault {
            Fault::Timeout => {
                program.stop();
                format!(
                    "{what} did not answer within {} ms ({}), so it was stopped; it starts afresh on the next call",
                    timeout.as_millis(),
                    if checking && timeout == self.limits.check_timeout {
                        "the limit for a check on a sample".to_string()
                    } else if manifest.timeout_ms.is_some() {
                        format!("timeout_ms in {}", manifest.origin)
                    } else {
                        "the setting program_timeout_ms; a manifest's timeout_ms wins".to_string()
                    }
                )
            }
            Fault::Garbled(why) => {
                program.stop();
                format!("{what} answered with something that is not an answer: {why}; it was stopped and starts afresh on the next call")
            }
            Fault::Ended | Fault::EndedUnread => {
                let (status, tail) = program.ended();
                let mut message = format!("{what} {} before answering", how_it_ended(status));
                if !tail.is_empty() {
                    message.push_str(&format!("; the end of its stderr: {}", tail.join(" | ")));
                }
                message.push_str("; it starts afresh on the next call");
                with_memory_note(message, manifest, memory_mb)
            }
        };
        Err(message)
    }
}

/// Why a call got no answer.
enum Fault {
    Timeout,
    /// Its stdout closed: it exited, or was killed.
    Ended,
    /// It had ended before it read any of the call, so the call may go
    /// to a fresh program as it is.
    EndedUnread,
    Garbled(String),
}

/// A running task program.
struct Program {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    /// Memory the program can read a call's columns from (its fd 3) and
    /// write an answer's into (its fd 4): a copy each way instead of the
    /// two a pipe makes, and no turn-taking through a pipe's buffer.
    call_memory: File,
    answer_memory: File,
    /// It answered through its answer memory: it knows the shared form,
    /// so calls go that way too.
    shared: bool,
    /// Its last lines on stderr.
    tail: Arc<Mutex<VecDeque<String>>>,
    /// Closed when its stderr is.
    stderr_closed: mpsc::Receiver<()>,
}

/// Lines of stderr kept for a message, and the longest kept of one.
const TAIL_LINES: usize = 8;
const TAIL_CHARS: usize = 300;

impl Program {
    fn start(
        manifest: &Manifest,
        memory_mb: u64,
        limits: &Limits,
        sink: &Sink,
    ) -> Result<Program, String> {
        let path = manifest.program()?;
        let mut command = Command::new(&path);
        command
            .args(&manifest.command[1..])
            .current_dir(&manifest.folder)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("RTL_TASK", &manifest.name)
            .env("PYTHONUNBUFFERED", "1")
            // Its own group, so that what it starts is stopped with it.
            .process_group(0);
        if let Some(helper) = &limits.python_path {
            let mut path = helper.as_os_str().to_os_string();
            if let Some(old) = std::env::var_os("PYTHONPATH").filter(|p| !p.is_empty()) {
                path.push(":");
                path.push(old);
            }
            command.env("PYTHONPATH", path);
        }
        let call_memory = memory_file(c"rtl-call")?;
        let answer_memory = memory_file(c"rtl-answer")?;
        let (call_fd, answer_fd) = (call_memory.as_raw_fd(), answer_memory.as_raw_fd());
        command.env("RTL_TASK_MEMORY", "3,4");
        let bytes = memory_mb.saturating_mul(1 << 20);
        // SAFETY: between fork and exec the closure calls only fcntl(2),
        // dup2(2), close(2), close_range(2), getrlimit(2), setrlimit(2) and
        // prctl(2), which are async-signal-safe, and allocates nothing.
        unsafe {
            command.pre_exec(move || {
                // The memories become fds 3 and 4, open across exec: first
                // out of the way, so one cannot overwrite the other.
                let high = |fd| libc::fcntl(fd, libc::F_DUPFD, 10);
                let (call, answer) = (high(call_fd), high(answer_fd));
                if call < 0 || answer < 0 || libc::dup2(call, 3) < 0 || libc::dup2(answer, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(call);
                libc::close(answer);
                // Nothing else of the node's reaches the program: LMDB opens
                // the cache without close-on-exec, and a program holding it
                // could write into it. Closed at exec, not now, so a failed
                // exec is still reported through std's own pipe.
                if libc::syscall(
                    libc::SYS_close_range,
                    5 as libc::c_uint,
                    libc::c_uint::MAX,
                    libc::CLOSE_RANGE_CLOEXEC,
                ) != 0
                {
                    // Kernels before 5.11: one by one.
                    let mut open = libc::rlimit {
                        rlim_cur: 0,
                        rlim_max: 0,
                    };
                    libc::getrlimit(libc::RLIMIT_NOFILE, &mut open);
                    for fd in 5..open.rlim_cur.min(1 << 20) as libc::c_int {
                        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                    }
                }
                if bytes > 0 {
                    let limit = libc::rlimit {
                        rlim_cur: bytes,
                        rlim_max: bytes,
                    };
                    if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                // The program goes when the thread that started it does
                // (its node crashed, or its worker ended).
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(|e| {
            format!(
                "cannot start the program `{}` in {}: {e}",
                manifest.command_line(),
                manifest.folder.display()
            )
        })?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err("the program's pipes could not be set up".into());
        };
        for fd in [stdin.as_raw_fd(), stdout.as_raw_fd()] {
            non_blocking(fd);
        }
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let (closed_tx, stderr_closed) = mpsc::channel();
        let (lines, sink) = (tail.clone(), sink.clone());
        let label = format!("{} (pid {})", manifest.name, child.id());
        let reader = std::thread::Builder::new()
            .name(format!("{}-stderr", manifest.name))
            .spawn(move || {
                let mut stderr = BufReader::new(stderr);
                let mut line = Vec::new();
                while matches!(stderr.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                    let text = String::from_utf8_lossy(&line);
                    let text = text.trim_end();
                    sink(&format!("{label}: {text}"));
                    let mut kept = lines.lock().unwrap_or_else(|e| e.into_inner());
                    if kept.len() == TAIL_LINES {
                        kept.pop_front();
                    }
                    kept.push_back(text.chars().take(TAIL_CHARS).collect());
                    line.clear();
                }
                let _ = closed_tx.send(());
            });
        if let Err(e) = reader {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("cannot watch the program's stderr: {e}"));
        }
        Ok(Program {
            child,
            stdin,
            stdout,
            call_memory,
            answer_memory,
            shared: false,
            tail,
            stderr_closed,
        })
    }

    /// Sends `request` (its pieces one after another) and reads the
    /// answer, by `timeout`. The flag is false when the answer came before
    /// the whole request was read.
    fn exchange(
        &mut self,
        request: &[Cow<[u8]>],
        timeout: Duration,
        most: u64,
    ) -> Result<(Answer, bool), Fault> {
        let deadline = Instant::now() + timeout;
        // A write to a program that has gone must fail, not kill the node.
        let _quiet = NoSigpipe::new();
        // In the shared form, the columns go into the call memory and only
        // the first line through the pipe.
        let request = match request.split_first() {
            Some((line, columns)) if self.shared => {
                self.fill_call_memory(columns).map_err(|_| Fault::Ended)?;
                std::slice::from_ref(line)
            }
            _ => request,
        };
        // What it says on stderr from here on is this call's.
        self.tail.lock().unwrap_or_else(|e| e.into_inner()).clear();
        let (to, from) = (self.stdin.as_raw_fd(), self.stdout.as_raw_fd());
        // The piece being sent, and how much of it is.
        let (mut piece, mut written) = (0, 0);
        let mut sent = 0;
        let mut received: Vec<u8> = Vec::new();
        // How its end is told: whether it took any of this call first.
        let ended = |received: &[u8], sent: usize| {
            if received.is_empty() && unread(to) == sent {
                Fault::EndedUnread
            } else {
                Fault::Ended
            }
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Fault::Timeout);
            }
            while request.get(piece).is_some_and(|p| written == p.len()) {
                (piece, written) = (piece + 1, 0);
            }
            let sending = piece < request.len();
            let mut fds = [
                libc::pollfd {
                    fd: from,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: if sending { to } else { -1 },
                    events: libc::POLLOUT,
                    revents: 0,
                },
            ];
            let wait = left.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
            // SAFETY: `fds` is a live array of two pollfd structs.
            let ready = unsafe { libc::poll(fds.as_mut_ptr(), 2, wait) };
            if ready < 0 {
                if std::io::Error::last_os_error().kind() == ErrorKind::Interrupted {
                    continue;
                }
                return Err(Fault::Ended);
            }
            if sending && fds[1].revents != 0 {
                match self.stdin.write(&request[piece][written..]) {
                    Ok(n) => {
                        written += n;
                        sent += n;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    // It closed its stdin (or died): what it says, or how
                    // it ended, tells the rest.
                    Err(_) => (piece, written) = (request.len(), 0),
                }
            }
            if fds[0].revents != 0 {
                // As much as the pipe holds at once.
                let start = received.len();
                received.resize(start + (1 << 20), 0);
                match self.stdout.read(&mut received[start..]) {
                    Ok(0) => {
                        received.truncate(start);
                        return Err(ended(&received, sent));
                    }
                    Ok(n) => {
                        received.truncate(start + n);
                        match protocol::answer(&received, &self.answer_memory, most) {
                            None => {}
                            Some(Ok((answer, shared))) => {
                                // Once it answers through its memory, it can
                                // take calls that way too.
                                self.shared |= shared;
                                // Sent all: nothing left of this piece or
                                // in any after it.
                                let left = request.get(piece).map_or(0, |p| p.len() - written)
                                    + request
                                        .iter()
                                        .skip(piece + 1)
                                        .map(|p| p.len())
                                        .sum::<usize>();
                                // All sent is not all read: what it left in
                                // the pipe would be taken for the next call.
                                return Ok((answer, left == 0 && unread(to) == 0));
                            }
                            Some(Err(why)) => return Err(Fault::Garbled(why)),
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => received.truncate(start),
                    Err(_) => return Err(Fault::Ended),
                }
            }
        }
    }

    /// Puts a call's columns, one after another, into the call memory.
    fn fill_call_memory(&self, columns: &[Cow<[u8]>]) -> std::io::Result<()> {
        let total: usize = columns.iter().map(|c| c.len()).sum();
        self.call_memory.set_len(total as u64)?;
        let mut at = 0u64;
        for column in columns {
            self.call_memory.write_all_at(column, at)?;
            at += column.len() as u64;
        }
        Ok(())
    }

    /// How the program ended (it closed its stdout), and its last lines
    /// on stderr.
    fn ended(mut self) -> (Option<ExitStatus>, Vec<String>) {
        // It may have closed stdout and carried on: give it a moment, then
        // it is stopped (and said to have closed its output).
        let until = Instant::now() + Duration::from_secs(2);
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(5)),
                _ => break None,
            }
        };
        kill_group(&self.child);
        let _ = self.child.wait();
        // Its last words may still be on their way through the pipe.
        let _ = self.stderr_closed.recv_timeout(Duration::from_millis(500));
        let tail = self.tail.lock().unwrap_or_else(|e| e.into_inner());
        (status, tail.iter().cloned().collect())
    }

    /// Kills it and what it started, and reaps it.
    fn stop(mut self) {
        kill_group(&self.child);
        let _ = self.child.wait();
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        kill_group(&self.child);
        let _ = self.child.try_wait();
    }
}

impl protocol::Memory for File {
    fn bytes(&self, len: usize) -> Result<Vec<u8>, String> {
        let held = self.metadata().map(|m| m.len()).unwrap_or(0);
        if held < len as u64 {
            return Err(format!(
                "its answer memory holds {held} bytes, and its columns take {len}"
            ));
        }
        let mut bytes = vec![0; len];
        self.read_exact_at(&mut bytes, 0)
            .map_err(|e| format!("its answer memory cannot be read: {e}"))?;
        Ok(bytes)
    }
}

/// An anonymous file in memory (memfd), closed on exec except where a
/// child's setup moves it.
fn memory_file(name: &std::ffi::CStr) -> Result<File, String> {
    // SAFETY: memfd_create takes a NUL-terminated name and returns a new
    // fd, which the File then owns alone.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(format!(
            "cannot make the program's memory: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: `fd` was just created and is owned by nothing else.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// SIGPIPE blocked for this thread while it lives: a write to a pipe
/// whose reader is gone then fails with EPIPE (the `rtl` binary keeps
/// SIGPIPE's default, which would end the process). What the write raised
/// is taken before the mask is restored.
struct NoSigpipe {
    old: libc::sigset_t,
}

impl NoSigpipe {
    fn new() -> NoSigpipe {
        let pipe = sigpipe_set();
        // SAFETY: sigset_t is plain data; the call reads a set this function
        // owns and changes only this thread's mask.
        unsafe {
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, &pipe, &mut old);
            NoSigpipe { old }
        }
    }
}

impl Drop for NoSigpipe {
    fn drop(&mut self) {
        let pipe = sigpipe_set();
        // SAFETY: as in `new`; sigtimedwait with a zero timeout only takes
        // a SIGPIPE already pending for this thread.
        unsafe {
            let now = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            while libc::sigtimedwait(&pipe, std::ptr::null_mut(), &now) == libc::SIGPIPE {}
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut());
        }
    }
}

/// The signal set holding SIGPIPE alone.
fn sigpipe_set() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data, filled here by sigemptyset/sigaddset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        set
    }
}

/// SIGKILL to the program's process group (it leads its own).
fn kill_group(child: &Child) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) on a group this process created; a group that is
        // gone already makes it fail harmlessly.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

/// Bytes written into the pipe at `fd` that its reader has not read
/// (Linux answers FIONREAD on either end of a pipe).
fn unread(fd: RawFd) -> usize {
    let mut bytes: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer.
    let ok = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut bytes) } == 0;
    if ok {
        usize::try_from(bytes).unwrap_or(0)
    } else {
        0
    }
}

/// Makes a pipe end non-blocking, and roomier where Linux allows, so that
/// large tables move in fewer wakeups.
fn non_blocking(fd: RawFd) {
    // SAFETY: fcntl(2) on a pipe this process owns.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        libc::fcntl(fd, libc::F_SETPIPE_SZ, 1 << 20);
    }
}

fn how_it_ended(status: Option<ExitStatus>) -> String {
    let Some(status) = status else {
        return "closed its stdout (and was stopped)".into();
    };
    if let Some(code) = status.code() {
        return format!("exited with status {code}");
    }
    match status.signal() {
        Some(signal) => {
            let name = match signal {
                libc::SIGSEGV => " (SIGSEGV, a crash)",
                libc::SIGABRT => " (SIGABRT, it aborted)",
                libc::SIGKILL => " (SIGKILL)",
                libc::SIGBUS => " (SIGBUS, a crash)",
                libc::SIGFPE => " (SIGFPE, an arithmetic fault)",
                libc::SIGILL => " (SIGILL, a crash)",
                libc::SIGTERM => " (SIGTERM)",
                _ => "",
            };
            format!("was killed by signal {signal}{name}")
        }
        None => format!("ended ({status})"),
    }
}

/// `message`, and the program's memory limit when it reads like running
/// out of memory.
/// The most of a program's own error message a job's error carries.
const MESSAGE_CHARS: usize = 2000;

/// A program's error message as a job's error tells it: never empty, and
/// not a megabyte long.
fn program_message(message: String) -> String {
    let message = message.trim();
    if message.is_empty() {
        return "it answered with an error, but an empty message".into();
    }
    match message.char_indices().nth(MESSAGE_CHARS) {
        Some((cut, _)) => format!(
            "{}... ({} more characters)",
            &message[..cut],
            message[cut..].chars().count()
        ),
        None => message.to_string(),
    }
}

fn with_memory_note(message: String, manifest: &Manifest, memory_mb: u64) -> String {
    let lower = message.to_lowercase();
    // Words of the ways running out of address space is told (Python,
    // C, C++, the dynamic loader), not any mention of memory.
    let about_memory = [
        "memoryerror",
        "out of memory",
        "cannot allocate",
        "unable to allocate",
        "bad_alloc",
        "failed to map",
        "memory exhausted",
    ]
    .iter()
    .any(|w| lower.contains(w));
    if memory_mb == 0 || !about_memory {
        return message;
    }
    let source = if manifest.memory_mb.is_some() {
        format!("memory_mb in {}", manifest.origin)
    } else {
        "the setting program_memory_mb; a manifest's memory_mb wins".into()
    };
    format!("{message} (the program may use at most {memory_mb} MiB of memory: {source})")
}

#[cfg(test)]
mod tests {
    //! The runner against small shell programs that speak just enough of
    //! the protocol (calls of a table without columns are one line), so
    //! these need nothing installed. Python programs are tried through a
    //! real daemon in the workspace's tests.

    use super::*;
    use serde_json::json;

    fn programs(script: &str, extra: &str) -> (Programs, Manifest) {
        let text = format!(
            "name = \"t\"\ncommand = [\"sh\", \"-c\", {script:?}]\n{extra}\n[kwargs.k]\ntype = \"int\"\ndefault = 1\n"
        );
        let manifest = Manifest::parse(&text, "t.toml", std::env::temp_dir()).expect("manifest");
        let lines: Sink = Arc::new(|_| {});
        let programs = Programs::new(
            Installed::new(vec![manifest.clone()]),
            Limits::default(),
            lines,
        );
        (programs, manifest)
    }

    fn call(programs: &Programs, manifest: &Manifest) -> Result<Table, String> {
        programs.call(manifest, &json!({}), Table::new(), false)
    }

    #[test]
    fn a_program_stays_warm_between_calls() {
        let (programs, manifest) = programs(
            r#"n=0; while read line; do n=$((n+1)); echo "{\"error\": \"call $n\"}"; done"#,
            "",
        );
        assert_eq!(call(&programs, &manifest), Err("call 1".into()));
        assert_eq!(call(&programs, &manifest), Err("call 2".into()));
        let (programs, manifest) = programs_answering_tables();
        assert_eq!(call(&programs, &manifest), Ok(Table::new()));
    }

    fn programs_answering_tables() -> (Programs, Manifest) {
        programs(r#"while read line; do echo '{"columns": []}'; done"#, "")
    }

    #[test]
    fn an_exit_is_told_with_its_status_and_last_words_and_the_next_call_starts_afresh() {
        let (programs, manifest) = programs(
            r#"read line; echo "starting" >&2; echo "it went wrong" >&2; exit 3"#,
            "",
        );
        assert_eq!(
            call(&programs, &manifest),
            Err("the program `sh -c read line; echo \"starting\" >&2; echo \"it went wrong\" >&2; exit 3` exited with status 3 before answering; the end of its stderr: starting | it went wrong; it starts afresh on the next call".into())
        );
        let again = call(&programs, &manifest).expect_err("exits again");
        assert!(again.contains("exited with status 3"), "{again}");
    }

    #[test]
    fn a_program_that_ends_between_calls_leaves_the_next_call_to_a_fresh_one() {
        // Alive when the next call comes, gone before it reads any of it.
        let (ending, manifest) = programs(
            r#"read line; echo '{"columns": []}'; sleep 0.3; exit 0"#,
            "",
        );
        for _ in 0..3 {
            assert_eq!(call(&ending, &manifest), Ok(Table::new()));
        }
        // One that reads the call and then ends is told, not called again.
        let (reader, manifest) = programs(
            r#"read line; echo '{"columns": []}'; read line; exit 4"#,
            "",
        );
        assert_eq!(call(&reader, &manifest), Ok(Table::new()));
        let err = call(&reader, &manifest).expect_err("read, then ended");
        assert!(
            err.contains("exited with status 4 before answering"),
            "{err}"
        );
    }

    #[test]
    fn empty_and_huge_error_messages_are_told_in_words_and_cut() {
        let (empty, manifest) = programs(r#"while read line; do echo '{"error": " "}'; done"#, "");
        assert_eq!(
            call(&empty, &manifest),
            Err("it answered with an error, but an empty message".into())
        );
        let (long, manifest) = programs(
            r#"long=$(printf 'e%.0s' $(seq 2500)); while read line; do echo "{\"error\": \"$long\"}"; done"#,
            "",
        );
        let err = call(&long, &manifest).expect_err("long");
        assert!(err.ends_with("e... (500 more characters)"), "{err}");
        assert_eq!(err.len(), 2000 + "... (500 more characters)".len());
    }

    #[test]
    fn a_signal_is_named() {
        let (programs, manifest) = programs("read line; kill -SEGV $$", "");
        let err = call(&programs, &manifest).expect_err("killed");
        assert!(
            err.contains("was killed by signal 11 (SIGSEGV, a crash) before answering"),
            "{err}"
        );
    }

    #[test]
    fn a_slow_program_is_stopped_at_its_timeout() {
        let (programs, manifest) = programs("read line; sleep 30", "timeout_ms = 200");
        let started = Instant::now();
        let err = call(&programs, &manifest).expect_err("slow");
        assert!(
            err.contains("did not answer within 200 ms (timeout_ms in t.toml), so it was stopped"),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn output_that_is_not_an_answer_stops_the_program() {
        let (programs, manifest) = programs("read line; echo hello; sleep 30", "");
        let err = call(&programs, &manifest).expect_err("garbled");
        assert!(
            err.contains("answered with something that is not an answer: its answer does not start with a line of JSON"),
            "{err}"
        );
    }

    #[test]
    fn a_program_that_answers_before_reading_its_call_is_started_afresh() {
        // It reads the first line only: the columns stay in the pipe.
        let (programs, manifest) = programs(
            r#"n=0; while read line; do n=$((n+1)); echo "{\"error\": \"call $n\"}"; sleep 30; done"#,
            "",
        );
        let table = Table::from_columns(vec![(
            "x".into(),
            crate::Column::Float64(ndarray::Array1::zeros(1000)),
        )])
        .expect("table");
        for _ in 0..3 {
            let got = programs.call(&manifest, &json!({}), table.clone(), false);
            assert_eq!(got, Err("call 1".into()), "each call meets a fresh program");
        }
    }

    #[test]
    fn a_program_gone_mid_call_fails_the_call_not_the_node() {
        // It leaves after the first line of a call larger than the pipe:
        // the rest of the write fails with EPIPE (SIGPIPE would end this
        // process), and the call says how it ended.
        let (programs, manifest) = programs("read line; exit 0", "");
        let table = Table::from_columns(vec![(
            "x".into(),
            crate::Column::Float64(ndarray::Array1::zeros(1_000_000)),
        )])
        .expect("table");
        let err = programs
            .call(&manifest, &json!({}), table, false)
            .expect_err("gone");
        assert!(err.contains("exited with status 0"), "{err}");
    }

    #[test]
    fn a_program_gone_after_its_answer_leaves_the_next_call_a_fresh_one() {
        let (programs, manifest) = programs(r#"read line; echo '{"columns": []}'; exit 0"#, "");
        assert_eq!(call(&programs, &manifest), Ok(Table::new()));
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(call(&programs, &manifest), Ok(Table::new()));
    }

    #[test]
    fn a_missing_program_is_named() {
        let (programs, manifest) = programs("true", "");
        let mut manifest = manifest;
        manifest.command = vec!["./no-such-program".into()];
        let err = call(&programs, &manifest).expect_err("missing");
        assert!(err.contains("no-such-program does not exist"), "{err}");
    }

    #[test]
    fn kwargs_are_checked_before_the_program_starts() {
        let (programs, manifest) = programs("exit 1", "");
        let err = programs
            .call(&manifest, &json!({"k": "x"}), Table::new(), false)
            .expect_err("bad kwarg");
        assert_eq!(
            err,
            "bad kwargs at `k`: expected a whole number, found the text \"x\""
        );
        assert!(programs.running.borrow().is_empty(), "nothing started");
    }
}
