//! Ctrl-C and SIGTERM while an output is being written: a named temporary output file is
//! removed before exiting (an unnamed `O_TMPFILE` one vanishes with the process anyway).

use std::sync::Once;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Installs, once, a thread that on SIGINT or SIGTERM removes every unfinished output file
/// and exits with 128 + the signal number, as the shell reports a killed command.
pub fn remove_unfinished_outputs_on_signal() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let Ok(mut signals) = Signals::new([SIGINT, SIGTERM]) else {
            return;
        };
        std::thread::spawn(move || {
            if let Some(sig) = signals.forever().next() {
                vmsnap::core::sink::remove_unfinished_outputs();
                std::process::exit(128 + sig);
            }
        });
    });
}
