//! Drawings as inline SVG, made on the server from numbers (no tile server, no chart library in
//! the browser): the journey's map and the temperature chart. Presentation attributes only (no
//! `style`), so the pages' Content-Security-Policy needs no inline styles.

use std::fmt::Write as _;

use crate::escape;

/// A point on the map.
#[derive(Debug, Clone, PartialEq)]
pub struct MapPoint {
    pub name: String,
    pub latitude: f64,
    pub longitude: f64,
}

const MAP_WIDTH: f64 = 360.0;
const MAP_HEIGHT: f64 = 240.0;
const MAP_MARGIN: f64 = 28.0;
/// The most points drawn on a map.
pub const MAP_POINTS_MAX: usize = 64;

/// A step between grid lines that gives about four lines over `span` degrees.
fn grid_step(span: f64) -> f64 {
    [0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 45.0].into_iter().find(|step| span / step <= 5.0).unwrap_or(90.0)
}

/// A plain equirectangular projection (longitudes shrunk by the cosine of the middle latitude)
/// that fits the points into the picture with a margin.
struct Projection {
    north: f64,
    south: f64,
    west: f64,
    east: f64,
    shrink: f64,
    scale: f64,
    x_offset: f64,
    y_offset: f64,
}

impl Projection {
    fn fit(points: &[MapPoint]) -> Projection {
        let (mut south, mut north, mut west, mut east) = (90.0f64, -90.0f64, 180.0f64, -180.0f64);
        for point in points {
            south = south.min(point.latitude);
            north = north.max(point.latitude);
            west = west.min(point.longitude);
            east = east.max(point.longitude);
        }
        let shrink = ((south + north) / 2.0).to_radians().cos().max(0.2);
        // At least half a degree each way, so one point is not a division by zero.
        let (lat_pad, lon_pad) = (((north - south) * 0.1).max(0.5), ((east - west) * 0.1).max(0.5 / shrink));
        let (south, north, west, east) = (south - lat_pad, north + lat_pad, west - lon_pad, east + lon_pad);
        let (width_degrees, height_degrees) = ((east - west) * shrink, north - south);
        let scale =
            ((MAP_WIDTH - 2.0 * MAP_MARGIN) / width_degrees).min((MAP_HEIGHT - 2.0 * MAP_MARGIN) / height_degrees);
        Projection {
            north,
            south,
            west,
            east,
            shrink,
            scale,
            x_offset: (MAP_WIDTH - width_degrees * scale) / 2.0,
            y_offset: (MAP_HEIGHT - height_degrees * scale) / 2.0,
        }
    }

    fn project(&self, latitude: f64, longitude: f64) -> (f64, f64) {
        (
            self.x_offset + (longitude - self.west) * self.shrink * self.scale,
            self.y_offset + (self.north - latitude) * self.scale,
        )
    }

    fn graticule(&self, svg: &mut String) {
        let step = grid_step((self.north - self.south).max(self.east - self.west));
        let mut latitude = (self.south / step).ceil() * step;
        while latitude <= self.north {
            let (x1, y) = self.project(latitude, self.west);
            let (x2, _) = self.project(latitude, self.east);
            let _ = write!(
                svg,
                "<line x1=\"{x1:.1}\" y1=\"{y:.1}\" x2=\"{x2:.1}\" y2=\"{y:.1}\" stroke=\"#c5d3dd\" stroke-width=\"0.8\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\" fill=\"#3d5566\">{latitude}°</text>",
                x1 + 2.0,
                y - 2.0
            );
            latitude += step;
        }
        let mut longitude = (self.west / step).ceil() * step;
        while longitude <= self.east {
            let (x, y1) = self.project(self.north, longitude);
            let (_, y2) = self.project(self.south, longitude);
            let _ = write!(
                svg,
                "<line x1=\"{x:.1}\" y1=\"{y1:.1}\" x2=\"{x:.1}\" y2=\"{y2:.1}\" stroke=\"#c5d3dd\" stroke-width=\"0.8\"/>"
            );
            longitude += step;
        }
    }
}

fn open_map(svg: &mut String, id: &str, title: &str, names: &str) {
    let _ = write!(
        svg,
        "<svg class=\"map\" viewBox=\"0 0 {MAP_WIDTH} {MAP_HEIGHT}\" role=\"img\" aria-labelledby=\"{id}\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title id=\"{id}\">{}: {}</title><rect width=\"{MAP_WIDTH}\" height=\"{MAP_HEIGHT}\" fill=\"#eef4f8\"/>",
        escape(title),
        escape(names)
    );
}

