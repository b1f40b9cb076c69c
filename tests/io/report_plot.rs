//! PNG pictures: training curves, image grids and heat maps are written, decode as PNG
//! with the promised size, and carry the expected pixels where those are known.
use std::path::{Path, PathBuf};

use nn_core::prelude::*;
use nn_core::report::{plot_history, plot_panels, HeatMap, ImageGrid, Panel, PlotError};
use nn_core::train::{EpochLog, History, Metric};

/// A fresh path under the test's scratch folder.
fn scratch(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report_plot").join(name);
    let _ = std::fs::remove_file(&path);
    path
}

/// Decodes a PNG: width, height, colour type and the 8-bit pixels.
fn decode(path: &Path) -> (u32, u32, png::ColorType, Vec<u8>) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = png::Decoder::new(std::io::BufReader::new(file)).read_info().expect("a PNG header");
    let mut pixels = vec![0; reader.output_buffer_size().expect("a known size")];
    let info = reader.next_frame(&mut pixels).expect("PNG data");
    pixels.truncate(info.buffer_size());
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    (info.width, info.height, info.color_type, pixels)
}

/// A PNG's width and height.
fn size(path: &Path) -> (u32, u32) {
    let (w, h, _, _) = decode(path);
    (w, h)
}

fn epoch(epoch: usize, loss: f32, accuracy: f32, val: Option<(f32, f32)>, lr: f32) -> EpochLog {
    EpochLog {
        epoch,
        loss,
        metrics: vec![("accuracy", accuracy)],
        val_loss: val.map(|v| v.0),
        val_metrics: val.map(|v| vec![("accuracy", v.1)]).unwrap_or_default(),
        learning_rate: lr,
    }
}

/// Distinct colours in an RGB picture (a blank picture has one).
fn colours(rgb: &[u8]) -> usize {
    let mut seen: Vec<[u8; 3]> = rgb.chunks(3).map(|p| [p[0], p[1], p[2]]).collect();
    seen.sort();
    seen.dedup();
    seen.len()
}

#[test]
fn history_plot_has_one_chart_per_series_family() {
    let history = History {
        epochs: (1..=12)
            .map(|e| {
                let t = e as f32;
                epoch(e, 2.0 / t, 1.0 - 0.5 / t, Some((2.2 / t + 0.01 * t, 0.9 - 0.4 / t)), 0.01)
            })
            .collect(),
    };
    let path = scratch("history.png");
    plot_history(&history, &path).unwrap();
    let (w, h, color, rgb) = decode(&path);
    // Loss and accuracy charts side by side; the rate is constant, so no third chart.
    assert_eq!((w, h, color), (960, 360, png::ColorType::Rgb));
    assert!(colours(&rgb) > 20, "the chart has curves, text and a grid");

    // A changing learning rate adds its chart.
    let mut decayed = history.clone();
    for (k, e) in decayed.epochs.iter_mut().enumerate() {
        e.learning_rate = 0.01 * 0.9f32.powi(k as i32);
    }
    let path = scratch("history_lr.png");
    plot_history(&decayed, &path).unwrap();
    assert_eq!(size(&path), (1440, 360));
}

#[test]
fn panels_wrap_after_three_and_tolerate_gaps() {
    let panel = |k: usize| {
        let mut values: Vec<f32> = (0..20).map(|i| (i as f32 * 0.3 + k as f32).sin()).collect();
        values[7] = f32::NAN;
        values[8] = f32::INFINITY;
        Panel::new(format!("panel {k}")).y_label("value").curve("a", values).curve("constant", vec![0.5; 20])
    };
    let panels: Vec<Panel> = (0..4).map(panel).collect();
    let path = scratch("nested/folder/panels.png");
    plot_panels(&path, &panels).unwrap();
    assert_eq!(size(&path), (1440, 720));

    // A single epoch and an all-NaN curve still draw.
    let path = scratch("degenerate.png");
    plot_panels(&path, &[Panel::new("one").curve("x", vec![1.0]), Panel::new("nan").curve("y", vec![f32::NAN])])
        .unwrap();
    assert_eq!(size(&path), (960, 360));

    let empty = plot_panels(scratch("empty.png"), &[Panel::new("nothing").curve("x", Vec::new())]);
    assert!(matches!(empty, Err(PlotError::Empty { .. })), "{empty:?}");
}

#[test]
fn fit_writes_its_curves_when_asked() {
    network! {
        pub struct Tiny: [2] -> [2] {
            hidden: Dense { units: 8, activation: Tanh },
            out: Dense { units: 2 },
        }
    }
    let mut rng = Rng::new(3);
    let x: Vec<f32> = (0..64).map(|_| rng.normal()).collect();
    let y: Vec<f32> = x.chunks(2).map(|p| (p[0] * p[1] > 0.0) as u8 as f32).collect();
    let data = Dataset::new(x, 2, y, 1).unwrap();
    let path = scratch("fit_curves.png");
    let mut model = Model::<Tiny>::new(1);
    let mut fit = Fit::new(Adam::new(0.05), SparseCategoricalCrossEntropy::from_logits())
        .epochs(5)
        .batch_size(8)
        .metrics(&[Metric::Accuracy])
        .validation_split(0.25)
        .plot_to(&path);
    let history = fit.run(&mut model, &data, None).unwrap();
    assert_eq!(history.epochs.len(), 5);
    let (w, h, color, _) = decode(&path);
    assert_eq!((w, h, color), (960, 360, png::ColorType::Rgb));
}

