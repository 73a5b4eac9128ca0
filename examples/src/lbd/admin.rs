//! Runtime admin (HAProxy's `stats socket` commands): put a server in drain or maintenance,
//! back to ready, or change its weight, without a reload; what is set stays across reloads
//! (as HAProxy's `server-state-file` keeps it across its reloads) until set back.
//!
//! One command per line, on the unix socket `admin_socket` (mode 0600) or with
//! `lbd --admin "COMMAND" --config FILE`:
//!
//! ```text
//! set server web/s2 state drain      # ready | drain | maint
//! set server web/s2 weight 50
//! show servers state                 # one line per server: listener server admin weight health
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use lb_core::AdminState;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;

use super::daemon::Shared;

/// One admin command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `set server L/S state ready|drain|maint`.
    State {
        /// The listener.
        listener: String,
        /// The server.
        server: String,
        /// Its new admin state.
        state: AdminState,
    },
    /// `set server L/S weight N`.
    Weight {
        /// The listener.
        listener: String,
        /// The server.
        server: String,
        /// Its new weight (0..=256, as HAProxy's).
        weight: u32,
    },
    /// `show servers state`.
    Show,
}

/// The usage line of the commands, for errors.
const USAGE: &str = "commands: `set server LISTENER/SERVER state ready|drain|maint`, `set server LISTENER/SERVER weight 0..256`, `show servers state`";

impl std::str::FromStr for Command {
    type Err = String;

    fn from_str(line: &str) -> Result<Command, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["show", "servers", "state"] | ["show", "servers"] => Ok(Command::Show),
            ["set", "server", target, what, value] => {
                let (listener, server) = target
                    .split_once('/')
                    .filter(|(l, s)| !l.is_empty() && !s.is_empty())
                    .ok_or_else(|| format!("{target:?}: name the server as LISTENER/SERVER"))?;
                let (listener, server) = (listener.to_owned(), server.to_owned());
                match *what {
                    "state" => {
                        let state = match *value {
                            "ready" => AdminState::Ready,
                            "drain" => AdminState::Drain,
                            "maint" => AdminState::Maintenance,
                            other => {
                                return Err(format!("state {other:?}: use ready, drain or maint"));
                            }
                        };
                        Ok(Command::State {
                            listener,
                            server,
                            state,
                        })
                    }
                    "weight" => match value.parse::<u32>() {
                        Ok(weight) if weight <= 256 => Ok(Command::Weight {
                            listener,
                            server,
                            weight,
                        }),
                        _ => Err(format!("weight {value:?}: use a number from 0 to 256")),
                    },
                    other => Err(format!("{other:?}: {USAGE}")),
                }
            }
            _ => Err(format!("unknown command {line:?}: {USAGE}")),
        }
    }
}

/// What the operator set on one server, kept across reloads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Override {
    pub(crate) state: Option<AdminState>,
    pub(crate) weight: Option<u32>,
}

/// The operator's settings, by (listener, server).
pub(crate) type Overrides = BTreeMap<(String, String), Override>;

fn state_word(state: AdminState) -> &'static str {
    match state {
        AdminState::Ready => "ready",
        AdminState::Drain => "drain",
        AdminState::Maintenance => "maint",
    }
}

impl Shared {
    /// Runs `command`: the answer's text, or what is wrong.
    pub(super) fn admin(&self, command: &Command) -> Result<String, String> {
        match command {
            Command::Show => Ok(self.show_servers()),
            Command::State {
                listener,
                server,
                state,
            } => {
                self.set(listener, server, |o| o.state = Some(*state))?;
                tracing::warn!(
                    "admin: server {listener}/{server} set to {}",
                    state_word(*state)
                );
                Ok(format!(
                    "{listener}/{server} state {}\n",
                    state_word(*state)
                ))
            }
            Command::Weight {
                listener,
                server,
                weight,
            } => {
                self.set(listener, server, |o| o.weight = Some(*weight))?;
                tracing::warn!("admin: server {listener}/{server} weight set to {weight}");
                Ok(format!("{listener}/{server} weight {weight}\n"))
            }
        }
    }

