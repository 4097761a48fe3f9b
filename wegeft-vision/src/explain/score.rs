//! Scoring cluster maps against ground truth: each cluster's map thresholded at 0.5 (as the
//! official visualisation does), compared by IoU with the object mask and with the background.

/// One cluster's agreement with the ground truth, as IoUs averaged over the scored images.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct ClusterScore {
    /// Mean IoU of the thresholded map with the object mask.
    pub object_iou: f64,
    /// Mean IoU of the thresholded map with the background (the mask's complement).
    pub background_iou: f64,
}

/// Per-cluster IoU sums over the images seen so far.
#[derive(Clone, Debug, Default)]
pub struct IouTally {
    sums: Vec<ClusterScore>,
    images: usize,
}

impl IouTally {
    /// Adds a batch: `maps` `[images, rank, pixels]` flattened, normalised to [0, 1] (see
    /// [`super::normalised`]), and each image's object mask over the same `pixels`.
    pub fn add(&mut self, maps: &[f32], masks: &[Vec<bool>]) {
        let Some(pixels) = masks.first().map(Vec::len) else { return };
        let rank = maps.len() / (masks.len() * pixels);
        assert_eq!(maps.len(), masks.len() * rank * pixels, "maps [images, rank, pixels] for {} masks", masks.len());
        self.sums.resize(rank, ClusterScore::default());
        for (image, mask) in maps.chunks_exact(rank * pixels).zip(masks) {
            for (sum, map) in self.sums.iter_mut().zip(image.chunks_exact(pixels)) {
                sum.object_iou += iou(map, mask, true);
                sum.background_iou += iou(map, mask, false);
            }
        }
        self.images += masks.len();
    }

    /// The mean IoUs per cluster.
    pub fn scores(&self) -> Vec<ClusterScore> {
        let n = self.images.max(1) as f64;
        self.sums
            .iter()
            .map(|sum| ClusterScore { object_iou: sum.object_iou / n, background_iou: sum.background_iou / n })
            .collect()
    }
}

/// IoU of `map ≥ 0.5` with the pixels where `mask == object`; 1 when both are empty.
fn iou(map: &[f32], mask: &[bool], object: bool) -> f64 {
    let (mut both, mut either) = (0usize, 0usize);
    for (&value, &truth) in map.iter().zip(mask) {
        let (predicted, actual) = (value >= 0.5, truth == object);
        both += usize::from(predicted && actual);
        either += usize::from(predicted || actual);
    }
    if either == 0 { 1.0 } else { both as f64 / either as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_of_thresholded_maps_with_object_and_background() {
        // One image of 4 pixels, object = first two; cluster 0 covers pixels 0..3, cluster 1 only pixel 3.
        let mask = vec![true, true, false, false];
        let maps = [0.9, 0.5, 0.7, 0.1, 0.0, 0.2, 0.49, 1.0];
        let mut tally = IouTally::default();
        tally.add(&maps, &[mask.clone()]);
        tally.add(&[0.0; 8], &[mask]);
        let scores = tally.scores();
        assert_eq!(scores[0], ClusterScore { object_iou: (2.0 / 3.0) / 2.0, background_iou: (1.0 / 4.0) / 2.0 });
        assert_eq!(scores[1], ClusterScore { object_iou: 0.0, background_iou: (1.0 / 2.0) / 2.0 });
    }
}
