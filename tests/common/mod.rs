//! Process harness for integration tests that drive the real `raftka` binary.
//!
//! A [`Node`] runs `raftka serve` on free loopback ports with a temporary data dir, waits until
//! the Kafka listener answers an ApiVersions request, and can be stopped (SIGTERM), killed
//! (SIGKILL) and restarted on the same ports and data dir. Dropping a `Node` kills the process;
//! if the test is panicking, the tail of the node's log is printed first.
#![allow(dead_code)] // Each test crate uses a different subset of the harness.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long a node may take to start serving Kafka.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a node may take to exit after SIGTERM.
pub(crate) const STOP_TIMEOUT: Duration = Duration::from_secs(20);
const POLL_INTERVAL: Duration = Duration::from_millis(100);
const LOG_TAIL_LINES: usize = 100;

/// Path of the binary under test, built by cargo for integration tests.
pub(crate) fn raftka_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_raftka"))
}

/// `n` distinct free loopback ports (all bound at once so they differ).
pub(crate) fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind an ephemeral port"))
        .collect();
    listeners
        .iter()
        .map(|l| {
            l.local_addr()
                .expect("local addr of a bound listener")
                .port()
        })
        .collect()
}

/// Polls `f` until it returns `Some`, or panics with `what` after `timeout`.
pub(crate) fn wait_until<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        thread::sleep(POLL_INTERVAL);
    }
}

#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) node_id: u32,
    pub(crate) kafka_port: u16,
    pub(crate) zk_port: u16,
    pub(crate) raft_port: u16,
    extra_args: Vec<String>,
    dir: tempfile::TempDir,
    child: Option<Child>,
    starts: u32,
}

impl Node {
    /// Starts a single node with default settings and waits until it serves.
    pub(crate) fn start() -> Node {
        Node::start_with(&[])
    }

    /// Starts a single node with extra `serve` arguments (e.g. `["-o", "num.partitions=3"]`).
    pub(crate) fn start_with(extra_args: &[&str]) -> Node {
        let ports = free_ports(3);
        let args = extra_args.iter().map(|s| s.to_string()).collect();
        let mut node = Node::unstarted(1, &ports, args);
        node.spawn();
        node.wait_ready(READY_TIMEOUT);
        node
    }

    /// Spawns a single node with default settings and returns at once (not waiting for it
    /// to serve).
    pub(crate) fn spawn_single() -> Node {
        let mut node = Node::unstarted(1, &free_ports(3), Vec::new());
        node.spawn();
        node
    }

    /// A node on `ports` (Kafka, ZooKeeper, Raft) with a fresh temp dir, not yet spawned.
    fn unstarted(node_id: u32, ports: &[u16], extra_args: Vec<String>) -> Node {
        Node {
            node_id,
            kafka_port: ports[0],
            zk_port: ports[1],
            raft_port: ports[2],
            extra_args,
            dir: tempfile::Builder::new()
                .prefix("raftka-it-")
                .tempdir()
                .expect("create a temp dir"),
            child: None,
            starts: 0,
        }
    }

    /// Starts `n` nodes (ids 1..=n) forming one cluster (`--controller-quorum` of all of
    /// them), each with `extra_args`, and waits until each serves.
    pub(crate) fn cluster(n: usize, extra_args: &[&str]) -> Vec<Node> {
        let ports = free_ports(3 * n);
        let quorum = (0..n)
            .map(|i| format!("{}@127.0.0.1:{}", i + 1, ports[3 * i + 2]))
            .collect::<Vec<_>>()
            .join(",");
        let mut nodes: Vec<Node> = (0..n)
            .map(|i| {
                let mut args = vec!["--controller-quorum".to_owned(), quorum.clone()];
                args.extend(extra_args.iter().map(|s| s.to_string()));
                Node::unstarted(i as u32 + 1, &ports[3 * i..3 * i + 3], args)
            })
            .collect();
        for node in &mut nodes {
            node.spawn();
        }
        for node in &mut nodes {
            node.wait_ready(READY_TIMEOUT);
        }
        nodes
    }