    /// Records the change for `listener`/`server` and applies every setting of it.
    fn set(
        &self,
        listener: &str,
        server: &str,
        change: impl FnOnce(&mut Override),
    ) -> Result<(), String> {
        let listeners = self.listeners();
        let running = listeners
            .iter()
            .find(|l| l.config.name == listener)
            .ok_or_else(|| {
                let names: Vec<&str> = listeners.iter().map(|l| l.config.name.as_str()).collect();
                format!("no listener {listener:?} (listeners: {names:?})")
            })?;
        if !running.config.servers.iter().any(|s| s.name == server) {
            let names: Vec<&str> = running
                .config
                .servers
                .iter()
                .map(|s| s.name.as_str())
                .collect();
            return Err(format!(
                "listener {listener:?} has no server {server:?} (servers: {names:?})"
            ));
        }
        let mut overrides = self.overrides();
        let o = overrides
            .entry((listener.to_owned(), server.to_owned()))
            .or_default();
        change(o);
        running.apply_override(server, *o);
        Ok(())
    }

    /// `show servers state`.
    fn show_servers(&self) -> String {
        let mut out = String::from("# listener server admin weight health\n");
        let overrides = self.overrides();
        for l in self.listeners().iter() {
            for s in &l.config.servers {
                let o = overrides
                    .get(&(l.config.name.clone(), s.name.clone()))
                    .copied()
                    .unwrap_or_default();
                let health = l.monitors.status(&s.name).map_or("unchecked", |st| {
                    if st.health == health_check::Health::Up {
                        "up"
                    } else {
                        "down"
                    }
                });
                let _ = writeln!(
                    out,
                    "{} {} {} {} {health}",
                    l.config.name,
                    s.name,
                    state_word(o.state.unwrap_or_default()),
                    o.weight.unwrap_or(s.weight)
                );
            }
        }
        out
    }

    /// After a reload: the operator's settings again on the servers that are still there.
    pub(super) fn reapply_overrides(&self) {
        let overrides = self.overrides();
        for l in self.listeners().iter() {
            for s in &l.config.servers {
                if let Some(o) = overrides.get(&(l.config.name.clone(), s.name.clone())) {
                    l.apply_override(&s.name, *o);
                }
            }
        }
    }
}

/// Serves the admin commands on the unix socket `path` (mode 0600) until the task is
/// aborted: one command per connection line, answered, then closed.
pub(super) fn serve(
    path: &Path,
    shared: Arc<Shared>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let shared = shared.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read.take(4096)).lines();
                let work = async {
                    while let Ok(Some(line)) = lines.next_line().await {
                        if line.trim().is_empty() {
                            continue;
                        }
                        let answer = match line.parse::<Command>() {
                            Ok(c) => shared.admin(&c),
                            Err(e) => Err(e),
                        };
                        let text = answer.unwrap_or_else(|e| format!("error: {e}\n"));
                        if write.write_all(text.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                };
                let _ = tokio::time::timeout(std::time::Duration::from_secs(10), work).await;
            });
        }
    }))
}

/// `lbd --admin COMMAND`: sends `command` to the socket at `path`, returns the answer.
pub fn ask(path: &Path, command: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(path)?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    stream.write_all(format!("{command}\n").as_bytes())?;
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_read_as_haproxys_and_mistakes_say_the_fix() {
        assert_eq!(
            "set server web/s2 state drain".parse(),
            Ok(Command::State {
                listener: "web".into(),
                server: "s2".into(),
                state: AdminState::Drain
            })
        );
        assert_eq!(
            "set server web/s2 weight 50".parse(),
            Ok(Command::Weight {
                listener: "web".into(),
                server: "s2".into(),
                weight: 50
            })
        );
        assert_eq!("show servers state".parse(), Ok(Command::Show));
        for (bad, says) in [
            ("set server web state drain", "LISTENER/SERVER"),
            ("set server web/s2 state off", "use ready, drain or maint"),
            ("set server web/s2 weight 300", "0 to 256"),
            ("disable server web/s2", "unknown command"),
        ] {
            let e = bad.parse::<Command>().expect_err(bad);
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
