//! `vmsnap serve`: one layer, read-only over NBD, through nbdkit (the standard NBD server)
//! and the vmsnap plugin (`crates/vmsnap-nbdkit`). nbdkit runs in the foreground as a child
//! (`-f --exit-with-parent`); `serve` prints one line once it listens, and on SIGINT or
//! SIGTERM stops it, removes the socket and exits 0.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::Duration;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use vmsnap::core::{Error, ErrorKind, Result};

use crate::cli::{External, Missing, ServeArgs};
use crate::Outcome;

/// The environment variable that names the plugin, before any other place.
const PLUGIN_VAR: &str = "VMSNAP_NBDKIT_PLUGIN";
/// The plugin's file name, as cargo builds it.
const PLUGIN_FILE: &str = "libvmsnap_nbdkit.so";
/// How often the child and the signals are looked at.
const POLL: Duration = Duration::from_millis(20);

/// Runs `serve`.
pub fn run(args: &ServeArgs) -> Result<Outcome> {
    if crate::input::is_stdin(&args.open.file) {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "serve needs the image's path (nbdkit opens it), not standard input",
        ));
    }
    let nbdkit = find_nbdkit()?;
    let plugin = find_plugin()?;
    // Open here first, with the plugin's policy, so that a bad image, option or layer is
    // reported as every command reports it, and the ready line can name the layer.
    let registry = crate::open::registry()?;
    let settings = crate::open::settings_of(&args.open)?;
    let opened = vmsnap_report::open::open_for_data(&registry, &args.open.file, &settings)?;
    let sel = vmsnap_report::open::select(&opened.stack, args.layer.layer.as_deref())?;
    let (name, size) = (sel.name.clone(), sel.layer.len());
    drop(opened);

    let (listen, uri): (Vec<OsString>, String) = match (&args.socket, args.port) {
        (Some(socket), _) => {
            if socket.symlink_metadata().is_ok() {
                return Err(Error::new(
                    ErrorKind::InvalidArgument,
                    format!(
                        "--socket {}: the path exists; remove it or choose another",
                        socket.display()
                    ),
                ));
            }
            (
                vec!["-U".into(), socket.into()],
                format!("nbd+unix:///?socket={}", socket.display()),
            )
        }
        (None, Some(port)) => (
            vec![
                "-i".into(),
                "127.0.0.1".into(),
                "-p".into(),
                port.to_string().into(),
            ],
            format!("nbd://127.0.0.1:{port}/"),
        ),
        (None, None) => {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "give --socket PATH or --port N",
            ))
        }
    };

    let pidfile = std::env::temp_dir().join(format!(
        "vmsnap-serve-{}-{}.pid",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    let mut cmd = Command::new(nbdkit);
    cmd.args(["-f", "--exit-with-parent", "-r", "-P"])
        .arg(&pidfile)
        .args(&listen)
        .arg(&plugin)
        .args(plugin_params(args));
    // Signals are caught before nbdkit starts, so that none is lost while it opens.
    let mut signals = Signals::new([SIGINT, SIGTERM])
        .map_err(|e| Error::from(e).during("installing the signal handlers"))?;
    let child = cmd.spawn().map_err(|e| {
        Error::from(e)
            .in_file(Path::new("nbdkit"))
            .during("starting nbdkit")
    })?;
    let mut server = Server {
        child,
        socket: args.socket.clone(),
        pidfile,
    };
    // Until it listens: nbdkit writes its PID file once it accepts connections.
    loop {
        if signals.pending().next().is_some() {
            server.stop();
            return Ok(Outcome::Ok);
        }
        if let Some(status) = server.exited()? {
            return Err(exited(status, "before serving"));
        }
        if std::fs::read_to_string(&server.pidfile).is_ok_and(|s| s.ends_with('\n')) {
            break;
        }
        std::thread::sleep(POLL);
    }
    println!(
        "serving {name} ({size} bytes) of {} read-only at {uri}",
        args.open.file.display()
    );
    loop {
        if signals.pending().next().is_some() {
            server.stop();
            return Ok(Outcome::Ok);
        }
        if let Some(status) = server.exited()? {
            return Err(exited(status, "while serving"));
        }
        std::thread::sleep(POLL);
    }
}

/// The plugin's parameters: the image, the layer, the policy, the format options.
fn plugin_params(args: &ServeArgs) -> Vec<OsString> {
    let mut file = OsString::from("file=");
    file.push(&args.open.file);
    let mut v = vec![file];
    if let Some(l) = &args.layer.layer {
        v.push(format!("layer={l}").into());
    }
    if let Some(external) = args.open.external {
        v.push(
            match external {
                External::None => "external=none",
                External::SameDir => "external=same_dir",
                External::VmDir => "external=vm_dir",
                External::Any => "external=any",
            }
            .into(),
        );
    }
    v.push(
        match args.open.missing {
            Missing::Error => "missing=error",
            Missing::Zeros => "missing=zeros",
        }
        .into(),
    );
    v.extend(args.open.options.iter().map(OsString::from));
    v
}

fn exited(status: ExitStatus, when: &str) -> Error {
    Error::new(
        ErrorKind::Io,
        format!("nbdkit exited {when} ({status}); its message is above"),
    )
    .in_file(Path::new("nbdkit"))
}

/// The running nbdkit and what it leaves behind.
struct Server {
    child: Child,
    socket: Option<PathBuf>,
    pidfile: PathBuf,
}

impl Server {
    /// nbdkit's status if it has exited (then its files are removed).
    fn exited(&mut self) -> Result<Option<ExitStatus>> {
        let status = self
            .child
            .try_wait()
            .map_err(|e| Error::from(e).during("waiting for nbdkit"))?;
        if status.is_some() {
            self.clean_up();
        }
        Ok(status)
    }

    /// Stops nbdkit (SIGTERM, which it answers by closing its connections and exiting),
    /// waits for it and removes its files.
    fn stop(&mut self) {
        let pid = rustix::process::Pid::from_child(&self.child);
        // It may have exited already (a terminal's Ctrl-C reaches it too).
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let _ = self.child.wait();
        self.clean_up();
    }

    fn clean_up(&self) {
        // The socket did not exist before (`run` refuses an existing path).
        if let Some(s) = &self.socket {
            let _ = std::fs::remove_file(s);
        }
        let _ = std::fs::remove_file(&self.pidfile);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.stop();
        }
    }
}

