//! DB (Differentiable Binarization) post-processing: the detector's probability map into text
//! boxes, and the boxes into reading order.
//!
//! The steps follow PaddleOCR's `DBPostProcess` as RapidOCR 1.4.4 runs it: threshold the map,
//! dilate by a 2 × 2 square, take each connected region, fit its minimum-area rectangle, score
//! it by the mean probability inside, grow it by `area × ratio / perimeter` on every side (the
//! "unclip" that undoes the shrinking the detector was trained with) and scale it to the image.

/// A point in pixels, `[x, y]`.
pub type Point = [f32; 2];

/// Four corners: top-left, top-right, bottom-right, bottom-left.
pub type Quad = [Point; 4];

/// The knobs of the post-processing, from the catalog's options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DbSettings {
    /// A pixel belongs to text when its probability is above this.
    pub thresh: f32,
    /// A region is kept when its mean probability is at least this.
    pub box_thresh: f32,
    /// How much a region grows back: the offset is `area × ratio / perimeter`.
    pub unclip_ratio: f32,
    /// Most regions looked at.
    pub max_candidates: usize,
}

/// Regions whose rectangle's short side is under this many map pixels are noise.
const MIN_SIDE: f32 = 3.0;

/// The probability map of one image, row-major.
pub struct ProbabilityMap<'a> {
    /// Probabilities, `width × height`.
    pub values: &'a [f32],
    /// Map width.
    pub width: usize,
    /// Map height.
    pub height: usize,
}

/// Text boxes in the coordinates of an image of `image_width × image_height` (the map covers it
/// whole, at another scale), each with its score, in no particular order.
pub fn text_boxes(
    map: &ProbabilityMap<'_>,
    image_width: usize,
    image_height: usize,
    settings: &DbSettings,
) -> Vec<(Quad, f32)> {
    let bitmap = dilate(&threshold(map, settings.thresh), map.width, map.height);
    let mut found = Vec::new();
    for region in regions(&bitmap, map.width, map.height)
        .into_iter()
        .take(settings.max_candidates)
    {
        let hull = convex_hull(region);
        let Some(rect) = min_area_rect(&hull) else {
            continue;
        };
        if rect.short_side() < MIN_SIDE {
            continue;
        }
        let corners = order_by_x_then_y(rect.corners());
        let score = mean_inside(map, &corners);
        if score < settings.box_thresh {
            continue;
        }
        let grown = rect.grown(unclip_distance(&rect, settings.unclip_ratio));
        if grown.short_side() < MIN_SIDE + 2.0 {
            continue;
        }
        let scale_x = image_width as f32 / map.width as f32;
        let scale_y = image_height as f32 / map.height as f32;
        let corners = order_by_x_then_y(grown.corners()).map(|[x, y]| {
            [
                (x * scale_x).round().clamp(0.0, image_width as f32),
                (y * scale_y).round().clamp(0.0, image_height as f32),
            ]
        });
        found.push((corners, score));
    }
    found
}

fn threshold(map: &ProbabilityMap<'_>, thresh: f32) -> Vec<bool> {
    map.values.iter().map(|&p| p > thresh).collect()
}

/// Dilation by a 2 × 2 square anchored at its bottom-right cell (OpenCV's anchor for an even
/// kernel): a pixel is set when it or its left, upper or upper-left neighbour is.
fn dilate(bitmap: &[bool], width: usize, height: usize) -> Vec<bool> {
    let mut out = bitmap.to_vec();
    for y in 0..height {
        for x in 0..width {
            let at = |dx: usize, dy: usize| bitmap[(y - dy) * width + (x - dx)];
            let left = x > 0 && at(1, 0);
            let up = y > 0 && at(0, 1);
            let diagonal = x > 0 && y > 0 && at(1, 1);
            out[y * width + x] |= left || up || diagonal;
        }
    }
    out
}

