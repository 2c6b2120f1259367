// The timeline: draws only the visible window of the embedded operations, so that a history of
// 100k operations pages as fast as one of 100. Also: the latency legend's series toggles.
(function () {
  'use strict';

  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }

  // Latency series toggles.
  Array.prototype.forEach.call(document.querySelectorAll('[data-toggle-series]'), function (button) {
    button.addEventListener('click', function () {
      var id = button.getAttribute('data-toggle-series');
      var off = button.classList.toggle('off');
      Array.prototype.forEach.call(document.querySelectorAll('[data-series="' + id + '"]'), function (p) {
        p.classList.toggle('off', off);
      });
    });
  });

  var dataEl = document.getElementById('timeline-data');
  var svg = document.getElementById('tl-svg');
  if (!dataEl || !svg) { return; }
  var D = JSON.parse(dataEl.textContent);
  var N = D.lane.length;
  var OUTCOME = ['ok', 'fail', 'info', 'pending'];
  var GUTTER = 118, RIGHT = 12, AXIS = 36;
  // Beyond this many boxes in view the page asks to zoom in rather than draw them all.
  var MAX_BOXES = 6000;
  var laneH = D.lanes > 60 ? 9 : (D.lanes > 30 ? 14 : 22);

  // Decode the columns: absolute starts and ends, history indices.
  var start = new Float64Array(N), end = new Float64Array(N);
  var invokeIndex = new Float64Array(N), completeIndex = new Float64Array(N);
  var proc = new Float64Array(N), laneProc = new Float64Array(Math.max(1, D.lanes));
  var opF = new Int32Array(N), opOut = new Int32Array(N), opVal = new Int32Array(N), opErr = new Int32Array(N);
  var maxDur = 0, pending = [];
  var t = 0, ix = 0, i;
  for (i = 0; i < N; i++) {
    var kind = D.kinds[D.kind[i]];
    opF[i] = kind[0];
    opOut[i] = kind[1];
    opVal[i] = kind[2];
    opErr[i] = kind[3];
    laneProc[D.lane[i]] += D.proc[i];
    proc[i] = laneProc[D.lane[i]];
    t += D.start[i];
    start[i] = t;
    ix += D.inv[i];
    invokeIndex[i] = ix;
    completeIndex[i] = D.cmp[i] < 0 ? -1 : ix + D.cmp[i];
    if (D.dur[i] < 0) {
      end[i] = Math.max(D.end, t);
      pending.push(i);
    } else {
      end[i] = t + D.dur[i];
      if (D.dur[i] > maxDur) { maxDur = D.dur[i]; }
    }
  }
  var related = {};
  D.related.forEach(function (k) { related[k] = true; });
  var fullEnd = Math.max(D.end, N ? end[N - 1] : 0, 1);
  var minSpan = D.unit === 'ns' ? 5 : 4;
  var view = { t0: D.view[0], t1: Math.max(D.view[1], D.view[0] + minSpan) };
  var selected = D.focus >= 0 ? D.focus : -1;

  function seconds(v) { return v * D.scale / 1e9; }
  function fmtTime(v, step) {
    if (D.unit !== 'ns') { return '#' + Math.round(v); }
    var stepSecs = seconds(step || 1);
    var decimals = Math.min(6, Math.max(0, Math.ceil(-Math.log10(stepSecs) - 1e-9)));
    return seconds(v).toFixed(decimals) + ' s';
  }
  function fmtDur(v) {
    if (D.unit !== 'ns') { return v + ' events'; }
    var ns = v * D.scale;
    if (ns < 1e3) { return ns.toFixed(0) + ' ns'; }
    if (ns < 1e6) { return (ns / 1e3).toFixed(0) + ' µs'; }
    if (ns < 1e9) { return (ns / 1e6).toFixed(ns < 1e7 ? 2 : 1) + ' ms'; }
    return (ns / 1e9).toFixed(3) + ' s';
  }
  function niceStep(span, target) {
    var raw = span / target, mag = Math.pow(10, Math.floor(Math.log10(raw))), n = raw / mag;
    return (n <= 1 ? 1 : n <= 2 ? 2 : n <= 5 ? 5 : 10) * mag;
  }
  function lowerBound(arr, v) {
    var lo = 0, hi = N;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (arr[mid] < v) { lo = mid + 1; } else { hi = mid; } }
    return lo;
  }
  function upperBound(arr, v) {
    var lo = 0, hi = N;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (arr[mid] <= v) { lo = mid + 1; } else { hi = mid; } }
    return lo;
  }

  function opDetails(k) {
    var out = opOut[k];
    var rows = [
      '<b>p' + proc[k] + ' ' + esc(D.fs[opF[k]]) + '</b> <span class="k">' + OUTCOME[out] + '</span>',
      '<span class="k">value</span> ' + esc(D.strs[opVal[k]])
    ];
    if (opErr[k]) { rows.push('<span class="k">error</span> ' + esc(D.strs[opErr[k]])); }
    if (D.node[k]) { rows.push('<span class="k">node</span> ' + esc(D.strs[D.node[k]])); }
    rows.push('<span class="k">invoked</span> op ' + invokeIndex[k] + ' at ' + fmtTime(start[k], 1));
    if (completeIndex[k] >= 0) {
      rows.push('<span class="k">completed</span> op ' + completeIndex[k] + ' after ' + fmtDur(end[k] - start[k]));
    } else {
      rows.push('<span class="k">never completed</span>');
    }
    if (k === D.focus) { rows.push('<b>the first operation a checker rejects</b>'); }
    if (k === D.prevOk) { rows.push('<b>the previous ok operation</b>'); }
    if (related[k]) { rows.push('concurrent with the failing operation'); }
    return rows.map(function (r) { return '<div class="tip-row">' + r + '</div>'; }).join('');
  }
  function faultDetails(w) {
    return '<div class="tip-row"><b>' + esc(w[3]) + '</b></div><div class="tip-row">' + esc(w[4]) +
      '</div><div class="tip-row"><span class="k">from</span> ' + fmtTime(w[0], 1) + ' <span class="k">to</span> ' +
      fmtTime(w[1], 1) + ' (' + fmtDur(w[1] - w[0]) + ')</div>';
  }
  function markerDetails(m) {
    return '<div class="tip-row"><b>' + esc(m[1]) + '</b></div><div class="tip-row">' + esc(m[2]) +
      '</div><div class="tip-row"><span class="k">at</span> ' + fmtTime(m[0], 1) + '</div>';
  }

  var box = document.getElementById('tl-box');
  var overview = document.getElementById('tl-overview');
  var status = document.getElementById('tl-status');
  var details = document.getElementById('tl-details');
  var tooltip = document.getElementById('tooltip');

  function clampView() {
    var span = Math.min(Math.max(view.t1 - view.t0, minSpan), fullEnd * 1.05 + minSpan);
    var lo = -span * 0.02, hi = fullEnd + span * 0.02;
    var t0 = Math.min(Math.max(view.t0, lo), hi - span);
    view.t0 = t0;
    view.t1 = t0 + span;
  }

  function render() {
    clampView();
    var W = Math.max(480, box.clientWidth);
    var plotW = W - GUTTER - RIGHT;
    var t0 = view.t0, t1 = view.t1, span = t1 - t0;
    var H = AXIS + D.lanes * laneH + 6;
    var xOf = function (v) { return GUTTER + (v - t0) / span * plotW; };
    var clampX = function (x) { return Math.min(Math.max(x, GUTTER), W - RIGHT); };
    var parts = [];
    var k;
    // Lane stripes.
    for (k = 0; k < D.lanes; k += 2) {
      parts.push('<rect class="lane-bg" x="0" y="' + (AXIS + k * laneH) + '" width="' + W + '" height="' + laneH + '"/>');
    }
    // Fault windows, then markers.
    D.windows.forEach(function (w, n) {
      if (w[1] < t0 || w[0] > t1) { return; }
      var x0 = clampX(xOf(w[0])), x1 = clampX(xOf(w[1]));
      parts.push('<rect class="fault ' + w[2] + '" data-w="' + n + '" x="' + x0.toFixed(1) + '" y="' + AXIS +
        '" width="' + Math.max(2, x1 - x0).toFixed(1) + '" height="' + (D.lanes * laneH) + '"/>');
      if (x1 - x0 > 60) {
        parts.push('<text class="fault-label ' + w[2] + '" x="' + (x0 + 4).toFixed(1) + '" y="' + (AXIS - 6) + '">' +
          esc(w[3].length > (x1 - x0) / 6.5 ? w[3].slice(0, Math.max(3, Math.floor((x1 - x0) / 6.5) - 1)) + '…' : w[3]) + '</text>');
      }
    });
    D.markers.forEach(function (m, n) {
      if (m[0] < t0 || m[0] > t1) { return; }
      var x = xOf(m[0]).toFixed(1);
      parts.push('<line class="marker" data-m="' + n + '" x1="' + x + '" y1="' + (AXIS - 4) + '" x2="' + x + '" y2="' + (AXIS + D.lanes * laneH) + '"/>');
      parts.push('<text class="marker-label" x="' + x + '" y="' + (AXIS - 6) + '">⚡ ' + esc(m[1]) + '</text>');
    });
    // Time grid.
    var step = niceStep(span, Math.max(2, plotW / 110));
    for (var g = Math.ceil(t0 / step) * step; g <= t1; g += step) {
      var gx = xOf(g).toFixed(1);
      parts.push('<line class="grid" x1="' + gx + '" y1="14" x2="' + gx + '" y2="' + H + '"/>');
      parts.push('<text class="tick" x="' + gx + '" y="11" text-anchor="middle">' + fmtTime(g, step) + '</text>');
    }
    // Operations in view: starts are sorted, so only [t0 - longest, t1] can overlap.
    var lo = lowerBound(start, t0 - maxDur), hi = upperBound(start, t1);
    var inView = 0, drawn = 0, laneProcs = [];
    function draw(k) {
      inView++;
      // The failing operation and its predecessor are drawn even past the cap.
      if (drawn >= MAX_BOXES && k !== D.focus && k !== D.prevOk) { return; }
      drawn++;
      var x0 = clampX(xOf(start[k])), x1 = clampX(xOf(end[k]));
      var w = Math.max(2, x1 - x0);
      var lane = D.lane[k];
      var y = AXIS + lane * laneH + 2;
      var cls = 'op ' + OUTCOME[opOut[k]];
      if (k === D.focus) { cls += ' focus'; } else if (k === D.prevOk) { cls += ' prev'; } else if (related[k]) { cls += ' related'; }
      if (k === selected && k !== D.focus) { cls += ' selected'; }
      parts.push('<rect class="' + cls + '" data-k="' + k + '" x="' + x0.toFixed(1) + '" y="' + y + '" width="' + w.toFixed(1) +
        '" height="' + (laneH - 4) + '" rx="2"/>');
      if (laneH >= 18 && w > 46) {
        var label = D.fs[opF[k]] + ' ' + D.strs[opVal[k]];
        var room = Math.floor((w - 6) / 6);
        if (label.length > room) { label = label.slice(0, Math.max(1, room - 1)) + '…'; }
        parts.push('<text class="op-text" x="' + (x0 + 3).toFixed(1) + '" y="' + (y + laneH - 9) + '">' + esc(label) + '</text>');
      }
      var procs = laneProcs[lane] || (laneProcs[lane] = []);
      if (procs.indexOf(proc[k]) < 0) { procs.push(proc[k]); }
    }
    for (k = lo; k < hi; k++) {
      if (end[k] >= t0 && D.dur[k] >= 0) { draw(k); }
    }
    pending.forEach(function (k) { if (start[k] <= t1) { draw(k); } });
    // Lane labels: the processes that used the lane in this window.
    parts.push('<rect x="0" y="' + AXIS + '" width="' + (GUTTER - 4) + '" height="' + (D.lanes * laneH) + '" fill="#fff" opacity="0.85"/>');
    if (laneH >= 12) {
      for (k = 0; k < D.lanes; k++) {
        var ps = laneProcs[k] || [];
        var text = ps.length === 0 ? '' : 'p' + ps.slice(0, 2).join(', p') + (ps.length > 2 ? ' +' + (ps.length - 2) : '');
        parts.push('<text class="lane-label" x="6" y="' + (AXIS + k * laneH + laneH / 2 + 4) + '">' + esc(text) + '</text>');
      }
    }
    if (inView > drawn) {
      parts.push('<text class="note" x="' + (GUTTER + 8) + '" y="' + (AXIS + 16) + '">' + inView +
        ' operations in view: drawing the first ' + drawn + '; zoom in to see them all</text>');
    }
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    svg.setAttribute('height', H);
    svg.innerHTML = parts.join('');
    status.textContent = fmtTime(t0, step) + ' – ' + fmtTime(t1, step) + ' · ' + inView + ' of ' + N + ' operations in view';
    document.getElementById('tl-prev').disabled = t0 <= 0;
    document.getElementById('tl-next').disabled = t1 >= fullEnd;
    renderOverview(W);
  }

  var overviewCache = { width: 0, html: '' };
  function renderOverview(W) {
    var plotW = W - GUTTER - RIGHT, H = 46;
    var xOf = function (v) { return GUTTER + v / fullEnd * plotW; };
    if (overviewCache.width !== W) {
      // Operations started per 2-pixel column, scaled to the busiest column.
      var cols = Math.max(1, Math.floor(plotW / 2)), bins = new Uint32Array(cols), peak = 1, k;
      for (k = 0; k < N; k++) {
        var c = Math.min(cols - 1, Math.floor(start[k] / fullEnd * cols));
        bins[c]++;
        if (bins[c] > peak) { peak = bins[c]; }
      }
      var parts = [];
      D.windows.forEach(function (w) {
        parts.push('<rect class="fault ' + w[2] + '" x="' + xOf(w[0]).toFixed(1) + '" y="0" width="' +
          Math.max(1.5, xOf(w[1]) - xOf(w[0])).toFixed(1) + '" height="' + H + '"/>');
      });
      var d = '';
      for (k = 0; k < cols; k++) {
        if (bins[k]) {
          var h = Math.max(1, bins[k] / peak * (H - 8));
          d += 'M' + (GUTTER + k * 2) + ' ' + (H - h).toFixed(1) + 'h2v' + h.toFixed(1) + 'h-2z';
        }
      }
      parts.push('<path class="density" d="' + d + '"/>');
      if (D.focus >= 0) {
        var fx = xOf(start[D.focus]).toFixed(1);
        parts.push('<line class="focus-line" x1="' + fx + '" y1="0" x2="' + fx + '" y2="' + H + '"/>');
      }
      parts.push('<text x="6" y="18" class="tick" style="font-size:11px;fill:#646d76">whole run</text>');
      parts.push('<text x="6" y="32" class="tick" style="font-size:11px;fill:#646d76">' + fmtTime(0, fullEnd / 4) + ' – ' + fmtTime(fullEnd, fullEnd / 4) + '</text>');
      overviewCache = { width: W, html: parts.join('') };
    }
    var vx0 = Math.max(GUTTER, xOf(view.t0)), vx1 = Math.min(W - RIGHT, xOf(view.t1));
    overview.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    overview.innerHTML = overviewCache.html + '<rect class="viewport" x="' + vx0.toFixed(1) + '" y="1" width="' +
      Math.max(3, vx1 - vx0).toFixed(1) + '" height="' + (H - 2) + '"/>';
  }

  function centreOn(t) {
    var span = view.t1 - view.t0;
    view.t0 = t - span / 2;
    view.t1 = t + span / 2;
    render();
  }
  function page(direction) {
    var span = view.t1 - view.t0;
    view.t0 += direction * span * 0.9;
    view.t1 += direction * span * 0.9;
    render();
  }
  function zoom(factor) {
    var mid = (view.t0 + view.t1) / 2, half = (view.t1 - view.t0) / 2 * factor;
    view.t0 = mid - half;
    view.t1 = mid + half;
    render();
  }
  function showDetails(k) {
    selected = k;
    details.hidden = false;
    details.innerHTML = opDetails(k);
  }

  document.getElementById('tl-prev').addEventListener('click', function () { page(-1); });
  document.getElementById('tl-next').addEventListener('click', function () { page(1); });
  document.getElementById('tl-start').addEventListener('click', function () { var s = view.t1 - view.t0; view.t0 = 0; view.t1 = s; render(); });
  document.getElementById('tl-end').addEventListener('click', function () { var s = view.t1 - view.t0; view.t1 = fullEnd; view.t0 = fullEnd - s; render(); });
  document.getElementById('tl-zoom-in').addEventListener('click', function () { zoom(0.5); });
  document.getElementById('tl-zoom-out').addEventListener('click', function () { zoom(2); });
  var focusButton = document.getElementById('tl-focus');
  if (D.focus < 0) {
    focusButton.disabled = true;
  } else {
    focusButton.addEventListener('click', function () {
      view.t0 = D.view[0];
      view.t1 = D.view[1];
      showDetails(D.focus);
      render();
    });
  }
  function gotoIndex() {
    var want = Number(document.getElementById('tl-goto-index').value);
    for (var k = 0; k < N; k++) {
      if (invokeIndex[k] === want || completeIndex[k] === want) {
        showDetails(k);
        centreOn((start[k] + end[k]) / 2);
        return;
      }
    }
    status.textContent = 'no client operation has index ' + want;
  }
  document.getElementById('tl-goto').addEventListener('click', gotoIndex);
  document.getElementById('tl-goto-index').addEventListener('keydown', function (e) {
    if (e.key === 'Enter') { gotoIndex(); }
  });
  document.addEventListener('keydown', function (e) {
    var tag = e.target && e.target.tagName;
    if (tag === 'INPUT' || tag === 'TEXTAREA' || e.altKey || e.ctrlKey || e.metaKey) { return; }
    if (e.key === 'ArrowLeft') { page(-1); e.preventDefault(); }
    else if (e.key === 'ArrowRight') { page(1); e.preventDefault(); }
    else if (e.key === '+' || e.key === '=') { zoom(0.5); }
    else if (e.key === '-') { zoom(2); }
  });
  overview.addEventListener('click', function (e) {
    var rect = overview.getBoundingClientRect();
    var W = Math.max(480, box.clientWidth), plotW = W - GUTTER - RIGHT;
    var x = (e.clientX - rect.left) / rect.width * W;
    centreOn((x - GUTTER) / plotW * fullEnd);
  });

  // Hover: one listener for every box, window and marker.
  function hideTip() { tooltip.hidden = true; }
  svg.addEventListener('mousemove', function (e) {
    var el = e.target;
    var html = null;
    if (el.hasAttribute && el.hasAttribute('data-k')) { html = opDetails(Number(el.getAttribute('data-k'))); }
    else if (el.hasAttribute && el.hasAttribute('data-w')) { html = faultDetails(D.windows[Number(el.getAttribute('data-w'))]); }
    else if (el.hasAttribute && el.hasAttribute('data-m')) { html = markerDetails(D.markers[Number(el.getAttribute('data-m'))]); }
    if (html === null) { hideTip(); return; }
    tooltip.innerHTML = html;
    tooltip.hidden = false;
    var x = e.clientX + 14, y = e.clientY + 14;
    if (x + tooltip.offsetWidth > window.innerWidth - 8) { x = e.clientX - tooltip.offsetWidth - 10; }
    if (y + tooltip.offsetHeight > window.innerHeight - 8) { y = e.clientY - tooltip.offsetHeight - 10; }
    tooltip.style.left = Math.max(4, x) + 'px';
    tooltip.style.top = Math.max(4, y) + 'px';
  });
  svg.addEventListener('mouseleave', hideTip);
  svg.addEventListener('click', function (e) {
    var el = e.target;
    if (el.hasAttribute && el.hasAttribute('data-k')) {
      showDetails(Number(el.getAttribute('data-k')));
      render();
    }
  });
  var resizeTimer = null;
  window.addEventListener('resize', function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(render, 100);
  });

  if (selected >= 0) { showDetails(selected); }
  render();
  // For tests and for the curious: what the page drew.
  document.body.setAttribute('data-timeline-ready', String(N));
})();