fn place_marks(svg: &mut String, projection: &Projection, points: &[MapPoint], first_larger: bool) {
    for (index, point) in points.iter().enumerate() {
        let (x, y) = projection.project(point.latitude, point.longitude);
        let larger = first_larger && index == 0;
        // Labels run towards the middle, so they stay in the picture.
        let anchor = if x > MAP_WIDTH / 2.0 { "end" } else { "start" };
        let label_x = if anchor == "end" { x - 8.0 } else { x + 8.0 };
        let _ = write!(
            svg,
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"{}\" fill=\"{}\" stroke=\"#ffffff\" stroke-width=\"1.5\"/>\
             <text x=\"{label_x:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#1a1a1a\" text-anchor=\"{anchor}\">{}</text>",
            if larger { 6.0 } else { 4.0 },
            if larger { "#8a4b00" } else { "#0b6b3a" },
            y + 4.0,
            escape(&point.name)
        );
    }
}

/// The journey's places on a plain map, joined in order; the first point (the origin) is drawn
/// larger. `title` is the accessible name, `id` its element's id (unique on the page).
pub fn map(points: &[MapPoint], title: &str, id: &str) -> Option<String> {
    let points = &points[..points.len().min(MAP_POINTS_MAX)];
    if points.is_empty() {
        return None;
    }
    let projection = Projection::fit(points);
    let mut svg = String::new();
    let names: Vec<&str> = points.iter().map(|point| point.name.as_str()).collect();
    open_map(&mut svg, id, title, &names.join(" → "));
    projection.graticule(&mut svg);
    let path: Vec<String> = points
        .iter()
        .map(|point| {
            let (x, y) = projection.project(point.latitude, point.longitude);
            format!("{x:.1},{y:.1}")
        })
        .collect();
    let _ = write!(
        svg,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"#0b6b3a\" stroke-width=\"2\" stroke-dasharray=\"6 4\"/>",
        path.join(" ")
    );
    place_marks(&mut svg, &projection, points, true);
    svg.push_str("</svg>");
    Some(svg)
}

/// A network: its places and the lanes between them (pairs of indexes into `points`).
pub fn network(points: &[MapPoint], lanes: &[(usize, usize)], title: &str, id: &str) -> Option<String> {
    let points = &points[..points.len().min(MAP_POINTS_MAX)];
    if points.is_empty() {
        return None;
    }
    let projection = Projection::fit(points);
    let mut svg = String::new();
    open_map(&mut svg, id, title, &format!("{} places, {} lanes", points.len(), lanes.len()));
    projection.graticule(&mut svg);
    for (from, to) in lanes {
        let (Some(from), Some(to)) = (points.get(*from), points.get(*to)) else { continue };
        let (x1, y1) = projection.project(from.latitude, from.longitude);
        let (x2, y2) = projection.project(to.latitude, to.longitude);
        let _ = write!(
            svg,
            "<line class=\"lane\" x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"#0a4d8c\" stroke-width=\"1.5\"/>"
        );
    }
    place_marks(&mut svg, &projection, points, false);
    svg.push_str("</svg>");
    Some(svg)
}

/// A vehicle's route: its label and its stops (latitude, longitude) in visiting order.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteLine {
    pub label: String,
    pub stops: Vec<(f64, f64)>,
}

/// A depot's routes: each from the depot through its stops and back, one colour per route.
pub fn routes(depot: &MapPoint, lines: &[RouteLine], title: &str, id: &str) -> Option<String> {
    if lines.is_empty() {
        return None;
    }
    let mut points = vec![depot.clone()];
    for line in lines {
        points.extend(line.stops.iter().map(|(latitude, longitude)| MapPoint {
            name: String::new(),
            latitude: *latitude,
            longitude: *longitude,
        }));
    }
    let projection = Projection::fit(&points);
    let mut svg = String::new();
    let labels: Vec<&str> = lines.iter().map(|line| line.label.as_str()).collect();
    open_map(&mut svg, id, title, &labels.join(", "));
    projection.graticule(&mut svg);
    let colours = ["#0a4d8c", "#8a4b00", "#6a3d9a", "#1b6e5a", "#b00020"];
    for (index, line) in lines.iter().enumerate() {
        let colour = colours[index % colours.len()];
        let mut path = vec![projection.project(depot.latitude, depot.longitude)];
        path.extend(line.stops.iter().map(|(latitude, longitude)| projection.project(*latitude, *longitude)));
        path.push(projection.project(depot.latitude, depot.longitude));
        let text: Vec<String> = path.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
        let _ = write!(
            svg,
            "<polyline class=\"route\" points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.8\"><title>{}</title></polyline>",
            text.join(" "),
            escape(&line.label)
        );
        for (x, y) in &path[1..path.len() - 1] {
            let _ = write!(svg, "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2.5\" fill=\"{colour}\"/>");
        }
    }
    place_marks(&mut svg, &projection, std::slice::from_ref(depot), true);
    svg.push_str("</svg>");
    Some(svg)
}

