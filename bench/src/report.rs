//! The figures a workload measures and the table that prints them beside the peers' and
//! the design §4 targets.

use std::fmt::Write as _;

/// One measured quantity of one workload: ours, each peer's on the same workload, and
/// the target design §4 sets for it.
#[derive(Debug, Clone)]
pub struct Figure {
    pub workload: &'static str,
    pub what: String,
    pub unit: &'static str,
    pub ours: Measured,
    pub peers: Vec<(&'static str, Measured)>,
    pub target: Option<Target>,
}

/// The median of repeated runs with their spread.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measured {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

/// What design §4 asks of a figure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// Ours must be at most this many units.
    Ceiling(f64),
    /// Ours must be at least this many units.
    Floor(f64),
    /// Ours must be at least this multiple of the named peer's figure.
    FloorTimesPeer(&'static str, f64),
}

/// Whether a figure's target holds, or cannot be judged (a peer that was not measured).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Met,
    Missed,
    Unknown,
}

impl Measured {
    /// The median and spread of `samples`; NaN everywhere when there are none, so that a
    /// workload that produced nothing prints as such instead of as zero.
    pub fn of(samples: &[f64]) -> Self {
        let mut sorted: Vec<f64> = samples.iter().copied().filter(|x| !x.is_nan()).collect();
        sorted.sort_by(f64::total_cmp);
        let (Some(&min), Some(&max)) = (sorted.first(), sorted.last()) else {
            return Self::single(f64::NAN);
        };
        let mid = sorted.len() / 2;
        let median = if sorted.len() % 2 == 1 {
            sorted.get(mid).copied().unwrap_or(f64::NAN)
        } else {
            match (sorted.get(mid - 1), sorted.get(mid)) {
                (Some(a), Some(b)) => (a + b) / 2.0,
                _ => f64::NAN,
            }
        };
        Self { median, min, max }
    }

    /// One sample: median, min and max are the same.
    pub fn single(x: f64) -> Self {
        Self {
            median: x,
            min: x,
            max: x,
        }
    }
}