/// The 8-connected regions of set pixels, each as the leftmost and rightmost pixel of every row it
/// spans: all a convex hull needs. Regions come in the order their first pixel is met, row by row.
fn regions(bitmap: &[bool], width: usize, height: usize) -> Vec<Vec<[i32; 2]>> {
    let mut seen = vec![false; bitmap.len()];
    let mut stack = Vec::new();
    let mut found = Vec::new();
    for start in 0..bitmap.len() {
        if !bitmap[start] || seen[start] {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        // Per row of the region: (row, leftmost, rightmost).
        let mut rows: Vec<(usize, usize, usize)> = Vec::new();
        let first_row = start / width;
        while let Some(index) = stack.pop() {
            let (x, y) = (index % width, index / width);
            let slot = y - first_row;
            if slot >= rows.len() {
                rows.resize(slot + 1, (usize::MAX, usize::MAX, 0));
            }
            let row = &mut rows[slot];
            *row = (y, row.1.min(x), row.2.max(x));
            for ny in y.saturating_sub(1)..=(y + 1).min(height - 1) {
                for nx in x.saturating_sub(1)..=(x + 1).min(width - 1) {
                    let next = ny * width + nx;
                    if bitmap[next] && !seen[next] {
                        seen[next] = true;
                        stack.push(next);
                    }
                }
            }
        }
        let mut points = Vec::with_capacity(rows.len() * 2);
        for &(y, left, right) in &rows {
            points.push([left as i32, y as i32]);
            if right != left {
                points.push([right as i32, y as i32]);
            }
        }
        found.push(points);
    }
    found
}

/// The convex hull of integer points, its corners in turn (Andrew's monotone chain), without
/// repeated or collinear points.
pub fn convex_hull(mut points: Vec<[i32; 2]>) -> Vec<Point> {
    points.sort_unstable();
    points.dedup();
    if points.len() < 3 {
        return points.iter().map(|&[x, y]| [x as f32, y as f32]).collect();
    }
    let cross = |o: [i32; 2], a: [i32; 2], b: [i32; 2]| -> i64 {
        i64::from(a[0] - o[0]) * i64::from(b[1] - o[1])
            - i64::from(a[1] - o[1]) * i64::from(b[0] - o[0])
    };
    let reversed: Vec<[i32; 2]> = points.iter().rev().copied().collect();
    let mut hull: Vec<[i32; 2]> = Vec::with_capacity(points.len() + 1);
    // The lower chain left to right, then the upper chain right to left; each drops the point
    // it ends on, which the other starts with.
    for pass in [&points[..], &reversed[..]] {
        let floor = hull.len();
        for &point in pass {
            while hull.len() >= floor + 2
                && cross(hull[hull.len() - 2], hull[hull.len() - 1], point) <= 0
            {
                hull.pop();
            }
            hull.push(point);
        }
        hull.pop();
    }
    hull.iter().map(|&[x, y]| [x as f32, y as f32]).collect()
}

/// A rotated rectangle: its centre, the unit vector along its first side, and its two side
/// lengths.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RotatedRect {
    /// The centre.
    pub center: Point,
    /// The unit direction of the side `width` measures.
    pub axis: Point,
    /// The length along `axis`.
    pub width: f32,
    /// The length across it.
    pub height: f32,
}

impl RotatedRect {
    /// The shorter side.
    pub fn short_side(&self) -> f32 {
        self.width.min(self.height)
    }

    /// The four corners, in turn around the rectangle.
    pub fn corners(&self) -> Quad {
        let [ux, uy] = self.axis;
        let (vx, vy) = (-uy, ux);
        let (hw, hh) = (self.width / 2.0, self.height / 2.0);
        let [cx, cy] = self.center;
        let corner = |a: f32, b: f32| {
            [
                cx + a * hw * ux + b * hh * vx,
                cy + a * hw * uy + b * hh * vy,
            ]
        };
        [
            corner(-1.0, -1.0),
            corner(1.0, -1.0),
            corner(1.0, 1.0),
            corner(-1.0, 1.0),
        ]
    }

    /// The rectangle pushed out by `distance` on every side. (The minimum-area rectangle of a
    /// rectangle offset with round joins is exactly this one.)
    pub fn grown(&self, distance: f32) -> RotatedRect {
        RotatedRect {
            width: self.width + 2.0 * distance,
            height: self.height + 2.0 * distance,
            ..*self
        }
    }
}