/// `nbdkit` on `PATH`, or an error naming the package to install.
fn find_nbdkit() -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("nbdkit"))
        .find(|p| is_executable(p))
        .ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                "not found on PATH; `vmsnap serve` runs the nbdkit NBD server: install the \
                 Debian package nbdkit (apt-get install nbdkit)",
            )
            .in_file(Path::new("nbdkit"))
        })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The plugin: `$VMSNAP_NBDKIT_PLUGIN`, else beside the executable, else in the build
/// directory (cargo's `deps/` beside the executable, then the `target/release` or
/// `target/debug` this program was built in).
fn find_plugin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(PLUGIN_VAR).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("{PLUGIN_VAR} names {}, which is not a file", p.display()),
        ));
    }
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf));
    // Beside the executable; then in cargo's `deps/` there, where the plugin stays when it
    // is built as a dependency (the CLI's tests).
    let beside = exe_dir
        .iter()
        .flat_map(|d| [d.join(PLUGIN_FILE), d.join("deps").join(PLUGIN_FILE)])
        .collect::<Vec<_>>();
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target");
    let built = [
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        if cfg!(debug_assertions) {
            "release"
        } else {
            "debug"
        },
    ]
    .map(|profile| target.join(profile).join(PLUGIN_FILE));
    beside
        .into_iter()
        .chain(built)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!(
                    "the vmsnap nbdkit plugin ({PLUGIN_FILE}) is neither beside the vmsnap \
                     executable nor in {}: build it (`cargo build --release -p \
                     vmsnap-nbdkit`) and copy it beside vmsnap, or set {PLUGIN_VAR}",
                    target.display()
                ),
            )
        })
}
