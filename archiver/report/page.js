// The report's script: decodes the embedded sessions, then filters, sorts and pages the table
// and draws the timeline for the current window. Everything is built with DOM calls and
// textContent, never from HTML strings, so names from callbacks cannot become markup.
(function () {
  'use strict';
  var P = JSON.parse(document.getElementById('data').textContent);
  var C = P.cols, N = C.s.length, SVG = 'http://www.w3.org/2000/svg';
  var start = new Float64Array(N), end = new Float64Array(N);
  var openEnd = Math.min(P.rangeEnd, Math.max(P.generated, P.rangeStart));
  for (var i = 0, t = C.t0; i < N; i++) {
    t += C.s[i];
    start[i] = t;
    end[i] = C.d[i] < 0 ? openEnd : t + C.d[i];
  }
  // An open session has no end: it is drawn to its stream's next session, or to the range's end.
  var lastOpen = new Int32Array(C.streams.length).fill(-1);
  for (i = 0; i < N; i++) {
    var prev = lastOpen[C.k[i]];
    if (prev >= 0) { end[prev] = Math.min(end[prev], Math.max(start[i], start[prev])); }
    lastOpen[C.k[i]] = C.d[i] < 0 ? i : -1;
  }
  var STATUS = ['closed', 'open', 'end only'], KIND = ['closed', 'open', 'endonly'];

  function offset(ts) {
    var o = P.offsets, lo = 0, hi = o.length - 1;
    while (lo < hi) {
      var mid = (lo + hi + 1) >> 1;
      if (o[mid][0] <= ts) { lo = mid; } else { hi = mid - 1; }
    }
    return o[lo][1];
  }
  function fmt(ts, seconds) {
    var s = new Date((ts + offset(ts)) * 1000).toISOString().replace('T', ' ');
    return s.slice(0, seconds ? 19 : 16);
  }
  function human(sec) {
    sec = Math.round(sec);
    var d = Math.floor(sec / 86400), h = Math.floor(sec / 3600) % 24, m = Math.floor(sec / 60) % 60, s = sec % 60;
    function p(n) { return (n < 10 ? '0' : '') + n; }
    if (d > 0) { return d + 'd' + p(h) + 'h' + p(m) + 'm'; }
    if (h > 0) { return h + 'h' + p(m) + 'm' + p(s) + 's'; }
    if (m > 0) { return m + 'm' + p(s) + 's'; }
    return s + 's';
  }
  function ip(idx) { return idx > 0 ? C.ips[idx - 1] : ''; }
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined) { e.textContent = text; }
    if (cls) { e.className = cls; }
    return e;
  }

  // Ranks of the interned names, for sorting by a name column without comparing strings per row.
  function ranks(list, key) {
    var idx = list.map(function (_, j) { return j; });
    idx.sort(function (a, b) { var x = key(list[a]), y = key(list[b]); return x < y ? -1 : x > y ? 1 : a - b; });
    var r = new Int32Array(list.length + 1);
    idx.forEach(function (j, n) { r[j] = n; });
    return r;
  }
  var rankCache = {};
  function rank(name) {
    if (!rankCache[name]) {
      if (name === 'domain' || name === 'app' || name === 'stream') {
        var f = {domain: 0, app: 1, stream: 2}[name];
        rankCache[name] = ranks(C.streams, function (s) { return s[f]; });
      } else {
        var r = ranks(C.ips, function (s) { return s; }), shifted = new Int32Array(C.ips.length + 1);
        for (var j = 0; j < C.ips.length; j++) { shifted[j + 1] = r[j] + 1; }
        rankCache[name] = shifted; // index 0 (no IP) sorts first
      }
    }
    return rankCache[name];
  }
  var KEYS = {
    start: function (i) { return start[i]; },
    end: function (i) { return C.d[i] < 0 ? Infinity : end[i]; }, // open: no end
    dur: function (i) { return C.d[i]; },
    status: function (i) { return C.f[i] & 3; },
    verified: function (i) { return C.f[i] & 4; },
    domain: function (i) { return rank('domain')[C.k[i]]; },
    app: function (i) { return rank('app')[C.k[i]]; },
    stream: function (i) { return rank('stream')[C.k[i]]; },
    client: function (i) { return rank('client')[C.c[i]]; },
    node: function (i) { return rank('node')[C.n[i]]; }
  };

  var state = {sort: 'start', desc: false, page: 0, size: 100, zoom: 0, w0: P.rangeStart};
  var sel = new Int32Array(0);

  function applyFilters() {
    var q = document.getElementById('f-search').value.trim().toLowerCase();
    var stream = document.getElementById('f-stream').value.trim();
    var status = document.getElementById('f-status').value;
    var verified = document.getElementById('f-verified').value;
    var okStream = new Uint8Array(C.streams.length), okIP = new Uint8Array(C.ips.length + 1);
    for (var j = 0; j < C.streams.length; j++) {
      var s = C.streams[j], full = s[0] + '/' + s[1] + '/' + s[2];
      var byName = stream === '' || s[2] === stream || full === stream;
      var bySearch = q === '' || full.toLowerCase().indexOf(q) >= 0;
      okStream[j] = byName ? (bySearch ? 2 : 1) : 0; // 2: passes the search by name
    }
    for (j = 0; j < C.ips.length; j++) { okIP[j + 1] = q !== '' && C.ips[j].toLowerCase().indexOf(q) >= 0 ? 1 : 0; }
    var out = new Int32Array(N), n = 0;
    for (var i = 0; i < N; i++) {
      var os = okStream[C.k[i]];
      if (os === 0) { continue; }
      if (status !== '' && (C.f[i] & 3) !== +status) { continue; }
      if (verified !== '' && ((C.f[i] & 4) !== 0) !== (verified === '1')) { continue; }
      if (os !== 2 && !(okIP[C.c[i]] || okIP[C.n[i]] || okIP[C.dc[i]] || okIP[C.dn[i]])) { continue; }
      out[n++] = i;
    }
    sel = out.subarray(0, n);
    document.getElementById('count').textContent = String(n);
    sortSel();
    state.page = 0;
    renderTable();
    renderTimeline();
  }

  function sortSel() {
    var key = KEYS[state.sort], dir = state.desc ? -1 : 1;
    if (state.sort !== 'start' || state.desc) {
      sel.sort(function (a, b) { var x = key(a), y = key(b); return x < y ? -dir : x > y ? dir : a - b; });
    } else {
      sel.sort(); // sessions come in start order: index order is start order
    }
    var ths = document.querySelectorAll('#table th');
    for (var j = 0; j < ths.length; j++) {
      ths[j].className = ths[j].getAttribute('data-sort') === state.sort ? (state.desc ? 'desc' : 'asc') : '';
    }
  }

  function ipCell(a, b) {
    var td = el('td', ip(a));
    if (b > 0) {
      td.appendChild(el('span', ' \u2192 ' + ip(b), 'moved'));
      td.title = 'the PUBLISH_DONE came from ' + ip(b);
    }
    return td;
  }

  function renderTable() {
    var body = document.getElementById('rows'), pages = Math.max(1, Math.ceil(sel.length / state.size));
    state.page = Math.min(Math.max(state.page, 0), pages - 1);
    var frag = document.createDocumentFragment();
    var from = state.page * state.size, to = Math.min(sel.length, from + state.size);
    for (var r = from; r < to; r++) {
      var i = sel[r], s = C.streams[C.k[i]], tr = el('tr');
      tr.appendChild(el('td', fmt(start[i], true)));
      tr.appendChild(el('td', C.d[i] < 0 ? '-' : fmt(end[i], true)));
      tr.appendChild(el('td', C.d[i] < 0 ? '-' : human(C.d[i]), 'num'));
      tr.appendChild(el('td', STATUS[C.f[i] & 3]));
      tr.appendChild(el('td', C.f[i] & 4 ? 'yes' : 'no'));
      tr.appendChild(el('td', s[0]));
      tr.appendChild(el('td', s[1]));
      tr.appendChild(el('td', s[2]));
      tr.appendChild(ipCell(C.c[i], C.dc[i]));
      tr.appendChild(ipCell(C.n[i], C.dn[i]));
      frag.appendChild(tr);
    }
    body.textContent = '';
    body.appendChild(frag);
    document.getElementById('pg-info').textContent = sel.length === 0 ? 'no sessions match' :
      'rows ' + (from + 1) + '-' + to + ' of ' + sel.length + ' (page ' + (state.page + 1) + ' of ' + pages + ')';
  }

  // The timeline: the streams with the most time in the window (after the table's filters), each
  // a row of bars merged where they would touch at this zoom, so the drawing stays small.
  var ROWS = 40, LABEL = 240;
  function windowBounds() {
    if (state.zoom === 0) { return [P.rangeStart, P.rangeEnd]; }
    var w0 = Math.max(P.rangeStart, Math.min(state.w0, P.rangeEnd - state.zoom));
    state.w0 = w0;
    return [w0, w0 + state.zoom];
  }
  function tickStep(span) {
    var steps = [600, 1800, 3600, 3 * 3600, 6 * 3600, 86400, 2 * 86400, 7 * 86400, 14 * 86400, 28 * 86400];
    for (var j = 0; j < steps.length; j++) { if (span / steps[j] <= 12) { return steps[j]; } }
    return steps[steps.length - 1];
  }
  function svg(tag, attrs, text) {
    var e = document.createElementNS(SVG, tag);
    for (var a in attrs) { e.setAttribute(a, attrs[a]); }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }
  function renderTimeline() {
    var box = document.getElementById('timeline'), b = windowBounds(), w0 = b[0], w1 = b[1];
    var width = Math.max(700, Math.min(1400, box.clientWidth || 1100)), plot = width - LABEL - 10;
    var scale = plot / (w1 - w0);
    document.getElementById('tl-window').textContent = fmt(w0) + ' \u2013 ' + fmt(w1) + ' (' + P.zone + ')';
    var inWin = new Float64Array(C.streams.length);
    for (var r = 0; r < sel.length; r++) {
      var i = sel[r], a = Math.max(start[i], w0), z = Math.min(end[i], w1);
      if (z > a || (z === a && start[i] >= w0 && start[i] < w1)) { inWin[C.k[i]] += Math.max(z - a, 1); }
    }
    var rows = [];
    for (var j = 0; j < inWin.length; j++) { if (inWin[j] > 0) { rows.push(j); } }
    var shown = rows.length;
    rows.sort(function (x, y) { return inWin[y] - inWin[x] || x - y; });
    rows = rows.slice(0, ROWS);
    var rowOf = new Int32Array(C.streams.length).fill(-1);
    rows.forEach(function (s, n) { rowOf[s] = n; });
    var bars = rows.map(function () { return []; });
    for (r = 0; r < sel.length; r++) {
      i = sel[r];
      var row = rowOf[C.k[i]];
      if (row < 0 || end[i] < w0 || start[i] >= w1) { continue; }
      bars[row].push([Math.max(0, (start[i] - w0) * scale), Math.min(plot, (end[i] - w0) * scale), C.f[i] & 3, i]);
    }
    var h = 24 + rows.length * 18 + 4;
    var root = svg('svg', {width: width, height: h, role: 'img', 'aria-label': 'timeline of sessions per stream'});
    var step = tickStep(w1 - w0), first = Math.ceil((w0 + offset(w0)) / step) * step - offset(w0);
    for (var tk = first; tk <= w1; tk += step) {
      var x = LABEL + (tk - w0) * scale;
      root.appendChild(svg('line', {x1: x, x2: x, y1: 16, y2: h, stroke: '#e3e8ee'}));
      root.appendChild(svg('text', {x: x + 2, y: 12}, step >= 86400 ? fmt(tk).slice(0, 10) : fmt(tk).slice(5)));
    }
    rows.forEach(function (s, n) {
      var y = 22 + n * 18, name = C.streams[s].join('/');
      var label = svg('text', {x: 2, y: y + 11}, name.length > 38 ? '\u2026' + name.slice(-37) : name);
      label.appendChild(svg('title', {}, name + ': ' + human(inWin[s]) + ' in this window'));
      root.appendChild(label);
      var list = bars[n].sort(function (p, q) { return p[0] - q[0]; }), cur = null, count = 0;
      function flush() {
        if (!cur) { return; }
        var rect = svg('rect', {x: LABEL + cur[0], y: y, width: Math.max(1, cur[1] - cur[0]), height: 13, 'class': 'bar ' + KIND[cur[2]]});
        var i0 = cur[3];
        rect.appendChild(svg('title', {}, count > 1 ? count + ' sessions (zoom in to see each)' :
          name + ': ' + STATUS[C.f[i0] & 3] + ', ' + fmt(start[i0], true) + (C.d[i0] < 0 ? ', no end' : ' \u2013 ' + fmt(end[i0], true)) +
          (ip(C.c[i0]) ? ', client ' + ip(C.c[i0]) : '') + (ip(C.n[i0]) ? ', node ' + ip(C.n[i0]) : '')));
        root.appendChild(rect);
      }
      list.forEach(function (p) {
        if (cur && p[2] === cur[2] && p[0] <= cur[1] + 1) { cur[1] = Math.max(cur[1], p[1]); count++; return; }
        flush();
        cur = p.slice();
        count = 1;
      });
      flush();
    });
    box.textContent = '';
    box.appendChild(root);
    if (shown > rows.length) {
      box.appendChild(el('p', (shown - rows.length) + ' more streams have sessions in this window: filter the table or zoom in to see them.', 'note'));
    } else if (shown === 0) {
      box.appendChild(el('p', 'No sessions in this window.', 'note'));
    }
  }

  function on(id, ev, fn) { document.getElementById(id).addEventListener(ev, fn); }
  var pending = 0;
  function later() { clearTimeout(pending); pending = setTimeout(applyFilters, 150); }
  on('f-search', 'input', later);
  on('f-stream', 'input', later);
  on('f-status', 'change', applyFilters);
  on('f-verified', 'change', applyFilters);
  on('pg-first', 'click', function () { state.page = 0; renderTable(); });
  on('pg-prev', 'click', function () { state.page--; renderTable(); });
  on('pg-next', 'click', function () { state.page++; renderTable(); });
  on('pg-last', 'click', function () { state.page = 1e9; renderTable(); });
  document.querySelectorAll('#table th').forEach(function (th) {
    th.addEventListener('click', function () {
      var k = th.getAttribute('data-sort');
      state.desc = state.sort === k ? !state.desc : false;
      state.sort = k;
      sortSel();
      state.page = 0;
      renderTable();
    });
  });
  document.querySelectorAll('[data-zoom]').forEach(function (btn) {
    btn.addEventListener('click', function () {
      var z = +btn.getAttribute('data-zoom'), b = windowBounds();
      state.zoom = z;
      state.w0 = z === 0 ? P.rangeStart : b[0];
      renderTimeline();
    });
  });
  on('tl-prev', 'click', function () { if (state.zoom) { state.w0 -= state.zoom; renderTimeline(); } });
  on('tl-next', 'click', function () { if (state.zoom) { state.w0 += state.zoom; renderTimeline(); } });
  var heat = document.getElementById('heatmap');
  if (heat) {
    heat.addEventListener('click', function (e) {
      var t = e.target.getAttribute && e.target.getAttribute('data-t');
      if (t) {
        state.zoom = 3600;
        state.w0 = +t;
        renderTimeline();
        document.getElementById('timeline-section').scrollIntoView();
      }
    });
  }
  applyFilters();
  document.body.setAttribute('data-ready', '1');
})();
