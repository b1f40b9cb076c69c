//! PNG pictures: curves of a training run, grids of grayscale images, heat maps.
//!
//! Charts are drawn by `plotters` into an RGB buffer and encoded by `png`; text uses
//! the bundled DejaVu Sans, so no system font is needed. Grids of images are written
//! pixel for pixel, without `plotters`.
use std::fmt;
use std::fs;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontTransform;

use super::Observer;
use crate::train::History;

/// The font every chart's text uses (registered with `plotters` as `sans-serif`).
static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

/// Ten distinct colours (Tableau 10), cycled by curves.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Samples of matplotlib's viridis map at 0, 1/8, ..., 1; [`HeatMap`] interpolates
/// linearly between them.
const VIRIDIS: [(u8, u8, u8); 9] = [
    (68, 1, 84),
    (71, 44, 122),
    (59, 81, 139),
    (44, 113, 142),
    (33, 144, 141),
    (39, 173, 129),
    (92, 200, 99),
    (170, 220, 50),
    (253, 231, 37),
];

/// Why a picture could not be written.
#[derive(Debug)]
pub enum PlotError {
    /// Nothing to draw (no curve, no image, an empty matrix).
    Empty {
        /// What was empty.
        what: &'static str,
    },
    /// An array has the wrong number of values.
    Size {
        /// Which array.
        what: &'static str,
        /// The values it must hold (or a multiple of them, as said by `what`).
        expected: usize,
        /// The values it holds.
        found: usize,
    },
    /// Drawing failed inside `plotters`.
    Draw {
        /// The file being drawn.
        path: PathBuf,
        /// The error `plotters` gave.
        message: String,
    },
    /// The file or its folder could not be created or written.
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// PNG encoding failed.
    Encode {
        /// The file.
        path: PathBuf,
        /// The error.
        source: png::EncodingError,
    },
}

impl fmt::Display for PlotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlotError::Empty { what } => write!(f, "nothing to draw: {what} is empty"),
            PlotError::Size { what, expected, found } => {
                write!(f, "{what}: expected {expected} values, found {found}")
            }
            PlotError::Draw { path, message } => write!(f, "{}: drawing failed: {message}", path.display()),
            PlotError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            PlotError::Encode { path, source } => write!(f, "{}: PNG encoding failed: {source}", path.display()),
        }
    }
}

impl std::error::Error for PlotError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PlotError::Io { source, .. } => Some(source),
            PlotError::Encode { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// One chart of a figure: a title and named curves over epochs (values at x = 1, 2,
/// ...; NaN and infinite values leave a gap).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Panel {
    title: String,
    y_label: String,
    curves: Vec<(String, Vec<f32>)>,
}

impl Panel {
    /// An empty chart titled `title`.
    pub fn new(title: impl Into<String>) -> Self {
        Panel { title: title.into(), y_label: String::new(), curves: Vec::new() }
    }

    /// Names the y axis.
    pub fn y_label(mut self, label: impl Into<String>) -> Self {
        self.y_label = label.into();
        self
    }

    /// Adds a curve; an empty one is skipped.
    pub fn curve(mut self, name: impl Into<String>, values: impl Into<Vec<f32>>) -> Self {
        let values = values.into();
        if !values.is_empty() {
            self.curves.push((name.into(), values));
        }
        self
    }

    /// Whether the chart has no curve.
    pub fn is_empty(&self) -> bool {
        self.curves.is_empty()
    }
}

/// Writes the curves of a training run as a PNG: a chart of the loss (training and
/// validation), then one per metric (`accuracy` with `val_accuracy`, ...), then the
/// learning rate when it changed. Each chart is 480 x 360 pixels, side by side.
///
/// ```no_run
/// # fn f(history: &nn_core::train::History) -> Result<(), nn_core::report::PlotError> {
/// nn_core::report::plot_history(history, "target/curves.png")?;
/// # Ok(()) }
/// ```
pub fn plot_history(history: &History, path: impl AsRef<Path>) -> Result<(), PlotError> {
    plot_panels(path, &history_panels(history))
}

/// The charts [`plot_history`] draws.
fn history_panels(history: &History) -> Vec<Panel> {
    let mut panels = vec![Panel::new("loss")
        .y_label("loss")
        .curve("training", history.series("loss"))
        .curve("validation", history.series("val_loss"))];
    if let Some(first) = history.epochs.first() {
        for (name, _) in &first.metrics {
            panels.push(
                Panel::new(*name)
                    .y_label(*name)
                    .curve("training", history.series(name))
                    .curve("validation", history.series(&format!("val_{name}"))),
            );
        }
    }
    let rates = history.series("lr");
    if rates.windows(2).any(|w| w[0] != w[1]) {
        panels.push(Panel::new("learning rate").curve("rate", rates));
    }
    panels
}

