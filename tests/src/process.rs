//! The workspace's real binaries (the operator, the runtime) run as child processes of a test.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Mutex, MutexGuard, PoisonError},
    time::Duration,
};

/// A child process for one test: SIGTERM, then SIGKILL, when dropped, pass or fail. Its stdout
/// and stderr go to a log file.
pub struct Process {
    // Behind a lock so a shared reference can check on it (from inside `eventually` closures).
    child: Mutex<Child>,
    log: PathBuf,
}

impl Process {
    /// Starts `binary` from the target directory cargo built the tests into, with `args` and
    /// `env` added to the test's environment.
    pub fn start(binary: &str, args: &[String], log: &Path, env: &[(String, String)]) -> Self {
        let mut command = Self::command(binary);
        command
            .args(args)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        Self::spawn(command, log)
    }

    /// A command for `binary` from the target directory, to configure further and [`spawn`].
    ///
    /// [`spawn`]: Process::spawn
    pub fn command(binary: &str) -> Command {
        let path = binaries_dir().join(binary);
        assert!(
            path.exists(),
            "{} is missing: run `cargo build -p emporium-operator -p emporium-storefront --bins` (make test does)",
            path.display()
        );
        Command::new(path)
    }

    /// Starts `command` with no stdin and its output in `log`.
    pub fn spawn(mut command: Command, log: &Path) -> Self {
        let log_file = std::fs::File::create(log)
            .unwrap_or_else(|e| panic!("create log file {}: {e}", log.display()));
        let child = command
            .stdout(log_file.try_clone().expect("clone log handle"))
            .stderr(log_file)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", command.get_program().display()));
        Self {
            child: Mutex::new(child),
            log: log.to_path_buf(),
        }
    }

    fn child(&self) -> MutexGuard<'_, Child> {
        self.child.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child().id()
    }

    /// Everything the process has written so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The directory of its log file (where a test keeps its other artifacts too).
    pub fn log_dir(&self) -> &Path {
        self.log.parent().unwrap_or(&self.log)
    }

    /// SIGKILL, no chance to clean up (a crashed pod, an OOM kill); waits for the exit.
    pub fn kill_hard(&self) {
        let mut child = self.child();
        let _ = child.kill();
        let _ = child.wait();
    }

    /// An error with the last lines of its log when the process has exited.
    pub fn check_running(&self) -> anyhow::Result<()> {
        if let Ok(Some(status)) = self.child().try_wait() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            anyhow::bail!(
                "{} exited ({status}); last lines:\n{}",
                self.log.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        Ok(())
    }

    /// Fails the test with the process's log when it has exited.
    pub fn assert_running(&self) {
        if let Err(e) = self.check_running() {
            panic!("{e}");
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        // SIGTERM first so the binaries shut down the way they do in a cluster.
        let _ = Command::new("kill").arg(child.id().to_string()).status();
        for _ in 0..50 {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// `target/<profile>/`, where cargo puts the workspace's binaries (tests run from `deps/`).
pub fn binaries_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .expect("target directory")
}

/// A free loopback TCP port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
