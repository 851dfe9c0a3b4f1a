//! The `raftka` binary: parse the CLI, set up logging, run a node until SIGTERM / SIGINT.

use clap::Parser;
use raftka::cli::{Cli, Command};
use raftka::node::Node;
use std::process::ExitCode;
use std::sync::Arc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        Command::Serve(args) => args,
        Command::Health(h) => return health(&h.resolved_url()),
        Command::Quorum(q) => return quorum(&q),
        Command::Check(c) => return check(&c.data_dir),
        Command::Users(u) => return users(&u),
        Command::Groups(g) => return groups(&g),
    };
    // A panic means a broken invariant (input errors are never panics): stop the whole process
    // rather than keep serving from a half-dead node (e.g. a stopped Raft state machine).
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        eprintln!("raftka: fatal: a broken invariant stopped the node");
        std::process::abort();
    }));
    let config = match args.to_config() {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("raftka: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    limit_malloc_arenas(config.limits.malloc_arenas);
    raftka::telemetry::init(args.log_format, Some(config.node_id.0));
    for k in ["zookeeper.connect", "zookeeper.connection.timeout.ms"] {
        if config.properties.contains_key(k) {
            tracing::info!(
                key = k,
                "ignored: raftka runs its own controller quorum and ZooKeeper facade"
            );
        }
    }
    for k in config.properties.keys() {
        if !raftka::config::KNOWN_BROKER_KEYS.contains(&k.as_str())
            && !k.starts_with("zk.")
            && !k.starts_with("raft.")
            && !k.starts_with("http.")
            && !k.starts_with("listener.name.")
        {
            tracing::warn!(key = %k, "unknown config key (ignored)");
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(config.limits.blocking_threads_max)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("raftka: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(run(config))
}

/// `raftka health`: one GET with a deadline; the answer on stderr when not 200.
fn health(url: &str) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("raftka health: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(raftka::http::probe_health(url)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("raftka health: {e}");
            ExitCode::from(1)
        }
    }
}

/// `raftka check <data-dir>`: the summary on stdout; exit 0 clean, 1 problems, 2 unreadable.
fn check(dir: &std::path::Path) -> ExitCode {
    match raftka::check::run(dir) {
        Ok(r) => {
            print!("{}", r.text);
            if r.problems == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("raftka check: cannot read {}: {e}", dir.display());
            ExitCode::from(2)
        }
    }
}

/// `raftka quorum ...`: the result on stdout, errors on stderr; exit 0 or 1.
fn quorum(args: &raftka::cli::QuorumArgs) -> ExitCode {
    run_client("quorum", raftka::admin::run_quorum(args))
}

/// `raftka users ...`: the same conventions.
fn users(args: &raftka::cli::UsersArgs) -> ExitCode {
    run_client("users", raftka::users::run_users(args))
}

fn groups(args: &raftka::cli::GroupsArgs) -> ExitCode {
    run_client("groups", raftka::consumer_groups::run_groups(args))
}

/// Runs a client command on a single-threaded runtime: its output on stdout and exit 0, or
/// `raftka <name>: <error>` on stderr and exit 1.
fn run_client<E: std::fmt::Display>(
    name: &str,
    command: impl std::future::Future<Output = Result<String, E>>,
) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("raftka {name}: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(command) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("raftka {name}: {e}");
            ExitCode::from(1)
        }
    }
}

/// How often a node that cannot open its store for lack of space tries again.
const NO_SPACE_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

async fn run(config: Arc<raftka::config::Config>) -> ExitCode {
    loop {
        let node = tokio::select! {
            n = start(config.clone()) => match n {
                Some(n) => n,
                None => return ExitCode::from(1),
            },
            _ = wait_for_signal() => return ExitCode::SUCCESS,
        };
        let restart = tokio::select! {
            _ = wait_for_signal() => None,
            reason = node.restart_requested() => Some(reason),
        };
        node.shutdown().await;
        match restart {
            None => return ExitCode::SUCCESS,
            // Rebuilding the partition log needs the store closed: the node stops (moving its
            // leaderships away, as on SIGTERM) and starts again in this process.
            Some(reason) => tracing::warn!(%reason, "restarting the node in-process"),
        }
    }
}

/// Starts the node; while the store cannot open for lack of space (RocksDB replays the WAL
/// into new files at open), waits for space instead of exiting. `None` on any other error.
async fn start(config: Arc<raftka::config::Config>) -> Option<Node> {
    loop {
        match Node::start(config.clone()).await {
            Ok(n) => return Some(n),
            Err(raftka::node::NodeError::Storage(e)) if e.is_no_space() => {
                tracing::error!(
                    error = %e,
                    data_dir = %config.data_dir.display(),
                    "cannot open the store: no space to replay the WAL; free space in the \
                     log dir (retrying)"
                );
                tokio::time::sleep(NO_SPACE_RETRY).await;
            }
            Err(e) => {
                eprintln!("raftka: cannot start: {e}");
                return None;
            }
        }
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// `malloc.arena.max`: glibc takes its arena limit from `MALLOC_ARENA_MAX` when the process
/// starts, and this crate has no `unsafe` for `mallopt`; so a node started without that variable
/// re-executes itself once with it (same PID, arguments and otherwise the same environment).
/// An explicit `MALLOC_ARENA_MAX` wins. Called before any other thread starts.
fn limit_malloc_arenas(arenas: Option<usize>) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if let Some(n) = arenas {
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            use std::os::unix::process::CommandExt;
            let Ok(exe) = std::env::current_exe() else {
                return;
            };
            let mut args = std::env::args_os();
            let mut cmd = std::process::Command::new(exe);
            if let Some(arg0) = args.next() {
                cmd.arg0(arg0);
            }
            let err = cmd.args(args).env("MALLOC_ARENA_MAX", n.to_string()).exec();
            eprintln!(
                "raftka: cannot re-execute with MALLOC_ARENA_MAX={n} ({err}); glibc's default \
                 arenas stay"
            );
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = arenas;
}