/// Writes `panels` side by side (at most three per row, 480 x 360 pixels each) as a
/// PNG at `path`, creating its folder if needed.
pub fn plot_panels(path: impl AsRef<Path>, panels: &[Panel]) -> Result<(), PlotError> {
    let path = path.as_ref();
    let panels: Vec<&Panel> = panels.iter().filter(|p| !p.is_empty()).collect();
    if panels.is_empty() {
        return Err(PlotError::Empty { what: "the list of curves" });
    }
    let columns = panels.len().min(3);
    let rows = panels.len().div_ceil(columns);
    let (width, height) = (480 * columns as u32, 360 * rows as u32);
    let mut rgb = vec![0u8; width as usize * height as usize * 3];
    draw(path, &mut rgb, (width, height), |root| {
        root.fill(&WHITE)?;
        for (area, panel) in root.split_evenly((rows, columns)).iter().zip(&panels) {
            draw_panel(area, panel)?;
        }
        Ok(())
    })?;
    write_png(path, &rgb, (width, height), png::ColorType::Rgb)
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;
type DrawResult = Result<(), DrawingAreaErrorKind<<BitMapBackend<'static> as DrawingBackend>::ErrorType>>;

fn draw_panel(area: &Area<'_>, panel: &Panel) -> DrawResult {
    let epochs = panel.curves.iter().map(|(_, v)| v.len()).max().unwrap_or(1);
    let finite = || panel.curves.iter().flat_map(|(_, v)| v.iter().copied()).filter(|v| v.is_finite());
    let lo = finite().fold(f32::INFINITY, f32::min);
    let hi = finite().fold(f32::NEG_INFINITY, f32::max);
    let (lo, hi) = match (lo.is_finite(), hi > lo) {
        (false, _) => (0.0, 1.0),
        (true, false) => (lo - 0.5, lo + 0.5),
        (true, true) => (lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)),
    };
    let x_end = (epochs as f32).max(2.0);
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, (FAMILY, 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(1f32..x_end, lo..hi)?;
    let format_epoch = |x: &f32| format!("{x:.0}");
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(panel.y_label.as_str())
        .x_labels(epochs.clamp(2, 10))
        .x_label_formatter(&format_epoch)
        .label_style((FAMILY, 12))
        .axis_desc_style((FAMILY, 13))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    for (k, (name, values)) in panel.curves.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        // A gap at every non-finite value: one line series per finite stretch.
        let mut label = Some(name.as_str());
        let points: Vec<(f32, f32)> = values.iter().enumerate().map(|(i, &v)| ((i + 1) as f32, v)).collect();
        for stretch in points.split(|(_, v)| !v.is_finite()).filter(|s| !s.is_empty()) {
            let series = chart.draw_series(LineSeries::new(stretch.iter().copied(), color.stroke_width(2)))?;
            if let Some(name) = label.take() {
                series
                    .label(name)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
            }
        }
    }
    // The legend goes to the right-hand corner the curves end farthest from.
    let ends: Vec<f32> =
        panel.curves.iter().filter_map(|(_, v)| v.iter().rev().find(|v| v.is_finite())).copied().collect();
    let end = ends.iter().sum::<f32>() / ends.len().max(1) as f32;
    let corner = if end > (lo + hi) / 2.0 { SeriesLabelPosition::LowerRight } else { SeriesLabelPosition::UpperRight };
    chart
        .configure_series_labels()
        .label_font((FAMILY, 12))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .position(corner)
        .draw()?;
    Ok(())
}

/// A grid of grayscale images written pixel for pixel as an 8-bit PNG: digits,
/// original next to reconstructed images, generated samples. Low values are black and
/// high values white ([`ImageGrid::invert`] swaps them); images are separated by
/// `gap` pixels of mid grey.
///
/// ```no_run
/// use nn_core::report::ImageGrid;
/// # fn f(originals: &[f32], reconstructed: &[f32]) -> Result<(), nn_core::report::PlotError> {
/// // Ten 8x8 digits per row: the originals above their reconstructions.
/// ImageGrid::new(8, 8).scale(4).range(0.0, 16.0).write_rows("target/ae.png", &[originals, reconstructed])?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ImageGrid {
    height: usize,
    width: usize,
    columns: usize,
    scale: usize,
    gap: usize,
    range: Option<(f32, f32)>,
    invert: bool,
}

