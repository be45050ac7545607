// report.html's script: the heatmap and a lane per thread, the flamegraph of
// a range or the differential flamegraph of two, the thread filter, CPU or
// wall time, search and the summary. Everything is computed here from the
// embedded data (see report.rs for its layout); nothing is fetched.
(function () {
  "use strict";

  var D = JSON.parse(document.getElementById("data").textContent);
  var $ = function (id) { return document.getElementById(id); };
  // Counts are samples, or nanoseconds under --off-cpu.
  var ns = D.unit === "ns";

  // ---- The tree of stacks --------------------------------------------------
  var nNodes = D.nodes.length / 2;
  var parent = new Int32Array(nNodes);
  var frame = new Int32Array(nNodes);
  var depth = new Int32Array(nNodes);
  var complete = new Uint8Array(nNodes); // a thread root on the way from the root
  var nested = new Uint8Array(nNodes); // its frame is also an ancestor's (recursion)
  var threadNode = new Int32Array(nNodes); // its ancestor under the root: its thread
  var isRoot = new Uint8Array(D.frames.length);
  D.roots.forEach(function (f) { isRoot[f] = 1; });
  // Frames that say a thread was off the CPU (`[off-cpu…]`, the leaf of a
  // wait under --off-cpu); kernel frames, to skip when naming where.
  var isOff = new Uint8Array(D.frames.length), isKernel = new Uint8Array(D.frames.length);
  var i, j;
  for (i = 0; i < D.frames.length; i++) {
    isOff[i] = D.frames[i].lastIndexOf("[off-cpu", 0) === 0 ? 1 : 0;
    isKernel[i] = /_\[k\]$|^\[kernel\]$/.test(D.frames[i]) ? 1 : 0;
  }
  parent[0] = -1;
  frame[0] = -1;
  for (i = 1; i < nNodes; i++) {
    parent[i] = D.nodes[2 * i];
    frame[i] = D.nodes[2 * i + 1];
    depth[i] = depth[parent[i]] + 1;
    complete[i] = complete[parent[i]] || isRoot[frame[i]];
    threadNode[i] = parent[i] === 0 ? i : threadNode[parent[i]];
    for (j = parent[i]; j > 0; j = parent[j]) {
      if (frame[j] === frame[i]) { nested[i] = 1; break; }
    }
  }
  // Children of each node, by name (as flamegraphs order them).
  var childCount = new Int32Array(nNodes + 1);
  for (i = 1; i < nNodes; i++) childCount[parent[i] + 1]++;
  for (i = 0; i < nNodes; i++) childCount[i + 1] += childCount[i];
  var childStart = childCount;
  var children = new Int32Array(Math.max(nNodes - 1, 0));
  var fill = childStart.slice(0, nNodes);
  for (i = 1; i < nNodes; i++) children[fill[parent[i]]++] = i;
  var byName = function (a, b) {
    var x = D.frames[frame[a]], y = D.frames[frame[b]];
    return x < y ? -1 : x > y ? 1 : 0;
  };
  for (i = 0; i < nNodes; i++) {
    var kids = Array.prototype.slice.call(children, childStart[i], childStart[i + 1]);
    if (kids.length > 1) {
      kids.sort(byName);
      for (j = 0; j < kids.length; j++) children[childStart[i] + j] = kids[j];
    }
  }

  // ---- The timeline --------------------------------------------------------
  // [cell, thread, node] per entry (C) and its weight (W); the data gives
  // [cell, thread, node, weight] with cells as differences.
  var nEntries = D.cells.length / 4;
  var C = new Int32Array(nEntries * 3), W = new Float64Array(nEntries);
  var cell = 0;
  for (i = 0; i < nEntries; i++) {
    cell += D.cells[4 * i];
    C[3 * i] = cell;
    C[3 * i + 1] = D.cells[4 * i + 1];
    C[3 * i + 2] = D.cells[4 * i + 2];
    W[i] = D.cells[4 * i + 3];
  }
  D.cells = null;
  var hasTimeline = nEntries > 0;
  var rows = D.rows, cellMs = D.cell_ms;
  var nCells = hasTimeline ? C[3 * (nEntries - 1)] + 1 : 0;
  var nCols = Math.ceil(nCells / rows);
  var cellStart = new Int32Array(nCells + 1); // entries of cell k: [cellStart[k], cellStart[k+1])
  for (i = 0; i < nEntries; i++) cellStart[C[3 * i] + 1]++;
  for (i = 0; i < nCells; i++) cellStart[i + 1] += cellStart[i];
  var hasWaits = false;
  for (i = 0; i < nEntries && !hasWaits; i++) hasWaits = isOff[frame[C[3 * i + 2]]] === 1;
  // Keyed by names from the recording: no prototype (a thread may be
  // named `hasOwnProperty`, a function `__proto__`).
  var threadIds = Object.create(null);
  D.threads.forEach(function (name, k) { threadIds[name] = k; });

  var MAX_LANES = 8;
  // Hottest by total time leaves out the frames in at least this share of a
  // thread's samples (runtime wrappers, thread roots), unless more than the
  // rest of this share of their weight is elsewhere: `clone3` is the root
  // of every thread but one, and a small part of the one that spawns them.
  var WRAPPER_SHARE = 0.98;

  // a, b: ranges of cells ([first, last]) or null; `target`: which one a
  // drag sets; `shape`: whose widths a differential flamegraph draws.
  var state = {
    thread: -1, view: hasWaits ? "wall" : "cpu", a: null, b: null, target: "a", shape: "b",
    focus: 0, shown: null, other: null, shownRange: null,
  };
  var times = { heatmap: null, selection: null };

  // ---- Numbers ---------------------------------------------------------------
  function pct(part, whole) { return whole > 0 ? (part * 100 / whole).toFixed(1) : "0.0"; }
  // A weight as the page shows it: samples, or milliseconds.
  function amount(w) { return ns ? (w / 1e6).toFixed(1) : String(w); }
  var unitName = ns ? "ms" : "samples";
  function withUnit(w) { return amount(w) + " " + unitName; }
  function seconds(cellIndex) { return (cellIndex * cellMs / 1000).toFixed(2) + " s"; }
  function span(r) { return seconds(r[0]) + " to " + seconds(r[1] + 1); }

  // ---- Counting a range ------------------------------------------------------
  function counted(k) {
    var node = C[3 * k + 2];
    return (state.thread < 0 || C[3 * k + 1] === state.thread) && (state.view === "wall" || !isOff[frame[node]]);
  }

  // Weights per node in cells r ([first, last], or null for the whole run):
  // { self, total }.
  function count(r) {
    var self = new Float64Array(nNodes);
    var k;
    if (!hasTimeline) {
      for (k = 0; k < D.whole.length; k += 2) self[D.whole[k]] += D.whole[k + 1];
    } else {
      var a = r ? r[0] : 0, b = r ? r[1] : nCells - 1;
      var end = cellStart[Math.min(b, nCells - 1) + 1];
      for (k = cellStart[Math.max(a, 0)]; k < end; k++) {
        if (counted(k)) self[C[3 * k + 2]] += W[k];
      }
    }
    var total = self.slice();
    for (k = nNodes - 1; k > 0; k--) total[parent[k]] += total[k];
    return { self: self, total: total };
  }

  function diffing() { return !!(state.a && state.b); }

  // ---- The heatmap and the lanes -------------------------------------------
  var heat = $("heatmap");
  var geo = { left: 56, top: 8, colW: 10, rowH: 6, axis: 40, laneLabel: 16, laneRowH: 2, laneGap: 8 };
  var maps = null; // what the heatmap draws, per view and thread filter
  var drag = null;

  function setSize(canvas, w, h) {
    // Sharp on high-density screens, within what every browser draws (Safari
    // leaves a canvas over 16M pixels blank; no side may pass 32767).
    var dpr = Math.min(window.devicePixelRatio || 1, Math.sqrt(16e6 / Math.max(w * h, 1)), 32767 / Math.max(w, h, 1));
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
    canvas.style.width = w + "px";
    canvas.style.height = h + "px";
    var ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return ctx;
  }

  // A cell's colour into `px` at `i` (RGBA). CPU: light grey when empty, then
  // from light yellow to dark red. Wall: from blue (all of its time off the
  // CPU) to red (all running), paler the less time it holds.
  function colour(cpu, off, max, px, i) {
    var v = cpu + off;
    if (v <= 0) {
      px[i] = px[i + 1] = px[i + 2] = 244;
    } else if (state.view === "cpu") {
      var x = Math.sqrt(v / max); // low counts stay visible
      px[i] = 255 - 75 * x;
      px[i + 1] = 235 - 235 * x;
      px[i + 2] = 190 - 190 * x;
    } else {
      var run = cpu / v, y = 0.35 + 0.65 * Math.sqrt(Math.min(v / max, 1));
      var r = 40 + 175 * run, g = 90 - 50 * run, b = 215 - 185 * run;
      px[i] = 244 + (r - 244) * y;
      px[i + 1] = 244 + (g - 244) * y;
      px[i + 2] = 244 + (b - 244) * y;
    }
    px[i + 3] = 255;
  }

  // Weights per cell, on and off the CPU, for the heatmap (the thread
  // filter applies) and for each lane (the busiest threads, in this view).
  function computeMaps() {
    var m = { cpu: new Float64Array(nCells), off: new Float64Array(nCells), lanes: [], more: 0 };
    var weight = new Float64Array(D.threads.length), k, t, off;
    for (k = 0; k < nEntries; k++) {
      if (state.view === "cpu" && isOff[frame[C[3 * k + 2]]]) continue;
      weight[C[3 * k + 1]] += W[k];
    }
    var order = D.threads.map(function (_, n) { return n; }).filter(function (n) { return weight[n] > 0; });
    order.sort(function (x, y) { return weight[y] - weight[x] || x - y; });
    var laneOf = new Int32Array(D.threads.length).fill(-1);
    if (D.threads.length > 1) {
      order.slice(0, MAX_LANES).forEach(function (n, l) {
        laneOf[n] = l;
        m.lanes.push({ thread: n, weight: weight[n], cpu: new Float64Array(nCells), off: new Float64Array(nCells) });
      });
      m.more = Math.max(order.length - MAX_LANES, 0);
    }
    for (k = 0; k < nEntries; k++) {
      off = isOff[frame[C[3 * k + 2]]];
      if (off && state.view === "cpu") continue;
      var c = C[3 * k];
      t = C[3 * k + 1];
      if (state.thread < 0 || t === state.thread) (off ? m.off : m.cpu)[c] += W[k];
      var l = laneOf[t];
      if (l >= 0) (off ? m.lanes[l].off : m.lanes[l].cpu)[c] += W[k];
    }
    m.max = 0;
    m.laneMax = 0;
    for (k = 0; k < nCells; k++) {
      m.max = Math.max(m.max, m.cpu[k] + m.off[k]);
      for (l = 0; l < m.lanes.length; l++) m.laneMax = Math.max(m.laneMax, m.lanes[l].cpu[k] + m.lanes[l].off[k]);
    }
    return m;
  }

  // Where each part of the heatmap canvas is (CSS pixels, from its top).
  function layout() {
    // Lanes of 2 px rows, 1 px when there are many.
    geo.laneRowH = maps.lanes.length > 3 ? 1 : 2;
    var lanesTop = geo.top + rows * geo.rowH + geo.axis;
    var laneH = geo.laneLabel + rows * geo.laneRowH + geo.laneGap;
    return { lanesTop: lanesTop, laneH: laneH, height: lanesTop + maps.lanes.length * laneH + (maps.more ? 14 : 0) };
  }

  // Draws cells `cpu`/`off` as a heatmap of `rowH`-high rows at `y`.
  function drawCells(ctx, cpu, off, max, y, rowH) {
    var img = document.createElement("canvas");
    img.width = nCols;
    img.height = rows;
    var octx = img.getContext("2d");
    var data = octx.createImageData(nCols, rows);
    var px = data.data;
    for (var k = 0; k < nCols * rows; k++) {
      var p = ((k % rows) * nCols + Math.floor(k / rows)) * 4;
      if (k < nCells) {
        colour(cpu[k], off[k], max, px, p);
      } else {
        px[p] = px[p + 1] = px[p + 2] = px[p + 3] = 255;
      }
    }
    octx.putImageData(data, 0, 0);
    // A pixel per cell, scaled up: one drawImage, not a fillRect per cell.
    ctx.imageSmoothingEnabled = false;
    var Wd = nCols * geo.colW, H = rows * rowH;
    ctx.drawImage(img, geo.left, y, Wd, H);
    // The grid: a white line under each row if tall, after each column if wide.
    ctx.fillStyle = "#fff";
    if (rowH > 3) for (k = 1; k <= rows; k++) ctx.fillRect(geo.left, y + k * rowH - 1, Wd, 1);
    if (geo.colW > 4) for (k = 1; k <= nCols; k++) ctx.fillRect(geo.left + k * geo.colW - 1, y, 1, H);
  }

  // Shades range `sel` over a heatmap of `rowH`-high rows at `y`.
  function drawRange(ctx, sel, fillStyle, label, y, rowH) {
    ctx.fillStyle = fillStyle;
    var ca = Math.floor(sel[0] / rows), cb = Math.floor(sel[1] / rows);
    var cells = function (col, r0, r1, cols) {
      ctx.fillRect(geo.left + col * geo.colW, y + r0 * rowH, cols * geo.colW, (r1 - r0 + 1) * rowH);
    };
    if (ca === cb) {
      cells(ca, sel[0] % rows, sel[1] % rows, 1);
    } else {
      cells(ca, sel[0] % rows, rows - 1, 1);
      if (cb - ca > 1) cells(ca + 1, 0, rows - 1, cb - ca - 1);
      cells(cb, 0, sel[1] % rows, 1);
    }
    if (label && rowH > 3) {
      ctx.fillStyle = "#000";
      ctx.font = "bold 11px sans-serif";
      ctx.textAlign = "left";
      ctx.textBaseline = "top";
      ctx.fillText(label, geo.left + ca * geo.colW + 2, y + (sel[0] % rows) * rowH + 1);
    }
  }

  // The ranges' shades: on the heatmap, and lighter on the lanes.
  var RANGE_A = ["rgba(30, 90, 220, 0.45)", "rgba(30, 90, 220, 0.22)"];
  var RANGE_B = ["rgba(0, 150, 70, 0.5)", "rgba(0, 150, 70, 0.25)"];

  function drawHeatmap() {
    if (!hasTimeline) return;
    if (!maps) maps = computeMaps();
    var avail = Math.max(document.documentElement.clientWidth - 40 - geo.left - 16, 200);
    geo.colW = Math.max(3, Math.min(48, Math.floor(avail / nCols)));
    var L = layout();
    var w = Math.max(geo.left + nCols * geo.colW + 16, geo.left + 340), h = L.height;
    var ctx = setSize(heat, w, h);
    ctx.clearRect(0, 0, w, h);
    drawCells(ctx, maps.cpu, maps.off, maps.max, geo.top, geo.rowH);
    maps.lanes.forEach(function (lane, l) {
      drawCells(ctx, lane.cpu, lane.off, maps.laneMax, L.lanesTop + l * L.laneH + geo.laneLabel, geo.laneRowH);
    });
    // The ranges: A, B, and the one being dragged.
    var ranges = [];
    var dragged = drag ? [Math.min(drag.a, drag.b), Math.max(drag.a, drag.b)] : null;
    var a = drag && drag.target === "a" ? dragged : state.a, b = drag && drag.target === "b" ? dragged : state.b;
    if (a) ranges.push([a, RANGE_A, b ? "A" : ""]);
    if (b) ranges.push([b, RANGE_B, "B"]);
    ranges.forEach(function (r) {
      drawRange(ctx, r[0], r[1][0], r[2], geo.top, geo.rowH);
      maps.lanes.forEach(function (_, l) {
        drawRange(ctx, r[0], r[1][1], "", L.lanesTop + l * L.laneH + geo.laneLabel, geo.laneRowH);
      });
    });
    // Axes.
    ctx.fillStyle = "#333";
    ctx.font = "11px sans-serif";
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (var ms = 0; ms < 1000; ms += 250) {
      ctx.fillText(ms + " ms", geo.left - 4, geo.top + (ms / cellMs) * geo.rowH + geo.rowH / 2);
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    var every = Math.max(1, Math.ceil(36 / geo.colW));
    var nice = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000], k;
    for (k = 0; k < nice.length && nice[k] < every; k++);
    every = nice[Math.min(k, nice.length - 1)];
    var y = geo.top + rows * geo.rowH + 3;
    for (k = 0; k < nCols; k += every) {
      ctx.fillText(k + "", geo.left + k * geo.colW + geo.colW / 2, y);
    }
    ctx.textAlign = "left";
    ctx.fillText("seconds since the first sample (a column per second)", geo.left, y + 18);
    ctx.save();
    ctx.translate(10, geo.top + rows * geo.rowH / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textBaseline = "middle";
    ctx.fillText("offset in the second", 0, 0);
    ctx.restore();
    // Each lane's name, over it.
    ctx.textAlign = "left";
    ctx.textBaseline = "bottom";
    maps.lanes.forEach(function (lane, l) {
      var top = L.lanesTop + l * L.laneH + geo.laneLabel;
      ctx.fillStyle = lane.thread === state.thread ? "#000" : "#333";
      ctx.font = (lane.thread === state.thread ? "bold " : "") + "11px sans-serif";
      ctx.fillText("thread " + D.threads[lane.thread] + " (" + withUnit(lane.weight) + ")", geo.left, top - 2);
    });
    if (maps.more) {
      ctx.font = "11px sans-serif";
      ctx.fillStyle = "#555";
      ctx.fillText(maps.more + " more threads without a lane: choose one in Thread", geo.left, L.height - 1);
    }
    drawLegend();
  }

  // What the colours mean, under the heatmap.
  function drawLegend() {
    var legend = $("legend");
    legend.textContent = "";
    var add = function (text, css) {
      var s = document.createElement("span");
      if (css) { s.className = "swatch"; s.style.setProperty("--swatch", css); }
      s.textContent = text;
      legend.appendChild(s);
      return s;
    };
    var rgb = function (cpu, off, max) {
      var px = [0, 0, 0, 0];
      colour(cpu, off, max, px, 0);
      return "rgb(" + Math.round(px[0]) + "," + Math.round(px[1]) + "," + Math.round(px[2]) + ")";
    };
    var perCell = state.view === "cpu" ? (ns ? " of CPU time" : "") : " of threads' time";
    if (state.view === "cpu") {
      var stops = [];
      for (var k = 0; k <= 10; k++) stops.push(rgb(k / 10 * k / 10 * 100, 0, 100));
      var scale = add("");
      scale.className = "scale";
      scale.style.background = "linear-gradient(to right, " + stops.join(", ") + ")";
      add("0 to " + withUnit(maps.max) + perCell + " per cell" +
        (maps.lanes.length ? "; lanes: 0 to " + withUnit(maps.laneMax) : "") + "; grey: none");
    } else {
      add("running", rgb(1, 0, 1));
      add("half and half", rgb(1, 1, 2));
      add("off the CPU (waiting, or preempted)", rgb(0, 1, 1));
      add("paler: less time (the darkest: " + withUnit(maps.max) + perCell + " in a cell" +
        (maps.lanes.length ? ", " + withUnit(maps.laneMax) + " in a lane's" : "") + "); grey: none");
    }
  }

  // The cell under a mouse event, and where: `lane` -1 is the heatmap, else
  // a lane's index. Below the heatmap's cells (its time axis) counts as its
  // last row, a lane's name as its first. `clampTo` (a drag's region) keeps
  // the point in that region; without it, null outside the cells.
  function cellAt(e, clampTo) {
    var r = heat.getBoundingClientRect(), L = layout();
    var x = e.clientX - r.left - geo.left, y = e.clientY - r.top;
    var lane = -1, top = geo.top, rowH = geo.rowH;
    if (clampTo === undefined) {
      if (y >= L.lanesTop) {
        lane = Math.floor((y - L.lanesTop) / L.laneH);
        if (lane >= maps.lanes.length) return null;
      }
    } else {
      lane = clampTo;
    }
    if (lane >= 0) {
      top = L.lanesTop + lane * L.laneH + geo.laneLabel;
      rowH = geo.laneRowH;
    }
    var col = Math.floor(x / geo.colW), row = Math.floor((y - top) / rowH);
    if (clampTo !== undefined) {
      col = Math.max(0, Math.min(nCols - 1, col));
    } else if (col < 0 || col >= nCols || (lane < 0 && y < top) || (lane >= 0 && row >= rows)) {
      return null;
    }
    row = Math.max(0, Math.min(rows - 1, row));
    return { cell: Math.min(col * rows + row, nCells - 1), lane: lane };
  }

  heat.addEventListener("mousedown", function (e) {
    if (e.button !== 0) return;
    var at = cellAt(e);
    if (!at) return;
    e.preventDefault();
    hideTip();
    var target = e.shiftKey ? "b" : state.target;
    drag = { a: at.cell, b: at.cell, lane: at.lane, target: target };
    drawHeatmap();
  });
  window.addEventListener("mousemove", function (e) {
    if (!drag) return;
    var at = cellAt(e, drag.lane);
    if (at.cell !== drag.b) { drag.b = at.cell; drawHeatmap(); }
  });
  window.addEventListener("mouseup", function (e) {
    if (!drag) return;
    var started = performance.now();
    var d = drag;
    drag = null;
    d.b = cellAt(e, d.lane).cell;
    if (d.a === d.b) {
      // A click: the whole second of that column.
      var col = Math.floor(d.a / rows);
      setRange(d.target, [col * rows, Math.min(col * rows + rows - 1, nCells - 1)]);
    } else {
      setRange(d.target, [Math.min(d.a, d.b), Math.max(d.a, d.b)]);
    }
    times.selection = performance.now() - started;
  });

  // ---- Hovering a cell -------------------------------------------------------
  var tip = $("tip");
  function hideTip() { tip.hidden = true; }

  // Where a wait was: its reason and the nearest frame above it that is not
  // the kernel's.
  function label(node) {
    if (!isOff[frame[node]]) return D.frames[frame[node]];
    var up = parent[node];
    while (up > 0 && isKernel[frame[up]]) up = parent[up];
    return D.frames[frame[node]] + (up > 0 ? " in " + D.frames[frame[up]] : "");
  }

  heat.addEventListener("mousemove", function (e) {
    if (drag) return;
    var at = cellAt(e);
    // The time axis selects the last row when clicked, but is no cell.
    var below = e.clientY - heat.getBoundingClientRect().top >= geo.top + rows * geo.rowH;
    if (!at || (at.lane < 0 && below)) { hideTip(); return; }
    var c = at.cell, thread = at.lane >= 0 ? maps.lanes[at.lane].thread : state.thread;
    var cpu = 0, off = 0, by = Object.create(null), best = null;
    for (var k = cellStart[c]; k < cellStart[c + 1]; k++) {
      var node = C[3 * k + 2], isWait = isOff[frame[node]];
      if ((thread >= 0 && C[3 * k + 1] !== thread) || (isWait && state.view === "cpu")) continue;
      if (isWait) off += W[k]; else cpu += W[k];
      var name = label(node);
      by[name] = (by[name] || 0) + W[k];
      if (best === null || by[name] > by[best] || (by[name] === by[best] && name < best)) best = name;
    }
    var lines = [
      (thread >= 0 ? "thread " + D.threads[thread] + ", " : "") + seconds(c) + " to " + seconds(c + 1) +
        " (second " + Math.floor(c / rows) + ", " + (c % rows) * cellMs + " ms in)",
      state.view === "cpu" ? withUnit(cpu) + (ns ? " on the CPU" : "")
        : "running " + withUnit(cpu) + ", off the CPU " + withUnit(off),
      best === null ? "nothing ran" : "top: " + best + " (" + pct(by[best], cpu + off) + " %)",
    ];
    tip.textContent = lines.join("\n");
    tip.setAttribute("data-cell", String(c));
    tip.setAttribute("data-thread", thread >= 0 ? D.threads[thread] : "");
    tip.setAttribute("data-cpu", String(cpu));
    tip.setAttribute("data-off", String(off));
    tip.setAttribute("data-top", best === null ? "" : best);
    tip.hidden = false;
    // Beside the pointer, inside the window.
    var x = e.clientX + 14, y = e.clientY + 14;
    if (x + tip.offsetWidth > window.innerWidth - 4) x = Math.max(4, e.clientX - tip.offsetWidth - 14);
    if (y + tip.offsetHeight > window.innerHeight - 4) y = Math.max(4, e.clientY - tip.offsetHeight - 14);
    tip.style.left = x + "px";
    tip.style.top = y + "px";
  });
  heat.addEventListener("mouseleave", hideTip);

  // ---- Ranges ----------------------------------------------------------------
  function setRange(which, r) {
    state[which] = r;
    state.focus = 0;
    changed();
  }

  // The state changed: everything is drawn again, and the URL says it.
  function changed() {
    var body = document.body;
    body.setAttribute("data-sel", state.a ? state.a.join(",") : "");
    body.setAttribute("data-sel-b", state.b ? state.b.join(",") : "");
    $("range-a").textContent = state.a ? span(state.a) : "none (the whole run)";
    $("range-b").textContent = state.b ? span(state.b) : "none";
    $("clear-b").hidden = !state.b;
    var filter = state.thread >= 0 ? ", thread " + D.threads[state.thread] : "";
    var what;
    if (diffing()) {
      what = "B (" + span(state.b) + ") against A (" + span(state.a) + ")";
    } else {
      what = state.a ? span(state.a) : state.b ? "B, " + span(state.b) : "the whole run";
    }
    $("flame-what").textContent = what;
    $("summary-what").textContent = what + filter;
    $("view-cpu").checked = state.view === "cpu";
    $("view-wall").checked = state.view === "wall";
    $("target-a").checked = state.target === "a";
    $("target-b").checked = state.target === "b";
    drawHeatmap();
    refresh();
    writeHash();
  }

  // ---- The URL ---------------------------------------------------------------
  // `#a=FIRST-LAST&b=FIRST-LAST&thread=NAME&view=cpu|wall&shape=a`: cells,
  // so that a link opens the same ranges, thread and view.
  function hashOf() {
    var parts = [];
    if (state.a) parts.push("a=" + state.a.join("-"));
    if (state.b) parts.push("b=" + state.b.join("-"));
    if (state.thread >= 0) parts.push("thread=" + encodeURIComponent(D.threads[state.thread]));
    if (hasWaits) parts.push("view=" + state.view);
    if (state.shape === "a") parts.push("shape=a");
    return parts.join("&");
  }

  function writeHash() {
    var h = hashOf();
    if (location.hash.replace(/^#/, "") === h) return;
    var url = location.href.replace(/#.*$/, "") + (h ? "#" + h : "");
    try {
      history.replaceState(null, "", url);
    } catch (err) {
      location.hash = h;
    }
  }

  // The state of `hash`; what it does not say is the default.
  function readHash(hash) {
    var s = { a: null, b: null, thread: -1, view: hasWaits ? "wall" : "cpu", shape: "b" };
    hash.replace(/^#/, "").split("&").forEach(function (part) {
      var eq = part.indexOf("="), key = part.slice(0, eq), value = part.slice(eq + 1);
      if (eq < 0) return;
      var range = /^(\d+)-(\d+)$/.exec(value);
      if ((key === "a" || key === "b") && range && hasTimeline) {
        var x = Math.min(+range[1], nCells - 1), y = Math.min(+range[2], nCells - 1);
        s[key] = [Math.min(x, y), Math.max(x, y)];
      } else if (key === "thread") {
        var name;
        try { name = decodeURIComponent(value); } catch (err) { name = value; }
        if (name in threadIds) s.thread = threadIds[name];
      } else if (key === "view" && (value === "cpu" || value === "wall") && hasWaits) {
        s.view = value;
      } else if (key === "shape" && value === "a") {
        s.shape = "a";
      }
    });
    return s;
  }

  function applyHash() {
    var s = readHash(location.hash);
    var maps0 = s.thread !== state.thread || s.view !== state.view;
    state.a = s.a;
    state.b = s.b;
    state.thread = s.thread;
    state.view = s.view;
    state.shape = s.shape;
    state.focus = 0;
    if (maps0) maps = null;
    threadSelect.value = String(state.thread);
    $("shape").value = state.shape;
  }
  window.addEventListener("hashchange", function () {
    if (location.hash.replace(/^#/, "") === hashOf()) return;
    applyHash();
    changed();
  });

  // ---- The flamegraph ------------------------------------------------------
  var flame = $("flame");
  var FRAME_H = 17;
  var rects = [];
  var matches = null; // Uint8Array per frame, or null without a search

  function hue(name) {
    var h = 0;
    for (var k = 0; k < name.length && k < 40; k++) h = (h * 31 + name.charCodeAt(k)) >>> 0;
    var v1 = (h & 0xff) / 255, v2 = ((h >>> 8) & 0xff) / 255;
    if (name.lastIndexOf("[off-cpu", 0) === 0) {
      // Waiting in blue, as the SVG draws it.
      return "rgb(" + Math.round(70 + 40 * v1) + "," + Math.round(120 + 50 * v2) + ",235)";
    }
    return "rgb(" + Math.round(205 + 50 * v1) + "," + Math.round(80 + 150 * v2) + "," + Math.round(40 + 30 * v1) + ")";
  }

  // Share of each range's total, B's minus A's, in points.
  function change(node) {
    var A = state.other.total, B = state.shown.total;
    if (state.shape === "a") { var t = A; A = B; B = t; }
    var a = A[0] > 0 ? A[node] / A[0] : 0, b = B[0] > 0 ? B[node] / B[0] : 0;
    return (b - a) * 100;
  }

  // Red: a larger share of B than of A; blue: smaller; the deeper, the larger
  // the change, up to `scale` points.
  function diffColour(d, scale) {
    var x = Math.min(Math.abs(d) / scale, 1), v = Math.round(235 - 190 * x);
    if (Math.abs(d) < 1e-9) return "rgb(235,235,235)";
    return d > 0 ? "rgb(255," + v + "," + v + ")" : "rgb(" + v + "," + v + ",255)";
  }

  function drawFlame() {
    var total = state.shown.total;
    var W0 = flame.clientWidth || 800;
    var f = state.focus;
    var maxDepth = 0, k;
    for (k = 0; k < nNodes; k++) if (total[k] > 0 && depth[k] > maxDepth) maxDepth = depth[k];
    var H = (maxDepth + 1) * FRAME_H + 2;
    var ctx = setSize(flame, W0, H);
    flame.style.width = "100%";
    ctx.clearRect(0, 0, W0, H);
    ctx.font = "11px Menlo, Consolas, monospace";
    ctx.textBaseline = "middle";
    var charW = ctx.measureText("m").width || 7;
    rects = [];
    var diff = diffing(), scale = 1e-9;
    if (diff) {
      for (k = 1; k < nNodes; k++) if (total[k] > 0) scale = Math.max(scale, Math.abs(change(k)));
    }
    var scaleW = total[f] > 0 ? W0 / total[f] : 0;
    function box(node, x, w) {
      // An icicle: the root at the top, right under the controls.
      var y = depth[node] * FRAME_H;
      var name = node === 0 ? "all" : D.frames[frame[node]];
      ctx.fillStyle = matches && node > 0 && matches[frame[node]] ? "rgb(230,0,230)"
        : node === 0 ? "rgb(220,220,220)" : diff ? diffColour(change(node), scale) : hue(name);
      ctx.fillRect(x, y, Math.max(w - 0.5, 0.5), FRAME_H - 1);
      rects.push([x, y, w, node]);
      if (w > 3 * charW) {
        var fit = Math.floor((w - 6) / charW);
        ctx.fillStyle = "#000";
        ctx.fillText(name.length > fit ? name.slice(0, Math.max(fit - 2, 1)) + ".." : name, x + 3, y + FRAME_H / 2);
      }
    }
    // Ancestors of the focus span the width.
    for (k = parent[f]; k >= 0; k = parent[k]) box(k, 0, W0);
    var todo = [f, 0];
    while (todo.length) {
      var x = todo.pop(), node = todo.pop();
      var w = total[node] * scaleW;
      if (w < 0.3) continue;
      box(node, x, w);
      var cx = x;
      for (k = childStart[node]; k < childStart[node + 1]; k++) {
        var c = children[k];
        if (total[c] > 0) { todo.push(c, cx); cx += total[c] * scaleW; }
      }
    }
    $("unzoom").disabled = f === 0;
    flame.setAttribute("data-focus", f === 0 ? "all" : D.frames[frame[f]]);
    $("flame-total").textContent = amount(total[0]);
    $("flame-unit").textContent = " " + unitName;
    flame.setAttribute("data-total", String(total[0]));
    var note = $("diff-note");
    note.hidden = !diff;
    $("shape-control").hidden = !diff;
    if (diff) {
      var A = state.shape === "a" ? total : state.other.total, B = state.shape === "a" ? state.other.total : total;
      note.textContent = "Differential flamegraph: widths are " + (state.shape === "a" ? "A's" : "B's") +
        "; each frame's share of its range's total (A: " + withUnit(A[0]) + ", B: " + withUnit(B[0]) +
        ") is compared, so ranges of different lengths compare fairly. Red: a larger share of B than of A; " +
        "blue: a smaller one; white: the same. The deepest colour is a change of " + scale.toFixed(1) + " points.";
    }
  }

  function nodeAt(e) {
    var r = flame.getBoundingClientRect();
    var x = e.clientX - r.left, y = e.clientY - r.top;
    for (var k = rects.length - 1; k >= 0; k--) {
      var q = rects[k];
      if (x >= q[0] && x < q[0] + q[2] && y >= q[1] && y < q[1] + FRAME_H) return q[3];
    }
    return -1;
  }

  function describe(node) {
    var name = node === 0 ? "all" : D.frames[frame[node]];
    var t = state.shown.total[node], all = state.shown.total[0];
    if (!diffing()) {
      return name + " — " + withUnit(t) + " (" + pct(t, all) + " %), self " + amount(state.shown.self[node]);
    }
    var A = state.shape === "a" ? state.shown.total : state.other.total;
    var B = state.shape === "a" ? state.other.total : state.shown.total;
    var d = change(node);
    return name + " — A: " + pct(A[node], A[0]) + " % (" + withUnit(A[node]) + "), B: " + pct(B[node], B[0]) +
      " % (" + withUnit(B[node]) + "), " + (d >= 0 ? "+" : "−") + Math.abs(d).toFixed(1) + " points";
  }

  flame.addEventListener("mousemove", function (e) {
    var n = nodeAt(e);
    $("details").textContent = n >= 0 ? describe(n) : "\u00a0";
  });
  flame.addEventListener("click", function (e) {
    var n = nodeAt(e);
    if (n < 0) return;
    state.focus = n;
    drawFlame();
  });
  $("unzoom").addEventListener("click", function () { state.focus = 0; drawFlame(); });

  // ---- Search --------------------------------------------------------------
  function runSearch() {
    var term = $("search").value;
    if (!term) {
      matches = null;
      $("matched").textContent = "";
      $("matched").removeAttribute("data-samples");
      return;
    }
    var re;
    try { re = new RegExp(term); } catch (err) {
      re = new RegExp(term.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
    }
    matches = new Uint8Array(D.frames.length);
    for (var k = 0; k < D.frames.length; k++) matches[k] = re.test(D.frames[k]) ? 1 : 0;
    // Weight under a matching frame, each once (not again under a nested match).
    var under = new Uint8Array(nNodes), sum = 0, other = 0, total = state.shown.total;
    var totalOther = state.other ? state.other.total : null;
    for (k = 1; k < nNodes; k++) {
      var m = matches[frame[k]];
      if (m && !under[parent[k]]) {
        sum += total[k];
        if (totalOther) other += totalOther[k];
      }
      under[k] = under[parent[k]] || m;
    }
    var el = $("matched");
    var text = "Matched: " + pct(sum, total[0]) + " % (" + withUnit(sum) + ")";
    if (totalOther) {
      var shown = state.shape === "a" ? "A" : "B", hidden = state.shape === "a" ? "B" : "A";
      text = "Matched: " + pct(sum, total[0]) + " % of " + shown + " (" + withUnit(sum) + "), " +
        pct(other, totalOther[0]) + " % of " + hidden + " (" + withUnit(other) + ")";
    }
    el.textContent = text;
    el.setAttribute("data-samples", String(sum));
  }
  $("search").addEventListener("input", function () { runSearch(); drawFlame(); });
  document.addEventListener("keydown", function (e) {
    var inSearch = document.activeElement === $("search");
    // Ctrl+F, Cmd+F or `/` go to the search box, as in flamegraph.svg.
    var find = (e.ctrlKey || e.metaKey) && (e.key === "f" || e.key === "F");
    if (find || (e.key === "/" && !inSearch)) {
      e.preventDefault();
      $("search").focus();
      $("search").select();
    } else if (e.key === "Escape" && !inSearch) {
      // Escape drops a drag under way, else both ranges.
      if (drag) {
        drag = null;
        drawHeatmap();
      } else if (state.a || state.b || state.focus) {
        state.a = state.b = null;
        state.focus = 0;
        changed();
      }
      hideTip();
    }
  });

  // ---- Summary -------------------------------------------------------------
  // Frames in (nearly) every sample of a thread over the whole run say
  // nothing about a range: `main`, `std::rt::lang_start`, thread roots.
  // Judged on the whole run (with the thread and view chosen), never on the
  // range alone, where the function that did the work can be in all of it.
  var wrapperCache = { key: null, flags: null };
  function wrappers() {
    var cacheKey = state.thread + " " + state.view;
    if (wrapperCache.key === cacheKey) return wrapperCache.flags;
    var total = count(null).total, totalBy = new Float64Array(D.frames.length), k;
    // Per (frame, thread): the weight under the frame on that thread.
    var onThread = new Map();
    for (k = 1; k < nNodes; k++) {
      if (nested[k] || total[k] <= 0) continue;
      totalBy[frame[k]] += total[k];
      var key = frame[k] * nNodes + threadNode[k];
      onThread.set(key, (onThread.get(key) || 0) + total[k]);
    }
    // Their weight on such threads, per frame:
    var asWrapper = new Float64Array(D.frames.length);
    onThread.forEach(function (w, key) {
      if (w >= WRAPPER_SHARE * total[key % nNodes]) asWrapper[Math.floor(key / nNodes)] += w;
    });
    var flags = new Uint8Array(D.frames.length);
    for (k = 0; k < D.frames.length; k++) {
      flags[k] = totalBy[k] > 0 && asWrapper[k] >= WRAPPER_SHARE * totalBy[k] ? 1 : 0;
    }
    wrapperCache = { key: cacheKey, flags: flags };
    return flags;
  }

  function summarise() {
    var self = state.shown.self, total = state.shown.total, all = total[0];
    var selfBy = new Float64Array(D.frames.length), totalBy = new Float64Array(D.frames.length);
    var done = 0, off = 0, k;
    for (k = 1; k < nNodes; k++) {
      selfBy[frame[k]] += self[k];
      if (isOff[frame[k]]) off += self[k];
      if (complete[k]) done += self[k];
      if (nested[k] || total[k] <= 0) continue;
      totalBy[frame[k]] += total[k];
    }
    var wrapper = wrappers();
    var rowsOf = [];
    if (diffing()) {
      var A = state.shape === "a" ? state.shown : state.other, B = state.shape === "a" ? state.other : state.shown;
      rowsOf.push(["range A", span(state.a) + ", " + withUnit(A.total[0])]);
      rowsOf.push(["range B", span(state.b) + ", " + withUnit(B.total[0])]);
      rowsOf.push(["flamegraph, tables", "of " + (state.shape === "a" ? "A" : "B")]);
    }
    rowsOf.push([ns ? "time" : "samples", ns ? withUnit(all) : String(all)]);
    if (ns) rowsOf.push(["off the CPU", withUnit(off) + " (" + pct(off, all) + " %)"]);
    rowsOf.push(["complete stacks (reach the start of their thread)", pct(done, all) + " %"]);
    if (hasTimeline) {
      var r = state.shownRange;
      var spanMs = r ? (r[1] - r[0] + 1) * cellMs : nCells * cellMs;
      rowsOf.push(["time span", (spanMs / 1000).toFixed(2) + " s"]);
      rowsOf.push(["thread", state.thread >= 0 ? D.threads[state.thread] : "all " + D.threads.length]);
      if (hasWaits) rowsOf.push(["view", state.view === "cpu" ? "CPU time" : "wall time (on and off the CPU)"]);
    }
    var body = $("summary").tBodies[0];
    body.textContent = "";
    rowsOf.forEach(function (row) {
      var tr = body.insertRow();
      tr.insertCell().textContent = row[0];
      tr.insertCell().textContent = row[1];
    });
    top($("top-self"), selfBy, all, null);
    var hidden = top($("top-total"), totalBy, all, wrapper);
    var note = $("wrappers");
    note.textContent = hidden.length
      ? "Not listed: " + hidden.length + " frames in at least " + WRAPPER_SHARE * 100 + " % of the " + unitName +
        " of their threads over the whole run (" + hidden.slice(0, 4).join(", ") + (hidden.length > 4 ? ", …" : "") + ")."
      : "";
    note.title = hidden.join("\n");
    diffTable();
  }

  // The ten largest of `by`; frames `skip` marks with 1 are left out and
  // returned, largest first.
  function top(table, by, all, skip) {
    var ids = [], hidden = [];
    for (var k = 0; k < by.length; k++) {
      if (by[k] <= 0) continue;
      if (skip && skip[k] === 1) hidden.push(k); else ids.push(k);
    }
    var order = function (a, b) { return by[b] - by[a] || byFrameName(a, b); };
    ids.sort(order);
    hidden.sort(order);
    table.tHead.rows[0].cells[1].textContent = unitName;
    var body = table.tBodies[0];
    body.textContent = "";
    ids.slice(0, 10).forEach(function (id) {
      var tr = body.insertRow();
      tr.insertCell().textContent = pct(by[id], all);
      tr.insertCell().textContent = amount(by[id]);
      tr.insertCell().textContent = D.frames[id];
    });
    return hidden.map(function (id) { return D.frames[id]; });
  }
  function byFrameName(a, b) { return D.frames[a] < D.frames[b] ? -1 : D.frames[a] > D.frames[b] ? 1 : 0; }

  // With two ranges: the frames whose share of the total changed most.
  function diffTable() {
    var table = $("top-diff");
    table.hidden = !diffing();
    if (!diffing()) return;
    var A = state.shape === "a" ? state.shown.total : state.other.total;
    var B = state.shape === "a" ? state.other.total : state.shown.total;
    var a = new Float64Array(D.frames.length), b = new Float64Array(D.frames.length), k;
    for (k = 1; k < nNodes; k++) {
      if (nested[k]) continue;
      a[frame[k]] += A[k];
      b[frame[k]] += B[k];
    }
    var share = function (x, all) { return all > 0 ? x * 100 / all : 0; };
    var ids = [];
    for (k = 0; k < D.frames.length; k++) if (a[k] > 0 || b[k] > 0) ids.push(k);
    var delta = function (id) { return share(b[id], B[0]) - share(a[id], A[0]); };
    ids.sort(function (x, y) { return Math.abs(delta(y)) - Math.abs(delta(x)) || byFrameName(x, y); });
    var body = table.tBodies[0];
    body.textContent = "";
    ids.slice(0, 10).forEach(function (id) {
      var tr = body.insertRow(), d = delta(id);
      tr.setAttribute("data-frame", D.frames[id]);
      tr.setAttribute("data-a", String(a[id]));
      tr.setAttribute("data-b", String(b[id]));
      tr.insertCell().textContent = (d >= 0 ? "+" : "−") + Math.abs(d).toFixed(1);
      tr.insertCell().textContent = pct(a[id], A[0]);
      tr.insertCell().textContent = pct(b[id], B[0]);
      var name = tr.insertCell();
      name.textContent = D.frames[id];
      name.style.background = diffColour(d, 100);
    });
    table.setAttribute("data-a-total", String(A[0]));
    table.setAttribute("data-b-total", String(B[0]));
  }

  // ---- Threads, view, ranges -------------------------------------------------
  var threadSelect = $("thread");
  if (hasTimeline) {
    var threadWeight = new Float64Array(D.threads.length);
    for (i = 0; i < nEntries; i++) threadWeight[C[3 * i + 1]] += W[i];
    var order = D.threads.map(function (_, k) { return k; });
    order.sort(function (a, b) { return threadWeight[b] - threadWeight[a]; });
    order.forEach(function (k) {
      var o = document.createElement("option");
      o.value = String(k);
      o.textContent = D.threads[k] + " (" + withUnit(threadWeight[k]) + ")";
      threadSelect.appendChild(o);
    });
    threadSelect.addEventListener("change", function () {
      state.thread = parseInt(threadSelect.value, 10);
      maps = null;
      state.focus = 0;
      changed();
    });
  } else {
    threadSelect.disabled = true;
    $("no-timeline").hidden = false;
    $("heat-help").hidden = true;
    $("ranges").hidden = true;
    heat.hidden = true;
  }
  $("view").hidden = !hasWaits;
  ["cpu", "wall"].forEach(function (v) {
    $("view-" + v).addEventListener("change", function () {
      state.view = v;
      maps = null;
      changed();
    });
  });
  ["a", "b"].forEach(function (t) {
    $("target-" + t).addEventListener("change", function () { state.target = t; });
  });
  $("clear-b").addEventListener("click", function () { setRange("b", null); });
  $("shape").addEventListener("change", function () {
    state.shape = $("shape").value === "a" ? "a" : "b";
    changed();
  });
  $("reset").addEventListener("click", function () {
    state.a = state.b = null;
    state.focus = 0;
    changed();
  });
  $("reset").disabled = !hasTimeline;

  function refresh() {
    var main = state.a, second = null;
    if (diffing()) {
      main = state.shape === "a" ? state.a : state.b;
      second = state.shape === "a" ? state.b : state.a;
    } else if (state.b && !state.a) {
      main = state.b;
    }
    state.shownRange = main;
    state.shown = count(main);
    state.other = second ? count(second) : null;
    if (!(state.shown.total[state.focus] > 0)) state.focus = 0;
    runSearch();
    drawFlame();
    summarise();
  }

  // ---- Start ---------------------------------------------------------------
  $("title").textContent = D.title;
  $("subtitle").textContent = D.subtitle;
  D.warnings.forEach(function (w) {
    var li = document.createElement("li");
    li.textContent = w;
    $("warnings").appendChild(li);
  });
  applyHash();
  changed(); // draws the heatmap, the flamegraph and the summary
  times.heatmap = performance.now();
  document.body.setAttribute("data-ready", "1");
  var resized = null;
  window.addEventListener("resize", function () {
    clearTimeout(resized);
    resized = setTimeout(function () { drawHeatmap(); drawFlame(); }, 100);
  });

  // What tests and benches read: timings, and where the cells are drawn.
  window.report = {
    times: times,
    geometry: function () {
      var r = heat.getBoundingClientRect(), L = maps ? layout() : null;
      return {
        x: r.left + geo.left, y: r.top + geo.top, colW: geo.colW, rowH: geo.rowH, cols: nCols, rows: rows, cells: nCells,
        laneRowH: geo.laneRowH,
        lanes: maps ? maps.lanes.map(function (lane, l) {
          return { thread: D.threads[lane.thread], y: r.top + L.lanesTop + l * L.laneH + geo.laneLabel };
        }) : [],
      };
    },
  };
})();
