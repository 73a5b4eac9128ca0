//! Tables of the embedder's own, shown on the same page as the listeners: a service that runs
//! more than proxies (VRRP instances, a cache, a queue) shows them as a [`Section`], a titled
//! table of text cells with a [`Tone`] (a color) per row, without lb-core knowing what they
//! are.

use serde::Serialize;

/// A titled table the page shows after its listeners (and the JSON lists under `sections`):
/// column names and rows of text cells. The first cell of a row names it: the HTML row's id
/// is `title/first cell`.
///
/// ```
/// use lb_core::stats_page::{Row, Section, Tone};
///
/// let mut vrrp = Section::new("VRRP instances", ["Instance", "State", "Priority"]);
/// vrrp.push(Row::new(["VI_1", "MASTER", "150"]).with_tone(Tone::Up));
/// vrrp.push(Row::new(["VI_2", "BACKUP", "100"]).with_tone(Tone::Idle));
/// assert_eq!(vrrp.rows[1].cells[1], "BACKUP");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Section {
    /// Its heading (and the id of its HTML heading).
    pub title: String,
    /// The column names, left to right.
    pub columns: Vec<String>,
    /// Its rows, top to bottom. A row shorter than `columns` gets empty cells; a longer one
    /// shows its extra cells without a heading.
    pub rows: Vec<Row>,
}

impl Section {
    /// A section titled `title` with these columns and no row yet.
    pub fn new<C: Into<String>>(
        title: impl Into<String>,
        columns: impl IntoIterator<Item = C>,
    ) -> Self {
        Section {
            title: title.into(),
            columns: columns.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds `row` at the bottom.
    pub fn push(&mut self, row: Row) {
        self.rows.push(row);
    }
}

/// One row of a [`Section`]: its cells as text, and the color of its state, if it has one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Row {
    /// The cells, left to right (shown escaped).
    pub cells: Vec<String>,
    /// The row's color (JSON: `"up"`, `"going-down"`, ..., or `null`): none leaves it plain.
    pub tone: Option<Tone>,
}

impl Row {
    /// A plain row of these cells.
    pub fn new<C: Into<String>>(cells: impl IntoIterator<Item = C>) -> Self {
        Row {
            cells: cells.into_iter().map(Into::into).collect(),
            tone: None,
        }
    }

    /// The same row in the color of `tone`.
    #[must_use]
    pub fn with_tone(mut self, tone: Tone) -> Self {
        self.tone = Some(tone);
        self
    }
}

/// The color of a [`Row`], one of the page's legend: what a server in that state would show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Tone {
    /// Green, as an UP server: working (a VRRP Master).
    Up,
    /// Yellow, as an UP server going down: working, but failing.
    GoingDown,
    /// Red, as a DOWN server: not working (a VRRP instance in Fault).
    Down,
    /// Orange, as a DOWN server going up: not working, but recovering.
    GoingUp,
    /// Brown, as a server in maintenance: taken out on purpose.
    Maint,
    /// Grey, as an unchecked server: standing by (a VRRP Backup).
    Idle,
}

impl Tone {
    /// The page's CSS class for it.
    pub(super) fn class(self) -> &'static str {
        match self {
            Tone::Up => "state-up",
            Tone::GoingDown => "going-down",
            Tone::Down => "state-down",
            Tone::GoingUp => "going-up",
            Tone::Maint => "state-maint",
            Tone::Idle => "state-nocheck",
        }
    }
}