impl ImageGrid {
    /// Images of `height x width` values, row-major: 10 per row, each pixel drawn as
    /// 4 x 4, 1 pixel apart, grey levels from the smallest to the largest value.
    pub fn new(height: usize, width: usize) -> Self {
        ImageGrid { height, width, columns: 10, scale: 4, gap: 1, range: None, invert: false }
    }

    /// Images per row for [`ImageGrid::write`].
    pub fn columns(mut self, columns: usize) -> Self {
        self.columns = columns.max(1);
        self
    }

    /// Output pixels per image pixel, in each direction.
    pub fn scale(mut self, scale: usize) -> Self {
        self.scale = scale.max(1);
        self
    }

    /// Pixels between images.
    pub fn gap(mut self, gap: usize) -> Self {
        self.gap = gap;
        self
    }

    /// Maps `low` to black and `high` to white (values outside are clamped) instead of
    /// the smallest and largest value.
    pub fn range(mut self, low: f32, high: f32) -> Self {
        self.range = Some((low, high));
        self
    }

    /// Draws low values white and high values black (ink on paper).
    pub fn invert(mut self, invert: bool) -> Self {
        self.invert = invert;
        self
    }

    /// The size in pixels of a grid of `rows x columns` images.
    pub fn size(&self, rows: usize, columns: usize) -> (u32, u32) {
        let side = |n: usize, len: usize| (n * len * self.scale + (n + 1) * self.gap) as u32;
        (side(columns, self.width), side(rows, self.height))
    }

    /// Writes `images` (each `height * width` values) in rows of `columns`; returns
    /// the picture's width and height.
    pub fn write(&self, path: impl AsRef<Path>, images: &[f32]) -> Result<(u32, u32), PlotError> {
        let rows: Vec<&[f32]> = images.chunks(self.columns * self.height * self.width).collect();
        self.write_rows(path, &rows)
    }

    /// Writes one row of the grid per slice (each holding whole images): originals and
    /// their reconstructions, one sample per class. Returns the picture's width and
    /// height.
    pub fn write_rows(&self, path: impl AsRef<Path>, rows: &[&[f32]]) -> Result<(u32, u32), PlotError> {
        let path = path.as_ref();
        let len = self.height * self.width;
        if len == 0 {
            return Err(PlotError::Empty { what: "an image (height or width 0)" });
        }
        if rows.iter().all(|r| r.is_empty()) {
            return Err(PlotError::Empty { what: "the list of images" });
        }
        if let Some(bad) = rows.iter().find(|r| !r.len().is_multiple_of(len)) {
            let expected = bad.len().div_ceil(len) * len;
            return Err(PlotError::Size { what: "a row of images (whole images)", expected, found: bad.len() });
        }
        let columns = rows.iter().map(|r| r.len() / len).max().unwrap_or(1);
        let (low, high) = self.range.unwrap_or_else(|| {
            let all = rows.iter().flat_map(|r| r.iter().copied()).filter(|v| v.is_finite());
            all.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)))
        });
        let span = if high > low { high - low } else { 1.0 };
        let (width, height) = self.size(rows.len(), columns);
        let mut gray = vec![128u8; width as usize * height as usize];
        let s = self.scale;
        for (r, row) in rows.iter().enumerate() {
            for (c, image) in row.chunks(len).enumerate() {
                let top = self.gap + r * (self.height * s + self.gap);
                let left = self.gap + c * (self.width * s + self.gap);
                for (p, &v) in image.iter().enumerate() {
                    let level = if v.is_finite() { ((v - low) / span).clamp(0.0, 1.0) } else { 0.0 };
                    let level = if self.invert { 1.0 - level } else { level };
                    let byte = (level * 255.0).round() as u8;
                    let (y, x) = (top + (p / self.width) * s, left + (p % self.width) * s);
                    for dy in 0..s {
                        let at = (y + dy) * width as usize + x;
                        gray[at..at + s].fill(byte);
                    }
                }
            }
        }
        write_png(path, &gray, (width, height), png::ColorType::Grayscale)?;
        Ok((width, height))
    }
}

/// A matrix drawn as coloured cells (viridis: dark blue for low values, yellow for
/// high), with optional row and column labels, a title and a colour bar: attention
/// weights with queries as rows and keys as columns, a confusion matrix.
///
/// ```no_run
/// use nn_core::report::HeatMap;
/// # fn f() -> Result<(), nn_core::report::PlotError> {
/// let weights = [0.7, 0.2, 0.1, 0.1, 0.8, 0.1, 0.3, 0.3, 0.4];
/// let tokens = ["the", "cat", "sat"];
/// HeatMap::new(&weights, 3, 3)
///     .title("attention, head 1")
///     .row_labels(&tokens)
///     .column_labels(&tokens)
///     .range(0.0, 1.0)
///     .write("target/attention.png")?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct HeatMap<'a> {
    values: &'a [f32],
    rows: usize,
    columns: usize,
    title: String,
    row_labels: Vec<String>,
    column_labels: Vec<String>,
    range: Option<(f32, f32)>,
    cell: u32,
}

