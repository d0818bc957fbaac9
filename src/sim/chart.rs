//! A report's timeline drawn as an SVG chart, with `plotters`.

use plotters::{
    coord::Shift,
    prelude::{
        BLACK, BLUE, ChartBuilder, Color, DrawingArea, DrawingAreaErrorKind, IntoDrawingArea,
        LineSeries, Palette, Palette99, PathElement, RED, RGBColor, SVGBackend, WHITE,
    },
};

use super::report::{Outcome, Report};

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type Drawn = Result<(), DrawingAreaErrorKind<std::io::Error>>;

/// One line of a panel: its name, colour and points.
struct Line {
    name: String,
    color: RGBColor,
    points: Vec<(f64, f64)>,
}

#[cfg_attr(docsrs, doc(cfg(feature = "plot")))]
impl Report {
    /// The timeline as an SVG chart (feature `plot`), over the
    /// simulation's time: the median and p99 latency of each interval's
    /// answers; the requests finished per second, by outcome; and each
    /// probe's readings, one line each. Write it to a file and open it in a
    /// browser.
    ///
    /// ```
    /// use std::time::Duration;
    /// use palisade::{clock::ManualClock, sim::{Load, Simulation, Upstream}};
    ///
    /// let clock = ManualClock::new();
    /// let upstream = Upstream::<u64, _>::builder(clock.clone()).build()?;
    /// let simulation = Simulation::builder(clock.clone(), Load::Poisson { rate: 50.0 })
    ///     .duration(Duration::from_secs(5))
    ///     .build()?;
    /// let report = clock.block_on(simulation.run(upstream, |n| n));
    /// let svg = report.svg();
    /// assert!(svg.starts_with("<svg") && svg.contains("latency"));
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn svg(&self) -> String {
        let mut svg = String::new();
        {
            let panels = 2 + usize::from(!self.probes.is_empty());
            let root =
                SVGBackend::with_string(&mut svg, (960, 300 * panels as u32)).into_drawing_area();
            // Drawing into a string fails only on a bug of ours.
            self.draw(&root, panels)
                .expect("an SVG drawn into a string");
        }
        svg
    }

    fn draw(&self, root: &Area<'_>, panels: usize) -> Drawn {
        root.fill(&WHITE)?;
        let areas = root.split_evenly((panels, 1));
        let end = self
            .timeline
            .last()
            .map_or(1.0, |last| (last.start + last.length).as_secs_f64());
        let at = |i: usize| {
            let interval = &self.timeline[i];
            (interval.start + interval.length).as_secs_f64()
        };
        let series = |read: &dyn Fn(usize) -> Option<f64>| -> Vec<(f64, f64)> {
            (0..self.timeline.len())
                .filter_map(|i| read(i).map(|y| (at(i), y)))
                .collect()
        };
        let millis = |d: Option<std::time::Duration>| d.map(|d| d.as_secs_f64() * 1e3);
        let latency = [
            Line {
                name: "p50".into(),
                color: BLUE,
                points: series(&|i| millis(self.timeline[i].p50)),
            },
            Line {
                name: "p99".into(),
                color: RED,
                points: series(&|i| millis(self.timeline[i].p99)),
            },
        ];
        panel(&areas[0], "latency of the answers (ms)", end, &latency)?;
        let outcomes: Vec<Line> = Outcome::ALL
            .iter()
            .enumerate()
            .filter(|&(_, &outcome)| self.count(outcome) > 0)
            .map(|(index, &outcome)| Line {
                name: outcome.as_str().into(),
                color: match outcome {
                    Outcome::Ok => RGBColor(0, 150, 60),
                    Outcome::Failed => RED,
                    Outcome::Unfinished => BLACK,
                    Outcome::Rejected(_) => color(index),
                },
                points: series(&|i| {
                    let interval = &self.timeline[i];
                    Some(interval.count(outcome) as f64 / interval.length.as_secs_f64())
                }),
            })
            .collect();
        panel(
            &areas[1],
            "requests finished per second, by outcome",
            end,
            &outcomes,
        )?;
        if let Some(area) = areas.get(2) {
            let probes: Vec<Line> = self
                .probes
                .iter()
                .enumerate()
                .map(|(probe, name)| Line {
                    name: name.clone(),
                    color: color(probe),
                    points: series(&|i| Some(self.timeline[i].probes[probe])),
                })
                .collect();
            panel(area, "probes", end, &probes)?;
        }
        root.present()
    }
}

/// The `index`th colour of a palette that tells lines apart (after green and
/// red, which mean success and failure).
fn color(index: usize) -> RGBColor {
    let (r, g, b) = Palette99::COLORS[(index + 2) % Palette99::COLORS.len()];
    RGBColor(r, g, b)
}

/// One panel: `lines` over `0..end` seconds, under `title`, with a legend.
fn panel(area: &Area<'_>, title: &str, end: f64, lines: &[Line]) -> Drawn {
    let finite = |y: &f64| y.is_finite();
    let top = lines
        .iter()
        .flat_map(|line| line.points.iter().map(|&(_, y)| y))
        .filter(finite)
        .fold(0.0_f64, f64::max);
    let top = if top > 0.0 { top * 1.1 } else { 1.0 };
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..end.max(f64::MIN_POSITIVE), 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc("simulated time (s)")
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for line in lines {
        let color = line.color;
        chart
            .draw_series(LineSeries::new(
                line.points.iter().copied().filter(|(_, y)| y.is_finite()),
                color.stroke_width(2),
            ))?
            .label(line.name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
    }
    if !lines.is_empty() {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
    }
    Ok(())
}