/// One device's readings: (Unix seconds, °C), in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    pub points: Vec<(i64, f64)>,
}

/// What the chart draws.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartInput {
    pub series: Vec<Series>,
    pub min_celsius: Option<f64>,
    pub max_celsius: Option<f64>,
    /// (start, end) in Unix seconds.
    pub excursions: Vec<(i64, i64)>,
    /// The accessible name (a summary in words).
    pub title: String,
    /// Labels under the time axis: (Unix seconds, text).
    pub time_labels: Vec<(i64, String)>,
}

const CHART_WIDTH: f64 = 640.0;
const CHART_HEIGHT: f64 = 240.0;
const CHART_LEFT: f64 = 46.0;
const CHART_RIGHT: f64 = 12.0;
const CHART_TOP: f64 = 10.0;
const CHART_BOTTOM: f64 = 30.0;
/// The most points drawn per series (longer series keep each bucket's extremes).
pub const CHART_POINTS_PER_SERIES_MAX: usize = 800;
/// The most out-of-range readings marked with a dot.
pub const CHART_MARKS_MAX: usize = 200;

/// Keeps a series under `limit` points, keeping each bucket's lowest and highest reading so
/// excursions stay visible.
fn thin(points: &[(i64, f64)], limit: usize) -> Vec<(i64, f64)> {
    if points.len() <= limit {
        return points.to_vec();
    }
    let buckets = limit / 2;
    let size = points.len().div_ceil(buckets);
    let mut kept = Vec::with_capacity(limit);
    for bucket in points.chunks(size) {
        let low = bucket.iter().min_by(|a, b| a.1.total_cmp(&b.1)).copied();
        let high = bucket.iter().max_by(|a, b| a.1.total_cmp(&b.1)).copied();
        if let (Some(low), Some(high)) = (low, high) {
            if low.0 <= high.0 {
                kept.extend([low, high]);
            } else {
                kept.extend([high, low]);
            }
        }
    }
    kept.dedup();
    kept
}

