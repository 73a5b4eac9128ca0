//! The whole story's scenarios and what the load saw in each: failed requests, the longest
//! gap between two answers, and the time to recover. Both ways of telling it (namespaces,
//! loopback) measure and print them alike.

use std::fmt::Write as _;
use std::time::Duration;

use crate::load::{CLIENTS, Outcome, RATE};
use crate::story::{Line, ms};

/// A gap between two answers longer than this counts as trouble (the load answers every
/// 1 / ([`CLIENTS`] x [`RATE`]) s, 2.5 ms, when all is well).
pub(crate) const TROUBLE_GAP: Duration = Duration::from_millis(100);

/// One scenario: what was done, when (seconds since the epoch), and until when its window
/// runs (the next scenario, or the end of the load).
#[derive(Clone, Debug)]
pub(crate) struct Scenario {
    /// For the `result:` line: `backend_killed`, ...
    pub(crate) key: &'static str,
    /// For the table: `backend s2 killed (SIGKILL)`.
    pub(crate) what: String,
    pub(crate) from: f64,
    pub(crate) to: f64,
    /// Recovered only once this backend answers again (a backend brought back).
    pub(crate) back: Option<String>,
}

/// The story's clock, its timeline and its scenarios as they are run.
pub(crate) struct Narrator {
    start: f64,
    pub(crate) lines: Vec<Line>,
    scenarios: Vec<Scenario>,
}

impl Narrator {
    /// The story starts now.
    pub(crate) fn new() -> Narrator {
        Narrator {
            start: crate::load::now(),
            lines: Vec::new(),
            scenarios: Vec::new(),
        }
    }

    /// `epoch_secs` (seconds since the epoch) on the story's clock.
    pub(crate) fn at(&self, epoch_secs: f64) -> Duration {
        Duration::from_secs_f64((epoch_secs - self.start).max(0.0))
    }

    /// A line of the timeline, now.
    pub(crate) fn say(&mut self, text: String) {
        self.said(crate::load::now(), text);
    }

    /// A line of the timeline at `epoch_secs` (seconds since the epoch).
    pub(crate) fn said(&mut self, epoch_secs: f64, text: String) {
        self.lines.push(Line {
            at: self.at(epoch_secs),
            text,
        });
    }

    /// A scenario begins now (and the previous one ends): `what` for the table, `told` for
    /// the timeline.
    pub(crate) fn scenario(
        &mut self,
        key: &'static str,
        what: String,
        told: &str,
        back: Option<&str>,
    ) {
        let now = crate::load::now();
        if let Some(last) = self.scenarios.last_mut() {
            last.to = now;
        }
        self.say(format!("[{}] {what}{told}", self.scenarios.len() + 1));
        self.scenarios.push(Scenario {
            key,
            what,
            from: now,
            to: f64::MAX,
            back: back.map(str::to_owned),
        });
    }

    /// The last scenario ends now: when.
    pub(crate) fn end(&mut self) -> f64 {
        let now = crate::load::now();
        if let Some(last) = self.scenarios.last_mut() {
            last.to = now;
        }
        now
    }

    /// The timeline in order, and each scenario with what `outcomes` show in it.
    pub(crate) fn finish(mut self, outcomes: &[Outcome]) -> (Vec<Line>, Vec<(Scenario, Figures)>) {
        self.lines.sort_by_key(|l| l.at);
        let scenarios = self
            .scenarios
            .into_iter()
            .map(|s| {
                let f = s.figures(outcomes);
                (s, f)
            })
            .collect();
        (self.lines, scenarios)
    }
}

/// What the load saw in one scenario's window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Figures {
    pub(crate) answered: usize,
    pub(crate) failed: usize,
    /// The longest time without an answer, from the last answer before the scenario on.
    pub(crate) gap: Duration,
    /// From the scenario to the first answer after its last trouble (a failed request, a gap
    /// over [`TROUBLE_GAP`], the backend brought back not answering yet); zero without
    /// trouble, `None` when the load never recovered in the window.
    pub(crate) recovered: Option<Duration>,
}

fn secs(d: f64) -> Duration {
    Duration::from_secs_f64(d.max(0.0))
}

impl Scenario {
    /// What `outcomes` (in any order) show in this scenario's window.
    pub(crate) fn figures(&self, outcomes: &[Outcome]) -> Figures {
        let mut answers: Vec<(f64, &str)> = outcomes
            .iter()
            .filter_map(|o| o.answer.as_deref().ok().map(|b| (o.at, b)))
            .collect();
        answers.sort_by(|a, b| a.0.total_cmp(&b.0));
        let in_window = |at: f64| at >= self.from && at < self.to;
        let failures: Vec<f64> = outcomes
            .iter()
            .filter(|o| o.answer.is_err() && in_window(o.at))
            .map(|o| o.at)
            .collect();
        // The answers from the last one before the scenario to the end of its window.
        let first = answers.iter().rposition(|a| a.0 < self.from).unwrap_or(0);
        let seen: Vec<(f64, &str)> = answers[first..]
            .iter()
            .copied()
            .filter(|a| a.0 < self.to)
            .collect();
        let mut gap = 0.0_f64;
        // The last moment something was wrong.
        let mut trouble = failures.iter().copied().fold(f64::MIN, f64::max);
        for w in seen.windows(2) {
            let g = w[1].0 - w[0].0.max(self.from);
            gap = gap.max(w[1].0 - w[0].0);
            if secs(g) > TROUBLE_GAP {
                trouble = trouble.max(w[1].0 - 1e-9);
            }
        }
        if let Some(back) = &self.back {
            let first_answer = seen
                .iter()
                .find(|a| a.0 >= self.from && a.1 == back)
                .map_or(self.to, |a| a.0);
            trouble = trouble.max(first_answer - 1e-9);
        }
        let recovered = if trouble == f64::MIN {
            Some(Duration::ZERO)
        } else {
            seen.iter()
                .find(|a| a.0 > trouble && a.0 >= self.from)
                .map(|a| secs(a.0 - self.from))
        };
        Figures {
            answered: seen.iter().filter(|a| in_window(a.0)).count(),
            failed: failures.len(),
            gap: secs(gap),
            recovered,
        }
    }
}