#[test]
fn image_grid_pixels_are_exact() {
    // Two 2x2 images, values 0..=15 mapped to 0..=255 by the range 0..15.
    let images = [0.0, 5.0, 10.0, 15.0, 15.0, 10.0, 5.0, 0.0];
    let path = scratch("grid.png");
    let grid = ImageGrid::new(2, 2).columns(2).scale(2).gap(1).range(0.0, 15.0);
    let written = grid.write(&path, &images).unwrap();
    // 2 images of 2x2 pixels scaled by 2, with 3 gaps across and 2 down.
    assert_eq!(written, (2 * 4 + 3, 4 + 2));
    let (w, h, color, gray) = decode(&path);
    assert_eq!((w, h, color), (11, 6, png::ColorType::Grayscale));
    let at = |x: usize, y: usize| gray[y * w as usize + x];
    assert_eq!(at(0, 0), 128, "gaps are mid grey");
    // First image: top-left pixel 0 -> black over a 2x2 block, then 5 -> 85.
    assert_eq!([at(1, 1), at(2, 1), at(1, 2), at(2, 2)], [0; 4]);
    assert_eq!([at(3, 1), at(4, 2)], [85, 85]);
    assert_eq!([at(1, 3), at(4, 4)], [170, 255]);
    assert_eq!(at(5, 1), 128);
    // Second image starts at x = 1 + 4 + 1.
    assert_eq!([at(6, 1), at(8, 1), at(6, 3), at(9, 4)], [255, 170, 85, 0]);

    // Inverted and clamped.
    let path = scratch("grid_inverted.png");
    ImageGrid::new(1, 2).scale(1).gap(0).range(0.0, 1.0).invert(true).write(&path, &[-3.0, 7.0]).unwrap();
    assert_eq!(decode(&path).3, vec![255, 0]);
}

#[test]
fn image_grid_rows_and_errors() {
    let originals: Vec<f32> = (0..10 * 64).map(|i| (i % 17) as f32).collect();
    let reconstructed: Vec<f32> = originals.iter().map(|v| v * 0.9).collect();
    let path = scratch("pairs.png");
    let grid = ImageGrid::new(8, 8);
    let written = grid.write_rows(&path, &[&originals, &reconstructed]).unwrap();
    assert_eq!(written, grid.size(2, 10));
    assert_eq!(written, (10 * 32 + 11, 2 * 32 + 3));
    assert_eq!(size(&path), written);

    let ragged = grid.write(scratch("ragged.png"), &originals[..100]);
    assert!(matches!(ragged, Err(PlotError::Size { expected: 128, found: 100, .. })), "{ragged:?}");
    assert!(matches!(grid.write(scratch("none.png"), &[]), Err(PlotError::Empty { .. })));

    // A folder where the file should go: an I/O error naming the path.
    let folder = scratch("a_folder");
    std::fs::create_dir_all(&folder).unwrap();
    let err = grid.write(&folder, &originals[..64]).unwrap_err();
    assert!(matches!(err, PlotError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("a_folder"), "{err}");
}

#[test]
fn heat_map_colours_and_size() {
    // 3 queries x 4 keys; the range puts 0 at the first colour and 1 at the last.
    let weights = [0.0, 1.0, 0.5, 0.25, 0.1, 0.2, 0.3, 0.4, 1.0, 0.0, 0.0, 0.0];
    let path = scratch("heat.png");
    let (w, h) = HeatMap::new(&weights, 3, 4).cell(20).range(0.0, 1.0).write(&path).unwrap();
    let (dw, dh, color, rgb) = decode(&path);
    assert_eq!((dw, dh, color), (w, h, png::ColorType::Rgb));
    // Without labels or title the cells start at the margin of 10 pixels.
    let pixel = |x: u32, y: u32| {
        let i = ((y * w + x) * 3) as usize;
        [rgb[i], rgb[i + 1], rgb[i + 2]]
    };
    assert_eq!(pixel(10 + 10, 10 + 10), [68, 1, 84], "value 0: viridis' first colour");
    assert_eq!(pixel(10 + 30, 10 + 10), [253, 231, 37], "value 1: viridis' last colour");
    assert_eq!(pixel(10 + 10, 10 + 50), [253, 231, 37]);
    assert_eq!(pixel(10 + 50, 10 + 10), [33, 144, 141], "value 0.5: viridis' middle colour");
    // 4 cells of 20 pixels wide, then the colour bar and its labels.
    assert!(w > 10 + 80 + 12 + 16, "{w}");
    assert_eq!(h, 10 + 60 + 10, "three rows of 20, but the colour bar is at least 60 high");

    let tokens = ["<s>", "the", "cat", "sat"];
    let path = scratch("attention.png");
    let (w2, h2) = HeatMap::new(&weights, 3, 4)
        .title("attention, head 1")
        .row_labels(&tokens[1..])
        .column_labels(&tokens)
        .write(&path)
        .unwrap();
    assert_eq!(size(&path), (w2, h2));
    assert!(w2 > w && h2 > h, "labels and title take room");

    let wrong = HeatMap::new(&weights, 4, 4).write(scratch("wrong.png"));
    assert!(matches!(wrong, Err(PlotError::Size { expected: 16, found: 12, .. })), "{wrong:?}");
    let labels = HeatMap::new(&weights, 3, 4).row_labels(&tokens).write(scratch("labels.png"));
    assert!(matches!(labels, Err(PlotError::Size { expected: 3, found: 4, .. })), "{labels:?}");
}