/// The temperature chart: the allowed range as a band, excursions shaded and their readings
/// marked, one line per device.
pub fn chart(input: &ChartInput) -> Option<String> {
    let all = input.series.iter().flat_map(|series| series.points.iter());
    let (mut first, mut last, mut low, mut high) = (i64::MAX, i64::MIN, f64::MAX, f64::MIN);
    for (time, celsius) in all {
        first = first.min(*time);
        last = last.max(*time);
        low = low.min(*celsius);
        high = high.max(*celsius);
    }
    if first > last {
        return None;
    }
    if let Some(min) = input.min_celsius {
        low = low.min(min);
    }
    if let Some(max) = input.max_celsius {
        high = high.max(max);
    }
    let (low, high) = ((low - 1.0).floor(), (high + 1.0).ceil());
    let span_seconds = (last - first).max(1) as f64;
    let plot_width = CHART_WIDTH - CHART_LEFT - CHART_RIGHT;
    let plot_height = CHART_HEIGHT - CHART_TOP - CHART_BOTTOM;
    let x = |time: i64| CHART_LEFT + (time - first) as f64 / span_seconds * plot_width;
    let y = |celsius: f64| CHART_TOP + (high - celsius) / (high - low) * plot_height;
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {CHART_WIDTH} {CHART_HEIGHT}\" role=\"img\" aria-labelledby=\"chart-title\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title id=\"chart-title\">{}</title><rect x=\"{CHART_LEFT}\" y=\"{CHART_TOP}\" width=\"{plot_width}\" height=\"{plot_height}\" fill=\"#ffffff\" stroke=\"#6b7a86\"/>",
        escape(&input.title)
    );
    let band_top = input.max_celsius.map_or(CHART_TOP, y);
    let band_bottom = input.min_celsius.map_or(CHART_TOP + plot_height, y);
    if input.min_celsius.is_some() || input.max_celsius.is_some() {
        let _ = write!(
            svg,
            "<rect class=\"range\" x=\"{CHART_LEFT}\" y=\"{band_top:.1}\" width=\"{plot_width}\" height=\"{:.1}\" fill=\"#dff2e6\"/>",
            (band_bottom - band_top).max(0.0)
        );
    }
    for (start, end) in &input.excursions {
        let (left, right) = (x((*start).clamp(first, last)), x((*end).clamp(first, last)));
        let _ = write!(
            svg,
            "<rect class=\"excursion\" x=\"{left:.1}\" y=\"{CHART_TOP}\" width=\"{:.1}\" height=\"{plot_height}\" fill=\"#f9d6d6\"/>",
            (right - left).max(2.0)
        );
    }
    let tick = grid_step(high - low).max(1.0);
    let mut celsius = (low / tick).ceil() * tick;
    while celsius <= high {
        let _ = write!(
            svg,
            "<line x1=\"{CHART_LEFT}\" y1=\"{0:.1}\" x2=\"{1}\" y2=\"{0:.1}\" stroke=\"#d5dde3\" stroke-width=\"0.7\"/>\
             <text x=\"{2}\" y=\"{3:.1}\" font-size=\"11\" fill=\"#33414c\" text-anchor=\"end\">{4} °C</text>",
            y(celsius),
            CHART_LEFT + plot_width,
            CHART_LEFT - 4.0,
            y(celsius) + 4.0,
            // `+ 0.0` turns a -0 tick into 0.
            celsius + 0.0
        );
        celsius += tick;
    }
    for (time, label) in &input.time_labels {
        if (first..=last).contains(time) {
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#33414c\" text-anchor=\"middle\">{}</text>",
                x(*time),
                CHART_HEIGHT - 10.0,
                escape(label)
            );
        }
    }
    let colours = ["#0a4d8c", "#6a3d9a", "#1b6e5a", "#8c4a0a"];
    let mut marks = 0;
    for (index, series) in input.series.iter().enumerate() {
        let points: Vec<String> = thin(&series.points, CHART_POINTS_PER_SERIES_MAX)
            .iter()
            .map(|(time, celsius)| format!("{:.1},{:.1}", x(*time), y(*celsius)))
            .collect();
        let _ = write!(
            svg,
            "<polyline class=\"readings\" points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.6\"><title>{}</title></polyline>",
            points.join(" "),
            colours[index % colours.len()],
            escape(&series.label)
        );
        for (time, celsius) in &series.points {
            let outside = input.min_celsius.is_some_and(|min| *celsius < min)
                || input.max_celsius.is_some_and(|max| *celsius > max);
            if outside && marks < CHART_MARKS_MAX {
                marks += 1;
                let _ = write!(
                    svg,
                    "<circle class=\"out\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"#b00020\"/>",
                    x(*time),
                    y(*celsius)
                );
            }
        }
    }
    svg.push_str("</svg>");
    Some(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_map_draws_every_place_and_escapes_names() {
        let points = vec![
            MapPoint { name: "Solberg <farm>".into(), latitude: 62.47, longitude: 6.15 },
            MapPoint { name: "Oslo".into(), latitude: 59.91, longitude: 10.75 },
            MapPoint { name: "Amsterdam".into(), latitude: 52.37, longitude: 4.90 },
        ];
        let svg = map(&points, "Map", "map-title").unwrap();
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(svg.contains("Solberg &lt;farm&gt;") && !svg.contains("<farm>"));
        assert!(map(&[], "Map", "map-title").is_none());
        let one = map(&points[..1], "Map", "map-title").unwrap();
        assert!(!one.contains("NaN") && !one.contains("inf"), "{one}");
        // Every drawn point is inside the picture.
        for circle in svg.split("<circle cx=\"").skip(1) {
            let mut numbers = circle.split('"');
            let cx: f64 = numbers.next().unwrap().parse().unwrap();
            let cy: f64 = numbers.nth(1).unwrap().parse().unwrap();
            assert!((0.0..=MAP_WIDTH).contains(&cx) && (0.0..=MAP_HEIGHT).contains(&cy), "{cx},{cy}");
        }
    }

    #[test]
    fn the_chart_marks_readings_out_of_range() {
        let points: Vec<(i64, f64)> =
            (0..100).map(|minute| (minute * 60, if (40..45).contains(&minute) { 6.0 } else { 1.0 })).collect();
        let input = ChartInput {
            series: vec![Series { label: "logger".into(), points }],
            min_celsius: Some(0.0),
            max_celsius: Some(4.0),
            excursions: vec![(2400, 2640)],
            title: "Temperature".into(),
            time_labels: vec![(0, "start".into()), (99_999, "never".into())],
        };
        let svg = chart(&input).unwrap();
        assert_eq!(svg.matches("class=\"out\"").count(), 5);
        assert_eq!(svg.matches("class=\"excursion\"").count(), 1);
        assert!(svg.contains("class=\"range\""));
        assert!(svg.contains(">start<") && !svg.contains("never"), "labels outside the time span are left out");
        assert!(chart(&ChartInput { series: vec![], ..input }).is_none());
    }

    #[test]
    fn thinning_keeps_the_extremes() {
        let mut points: Vec<(i64, f64)> = (0..10_000).map(|second| (second, 2.0)).collect();
        points[5_432].1 = 9.5;
        points[7_000].1 = -3.0;
        let kept = thin(&points, 800);
        assert!(kept.len() <= 800);
        assert!(kept.contains(&(5_432, 9.5)) && kept.contains(&(7_000, -3.0)));
        assert!(kept.windows(2).all(|pair| pair[0].0 <= pair[1].0), "still in time order");
    }
}