impl<'a> HeatMap<'a> {
    /// A `rows x columns` matrix, row-major; cells of 32 x 32 pixels.
    pub fn new(values: &'a [f32], rows: usize, columns: usize) -> Self {
        HeatMap {
            values,
            rows,
            columns,
            title: String::new(),
            row_labels: Vec::new(),
            column_labels: Vec::new(),
            range: None,
            cell: 32,
        }
    }

    /// A title above the matrix.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    /// One label per row, left of it.
    pub fn row_labels<S: AsRef<str>>(mut self, labels: &[S]) -> Self {
        self.row_labels = labels.iter().map(|s| s.as_ref().to_owned()).collect();
        self
    }

    /// One label per column, above it (turned upright when longer than a cell).
    pub fn column_labels<S: AsRef<str>>(mut self, labels: &[S]) -> Self {
        self.column_labels = labels.iter().map(|s| s.as_ref().to_owned()).collect();
        self
    }

    /// Maps `low` to the first and `high` to the last colour instead of the smallest
    /// and largest value.
    pub fn range(mut self, low: f32, high: f32) -> Self {
        self.range = Some((low, high));
        self
    }

    /// The side of a cell in pixels (at least 2).
    pub fn cell(mut self, pixels: u32) -> Self {
        self.cell = pixels.max(2);
        self
    }

    /// Writes the PNG; returns its width and height.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<(u32, u32), PlotError> {
        let path = path.as_ref();
        let n = self.rows * self.columns;
        if n == 0 {
            return Err(PlotError::Empty { what: "the matrix" });
        }
        if self.values.len() != n {
            return Err(PlotError::Size { what: "the matrix (rows x columns)", expected: n, found: self.values.len() });
        }
        for (what, labels, count) in
            [("row labels", &self.row_labels, self.rows), ("column labels", &self.column_labels, self.columns)]
        {
            if !labels.is_empty() && labels.len() != count {
                return Err(PlotError::Size { what, expected: count, found: labels.len() });
            }
        }
        let (low, high) = self.range.unwrap_or_else(|| {
            let all = self.values.iter().copied().filter(|v| v.is_finite());
            all.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)))
        });
        let span = if high > low { high - low } else { 1.0 };

        // Layout: title, column labels, then the cells with the row labels on their
        // left and the colour bar on their right. Text is about 7 pixels per character
        // at size 13.
        let char_width = 7;
        let longest = |labels: &[String]| labels.iter().map(|l| l.chars().count()).max().unwrap_or(0) as u32;
        let margin = 10;
        let title_height = if self.title.is_empty() { 0 } else { 28 };
        let upright = longest(&self.column_labels) * char_width > self.cell;
        let column_label_height = match (self.column_labels.is_empty(), upright) {
            (true, _) => 0,
            (false, false) => 20,
            (false, true) => longest(&self.column_labels) * char_width + 8,
        };
        let row_label_width = if self.row_labels.is_empty() { 0 } else { longest(&self.row_labels) * char_width + 8 };
        let grid = (self.columns as u32 * self.cell, self.rows as u32 * self.cell);
        let bar_width = 16;
        let bar_text = 8 * char_width;
        let left = margin + row_label_width;
        let top = margin + title_height + column_label_height;
        let bar_left = left + grid.0 + 12;
        let width = bar_left + bar_width + 6 + bar_text + margin;
        let height = (top + grid.1 + margin).max(top + 60);

        let mut rgb = vec![0u8; width as usize * height as usize * 3];
        let cell = self.cell as i32;
        draw(path, &mut rgb, (width, height), |root| {
            root.fill(&WHITE)?;
            let text = TextStyle::from((FAMILY, 13).into_font()).color(&BLACK);
            if !self.title.is_empty() {
                let style = TextStyle::from((FAMILY, 16).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
                root.draw_text(&self.title, &style, (((left + grid.0) / 2) as i32, margin as i32))?;
            }
            for (c, label) in self.column_labels.iter().enumerate() {
                let x = left as i32 + c as i32 * cell + cell / 2;
                let y = top as i32 - 4;
                let style = if upright {
                    text.transform(FontTransform::Rotate270).pos(Pos::new(HPos::Left, VPos::Center))
                } else {
                    text.pos(Pos::new(HPos::Center, VPos::Bottom))
                };
                root.draw_text(label, &style, (x, y))?;
            }
            let row_style = text.pos(Pos::new(HPos::Right, VPos::Center));
            for (r, label) in self.row_labels.iter().enumerate() {
                let y = top as i32 + r as i32 * cell + cell / 2;
                root.draw_text(label, &row_style, (left as i32 - 6, y))?;
            }
            for (i, &v) in self.values.iter().enumerate() {
                let (r, c) = ((i / self.columns) as i32, (i % self.columns) as i32);
                let (x, y) = (left as i32 + c * cell, top as i32 + r * cell);
                let color = if v.is_finite() { viridis((v - low) / span) } else { RGBColor(255, 255, 255) };
                root.draw(&Rectangle::new([(x, y), (x + cell, y + cell)], color.filled()))?;
            }
            // The colour bar: high at the top, low at the bottom.
            let bar_height = grid.1.max(60) as i32;
            for k in 0..bar_height {
                let level = 1.0 - k as f32 / (bar_height - 1).max(1) as f32;
                let (x, y) = (bar_left as i32, top as i32 + k);
                root.draw(&Rectangle::new([(x, y), (x + bar_width as i32, y + 1)], viridis(level).filled()))?;
            }
            let bar_style = text.pos(Pos::new(HPos::Left, VPos::Center));
            let x = (bar_left + bar_width + 6) as i32;
            root.draw_text(&format_value(high), &bar_style, (x, top as i32 + 6))?;
            root.draw_text(&format_value(low), &bar_style, (x, top as i32 + bar_height - 6))?;
            Ok(())
        })?;
        write_png(path, &rgb, (width, height), png::ColorType::Rgb)?;
        Ok((width, height))
    }
}

