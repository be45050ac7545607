// report.html's script: the heatmap, the flamegraph of a selection, the
// thread filter, search and the summary. Everything is computed here from
// the embedded data (see report.rs for its layout); nothing is fetched.
(function () {
  "use strict";

  var D = JSON.parse(document.getElementById("data").textContent);
  var $ = function (id) { return document.getElementById(id); };

  // ---- The tree of stacks --------------------------------------------------
  var nNodes = D.nodes.length / 2;
  var parent = new Int32Array(nNodes);
  var frame = new Int32Array(nNodes);
  var depth = new Int32Array(nNodes);
  var complete = new Uint8Array(nNodes); // a thread root on the way from the root
  var nested = new Uint8Array(nNodes); // its frame is also an ancestor's (recursion)
  var isRoot = new Uint8Array(D.frames.length);
  D.roots.forEach(function (f) { isRoot[f] = 1; });
  parent[0] = -1;
  frame[0] = -1;
  var i, j;
  for (i = 1; i < nNodes; i++) {
    parent[i] = D.nodes[2 * i];
    frame[i] = D.nodes[2 * i + 1];
    depth[i] = depth[parent[i]] + 1;
    complete[i] = complete[parent[i]] || isRoot[frame[i]];
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
  // [cell, thread, node, samples] per entry; cells come as differences.
  var C = new Int32Array(D.cells);
  D.cells = null;
  for (i = 4; i < C.length; i += 4) C[i] += C[i - 4];
  var hasTimeline = C.length > 0;
  var rows = D.rows, cellMs = D.cell_ms;
  var nCells = hasTimeline ? C[C.length - 4] + 1 : 0;
  var nCols = Math.ceil(nCells / rows);
  var cellStart = new Int32Array(nCells + 1); // entries of cell k: [cellStart[k], cellStart[k+1])
  for (i = 0; i < C.length; i += 4) cellStart[C[i] + 1]++;
  for (i = 0; i < nCells; i++) cellStart[i + 1] += cellStart[i];
  var threadSamples = new Float64Array(D.threads.length);
  for (i = 0; i < C.length; i += 4) threadSamples[C[i + 1]] += C[i + 3];

  var state = { thread: -1, sel: null, focus: 0, search: null, self: null, total: null };
  var times = { heatmap: null, selection: null };

  // ---- Counting a selection ------------------------------------------------
  function count() {
    var self = new Float64Array(nNodes);
    var k;
    if (!hasTimeline) {
      for (k = 0; k < D.whole.length; k += 2) self[D.whole[k]] += D.whole[k + 1];
    } else {
      var a = state.sel ? state.sel[0] : 0, b = state.sel ? state.sel[1] : nCells - 1;
      var end = cellStart[Math.min(b, nCells - 1) + 1];
      for (k = cellStart[Math.max(a, 0)] * 4; k < end * 4; k += 4) {
        if (state.thread < 0 || C[k + 1] === state.thread) self[C[k + 2]] += C[k + 3];
      }
    }
    var total = self.slice();
    for (k = nNodes - 1; k > 0; k--) total[parent[k]] += total[k];
    state.self = self;
    state.total = total;
  }

  function cellTotals() {
    var t = new Float64Array(nCols * rows);
    for (var k = 0; k < C.length; k += 4) {
      if (state.thread < 0 || C[k + 1] === state.thread) t[C[k]] += C[k + 3];
    }
    return t;
  }

  // ---- The heatmap ---------------------------------------------------------
  var heat = $("heatmap");
  var geo = { left: 56, top: 8, colW: 10, rowH: 6, bottom: 40 };
  var totals = null;
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

  // A cell's colour into `px` at `i` (RGBA): light grey when empty, then
  // from light yellow to dark red.
  function colour(v, max, px, i) {
    if (v <= 0) {
      px[i] = px[i + 1] = px[i + 2] = 244;
    } else {
      var x = Math.sqrt(v / max); // low counts stay visible
      px[i] = 255 - 75 * x;
      px[i + 1] = 235 - 235 * x;
      px[i + 2] = 190 - 190 * x;
    }
    px[i + 3] = 255;
  }

  function drawHeatmap() {
    if (!hasTimeline) return;
    if (!totals) totals = cellTotals();
    var avail = Math.max(document.documentElement.clientWidth - 40 - geo.left - 16, 200);
    geo.colW = Math.max(3, Math.min(48, Math.floor(avail / nCols)));
    var w = Math.max(geo.left + nCols * geo.colW + 16, geo.left + 340), h = geo.top + rows * geo.rowH + geo.bottom;
    var ctx = setSize(heat, w, h);
    ctx.clearRect(0, 0, w, h);
    var max = 0, k;
    for (k = 0; k < totals.length; k++) if (totals[k] > max) max = totals[k];
    // A pixel per cell, scaled up: one drawImage, not a fillRect per cell.
    var off = document.createElement("canvas");
    off.width = nCols;
    off.height = rows;
    var octx = off.getContext("2d");
    var img = octx.createImageData(nCols, rows);
    var px = img.data;
    for (k = 0; k < nCols * rows; k++) {
      var i = ((k % rows) * nCols + Math.floor(k / rows)) * 4;
      if (k < nCells) {
        colour(totals[k], max, px, i);
      } else {
        px[i] = px[i + 1] = px[i + 2] = px[i + 3] = 255;
      }
    }
    octx.putImageData(img, 0, 0);
    ctx.imageSmoothingEnabled = false;
    var W = nCols * geo.colW, H = rows * geo.rowH;
    ctx.drawImage(off, geo.left, geo.top, W, H);
    // The grid: a white line under each row, and after each column if wide.
    ctx.fillStyle = "#fff";
    for (k = 1; k <= rows; k++) ctx.fillRect(geo.left, geo.top + k * geo.rowH - 1, W, 1);
    if (geo.colW > 4) {
      for (k = 1; k <= nCols; k++) ctx.fillRect(geo.left + k * geo.colW - 1, geo.top, 1, H);
    }
    var sel = drag ? [Math.min(drag.a, drag.b), Math.max(drag.a, drag.b)] : state.sel;
    if (sel) {
      ctx.fillStyle = "rgba(30, 90, 220, 0.45)";
      var ca = Math.floor(sel[0] / rows), cb = Math.floor(sel[1] / rows);
      var cells = function (col, r0, r1, cols) {
        ctx.fillRect(geo.left + col * geo.colW, geo.top + r0 * geo.rowH, cols * geo.colW, (r1 - r0 + 1) * geo.rowH);
      };
      if (ca === cb) {
        cells(ca, sel[0] % rows, sel[1] % rows, 1);
      } else {
        cells(ca, sel[0] % rows, rows - 1, 1);
        if (cb - ca > 1) cells(ca + 1, 0, rows - 1, cb - ca - 1);
        cells(cb, 0, sel[1] % rows, 1);
      }
    }
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
    var nice = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];
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
  }

  // The cell under a mouse event; below the cells (the time axis) counts as
  // the last row, so a click there selects the column too.
  function cellAt(e, clamp) {
    var r = heat.getBoundingClientRect();
    var x = e.clientX - r.left - geo.left, y = e.clientY - r.top - geo.top;
    var col = Math.floor(x / geo.colW), row = Math.floor(y / geo.rowH);
    if (clamp) {
      col = Math.max(0, Math.min(nCols - 1, col));
      row = Math.max(0, Math.min(rows - 1, row));
    } else if (col < 0 || col >= nCols || row < 0 || y > rows * geo.rowH + geo.bottom) {
      return -1;
    }
    row = Math.max(0, Math.min(rows - 1, row));
    return Math.min(col * rows + row, nCells - 1);
  }

  heat.addEventListener("mousedown", function (e) {
    if (e.button !== 0) return;
    var c = cellAt(e, false);
    if (c < 0) return;
    e.preventDefault();
    drag = { a: c, b: c, moved: false };
    drawHeatmap();
  });
  window.addEventListener("mousemove", function (e) {
    if (!drag) return;
    var c = cellAt(e, true);
    if (c !== drag.b) { drag.b = c; drag.moved = true; drawHeatmap(); }
  });
  window.addEventListener("mouseup", function (e) {
    if (!drag) return;
    var started = performance.now();
    var d = drag;
    drag = null;
    var c = cellAt(e, true);
    if (c !== d.b) { d.b = c; d.moved = d.moved || c !== d.a; }
    if (d.a === d.b) {
      // A click: the whole second of that column.
      var col = Math.floor(d.a / rows);
      select(col * rows, Math.min(col * rows + rows - 1, nCells - 1));
    } else {
      select(Math.min(d.a, d.b), Math.max(d.a, d.b));
    }
    times.selection = performance.now() - started;
  });

  function select(a, b) {
    state.sel = a === null ? null : [a, b];
    state.focus = 0;
    document.body.setAttribute("data-sel", state.sel ? state.sel.join(",") : "");
    var what;
    if (!state.sel) {
      what = "the whole run";
      $("selection").textContent = "";
    } else {
      what = (a * cellMs / 1000).toFixed(2) + " s to " + ((b + 1) * cellMs / 1000).toFixed(2) + " s";
      $("selection").textContent = "Selected " + what + " (" + (b - a + 1) + " cells of " + cellMs + " ms)";
    }
    $("flame-what").textContent = what;
    $("summary-what").textContent = what + (state.thread >= 0 ? ", thread " + D.threads[state.thread] : "");
    drawHeatmap();
    refresh();
  }

  // ---- The flamegraph ------------------------------------------------------
  var flame = $("flame");
  var FRAME_H = 17;
  var rects = [];
  var matches = null; // Uint8Array per frame, or null without a search

  function hue(name) {
    var h = 0;
    for (var k = 0; k < name.length && k < 40; k++) h = (h * 31 + name.charCodeAt(k)) >>> 0;
    var v1 = (h & 0xff) / 255, v2 = ((h >>> 8) & 0xff) / 255;
    return "rgb(" + Math.round(205 + 50 * v1) + "," + Math.round(80 + 150 * v2) + "," + Math.round(40 + 30 * v1) + ")";
  }

  function drawFlame() {
    var total = state.total;
    var W = flame.clientWidth || 800;
    var f = state.focus;
    var maxDepth = 0, k;
    for (k = 0; k < nNodes; k++) if (total[k] > 0 && depth[k] > maxDepth) maxDepth = depth[k];
    var H = (maxDepth + 1) * FRAME_H + 2;
    var ctx = setSize(flame, W, H);
    flame.style.width = "100%";
    ctx.clearRect(0, 0, W, H);
    ctx.font = "11px Menlo, Consolas, monospace";
    ctx.textBaseline = "middle";
    var charW = ctx.measureText("m").width || 7;
    rects = [];
    var scale = total[f] > 0 ? W / total[f] : 0;
    function box(node, x, w) {
      // An icicle: the root at the top, right under the controls.
      var y = depth[node] * FRAME_H;
      var name = node === 0 ? "all" : D.frames[frame[node]];
      ctx.fillStyle = matches && node > 0 && matches[frame[node]] ? "rgb(230,0,230)" : node === 0 ? "rgb(220,220,220)" : hue(name);
      ctx.fillRect(x, y, Math.max(w - 0.5, 0.5), FRAME_H - 1);
      rects.push([x, y, w, node]);
      if (w > 3 * charW) {
        var fit = Math.floor((w - 6) / charW);
        ctx.fillStyle = "#000";
        ctx.fillText(name.length > fit ? name.slice(0, Math.max(fit - 2, 1)) + ".." : name, x + 3, y + FRAME_H / 2);
      }
    }
    // Ancestors of the focus span the width.
    for (k = parent[f]; k >= 0; k = parent[k]) box(k, 0, W);
    var todo = [f, 0];
    while (todo.length) {
      var x = todo.pop(), node = todo.pop();
      var w = total[node] * scale;
      if (w < 0.3) continue;
      box(node, x, w);
      var cx = x;
      for (k = childStart[node]; k < childStart[node + 1]; k++) {
        var c = children[k];
        if (total[c] > 0) { todo.push(c, cx); cx += total[c] * scale; }
      }
    }
    $("unzoom").disabled = f === 0;
    flame.setAttribute("data-focus", f === 0 ? "all" : D.frames[frame[f]]);
    $("flame-total").textContent = String(total[0]);
    flame.setAttribute("data-total", String(total[0]));
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
    var t = state.total[node], all = state.total[0];
    return name + " — " + t + " samples (" + pct(t, all) + " %), self " + state.self[node];
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
    // Samples under a matching frame, each once (not again under a nested match).
    var under = new Uint8Array(nNodes), sum = 0, total = state.total;
    for (k = 1; k < nNodes; k++) {
      var m = matches[frame[k]];
      if (m && !under[parent[k]]) sum += total[k];
      under[k] = under[parent[k]] || m;
    }
    var el = $("matched");
    el.textContent = "Matched: " + pct(sum, total[0]) + " % (" + sum + " samples)";
    el.setAttribute("data-samples", String(sum));
  }
  $("search").addEventListener("input", function () { runSearch(); drawFlame(); });
  // Ctrl+F, Cmd+F or `/` go to the search box, as in flamegraph.svg.
  document.addEventListener("keydown", function (e) {
    var find = (e.ctrlKey || e.metaKey) && (e.key === "f" || e.key === "F");
    if (find || (e.key === "/" && document.activeElement !== $("search"))) {
      e.preventDefault();
      $("search").focus();
      $("search").select();
    }
  });

  // ---- Summary -------------------------------------------------------------
  function pct(part, whole) { return whole > 0 ? (part * 100 / whole).toFixed(1) : "0.0"; }

  function summarise() {
    var self = state.self, total = state.total, all = total[0];
    var selfBy = new Float64Array(D.frames.length), totalBy = new Float64Array(D.frames.length);
    var done = 0;
    for (var k = 1; k < nNodes; k++) {
      selfBy[frame[k]] += self[k];
      if (!nested[k]) totalBy[frame[k]] += total[k];
      if (complete[k]) done += self[k];
    }
    var rowsOf = [
      ["samples", String(all)],
      ["complete stacks (reach the start of their thread)", pct(done, all) + " %"],
    ];
    if (hasTimeline) {
      var span = state.sel ? (state.sel[1] - state.sel[0] + 1) * cellMs : nCells * cellMs;
      rowsOf.push(["time span", (span / 1000).toFixed(2) + " s"]);
      rowsOf.push(["thread", state.thread >= 0 ? D.threads[state.thread] : "all " + D.threads.length]);
    }
    var body = $("summary").tBodies[0];
    body.textContent = "";
    rowsOf.forEach(function (r) {
      var tr = body.insertRow();
      tr.insertCell().textContent = r[0];
      tr.insertCell().textContent = r[1];
    });
    top($("top-self"), selfBy, all);
    top($("top-total"), totalBy, all);
  }

  function top(table, by, all) {
    var ids = [];
    for (var k = 0; k < by.length; k++) if (by[k] > 0) ids.push(k);
    ids.sort(function (a, b) { return by[b] - by[a] || byFrameName(a, b); });
    var body = table.tBodies[0];
    body.textContent = "";
    ids.slice(0, 10).forEach(function (id) {
      var tr = body.insertRow();
      tr.insertCell().textContent = pct(by[id], all);
      tr.insertCell().textContent = String(by[id]);
      tr.insertCell().textContent = D.frames[id];
    });
  }
  function byFrameName(a, b) { return D.frames[a] < D.frames[b] ? -1 : D.frames[a] > D.frames[b] ? 1 : 0; }

  // ---- Threads -------------------------------------------------------------
  var threadSelect = $("thread");
  if (hasTimeline) {
    var order = D.threads.map(function (_, k) { return k; });
    order.sort(function (a, b) { return threadSamples[b] - threadSamples[a]; });
    order.forEach(function (k) {
      var o = document.createElement("option");
      o.value = String(k);
      o.textContent = D.threads[k] + " (" + threadSamples[k] + " samples)";
      threadSelect.appendChild(o);
    });
    threadSelect.addEventListener("change", function () {
      state.thread = parseInt(threadSelect.value, 10);
      totals = null;
      select(state.sel ? state.sel[0] : null, state.sel ? state.sel[1] : null);
    });
  } else {
    threadSelect.disabled = true;
    $("no-timeline").hidden = false;
    $("heat-help").hidden = true;
    heat.hidden = true;
  }
  $("reset").addEventListener("click", function () { select(null, null); });
  $("reset").disabled = !hasTimeline;

  function refresh() {
    count();
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
  select(null, null); // draws the heatmap, the flamegraph and the summary
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
      var r = heat.getBoundingClientRect();
      return { x: r.left + geo.left, y: r.top + geo.top, colW: geo.colW, rowH: geo.rowH, cols: nCols, rows: rows, cells: nCells };
    },
  };
})();