    pub(crate) fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.kafka_port)
    }

    pub(crate) fn kafka_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.kafka_port))
    }

    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub(crate) fn log_path(&self) -> PathBuf {
        self.dir.path().join("node.log")
    }

    pub(crate) fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(raftka_bin());
        cmd.arg("serve")
            .args(["--node-id", &self.node_id.to_string()])
            .args([
                "--listeners",
                &format!("PLAINTEXT://127.0.0.1:{}", self.kafka_port),
            ])
            .args(["--zk-listen", &format!("127.0.0.1:{}", self.zk_port)])
            .args(["--raft-listen", &format!("127.0.0.1:{}", self.raft_port)])
            .args(["--http-listen", "none"])
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(&self.extra_args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        // Only what the test passes: no RAFTKA_* settings leak in from the caller's shell.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("RAFTKA_") {
                cmd.env_remove(key);
            }
        }
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        cmd.env("NO_COLOR", "1"); // plain text in the log file
        cmd
    }

    fn spawn(&mut self) {
        assert!(!self.is_running(), "node is already running");
        self.starts += 1;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open the node log");
        let mut cmd = self.command();
        writeln!(log, "\n===== start #{}: {:?}", self.starts, cmd).expect("write the node log");
        let stderr = log.try_clone().expect("clone the log handle");
        cmd.stdout(log).stderr(stderr);
        self.child = Some(cmd.spawn().expect("spawn the raftka binary"));
    }

    /// Waits until a TCP connect to the Kafka port succeeds and an ApiVersions v0 request is
    /// answered with the same correlation id. Panics (with the log tail) on exit or timeout.
    pub(crate) fn wait_ready(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "raftka exited with {status} before serving\n{}",
                        self.log_tail()
                    );
                }
            }
            let last_error = match api_versions_probe(self.kafka_addr()) {
                Ok(()) => return,
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                panic!(
                    "raftka not serving on {} after {timeout:?} (last error: {last_error})\n{}",
                    self.bootstrap(),
                    self.log_tail()
                );
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// SIGTERM and wait for exit. Panics if the node does not exit within [`STOP_TIMEOUT`].
    pub(crate) fn stop(&mut self) -> ExitStatus {
        let child = self.child.as_mut().expect("node was started");
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        // std has no portable signal API and the crate forbids unsafe (libc::kill), so use kill(1).
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill -TERM");
        assert!(sent.success(), "kill -TERM failed");
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("wait for raftka") {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "raftka did not exit within {STOP_TIMEOUT:?} of SIGTERM\n{}",
                    self.log_tail()
                );
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// SIGKILL (kill -9) and wait.
    pub(crate) fn kill(&mut self) -> ExitStatus {
        let child = self.child.as_mut().expect("node was started");
        let _ = child.kill(); // Err only if it already exited.
        child.wait().expect("wait for raftka")
    }

    /// Stops (SIGTERM if `graceful`, else SIGKILL) and starts again on the same ports and data
    /// dir, waiting until it serves. Returns the exit status of the stopped process.
    pub(crate) fn restart(&mut self, graceful: bool) -> ExitStatus {
        let status = if graceful { self.stop() } else { self.kill() };
        self.spawn();
        self.wait_ready(READY_TIMEOUT);
        status
    }

    /// The last lines of the node's combined stdout/stderr.
    pub(crate) fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = File::open(self.log_path()) {
            let _ = f.read_to_string(&mut text);
        }
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(LOG_TAIL_LINES);
        format!(
            "--- last {} lines of {} ---\n{}",
            lines.len() - from,
            self.log_path().display(),
            lines[from..].join("\n")
        )
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("{}", self.log_tail());
        }
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A size-prefixed request: header v1 (api key, version, correlation id, client id), then
/// `body`.
fn request_frame(api_key: i16, version: i16, correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let client_id = b"raftka-it";
    let mut req = Vec::new();
    req.extend_from_slice(&api_key.to_be_bytes());
    req.extend_from_slice(&version.to_be_bytes());
    req.extend_from_slice(&correlation_id.to_be_bytes());
    req.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    req.extend_from_slice(client_id);
    req.extend_from_slice(body);
    let mut frame = (req.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&req);
    frame
}

/// One Metadata v1 request for all topics on a new connection (connected within `timeout`,
/// retrying while the port refuses); returns the broker ids listed and the controller id.
pub(crate) fn metadata_v1_brokers(
    addr: SocketAddr,
    timeout: Duration,
) -> std::io::Result<(Vec<i32>, i32)> {
    let deadline = Instant::now() + timeout;
    let mut stream = loop {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(2)),
            Err(e) => return Err(e),
        }
    };
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    // Metadata v1, topics null (all).
    stream.write_all(&request_frame(3, 1, 7, &(-1i32).to_be_bytes()))?;
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let len = usize::try_from(i32::from_be_bytes(len)).map_err(std::io::Error::other)?;
    if len > 1 << 20 {
        return Err(std::io::Error::other(format!(
            "Metadata reply of {len} bytes"
        )));
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body)?;
    let mut r = Reader(&body);
    if r.i32()? != 7 {
        return Err(std::io::Error::other(
            "Metadata reply with a wrong correlation id",
        ));
    }
    let n = r.i32()?;
    let mut brokers = Vec::new();
    for _ in 0..n.max(0) {
        brokers.push(r.i32()?);
        r.string()?; // host
        r.i32()?; // port
        r.string()?; // rack (nullable)
    }
    let controller = r.i32()?;
    Ok((brokers, controller))
}

/// A big-endian reader over a response body.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> std::io::Result<&[u8]> {
        if self.0.len() < n {
            return Err(std::io::Error::other("short Metadata reply"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn i32(&mut self) -> std::io::Result<i32> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn string(&mut self) -> std::io::Result<()> {
        let b = self.take(2)?;
        let n = i16::from_be_bytes([b[0], b[1]]);
        self.take(usize::try_from(n).unwrap_or(0))?;
        Ok(())
    }
}

/// One ApiVersions v0 round trip: request header v1 (api_key 18, version 0, correlation id,
/// client id), empty body; the reply must carry the same correlation id.
pub(crate) fn api_versions_probe(addr: SocketAddr) -> std::io::Result<()> {
    const CORRELATION_ID: i32 = 0x0BAD_CAFE;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(&request_frame(18, 0, CORRELATION_ID, &[]))?;
    let mut head = [0u8; 8];
    stream.read_exact(&mut head)?;
    let correlation_id = i32::from_be_bytes([head[4], head[5], head[6], head[7]]);
    if correlation_id != CORRELATION_ID {
        return Err(std::io::Error::other(format!(
            "ApiVersions reply has correlation id {correlation_id:#x}"
        )));
    }
    Ok(())
}
