//! Driving the real binary, as a new user runs it: no DATABASE_URL, a data directory
//! of its own. Shared by the binary's test files.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use kujira_pgembed::testing::target_dir;

pub struct Server {
    pub child: Child,
    pub url: String,
}

/// A fresh data directory under the target directory, named for the test.
pub fn data_dir(name: &str) -> PathBuf {
    let data = target_dir().join(format!("kujira-{name}-{}", std::process::id()));
    remove_data(&data);
    data
}

/// `kujira serve` on `data`, with `env` set. Its logs go to `log` when given.
pub fn start_with(data: &Path, env: &[(&str, &str)], log: Option<&Path>) -> Server {
    let stderr = match log {
        Some(path) => Stdio::from(std::fs::File::create(path).expect("a log file")),
        None => Stdio::null(),
    };
    let mut command = Command::new(env!("CARGO_BIN_EXE_kujira"));
    command
        .arg("serve")
        .env_remove("DATABASE_URL")
        .env("KUJIRA_DATA_DIR", data)
        .env("KUJIRA_ADDR", "127.0.0.1:0")
        .env("KUJIRA_SUBMISSIONS_PER_IP_PER_HOUR", "0")
        .stdout(Stdio::piped())
        .stderr(stderr);
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("the kujira binary starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    // Only the first line is read and then the pipe is closed, as when a terminal
    // goes away: kujira must keep serving.
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("kujira prints its URL");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .trim_end_matches('/')
        .to_owned();
    Server { child, url }
}

pub fn start(data: &Path) -> Server {
    start_with(data, &[], None)
}

/// SIGTERM, and a clean exit.
pub fn stop(mut server: Server) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = server.child.wait().unwrap();
    assert!(
        status.success(),
        "kujira exits cleanly on SIGTERM: {status}"
    );
}

impl Drop for Server {
    /// A test that fails half-way must not leave a server (and its cluster) running:
    /// SIGTERM lets it stop its cluster on the way out.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = self.child.wait();
        }
    }
}

/// Runs `kujira ARGS` on `data` (joining a running `serve`), with `env` set.
pub fn kujira_with(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kujira"));
    command
        .args(args)
        .env_remove("DATABASE_URL")
        .env("KUJIRA_DATA_DIR", data);
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("the kujira binary runs")
}

pub fn kujira(data: &Path, args: &[&str]) -> Output {
    kujira_with(data, args, &[])
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Waits, for at most 30 s, until `dir` holds `n` entries; returns how many it holds.
pub fn wait_for_files(dir: &Path, n: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let count = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
        if count >= n || Instant::now() > deadline {
            return count;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Removes the data directory, and the cluster it links to when running as root.
pub fn remove_data(data: &Path) {
    if let Ok(target) = std::fs::read_link(data.join("pg")) {
        let _ = std::fs::remove_dir_all(target);
    }
    let _ = std::fs::remove_dir_all(data);
}
