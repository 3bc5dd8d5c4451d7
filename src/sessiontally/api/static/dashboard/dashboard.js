/* sessiontally dashboard: pickers, charts, tables and CSV for one workspace.
 *
 * Plain ES2020, no build step. Runs under a strict CSP (script-src 'self', style-src
 * 'self'): no inline handlers, no eval, and every string that comes from the server is
 * put in the page as text (DOM nodes, never innerHTML). It talks only to the same-origin
 * routes /dashboard/context.json and /dashboard/api/... (the API's endpoints, signed in
 * by the session cookie). The view's state lives in the URL's query string.
 */
(function () {
  'use strict';

  const API = '/dashboard/api';
  const CONTEXT_URL = '/dashboard/context.json';
  const PIECE = 100; // the API's largest `length`
  const PRESETS = { day: [7, 30, 90, 180, 365], hour: [24, 48, 168, 336] };
  const DEFAULT_RANGE = { day: 30, hour: 24 };
  const MAX_CUSTOM = { day: 1000, hour: 744 }; // points per period, so a range stays a few requests
  const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const EVENT_PAGE = 250;

  // One card per chart. `units`: takes unit=hour; `segment`/`zone`: takes segment_id /
  // time_zone (the KPI endpoints refuse both, and any unit but day).
  const CHARTS = [
    { key: 'sessions', title: 'Sessions', path: '/sessions/data_series', field: 'sessions',
      units: true, segment: true, zone: true, headline: 'sum', wide: true },
    { key: 'dau', title: 'Daily active users', path: '/kpi/dau/data_series', field: 'dau', headline: 'avg' },
    { key: 'mau', title: 'Monthly active users', path: '/kpi/mau/data_series', field: 'mau', headline: 'last' },
    { key: 'new_users', title: 'New users', path: '/kpi/new_users/data_series', field: 'new_users', headline: 'sum' },
    { key: 'uninstalls', title: 'Uninstalls', path: '/kpi/uninstalls/data_series', field: 'uninstalls',
      headline: 'sum', downIsGood: true },
    { key: 'events', title: 'Custom events', path: '/events/data_series', field: 'count',
      units: true, segment: true, zone: true, headline: 'sum', wide: true },
  ];

  const intFormat = new Intl.NumberFormat('en-US');
  const avgFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });
  const pctFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1, minimumFractionDigits: 1 });
  const compactFormat = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });

  const $ = (id) => document.getElementById(id);
  const ctx = { workspace: null, apps: [], segments: [], events: null, hasData: true, sessionsEmpty: false };
  const cards = new Map(); // key -> card record
  let view = null; // the current state, as read from / written to the URL
  let firstChartMarked = false;

  // ------------------------------------------------------------------ small helpers

  /** Build an element. Attributes are set as attributes, children appended as nodes or
   * text: nothing here parses HTML, so server strings can never become markup. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === 'class') node.className = value;
      else if (name === 'dataset') Object.assign(node.dataset, value);
      else node.setAttribute(name, value === true ? '' : String(value));
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined && child !== false) node.append(child);
    }
    return node;
  }

  function isDate(text) {
    return typeof text === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(text) &&
      !Number.isNaN(Date.parse(text + 'T00:00:00Z')) && new Date(text + 'T00:00:00Z').toISOString().slice(0, 10) === text;
  }

  /** Calendar arithmetic on YYYY-MM-DD strings (UTC, so no zone can shift a day). */
  function addDays(date, days) {
    const t = Date.parse(date + 'T00:00:00Z') + days * 86400000;
    return new Date(t).toISOString().slice(0, 10);
  }

  function daysBetween(from, to) {
    return Math.round((Date.parse(to + 'T00:00:00Z') - Date.parse(from + 'T00:00:00Z')) / 86400000);
  }

  function validZone(zone) {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: zone });
      return true;
    } catch (e) {
      return false;
    }
  }

  /** Today's date in a zone (for the custom range's defaults). */
  function todayIn(zone) {
    try {
      const parts = new Intl.DateTimeFormat('en-US', {
        timeZone: zone || undefined, year: 'numeric', month: '2-digit', day: '2-digit',
      }).formatToParts(new Date());
      const get = (type) => parts.find((p) => p.type === type).value;
      return `${get('year')}-${get('month')}-${get('day')}`;
    } catch (e) {
      return new Date().toISOString().slice(0, 10);
    }
  }

  /** `ending_at` for the piece before a point: the server's own labels fix the
   * boundaries, so chaining is exact in every zone and across DST changes. A day label
   * is a date (a bare date means that local day); an hour label is an instant with its
   * offset, and one second before it lies in the previous bucket. */
  function before(time) {
    if (time.length === 10) return addDays(time, -1);
    const ms = Date.parse(time);
    return new Date(ms - 1000).toISOString().replace('.000Z', 'Z');
  }

  /** Short tick label for an axis; `full` adds the date to an hour. */
  function shortLabel(time, full) {
    const month = MONTHS[Number(time.slice(5, 7)) - 1];
    const day = Number(time.slice(8, 10));
    if (time.length === 10) return `${month} ${day}`;
    const clock = time.slice(11, 16);
    return full || clock === '00:00' ? `${clock}\n${month} ${day}` : clock;
  }

  /** Label for the legend: a day with its year, an hour with its offset (the DST
   * fall-back repeats a local hour; the offset tells the two apart). */
  function longLabel(time) {
    const month = MONTHS[Number(time.slice(5, 7)) - 1];
    const day = Number(time.slice(8, 10));
    if (time.length === 10) return `${month} ${day}, ${time.slice(0, 4)}`;
    return `${month} ${day}, ${time.slice(11, 16)} (UTC${time.slice(19)})`;
  }

  function plural(n, word) {
    return `${intFormat.format(n)} ${word}${n === 1 ? '' : 's'}`;
  }

  function announce(text) {
    $('status').textContent = text;
  }

  // ------------------------------------------------------------------ state <-> URL

  /** The view from the query string; anything malformed falls back to the default. */
  function readState() {
    const q = new URLSearchParams(location.search);
    const unit = q.get('unit') === 'hour' ? 'hour' : 'day';
    const state = {
      app: q.get('app') || '',
      segment: q.get('segment') || '',
      zone: q.get('zone') || '',
      unit,
      range: DEFAULT_RANGE[unit],
      from: '',
      to: '',
      event: q.get('event') || '',
    };
    if (state.zone && !validZone(state.zone)) state.zone = '';
    const from = q.get('from');
    const to = q.get('to');
    if (isDate(from) && isDate(to) && from <= to) {
      state.from = from;
      state.to = to;
      state.range = 0;
    } else {
      const range = Number(q.get('range'));
      if (PRESETS[unit].includes(range)) state.range = range;
    }
    return state;
  }

  /** Write the view to the URL without a navigation, so reloads and links keep it. */
  function writeState() {
    const q = new URLSearchParams();
    if (view.app) q.set('app', view.app);
    if (view.segment) q.set('segment', view.segment);
    if (view.zone) q.set('zone', view.zone);
    q.set('unit', view.unit);
    if (view.range) q.set('range', String(view.range));
    else {
      q.set('from', view.from);
      q.set('to', view.to);
    }
    if (view.event) q.set('event', view.event);
    history.replaceState(null, '', `${location.pathname}?${q}`);
  }

  /** The zone series are bucketed in: the picked one, else the workspace's. */
  function effectiveZone() {
    return view.zone || (ctx.workspace && ctx.workspace.time_zone) || '';
  }

  // ------------------------------------------------------------------ fetching

  /** GET JSON from the same origin. 401: the sign-in expired, go and sign in again.
   * Other errors throw with the API's own message. */
  async function getJSON(url, params, signal) {
    const query = params ? `?${new URLSearchParams(params)}` : '';
    let resp;
    try {
      // No custom headers: the page's <link rel=preload> of the first series must match.
      resp = await fetch(url + query, { credentials: 'same-origin', signal });
    } catch (err) {
      if (err && err.name === 'AbortError') throw err;
      throw new Error('The server could not be reached. Check your connection and try again.');
    }
    if (resp.status === 401) {
      location.assign('/sign-in');
      throw new Error('Your sign-in has expired.');
    }
    let body = null;
    try {
      body = await resp.json();
    } catch (e) {
      body = null;
    }
    if (!resp.ok) {
      const message = body && typeof body.message === 'string' ? body.message : `The server answered ${resp.status}.`;
      throw new Error(message);
    }
    return body;
  }

  /** A backwards chain of pieces of one series. The API caps `length` at 100, so a long
   * range is read newest piece first, each next piece ending one bucket before the first
   * point of the last; the previous period is just the next points of the same chain. */
  function makeChain(def, params, endingAt, planned, signal) {
    let buffer = []; // fetched, not yet taken; oldest first
    let nextEnd = endingAt;
    let exhausted = false;
    let unplanned = planned || 0; // points the caller will take in all: read them in as few pieces as can be

    async function fetchPiece(length) {
      const query = Object.assign({}, params, { length: String(length) });
      if (nextEnd) query.ending_at = nextEnd;
      const body = await getJSON(API + def.path, query, signal);
      const data = body && Array.isArray(body.data) ? body.data : [];
      if (!data.length) {
        exhausted = true;
        return;
      }
      const points = data.map((d) => ({ time: String(d.time), value: Number(d[def.field]) || 0 }));
      buffer = points.concat(buffer);
      unplanned -= points.length;
      nextEnd = before(points[0].time);
      if (nextEnd < '1971-01-02') exhausted = true; // the API's earliest year
    }

    return {
      /** The newest `n` points not yet taken. */
      async take(n) {
        while (buffer.length < n && !exhausted) {
          await fetchPiece(Math.min(PIECE, Math.max(n - buffer.length, unplanned)));
        }
        return buffer.splice(Math.max(0, buffer.length - n));
      },
      /** The newest points whose local date is `date` or later (hour ranges by date:
       * how many hours that is depends on the zone's DST changes, so let the labels say). */
      async takeSince(date) {
        while (!exhausted && (!buffer.length || buffer[0].time.slice(0, 10) >= date)) await fetchPiece(PIECE);
        let i = buffer.findIndex((p) => p.time.slice(0, 10) >= date);
        if (i < 0) i = buffer.length;
        return buffer.splice(i);
      },
    };
  }

  /** What a card asks for: the end of its range and how many points (or since when). */
  function spanFor(def) {
    const custom = !view.range;
    if (def.units) {
      if (!custom) return { count: view.range, unit: view.unit };
      if (view.unit === 'day') return { endingAt: view.to, count: daysBetween(view.from, view.to) + 1, unit: 'day' };
      return { endingAt: `${view.to}T23:59:59`, since: view.from, unit: 'hour' };
    }
    // KPIs are daily only: an hour view shows the days it covers (at least a week).
    if (custom) return { endingAt: view.to, count: daysBetween(view.from, view.to) + 1, unit: 'day' };
    if (view.unit === 'hour') return { count: Math.max(7, Math.ceil(view.range / 24)), unit: 'day' };
    return { count: view.range, unit: 'day' };
  }

  function paramsFor(def) {
    const params = {};
    if (def.key === 'events') params.event = view.event;
    if (def.units) params.unit = view.unit;
    if (view.app) params.app_id = view.app;
    if (def.segment && view.segment) params.segment_id = view.segment;
    // Sent only when it differs from the workspace's (before the context arrives, a
    // zone in the URL was put there because it differed).
    if (def.zone && view.zone && (!ctx.workspace || view.zone !== ctx.workspace.time_zone)) {
      params.time_zone = view.zone;
    }
    return params;
  }

  /** Read a card's current and previous periods, aligned point by point. */
  async function fetchSeries(def, signal) {
    const span = spanFor(def);
    // Current and previous period: 2 x count points, so a 30-day view is one request.
    const chain = makeChain(def, paramsFor(def), span.endingAt, span.count ? 2 * span.count : 0, signal);
    const current = span.since ? await chain.takeSince(span.since) : await chain.take(span.count);
    const previous = current.length ? await chain.take(current.length) : [];
    // A chain that ran out (before 1971) leaves the previous period short: pad its start.
    const pad = current.length - previous.length;
    const aligned = current.map((p, i) => (i >= pad ? previous[i - pad] : null));
    return { current, previous: aligned, unit: span.unit };
  }

  // ------------------------------------------------------------------ figures

  function headline(def, points) {
    if (!points.length) return null;
    const values = points.map((p) => (p ? p.value : 0));
    const sum = values.reduce((a, b) => a + b, 0);
    if (def.headline === 'avg') return sum / values.length;
    if (def.headline === 'last') return values[values.length - 1];
    return sum;
  }

  function headlineWord(def) {
    if (def.headline === 'avg') return 'average per day';
    if (def.headline === 'last') return 'on the last day';
    return 'in total';
  }

  function formatFigure(def, value) {
    if (value === null) return '–';
    return def.headline === 'avg' ? avgFormat.format(value) : intFormat.format(value);
  }

  function periodWords(n, unit) {
    return `previous ${plural(n, unit)}`;
  }

  /** The change of the headline figure, as text and a direction for the colour. */
  function change(now, before) {
    if (now === null || before === null) return { text: '', dir: 'flat' };
    if (before === 0) return now === 0 ? { text: '', dir: 'none' } : { text: 'new', dir: 'up' };
    const pct = ((now - before) / before) * 100;
    if (Math.abs(pct) < 0.05) return { text: '±0%', dir: 'flat' };
    const sign = pct > 0 ? '+' : '−';
    return { text: `${sign}${pctFormat.format(Math.abs(pct))}%`, dir: pct > 0 ? 'up' : 'down' };
  }

  function describeSeries(def, series, figure) {
    const pts = series.current;
    if (!pts.length) return `${def.title}: no data.`;
    let lo = pts[0];
    let hi = pts[0];
    for (const p of pts) {
      if (p.value < lo.value) lo = p;
      if (p.value > hi.value) hi = p;
    }
    const first = longLabel(pts[0].time);
    const last = longLabel(pts[pts.length - 1].time);
    return `${def.title} per ${series.unit}, ${first} to ${last}: ${formatFigure(def, figure)} ` +
      `${headlineWord(def)}; lowest ${intFormat.format(lo.value)} on ${longLabel(lo.time)}, ` +
      `highest ${intFormat.format(hi.value)} on ${longLabel(hi.time)}. ` +
      'The dashed line is the previous period.';
  }

  // ------------------------------------------------------------------ cards

  /** The card's frame; its figures, chart and table are filled by renderSeries. */
  function buildCard(def) {
    const id = `card-${def.key}`;
    const tableId = `${id}-table`;
    const title = el('h2', { id: `${id}-title`, class: 'card-title' }, def.title);
    const sub = el('p', { class: 'card-sub' });
    const head = el('div', { class: 'card-head' }, el('div', { class: 'card-heading' }, title, sub));
    let eventSelect = null;
    if (def.key === 'events') {
      eventSelect = el('select', { id: 'pick-event', name: 'event', disabled: true },
        el('option', { value: '' }, 'Loading…'));
      head.append(el('div', { class: 'control control-inline' },
        el('label', { for: 'pick-event' }, 'Event'), eventSelect));
      eventSelect.addEventListener('change', () => {
        view.event = eventSelect.value;
        writeState();
        runCards([cards.get('events')]);
      });
    }
    const figure = el('span', { class: 'figure-value' }, '–');
    const figureWord = el('span', { class: 'figure-word' });
    const delta = el('span', { class: 'delta' });
    const vs = el('span', { class: 'figure-vs' });
    const note = el('p', { class: 'card-note' });
    const chart = el('div', { class: 'chart', role: 'img', 'aria-label': `${def.title}: loading` });
    const empty = el('div', { class: 'empty', hidden: true });
    const tableButton = el('button', { type: 'button', class: 'btn', 'aria-expanded': 'false', 'aria-controls': tableId, disabled: true }, 'Table');
    const csvButton = el('button', { type: 'button', class: 'btn', disabled: true }, 'Download CSV');
    const tableWrap = el('div', { id: tableId, class: 'table-wrap', hidden: true });
    const node = el('article', {
      class: `card${def.wide ? ' card-wide' : ''}`, 'aria-labelledby': `${id}-title`,
      dataset: { chart: def.key, state: 'loading' },
    },
    head,
    el('p', { class: 'figure' }, figure, ' ', figureWord, ' ', delta, ' ', vs),
    note, chart, empty,
    el('div', { class: 'card-actions' }, tableButton, csvButton),
    tableWrap);

    const card = { def, node, sub, figure, figureWord, delta, vs, note, chart, empty, tableButton, csvButton, tableWrap, eventSelect, plot: null, series: null };
    tableButton.addEventListener('click', () => {
      const open = tableButton.getAttribute('aria-expanded') !== 'true';
      tableButton.setAttribute('aria-expanded', String(open));
      tableWrap.hidden = !open;
    });
    csvButton.addEventListener('click', () => downloadCsv(card));
    return card;
  }

  function setCardState(card, state, message) {
    card.node.dataset.state = state;
    card.note.textContent = message || '';
    card.note.classList.toggle('card-error', state === 'error');
  }

  function resetCard(card) {
    setCardState(card, 'loading', '');
    card.figure.textContent = '–';
    card.figureWord.textContent = '';
    card.delta.textContent = '';
    card.delta.className = 'delta';
    card.vs.textContent = 'Loading…';
    card.empty.hidden = true;
    card.empty.replaceChildren();
    card.chart.hidden = false;
    card.chart.setAttribute('aria-label', `${card.def.title}: loading`);
    card.tableButton.disabled = true;
    card.csvButton.disabled = true;
    card.series = null;
  }

  function subtitle(def, unit) {
    const bits = [`per ${unit}`];
    if (def.zone) bits.push(effectiveZone() || 'workspace time zone');
    else bits.push(`days in ${(ctx.workspace && ctx.workspace.time_zone) || 'the workspace time zone'}`);
    if (view.app) {
      const app = ctx.apps.find((a) => a.app_id === view.app);
      bits.push(app ? app.name : 'one app');
    }
    if (def.segment && view.segment) {
      const seg = ctx.segments.find((s) => s.segment_id === view.segment);
      bits.push(seg ? seg.name : 'one segment');
    }
    return bits.join(' · ');
  }

  /** KPIs cannot follow every picker: say which ones they ignore. */
  function kpiNote(def) {
    if (def.units) return '';
    const notes = [];
    if (view.unit === 'hour') notes.push('KPIs are counted by day, so this card shows the days of the range');
    if (view.segment) notes.push('counts every user (segments do not apply to KPIs)');
    if (view.zone && ctx.workspace && view.zone !== ctx.workspace.time_zone) notes.push('days of the workspace time zone');
    return notes.length ? `${notes.join('; ')}.` : '';
  }

  function renderSeries(card, series) {
    const { def } = card;
    card.series = series;
    const now = headline(def, series.current);
    const prevPoints = series.previous.filter(Boolean);
    const before = prevPoints.length === series.current.length ? headline(def, prevPoints) : null;
    const diff = change(now, before);
    card.sub.textContent = subtitle(def, series.unit);
    card.figure.textContent = formatFigure(def, now);
    card.figureWord.textContent = headlineWord(def);
    card.delta.textContent = diff.text;
    const good = def.downIsGood ? diff.dir === 'down' : diff.dir === 'up';
    const bad = def.downIsGood ? diff.dir === 'up' : diff.dir === 'down';
    card.delta.className = `delta${good ? ' delta-good' : ''}${bad ? ' delta-bad' : ''}`;
    card.vs.textContent = before === null || diff.dir === 'none' ? '' : `vs ${periodWords(series.current.length, series.unit)}`;
    setCardState(card, 'ready', kpiNote(def));
    card.chart.setAttribute('aria-label', describeSeries(def, series, now));
    drawChart(card, series);
    fillTable(card, series);
    card.tableButton.disabled = false;
    card.csvButton.disabled = false;
    if (!firstChartMarked && series.current.length) {
      firstChartMarked = true;
      performance.mark('sessiontally:first-chart');
      document.documentElement.dataset.firstChart = 'drawn';
    }
  }

  // ------------------------------------------------------------------ chart

  function cssVar(name, fallback) {
    const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return v || fallback;
  }

  const resizer = typeof ResizeObserver === 'function'
    ? new ResizeObserver((entries) => {
      for (const entry of entries) {
        const card = [...cards.values()].find((c) => c.chart === entry.target);
        if (card && card.plot) {
          const width = Math.floor(entry.contentRect.width);
          if (width > 0 && width !== card.plot.width) card.plot.setSize({ width, height: chartHeight(card) });
        }
      }
    })
    : null;

  function chartHeight(card) {
    const narrow = window.matchMedia('(max-width: 600px)').matches;
    return card.def.wide ? (narrow ? 200 : 260) : (narrow ? 180 : 200);
  }

  /** uPlot with the point index as x (labels come from the server, so the axis never
   * reinterprets a bucket in the browser's zone), the previous period dashed. */
  function drawChart(card, series) {
    if (card.plot) {
      card.plot.destroy();
      card.plot = null;
    }
    card.chart.replaceChildren();
    if (typeof window.uPlot !== 'function') {
      card.note.textContent = 'The chart library did not load; the table below has the numbers.';
      return;
    }
    const labels = series.current.map((p) => p.time);
    const prevLabels = series.previous.map((p) => (p ? p.time : ''));
    const xs = labels.map((_, i) => i);
    const ys = series.current.map((p) => p.value);
    const ps = series.previous.map((p) => (p ? p.value : null));
    const max = Math.max(1, ...ys, ...ps.map((v) => v || 0));
    const accent = cssVar('--chart-line', '#2f6fde');
    const muted = cssVar('--chart-prev', '#8a94a6');
    const grid = cssVar('--chart-grid', '#e6e9ef');
    const ink = cssVar('--chart-ink', '#5b6474');
    const width = Math.max(200, Math.floor(card.chart.clientWidth || card.node.clientWidth - 32));
    const axisFont = '12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
    const multi = series.unit === 'hour';
    const opts = {
      width,
      height: chartHeight(card),
      padding: [12, 24, 0, 4], // room for the last tick label
      cursor: { points: { size: 7 }, drag: { x: false, y: false } },
      legend: { show: true, live: true },
      scales: {
        x: { time: false, range: (u, lo, hi) => (lo === hi ? [lo - 0.5, hi + 0.5] : [lo, hi]) },
        y: { range: () => [0, niceMax(max)] },
      },
      series: [
        { label: series.unit === 'hour' ? 'Hour' : 'Day', value: (u, v) => (v === null || !labels[v] ? '–' : longLabel(labels[v])) },
        { label: card.def.title, stroke: accent, width: 2, fill: cssVar('--chart-fill', 'rgba(47,111,222,0.08)'),
          points: { show: xs.length <= 60, size: 5 }, value: (u, v) => (v === null ? '–' : intFormat.format(v)) },
        { label: 'Previous period', stroke: muted, width: 1.5, dash: [5, 4], points: { show: false },
          value: (u, v, si, i) => (v === null || v === undefined ? '–' : `${intFormat.format(v)}${i !== null && prevLabels[i] ? ` (${shortLabel(prevLabels[i], true).replace('\n', ' ')})` : ''}`) },
      ],
      axes: [
        {
          stroke: ink, font: axisFont, grid: { show: false }, ticks: { stroke: grid, size: 4 },
          space: multi ? 64 : 52, size: multi ? 46 : 32,
          incrs: [1, 2, 3, 4, 6, 7, 12, 14, 24, 28, 48, 56, 72, 96, 168, 336, 504, 672, 1008],
          // Hour ticks a day or more apart all carry their date.
          values: (u, splits, ax, space, incr) => splits.map((i, n) =>
            (Number.isInteger(i) && labels[i] ? shortLabel(labels[i], n === 0 || incr >= 24) : '')),
        },
        {
          stroke: ink, font: axisFont, size: 48, grid: { stroke: grid, width: 1 }, ticks: { show: false },
          incrs: COUNT_INCRS, // counts: whole-number gridlines only
          values: (u, splits) => splits.map((v) => (v >= 10000 ? compactFormat.format(v) : intFormat.format(v))),
        },
      ],
    };
    card.plot = new window.uPlot(opts, [xs, ys, ps], card.chart);
    if (resizer) resizer.observe(card.chart);
  }

  const COUNT_INCRS = [1, 2, 5].flatMap((m) => [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9].map((e) => m * e))
    .sort((a, b) => a - b);

  /** A round top for the y axis, so gridlines land on readable numbers. */
  function niceMax(max) {
    if (max < 4) return 4;
    const mag = 10 ** Math.floor(Math.log10(max));
    for (const step of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) {
      if (step * mag >= max * 1.05) return step * mag;
    }
    return 10 * mag;
  }

  // ------------------------------------------------------------------ table and CSV

  function valueName(def) {
    return def.field;
  }

  function fillTable(card, series) {
    const { def } = card;
    const pts = series.current;
    const caption = pts.length
      ? `${def.title}${def.key === 'events' && view.event ? ` (${view.event})` : ''} per ${series.unit}, ` +
        `${pts[0].time} to ${pts[pts.length - 1].time}, with the previous period`
      : `${def.title}: no data`;
    const head = el('tr', null,
      el('th', { scope: 'col' }, 'Time'),
      el('th', { scope: 'col', class: 'num' }, def.title),
      el('th', { scope: 'col', class: 'num' }, 'Previous'));
    const rows = pts.map((p, i) => {
      const prev = series.previous[i];
      return el('tr', {
        dataset: { time: p.time, value: String(p.value), previous: prev ? String(prev.value) : '', previousTime: prev ? prev.time : '' },
      },
      el('th', { scope: 'row' }, p.time),
      el('td', { class: 'num' }, intFormat.format(p.value)),
      el('td', { class: 'num' }, prev ? intFormat.format(prev.value) : ''));
    });
    card.tableWrap.replaceChildren(el('table', { class: 'data-table' },
      el('caption', null, caption), el('thead', null, head), el('tbody', null, rows)));
  }

  function csvField(text) {
    const s = String(text);
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  }

  function slug(text) {
    return String(text).toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 60) || 'event';
  }

  /** The table's data as a file, made in the browser (no request). */
  function downloadCsv(card) {
    const series = card.series;
    if (!series || !series.current.length) return;
    const lines = [['time', valueName(card.def), 'previous'].map(csvField).join(',')];
    series.current.forEach((p, i) => {
      const prev = series.previous[i];
      lines.push([p.time, p.value, prev ? prev.value : ''].map(csvField).join(','));
    });
    const first = series.current[0].time.slice(0, 10);
    const last = series.current[series.current.length - 1].time.slice(0, 10);
    const name = card.def.key === 'events' ? `events-${slug(view.event)}` : card.def.key;
    const blob = new Blob([`${lines.join('\r\n')}\r\n`], { type: 'text/csv;charset=utf-8' });
    const url = URL.createObjectURL(blob);
    const a = el('a', { href: url, download: `${name}-${series.unit}-${first}-to-${last}.csv`, class: 'visually-hidden' });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  // ------------------------------------------------------------------ empty states

  function copyButton(getText, label) {
    const button = el('button', { type: 'button', class: 'btn btn-small' }, label || 'Copy');
    button.addEventListener('click', async () => {
      const text = getText();
      let ok = false;
      try {
        if (navigator.clipboard && window.isSecureContext) {
          await navigator.clipboard.writeText(text);
          ok = true;
        }
      } catch (e) {
        ok = false;
      }
      const original = label || 'Copy';
      button.textContent = ok ? 'Copied' : 'Press Ctrl+C';
      announce(ok ? 'Copied to the clipboard.' : 'Copying is not allowed here: the text is selected, press Ctrl+C (or ⌘C).');
      if (!ok) selectTextNear(button);
      setTimeout(() => { button.textContent = original; }, 2000);
    });
    return button;
  }

  /** Without the Clipboard API (plain HTTP), select the text so the person can copy it. */
  function selectTextNear(button) {
    const block = button.closest('.copyable');
    const code = block && block.querySelector('code');
    if (!code) return;
    const range = document.createRange();
    range.selectNodeContents(code);
    const sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }

  /** A block of code with a Copy button. */
  function codeBlock(text, label) {
    return el('div', { class: 'copyable' },
      el('pre', null, el('code', null, text)),
      copyButton(() => text, 'Copy'),
      label ? el('span', { class: 'visually-hidden' }, label) : null);
  }

  function shellQuote(text) {
    return /^[A-Za-z0-9._\/-]+$/.test(text) ? text : `'${String(text).replace(/'/g, "'\\''")}'`;
  }

  function pickedApp() {
    return ctx.apps.find((a) => a.app_id === view.app) || ctx.apps[0] || null;
  }

  /** What a new workspace does next: create an app, install the tracker, send events. */
  function renderOnboarding() {
    const section = $('onboarding');
    const body = $('onboarding-body');
    if (!ctx.workspace) return;
    if (!ctx.apps.length) {
      $('onboarding-title').textContent = 'Create your first app';
      body.replaceChildren(
        el('p', null, 'This workspace has no apps yet. An operator creates one on the server with the command line:'),
        codeBlock(`sessiontally app create --workspace ${shellQuote(ctx.workspace.name)} "My app" --platform web`),
        el('p', null, 'It prints the app id and its write key. Reload this page afterwards to see the app and its install snippet here.'));
      section.hidden = false;
      return;
    }
    if (!ctx.hasData || ctx.sessionsEmpty) {
      const app = pickedApp();
      $('onboarding-title').textContent = 'No sessions in this range yet';
      body.replaceChildren(
        el('p', null, ctx.hasData
          ? 'Nothing was recorded in the range shown: pick a longer range, another app or segment, or send data.'
          : 'Nothing has been recorded in this workspace yet.'),
        el('p', null, 'To count the visits of a web page, add this line to it (app ', el('strong', null, app.name), '):'),
        codeBlock(app.snippet || ''),
        el('p', null, 'Apps and back ends can also record sessions themselves with ',
          el('code', null, 'POST /sessions/track'), ' (an API key with the sessions.track permission), or send events with a Segment library. See the ',
          el('a', { href: '/docs' }, 'API reference'), '.'));
      section.hidden = false;
      return;
    }
    section.hidden = true;
    body.replaceChildren();
  }

  function renderNoEvents(card) {
    card.empty.replaceChildren(
      el('p', { class: 'empty-title' }, 'No custom events yet'),
      el('p', null, 'Once the tracker is on a page, send one from your code:'),
      codeBlock('sessiontally.track("Signed up");'),
      el('p', { class: 'muted' }, 'Apps instrumented with a Segment library send their track calls as they are.'));
    card.empty.hidden = false;
    card.chart.hidden = true;
    card.figure.textContent = '–';
    card.vs.textContent = '';
    card.chart.setAttribute('aria-label', 'Custom events: none recorded yet');
    setCardState(card, 'empty', '');
  }

  // ------------------------------------------------------------------ loading a view

  /** The custom-event names, all pages (250 a page), fetched once. */
  async function loadEventNames(signal) {
    if (ctx.events) return ctx.events;
    const names = [];
    for (let page = 0; page < 400; page += 1) {
      const body = await getJSON(`${API}/events/list`, { page: String(page) }, signal);
      const got = body && Array.isArray(body.events) ? body.events.map(String) : [];
      names.push(...got);
      if (got.length < EVENT_PAGE) break;
    }
    ctx.events = names;
    fillEventPicker();
    return names;
  }

  function fillEventPicker() {
    const select = $('pick-event');
    if (!select || !ctx.events) return;
    if (!ctx.events.includes(view.event)) {
      // Prefer an event of the app itself over Segment's lifecycle events.
      view.event = ctx.events.find((n) => !/^Application /.test(n)) || ctx.events[0] || '';
    }
    select.replaceChildren(...ctx.events.map((n) => el('option', { value: n, selected: n === view.event }, n)));
    select.disabled = !ctx.events.length;
    if (!ctx.events.length) select.append(el('option', { value: '' }, 'None yet'));
  }

  /** Load one card, cancelling its previous load. Returns when it is settled. */
  async function loadCard(card) {
    if (card.controller) card.controller.abort();
    const controller = new AbortController();
    const seq = (card.seq || 0) + 1;
    card.controller = controller;
    card.seq = seq;
    const { signal } = controller;
    const current = () => card.seq === seq;
    resetCard(card);
    card.sub.textContent = subtitle(card.def, card.def.units ? view.unit : 'day');
    try {
      if (card.def.key === 'events') {
        const names = await loadEventNames(signal);
        if (!current()) return 'stale';
        if (!names.length) {
          renderNoEvents(card);
          return 'ok';
        }
      }
      const series = await fetchSeries(card.def, signal);
      if (!current()) return 'stale';
      renderSeries(card, series);
      if (card.def.key === 'sessions') {
        ctx.sessionsEmpty = series.current.every((p) => p.value === 0);
        renderOnboarding();
      }
      return 'ok';
    } catch (err) {
      if ((err && err.name === 'AbortError') || !current()) return 'stale';
      card.error = err.message;
      setCardState(card, 'error', `Could not load this chart: ${err.message}`);
      card.vs.textContent = '';
      card.chart.setAttribute('aria-label', `${card.def.title}: could not load`);
      return err;
    }
  }

  /** Load cards concurrently (each card's own chain of pieces runs in sequence). */
  function runCards(list) {
    document.documentElement.dataset.charts = 'loading';
    announce('Loading charts…');
    for (const card of list) loadCard(card).then(settle, settle);
  }

  /** Once no card is loading (whichever load finished last, a whole view's or one
   * card's), the page is "ready" for tests and the live region says how it went. */
  function settle(outcome) {
    if (outcome === 'stale') return;
    const all = [...cards.values()];
    if (all.some((c) => c.node.dataset.state === 'loading')) return;
    document.documentElement.dataset.charts = 'ready';
    const failed = all.filter((c) => c.node.dataset.state === 'error');
    if (failed.length) announce(`${plural(failed.length, 'chart')} could not be loaded: ${failed[0].error}`);
    else announce(`Charts updated at ${new Date().toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}.`);
  }

  /** (Re)load every chart for the current view. Sessions go first: theirs is the first
   * request the browser sends. */
  function loadView() {
    ctx.sessionsEmpty = false;
    return runCards(['sessions', 'dau', 'mau', 'new_users', 'uninstalls', 'events'].map((k) => cards.get(k)));
  }

  // ------------------------------------------------------------------ pickers

  function fillRangePicker() {
    const select = $('pick-range');
    const word = view.unit === 'hour' ? 'hours' : 'days';
    const options = PRESETS[view.unit].map((n) =>
      el('option', { value: String(n), selected: view.range === n }, `Last ${n} ${word}`));
    options.push(el('option', { value: 'custom', selected: !view.range }, 'Custom range…'));
    select.replaceChildren(...options);
    $('custom-range').hidden = Boolean(view.range);
  }

  function syncControls() {
    $('pick-app').value = view.app;
    $('pick-segment').value = view.segment;
    $('pick-zone').value = effectiveZone();
    $('pick-unit').value = view.unit;
    fillRangePicker();
    if (view.from) $('pick-from').value = view.from;
    if (view.to) $('pick-to').value = view.to;
  }

  function fillContextPickers() {
    const apps = $('pick-app');
    apps.replaceChildren(el('option', { value: '' }, 'All apps'),
      ...ctx.apps.map((a) => el('option', { value: a.app_id }, a.platform ? `${a.name} (${a.platform})` : a.name)));
    const segs = $('pick-segment');
    segs.replaceChildren(el('option', { value: '' }, 'All users'),
      ...ctx.segments.map((s) => el('option', { value: s.segment_id, disabled: !s.tracked },
        s.tracked ? s.name : `${s.name} (tracking off)`)));
    // A view in the URL naming an app or segment unknown here: keep it in the list so
    // the picker says what is shown (the server answers with its own message).
    if (view.app && !ctx.apps.some((a) => a.app_id === view.app)) apps.append(el('option', { value: view.app }, 'Unknown app'));
    if (view.segment && !ctx.segments.some((s) => s.segment_id === view.segment)) segs.append(el('option', { value: view.segment }, 'Unknown segment'));
    const zones = new Set([ctx.workspace.time_zone, 'UTC']);
    try {
      for (const z of Intl.supportedValuesOf('timeZone')) zones.add(z);
    } catch (e) { /* older browsers: the two above */ }
    $('zone-list').replaceChildren(...[...zones].map((z) => el('option', { value: z })));
    if (view.zone === ctx.workspace.time_zone) view.zone = '';
    syncControls();
  }

  function onControlsChanged(target) {
    if (target.id === 'pick-app') view.app = target.value;
    else if (target.id === 'pick-segment') view.segment = target.value;
    else if (target.id === 'pick-unit') {
      view.unit = target.value === 'hour' ? 'hour' : 'day';
      if (view.range) view.range = DEFAULT_RANGE[view.unit];
      fillRangePicker();
    } else if (target.id === 'pick-range') {
      if (target.value === 'custom') {
        // Keep showing the current view until the person applies dates.
        const zone = effectiveZone();
        const to = view.to || todayIn(zone);
        $('pick-to').value = to;
        $('pick-from').value = view.from || addDays(to, view.unit === 'hour' ? -1 : -29);
        $('custom-range').hidden = false;
        $('pick-from').focus();
        return;
      }
      view.range = Number(target.value);
      view.from = '';
      view.to = '';
      $('custom-range').hidden = true;
    } else if (target.id === 'pick-zone') {
      const zone = target.value.trim();
      if (zone && !validZone(zone)) {
        announce(`“${zone}” is not a time zone this browser knows. Pick one from the list, such as Europe/Berlin.`);
        return;
      }
      view.zone = ctx.workspace && zone === ctx.workspace.time_zone ? '' : zone;
      target.value = effectiveZone();
    } else {
      return;
    }
    writeState();
    loadView();
  }

  /** Apply the custom dates (the form's submit: the Apply button or Enter). */
  function applyCustomRange() {
    const from = $('pick-from').value;
    const to = $('pick-to').value;
    if (!isDate(from) || !isDate(to)) {
      announce('Enter both dates of the custom range.');
      return;
    }
    if (from > to) {
      announce('The range starts after it ends: swap the two dates.');
      return;
    }
    const days = daysBetween(from, to) + 1;
    const points = view.unit === 'hour' ? days * 24 : days;
    if (points > MAX_CUSTOM[view.unit]) {
      announce(view.unit === 'hour'
        ? `Hourly ranges can be at most ${MAX_CUSTOM.hour / 24} days long; pick fewer days, or the day unit.`
        : `Daily ranges can be at most ${intFormat.format(MAX_CUSTOM.day)} days long.`);
      return;
    }
    view.from = from;
    view.to = to;
    view.range = 0;
    writeState();
    loadView();
  }

  function wireControls() {
    const form = $('view');
    form.addEventListener('change', (e) => {
      if (e.target.id === 'pick-from' || e.target.id === 'pick-to') return; // applied on submit
      onControlsChanged(e.target);
    });
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      if (document.activeElement && document.activeElement.id === 'pick-zone') {
        onControlsChanged(document.activeElement);
        return;
      }
      if (!$('custom-range').hidden) applyCustomRange();
    });
  }

  // ------------------------------------------------------------------ apps panel

  function renderApps() {
    const list = $('app-list');
    if (!ctx.apps.length) {
      list.replaceChildren(el('p', { class: 'muted' }, 'No apps yet: see “Create your first app” above.'));
      return;
    }
    list.replaceChildren(...ctx.apps.map((app) => el('article', { class: 'app-card', 'aria-label': `App ${app.name}` },
      el('div', { class: 'app-head' },
        el('h3', null, app.name),
        app.platform ? el('span', { class: 'badge' }, app.platform) : null),
      el('dl', { class: 'app-facts' },
        el('div', null, el('dt', null, 'App id'), el('dd', null, el('code', null, app.app_id))),
        el('div', { class: 'copyable' }, el('dt', null, 'Write key'),
          el('dd', null, el('code', null, app.write_key), ' ', copyButton(() => app.write_key, 'Copy')))),
      el('p', { class: 'app-snippet-label' }, 'Install on a web page'),
      codeBlock(app.snippet || ''))));
  }

  // ------------------------------------------------------------------ start

  async function loadContext() {
    try {
      const body = await getJSON(CONTEXT_URL);
      ctx.workspace = body.workspace || { name: '', time_zone: 'UTC' };
      ctx.apps = Array.isArray(body.apps) ? body.apps : [];
      ctx.segments = Array.isArray(body.segments) ? body.segments : [];
      ctx.hasData = body.has_data !== false;
      fillContextPickers();
      writeState();
      renderApps();
      renderOnboarding();
      // Subtitles name the zone, app and segment, known only now.
      for (const card of cards.values()) {
        if (card.series) card.sub.textContent = subtitle(card.def, card.series.unit);
        else card.sub.textContent = subtitle(card.def, card.def.units ? view.unit : 'day');
      }
    } catch (err) {
      announce(`Could not load the workspace: ${err.message}`);
      $('app-list').replaceChildren(el('p', { class: 'card-error' }, `Could not load the apps: ${err.message}`));
    }
  }

  function start() {
    view = readState();
    document.documentElement.dataset.charts = 'loading';
    const grid = $('charts');
    for (const def of CHARTS) {
      const card = buildCard(def);
      cards.set(def.key, card);
      grid.append(card.node);
    }
    syncControls();
    wireControls();
    writeState();
    // The charts need nothing from the context (the URL has the view), so the sessions
    // request leaves first and the context is read beside it.
    loadView();
    loadContext();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