/// The table of the scenarios' figures, and the legend.
pub(crate) fn table(scenarios: &[(Scenario, Figures)]) -> String {
    let mut out = String::new();
    let width = scenarios
        .iter()
        .map(|(s, _)| s.what.chars().count() + 3)
        .max()
        .unwrap_or(0)
        .max(8);
    let _ = writeln!(
        out,
        "\n{:<width$}  {:>8}  {:>6}  {:>11}  {:>12}",
        "scenario", "answered", "failed", "longest gap", "recovered in"
    );
    for (i, (s, f)) in scenarios.iter().enumerate() {
        let recovered = f.recovered.map_or("never".to_owned(), ms);
        let _ = writeln!(
            out,
            "{:<width$}  {:>8}  {:>6}  {:>11}  {:>12}",
            format!("{}. {}", i + 1, s.what),
            f.answered,
            f.failed,
            ms(f.gap),
            recovered
        );
    }
    let _ = writeln!(
        out,
        "\nThe load: {CLIENTS} keep-alive HTTP clients, {RATE} requests/s each. Failed: requests that got\n\
         no answer (a request on a reused connection that closed before any answer is sent again,\n\
         as browsers do). Longest gap: between two answers, from the last one before the scenario.\n\
         Recovered in: from the scenario to the first answer after its last failed request or gap\n\
         over {} (for a backend brought back: its first answer).",
        ms(TROUBLE_GAP)
    );
    out
}

/// The scenarios' figures for the `result:` line:
/// ` backend_killed.failed=0 backend_killed.gap=0.0031s backend_killed.recovered=0.0000s ...`.
pub(crate) fn result_fields(scenarios: &[(Scenario, Figures)]) -> String {
    let mut out = String::new();
    for (s, f) in scenarios {
        let _ = write!(
            out,
            " {k}.failed={} {k}.gap={:.4}s {k}.recovered={}",
            f.failed,
            f.gap.as_secs_f64(),
            f.recovered
                .map_or("never".to_owned(), |r| format!("{:.4}s", r.as_secs_f64())),
            k = s.key
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(at: f64, backend: &str) -> Outcome {
        Outcome {
            at,
            answer: Ok(backend.into()),
        }
    }

    fn fail(at: f64) -> Outcome {
        Outcome {
            at,
            answer: Err("connect: refused".into()),
        }
    }

    fn scenario(from: f64, to: f64, back: Option<&str>) -> Scenario {
        Scenario {
            key: "k",
            what: "w".into(),
            from,
            to,
            back: back.map(str::to_owned),
        }
    }

    #[test]
    fn failures_the_gap_and_the_recovery_in_the_window() {
        let load = [
            ok(9.99, "s1"),
            fail(10.1),
            fail(10.2),
            ok(10.4, "s2"),
            ok(10.41, "s3"),
            fail(12.5),
        ];
        let f = scenario(10.0, 12.0, None).figures(&load);
        assert_eq!((f.answered, f.failed), (2, 2));
        assert!((f.gap.as_secs_f64() - 0.41).abs() < 1e-6, "{f:?}");
        let r = f.recovered.expect("recovered").as_secs_f64();
        assert!((r - 0.4).abs() < 1e-6, "{f:?}");
        // Nothing wrong: recovered at once; a failure at the end: never.
        let calm = scenario(10.39, 10.45, None).figures(&load);
        assert_eq!(calm.recovered, Some(Duration::ZERO));
        assert_eq!(scenario(12.0, 13.0, None).figures(&load).recovered, None);
    }

    #[test]
    fn a_backend_brought_back_recovers_when_it_answers() {
        let load = [
            ok(10.0, "s1"),
            ok(10.01, "s3"),
            ok(10.3, "s2"),
            ok(10.31, "s1"),
        ];
        let f = scenario(10.0, 11.0, Some("s2")).figures(&load);
        let r = f.recovered.expect("recovered").as_secs_f64();
        assert!((r - 0.3).abs() < 1e-6, "{f:?}");
        assert_eq!(
            scenario(10.0, 11.0, Some("s4")).figures(&load).recovered,
            None
        );
    }

    #[test]
    fn the_result_fields_name_each_scenario() {
        let f = Figures {
            answered: 10,
            failed: 0,
            gap: Duration::from_millis(3),
            recovered: None,
        };
        let mut s = scenario(0.0, 1.0, None);
        s.key = "handover";
        assert_eq!(
            result_fields(&[(s, f)]),
            " handover.failed=0 handover.gap=0.0030s handover.recovered=never"
        );
    }
}
