//! Drawing folded stacks as inferno's interactive SVG flamegraph.

use std::io::Write;

use crate::cli::RenderOptions;

/// Titles and numbers shown in the SVG.
#[derive(Debug, Clone)]
pub struct Labels {
    /// Main title: the profiled command, unless the user gave one.
    pub title: String,
    /// Second line: sample count and how they were taken.
    pub subtitle: String,
}

/// Renders folded stacks into inferno's interactive SVG.
pub fn render_svg(
    folded: &[u8],
    opts: &RenderOptions,
    labels: &Labels,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let mut options = inferno::flamegraph::Options::default();
    options.title = labels.title.clone();
    options.subtitle = Some(labels.subtitle.clone());
    options.colors = opts.palette;
    options.min_width = opts.min_width;
    options.reverse_stack_order = opts.reverse;
    options.flame_chart = opts.flamechart;
    options.count_name = "samples".into();
    let text = std::str::from_utf8(folded).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("stacks are not UTF-8: {e}"),
        )
    })?;
    if opts.flamechart {
        // inferno reverses flame-chart input (DTrace's order); ours is in time
        // order already, so hand it over reversed and time runs left to right.
        let lines: Vec<&str> = text.lines().rev().collect();
        return inferno::flamegraph::from_lines(&mut options, lines, out);
    }
    inferno::flamegraph::from_lines(&mut options, text.lines(), out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_has_title_subtitle_and_escaped_names() {
        let labels = Labels {
            title: "demo --iters 5".into(),
            subtitle: "3 samples".into(),
        };
        let mut svg = Vec::new();
        render_svg(
            b"demo;main;a<script>&\"b 2\ndemo;main;c 1\n",
            &RenderOptions::default(),
            &labels,
            &mut svg,
        )
        .unwrap();
        let svg = String::from_utf8(svg).unwrap();
        assert!(svg.contains("demo --iters 5") && svg.contains("3 samples"));
        assert!(!svg.contains("a<script>"), "names must be escaped");
        assert!(svg.contains("a&lt;script&gt;&amp;"), "escaped name present");
    }
}