/// The offset the detector's shrunk regions are grown back by: `area × ratio / perimeter`.
pub fn unclip_distance(rect: &RotatedRect, ratio: f32) -> f32 {
    let perimeter = 2.0 * (rect.width + rect.height);
    if perimeter <= 0.0 {
        return 0.0;
    }
    rect.width * rect.height * ratio / perimeter
}

/// The smallest-area rectangle around a convex hull (rotating calipers: one of its sides lies
/// on a hull edge). `None` for fewer than two points.
pub fn min_area_rect(hull: &[Point]) -> Option<RotatedRect> {
    match hull {
        [] | [_] => return None,
        [a, b] => {
            let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
            let length = dx.hypot(dy);
            return Some(RotatedRect {
                center: [(a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0],
                axis: [dx / length, dy / length],
                width: length,
                height: 0.0,
            });
        }
        _ => {}
    }
    let mut best: Option<(f32, RotatedRect)> = None;
    for (i, a) in hull.iter().enumerate() {
        let b = hull[(i + 1) % hull.len()];
        let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
        let length = dx.hypot(dy);
        if length == 0.0 {
            continue;
        }
        let (ux, uy) = (dx / length, dy / length);
        let (mut min_u, mut max_u, mut min_v, mut max_v) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
        for p in hull {
            let (px, py) = (p[0] - a[0], p[1] - a[1]);
            let u = px * ux + py * uy;
            let v = -px * uy + py * ux;
            min_u = min_u.min(u);
            max_u = max_u.max(u);
            min_v = min_v.min(v);
            max_v = max_v.max(v);
        }
        let (width, height) = (max_u - min_u, max_v - min_v);
        let area = width * height;
        if best.as_ref().is_none_or(|(smallest, _)| area < *smallest) {
            let (mid_u, mid_v) = ((min_u + max_u) / 2.0, (min_v + max_v) / 2.0);
            let center = [
                a[0] + mid_u * ux - mid_v * uy,
                a[1] + mid_u * uy + mid_v * ux,
            ];
            best = Some((
                area,
                RotatedRect {
                    center,
                    axis: [ux, uy],
                    width,
                    height,
                },
            ));
        }
    }
    best.map(|(_, rect)| rect)
}

/// Corners as top-left, top-right, bottom-right, bottom-left: the two leftmost points (by x)
/// are the left side, the upper of them is top-left; likewise on the right.
pub fn order_by_x_then_y(mut corners: Quad) -> Quad {
    corners.sort_by(|a, b| a[0].total_cmp(&b[0]));
    let [a, b, c, d] = corners;
    let (top_left, bottom_left) = if b[1] > a[1] { (a, b) } else { (b, a) };
    let (top_right, bottom_right) = if d[1] > c[1] { (c, d) } else { (d, c) };
    [top_left, top_right, bottom_right, bottom_left]
}

/// The mean probability over the map pixels inside `corners` (edges included), the integer
/// truncation of the corners as the reference rasterises them.
fn mean_inside(map: &ProbabilityMap<'_>, corners: &Quad) -> f32 {
    let (w, h) = (map.width as i64, map.height as i64);
    let clamp_x = |v: f32| (v as i64).clamp(0, w - 1);
    let clamp_y = |v: f32| (v as i64).clamp(0, h - 1);
    let x_min = clamp_x(
        corners
            .iter()
            .map(|p| p[0])
            .fold(f32::MAX, f32::min)
            .floor(),
    );
    let x_max = clamp_x(corners.iter().map(|p| p[0]).fold(f32::MIN, f32::max).ceil());
    let y_min = clamp_y(
        corners
            .iter()
            .map(|p| p[1])
            .fold(f32::MAX, f32::min)
            .floor(),
    );
    let y_max = clamp_y(corners.iter().map(|p| p[1]).fold(f32::MIN, f32::max).ceil());
    let polygon = corners.map(|[x, y]| [x as i64 as f32, y as i64 as f32]);
    let (mut sum, mut count) = (0.0f64, 0usize);
    for y in y_min..=y_max {
        for x in x_min..=x_max {
            if inside_convex(&polygon, [x as f32, y as f32]) {
                sum += f64::from(map.values[(y * w + x) as usize]);
                count += 1;
            }
        }
    }
    if count == 0 {
        return 0.0;
    }
    (sum / count as f64) as f32
}

/// Whether `point` lies inside or on the convex polygon `polygon` (either winding).
fn inside_convex(polygon: &Quad, point: Point) -> bool {
    let (mut positive, mut negative) = (false, false);
    for (i, a) in polygon.iter().enumerate() {
        let b = polygon[(i + 1) % polygon.len()];
        let cross = (b[0] - a[0]) * (point[1] - a[1]) - (b[1] - a[1]) * (point[0] - a[0]);
        positive |= cross > 1e-4;
        negative |= cross < -1e-4;
    }
    !(positive && negative)
}

/// Boxes cut back into the image: corners ordered clockwise from the top-left (the two leftmost
/// are the left side), clamped inside the image, and boxes under 4 pixels a side dropped.
pub fn fit_to_image(boxes: Vec<Quad>, width: usize, height: usize) -> Vec<Quad> {
    let (max_x, max_y) = ((width.max(1) - 1) as f32, (height.max(1) - 1) as f32);
    boxes
        .into_iter()
        .filter_map(|corners| {
            let mut corners = corners;
            corners.sort_by(|a, b| a[0].total_cmp(&b[0]));
            let [a, b, c, d] = corners;
            let (top_left, bottom_left) = if a[1] <= b[1] { (a, b) } else { (b, a) };
            let (top_right, bottom_right) = if c[1] <= d[1] { (c, d) } else { (d, c) };
            let quad = [top_left, top_right, bottom_right, bottom_left]
                .map(|[x, y]| [x.clamp(0.0, max_x).trunc(), y.clamp(0.0, max_y).trunc()]);
            let width = distance(quad[0], quad[1]) as i64;
            let height = distance(quad[0], quad[3]) as i64;
            (width > 3 && height > 3).then_some(quad)
        })
        .collect()
}

/// The distance between two points.
pub fn distance(a: Point, b: Point) -> f32 {
    (a[0] - b[0]).hypot(a[1] - b[1])
}

/// Boxes in reading order: by the top of their top-left corner, then left to right among boxes
/// whose tops are within `same_line` pixels of each other (one line of text that the detector
/// cut into pieces, a little off level).
pub fn reading_order(mut boxes: Vec<Quad>, same_line: f32) -> Vec<Quad> {
    boxes.sort_by(|a, b| {
        a[0][1]
            .total_cmp(&b[0][1])
            .then(a[0][0].total_cmp(&b[0][0]))
    });
    // Insertion: a box moves left past neighbours on its line that start to its right.
    for i in 1..boxes.len() {
        let mut j = i;
        while j > 0
            && (boxes[j][0][1] - boxes[j - 1][0][1]).abs() < same_line
            && boxes[j][0][0] < boxes[j - 1][0][0]
        {
            boxes.swap(j, j - 1);
            j -= 1;
        }
    }
    boxes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-3
    }

    #[test]
    fn the_min_area_rect_of_an_axis_aligned_block_is_the_block() {
        let points = vec![[2, 3], [10, 3], [10, 7], [2, 7], [5, 5]];
        let rect = min_area_rect(&convex_hull(points)).unwrap();
        let (long, short) = (rect.width.max(rect.height), rect.short_side());
        assert!(close(long, 8.0) && close(short, 4.0), "{rect:?}");
        assert!(
            close(rect.center[0], 6.0) && close(rect.center[1], 5.0),
            "{rect:?}"
        );
    }

    #[test]
    fn the_min_area_rect_follows_a_tilted_line() {
        // A bar 20 long and 2 thick, tilted 30°: the axis-aligned box would be far larger.
        let (c, s) = (30f32.to_radians().cos(), 30f32.to_radians().sin());
        let mut points = Vec::new();
        for i in 0..=200 {
            for j in 0..=20 {
                let (u, v) = (i as f32 / 10.0, j as f32 / 10.0);
                points.push([
                    (100.0 * (50.0 + u * c - v * s)) as i32,
                    (100.0 * (50.0 + u * s + v * c)) as i32,
                ]);
            }
        }
        let rect = min_area_rect(&convex_hull(points)).unwrap();
        let long = rect.width.max(rect.height) / 100.0;
        let short = rect.short_side() / 100.0;
        assert!(
            (long - 20.0).abs() < 0.05 && (short - 2.0).abs() < 0.05,
            "{rect:?}"
        );
        let angle = rect.axis[1]
            .atan2(rect.axis[0])
            .to_degrees()
            .rem_euclid(90.0);
        assert!((angle - 30.0).abs() < 0.5, "{angle}");
    }

    #[test]
    fn unclip_grows_each_side_by_area_times_ratio_over_perimeter() {
        let rect = RotatedRect {
            center: [50.0, 20.0],
            axis: [1.0, 0.0],
            width: 100.0,
            height: 20.0,
        };
        // 2000 × 1.5 / 240 = 12.5 on every side.
        let d = unclip_distance(&rect, 1.5);
        assert!(close(d, 12.5));
        let grown = order_by_x_then_y(rect.grown(d).corners());
        assert_eq!(
            grown,
            [[-12.5, -2.5], [112.5, -2.5], [112.5, 42.5], [-12.5, 42.5]]
        );
    }

    #[test]
    fn a_solid_region_on_the_map_becomes_one_grown_box() {
        let (width, height) = (40, 20);
        let mut values = vec![0.0f32; width * height];
        for y in 8..12 {
            for x in 5..35 {
                values[y * width + x] = 0.9;
            }
        }
        let map = ProbabilityMap {
            values: &values,
            width,
            height,
        };
        let settings = DbSettings {
            thresh: 0.3,
            box_thresh: 0.5,
            unclip_ratio: 1.6,
            max_candidates: 1000,
        };
        // The image is twice the map's size.
        let boxes = text_boxes(&map, 80, 40, &settings);
        assert_eq!(boxes.len(), 1, "{boxes:?}");
        let (quad, score) = boxes[0];
        // Scored on the map before dilation: 120 of the rectangle's 155 pixels hold 0.9.
        assert!((score - 0.9 * 120.0 / 155.0).abs() < 1e-3, "{score}");
        // Dilated to x 5..=35, y 8..=12: 30 × 4, grown by 120 × 1.6 / 68 ≈ 2.82 a side.
        let [top_left, _, bottom_right, _] = quad;
        assert_eq!(top_left, [(2.18f32 * 2.0).round(), (5.18f32 * 2.0).round()]);
        assert_eq!(
            bottom_right,
            [(37.82f32 * 2.0).round(), (14.82f32 * 2.0).round()]
        );
        // A faint region scores under box_thresh and is dropped.
        let faint: Vec<f32> = values.iter().map(|v| v * 0.5).collect();
        let map = ProbabilityMap {
            values: &faint,
            width,
            height,
        };
        assert!(text_boxes(&map, 80, 40, &settings).is_empty());
    }

    #[test]
    fn reading_order_is_lines_top_down_and_left_to_right_within_a_line() {
        let quad = |x: f32, y: f32| [[x, y], [x + 50.0, y], [x + 50.0, y + 20.0], [x, y + 20.0]];
        // The right half of line one sits 3 px higher than its left half.
        let boxes = vec![
            quad(10.0, 60.0),
            quad(70.0, 7.0),
            quad(10.0, 10.0),
            quad(10.0, 35.0),
        ];
        let order = reading_order(boxes, 10.0);
        let starts: Vec<[f32; 2]> = order.iter().map(|q| q[0]).collect();
        assert_eq!(
            starts,
            vec![[10.0, 10.0], [70.0, 7.0], [10.0, 35.0], [10.0, 60.0]]
        );
    }

    #[test]
    fn boxes_are_clamped_and_tiny_ones_dropped() {
        let boxes = vec![
            [[-5.0, -5.0], [30.0, -5.0], [30.0, 12.0], [-5.0, 12.0]],
            [[1.0, 1.0], [4.0, 1.0], [4.0, 3.0], [1.0, 3.0]],
        ];
        let kept = fit_to_image(boxes, 20, 10);
        assert_eq!(
            kept,
            vec![[[0.0, 0.0], [19.0, 0.0], [19.0, 9.0], [0.0, 9.0]]]
        );
    }
}
