//! systemd readiness (`Type=notify`). A no-op without `NOTIFY_SOCKET`.

use sd_notify::NotifyState;
use tracing::warn;

fn send(state: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(false, state) {
        warn!(error = %e, "could not notify the service manager");
    }
}

pub fn ready() {
    send(&[NotifyState::Ready]);
}

pub fn stopping() {
    send(&[NotifyState::Stopping]);
}