impl Target {
    /// Whether `ours` meets the target; `peers` supplies the figure a relative target
    /// refers to.
    pub fn verdict(&self, ours: &Measured, peers: &[(&'static str, Measured)]) -> Verdict {
        if ours.median.is_nan() {
            return Verdict::Unknown;
        }
        let met = match *self {
            Target::Ceiling(limit) => ours.median <= limit,
            Target::Floor(floor) => ours.median >= floor,
            Target::FloorTimesPeer(name, factor) => {
                match peers.iter().find(|(peer, _)| *peer == name) {
                    Some((_, peer)) if !peer.median.is_nan() => ours.median >= factor * peer.median,
                    _ => return Verdict::Unknown,
                }
            }
        };
        if met { Verdict::Met } else { Verdict::Missed }
    }

    fn describe(&self, unit: &str) -> String {
        match *self {
            Target::Ceiling(limit) => format!("<= {} {unit}", number(limit)),
            Target::Floor(floor) => format!(">= {} {unit}", number(floor)),
            Target::FloorTimesPeer(name, factor) => format!(">= {}x {name}", number(factor)),
        }
    }
}

impl Figure {
    /// Whether a smaller figure is the better one: taken from the target when there is
    /// one, else from the unit (rates are better high, everything else low).
    pub fn lower_is_better(&self) -> bool {
        match self.target {
            Some(Target::Ceiling(_)) => true,
            Some(Target::Floor(_) | Target::FloorTimesPeer(..)) => false,
            None => !self.unit.ends_with("/s"),
        }
    }

    pub fn verdict(&self) -> Option<Verdict> {
        self.target.map(|t| t.verdict(&self.ours, &self.peers))
    }
}

/// A number with as many digits as are worth reading.
pub fn number(x: f64) -> String {
    if x.is_nan() {
        return "-".to_owned();
    }
    let a = x.abs();
    if a >= 1000.0 {
        // Thousands separators make 10,000 and 100,000 easy to tell apart.
        let rounded = x.round() as i64;
        let digits = rounded.unsigned_abs().to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        if rounded < 0 { format!("-{out}") } else { out }
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 || a == 0.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

fn measured(m: &Measured) -> String {
    if m.median.is_nan() {
        "-".to_owned()
    } else if m.min == m.max {
        number(m.median)
    } else {
        format!("{} ({}–{})", number(m.median), number(m.min), number(m.max))
    }
}

/// How much better ours is than a peer: above 1 ours is better, below 1 the peer is.
/// The label says which way the division went.
fn advantage(figure: &Figure, peer: &Measured) -> String {
    let (ours, theirs) = (figure.ours.median, peer.median);
    if ours.is_nan() || theirs.is_nan() {
        return "-".to_owned();
    }
    if figure.lower_is_better() {
        if ours == 0.0 {
            return "peer/ours=inf".to_owned();
        }
        format!("peer/ours={}", number(theirs / ours))
    } else {
        if theirs == 0.0 {
            return "ours/peer=inf".to_owned();
        }
        format!("ours/peer={}", number(ours / theirs))
    }
}

/// The table as text: one row per figure, the peers' figures and ratios in a column
/// each (a ratio above 1 means ours is better whichever way it was divided).
pub fn render(figures: &[Figure]) -> String {
    let mut peer_names: Vec<&'static str> = Vec::new();
    for figure in figures {
        for (name, _) in &figure.peers {
            if !peer_names.contains(name) {
                peer_names.push(name);
            }
        }
    }
    let mut header = vec![
        "wl".to_owned(),
        "figure".to_owned(),
        "unit".to_owned(),
        "ours: median (min–max)".to_owned(),
    ];
    for name in &peer_names {
        header.push(name.to_string());
        header.push(format!("vs {name} (>1: ours better)"));
    }
    header.push("target (design §4)".to_owned());
    header.push("verdict".to_owned());

    let mut rows = vec![header];
    for figure in figures {
        let mut row = vec![
            figure.workload.to_owned(),
            figure.what.clone(),
            figure.unit.to_owned(),
            measured(&figure.ours),
        ];
        for name in &peer_names {
            match figure.peers.iter().find(|(peer, _)| peer == name) {
                Some((_, m)) => {
                    row.push(measured(m));
                    row.push(advantage(figure, m));
                }
                None => {
                    row.push(String::new());
                    row.push(String::new());
                }
            }
        }
        row.push(
            figure
                .target
                .map(|t| t.describe(figure.unit))
                .unwrap_or_default(),
        );
        row.push(
            match figure.verdict() {
                Some(Verdict::Met) => "met",
                Some(Verdict::Missed) => "MISSED",
                Some(Verdict::Unknown) => "n/a",
                None => "",
            }
            .to_owned(),
        );
        rows.push(row);
    }

    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |cell| cell.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        let _ = writeln!(out, "| {} |", cells.join(" | ").trim_end());
        if i == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            let _ = writeln!(out, "|-{}-|", rule.join("-|-"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_spread() {
        let m = Measured::of(&[3.0, 1.0, 2.0]);
        assert_eq!(
            m,
            Measured {
                median: 2.0,
                min: 1.0,
                max: 3.0
            }
        );
        let m = Measured::of(&[4.0, 1.0, 2.0, 3.0]);
        assert_eq!(m.median, 2.5);
        assert!(Measured::of(&[]).median.is_nan());
    }

    #[test]
    fn relative_target() {
        let peers = [("js", Measured::single(100.0))];
        let t = Target::FloorTimesPeer("js", 10.0);
        assert_eq!(t.verdict(&Measured::single(1000.0), &peers), Verdict::Met);
        assert_eq!(t.verdict(&Measured::single(999.0), &peers), Verdict::Missed);
        assert_eq!(t.verdict(&Measured::single(999.0), &[]), Verdict::Unknown);
    }
}
