// Bar charts drawn as inline SVG, no libraries. Horizontal bars with the label above each
// bar, so that long village names stay readable on a 360 px wide phone.

const SVG_NS = 'http://www.w3.org/2000/svg';

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value != null) node.setAttribute(key, String(value));
  }
  if (text != null) node.textContent = String(text);
  return node;
}

// Rough width of a text in px at `size`: CJK characters are about one em wide, others
// about 0.58 em. Good enough to decide where to cut a label.
function textWidth(text, size) {
  let width = 0;
  for (const ch of text) width += (ch.codePointAt(0) > 0x2e80 ? 1 : 0.58) * size;
  return width;
}

function fitText(text, size, maxWidth) {
  if (textWidth(text, size) <= maxWidth) return text;
  let out = '';
  for (const ch of text) {
    if (textWidth(out + ch + '…', size) > maxWidth) break;
    out += ch;
  }
  return out + '…';
}

/**
 * A horizontal bar chart.
 *
 * items: [{label, value, display?}] drawn in the given order; `display` is the text shown
 *   after the bar (default `format(value)`).
 * options: {max (default the largest value), format, title (the chart's accessible name),
 *   empty (text when there are no items), width (viewBox width, default 320),
 *   color, track (draw the full scale behind each bar, default true)}.
 * Returns an <svg> element that scales to its container's width.
 */
export function barChart(items, options = {}) {
  const {
    format = (value) => String(value),
    title = '',
    empty = '—',
    width = 320,
    color = '#1f6fd1',
    track = true,
  } = options;
  const rows = Array.isArray(items) ? items : [];
  const largest = rows.reduce((m, item) => Math.max(m, Number(item.value) || 0), 0);
  const max = options.max != null ? options.max : largest;

  const labelSize = 13;
  const valueSize = 12;
  const rowHeight = 42;
  const barHeight = 14;
  const shownOf = (item) => (item.display != null ? String(item.display) : format(Math.max(0, Number(item.value) || 0)));
  // Room after the bars for the widest value text, within 15–40 % of the width.
  const widest = rows.reduce((m, item) => Math.max(m, textWidth(shownOf(item), valueSize)), 0);
  const valueWidth = Math.round(Math.min(width * 0.4, Math.max(width * 0.15, widest + 12)));
  const barArea = width - valueWidth;
  const height = rows.length ? rows.length * rowHeight + 4 : 40;

  const root = svg('svg', {
    viewBox: `0 0 ${width} ${height}`,
    width: '100%',
    role: 'img',
    'aria-label': title,
    preserveAspectRatio: 'xMinYMin meet',
    class: 'cs-chart',
  });
  root.style.display = 'block';
  root.style.maxWidth = `${width * 1.6}px`;
  if (title) root.append(svg('title', {}, title));

  if (!rows.length) {
    root.append(svg('text', { x: 0, y: 24, 'font-size': labelSize, fill: '#52606d' }, empty));
    return root;
  }

  rows.forEach((item, index) => {
    const value = Math.max(0, Number(item.value) || 0);
    const y = index * rowHeight;
    const shown = shownOf(item);
    const label = String(item.label ?? '');
    const group = svg('g', { class: 'cs-bar', 'data-label': label, 'data-value': value });
    group.append(svg('title', {}, `${label}: ${shown}`));
    group.append(
      svg('text', { x: 0, y: y + 15, 'font-size': labelSize, fill: '#1f2933' }, fitText(label, labelSize, width)),
    );
    const barY = y + 22;
    if (track) {
      group.append(svg('rect', { x: 0, y: barY, width: barArea, height: barHeight, rx: 3, fill: '#e4e9f0' }));
    }
    const share = max > 0 ? Math.min(1, value / max) : 0;
    const barWidth = value > 0 ? Math.max(2, share * barArea) : 0;
    if (barWidth > 0) {
      group.append(svg('rect', { x: 0, y: barY, width: barWidth.toFixed(1), height: barHeight, rx: 3, fill: item.color || color }));
    }
    group.append(
      svg(
        'text',
        {
          x: barArea + 6,
          y: barY + barHeight - 2,
          'font-size': valueSize,
          fill: '#1f2933',
          'font-weight': '600',
        },
        fitText(shown, valueSize, valueWidth - 6),
      ),
    );
    root.append(group);
  });
  return root;
}