/// A colour-bar value: four significant digits.
fn format_value(v: f32) -> String {
    if v != 0.0 && (v.abs() >= 1e4 || v.abs() < 1e-3) {
        format!("{v:.2e}")
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// The viridis colour at `t` in `[0, 1]` (clamped).
fn viridis(t: f32) -> RGBColor {
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 };
    let x = t * (VIRIDIS.len() - 1) as f32;
    let i = (x.floor() as usize).min(VIRIDIS.len() - 2);
    let f = x - i as f32;
    let mix = |a: u8, b: u8| (a as f32 + (b as f32 - a as f32) * f).round() as u8;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Writes the training curves with [`plot_history`] when training ends; added by
/// [`Fit::plot_to`](crate::train::Fit::plot_to). A failure to write is reported on
/// standard error and does not stop training.
#[derive(Clone, Debug)]
pub struct PlotOnEnd {
    path: PathBuf,
}

impl PlotOnEnd {
    /// Plots to `path` (a `.png` file; its folder is created if needed).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        PlotOnEnd { path: path.into() }
    }
}

impl Observer for PlotOnEnd {
    fn train_end(&mut self, history: &History) {
        if history.epochs.is_empty() {
            return;
        }
        if let Err(e) = plot_history(history, &self.path) {
            eprintln!("warning: the training curves were not written: {e}");
        }
    }
}

/// Registers the bundled font with `plotters` (once per process).
fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bundled font is a valid TrueType file; a failure here is a packaging bug
        // and shows as a drawing error naming the font.
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
    });
}

/// Draws into `rgb` (`width * height * 3` bytes) with `plotters`.
fn draw(
    path: &Path,
    rgb: &mut [u8],
    size: (u32, u32),
    paint: impl FnOnce(&Area<'_>) -> DrawResult,
) -> Result<(), PlotError> {
    register_font();
    let failed = |e: Box<dyn fmt::Display>| PlotError::Draw { path: path.to_path_buf(), message: e.to_string() };
    let root = BitMapBackend::with_buffer(rgb, size).into_drawing_area();
    paint(&root).map_err(|e| failed(Box::new(e)))?;
    root.present().map_err(|e| failed(Box::new(e)))
}

/// Encodes 8-bit pixels (`Rgb` or `Grayscale`) as a PNG at `path`, creating its folder.
fn write_png(path: &Path, pixels: &[u8], (width, height): (u32, u32), color: png::ColorType) -> Result<(), PlotError> {
    let io_error = |source| PlotError::Io { path: path.to_path_buf(), source };
    let encode_error = |source| PlotError::Encode { path: path.to_path_buf(), source };
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(folder).map_err(io_error)?;
    }
    let file = fs::File::create(path).map_err(io_error)?;
    let mut encoder = png::Encoder::new(BufWriter::new(file), width, height);
    encoder.set_color(color);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(encode_error)?;
    writer.write_image_data(pixels).map_err(encode_error)?;
    writer.finish().map_err(encode_error)
}
