//! `curves.png`: loss and accuracy per epoch, train and validation.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;

/// One metric's per-epoch means: (split, metric) → [(epoch, value)].
pub type Curves = BTreeMap<(String, String), Vec<(usize, f64)>>;

/// Fonts tried for the labels (plotters draws text with a TTF it is given).
const FONTS: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/Library/Fonts/Arial Unicode.ttf",
];

/// Draws loss (left) and accuracy (right) against the epoch.
pub fn training_curves(curves: &Curves, path: &Path) -> Result<(), String> {
    let font = FONTS
        .iter()
        .find_map(|f| std::fs::read(f).ok())
        .ok_or("no TrueType font found for the labels (install fonts-dejavu-core)")?;
    let font: &'static [u8] = Box::leak(font.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, font).map_err(|_| "unreadable font")?;

    let root = BitMapBackend::new(path, (1000, 400)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let panels = root.split_evenly((1, 2));
    for (panel, metric) in panels.iter().zip(["Loss", "Accuracy"]) {
        let series: Vec<(&str, &Vec<(usize, f64)>)> = ["train", "valid"]
            .iter()
            .filter_map(|split| curves.get(&(split.to_string(), metric.to_string())).map(|p| (*split, p)))
            .collect();
        let epochs = series.iter().flat_map(|(_, p)| p.iter().map(|(e, _)| *e)).max().unwrap_or(1).max(2);
        let (low, high) = series
            .iter()
            .flat_map(|(_, p)| p.iter().map(|(_, v)| *v))
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let (low, high) = if low.is_finite() { (low.min(0.0), high * 1.05 + 1e-9) } else { (0.0, 1.0) };
        let mut chart = ChartBuilder::on(panel)
            .caption(metric, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(52)
            .build_cartesian_2d(1usize..epochs, low..high)
            .map_err(|e| e.to_string())?;
        chart.configure_mesh().x_desc("epoch").draw().map_err(|e| e.to_string())?;
        for (split, points) in series {
            let colour = if split == "train" { BLUE } else { RED };
            chart
                .draw_series(LineSeries::new(points.iter().copied(), colour.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(split)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())
}
