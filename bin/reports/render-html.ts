/**
 * The report as ONE self-contained HTML file: inline CSS, inline SVG charts (outcomes, skip reasons, coverage over
 * the last runs) and a small inline script that sorts the functions table. No network at view time (a
 * Content-Security-Policy of `default-src 'none'` forbids it), works from file://. Every name, tag value, reason
 * and message goes through `escapeHtml`: function names and tag values are attacker-controlled. PURE.
 */
import type { ReportModel } from './report-model';
import { fixLine } from './report-render';
import { percent } from './text';

/** Escapes the five characters that matter in HTML text and in double- or single-quoted attributes. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Outcome colours (also what the screenshot check looks for). */
export const OUTCOME_COLOURS: Readonly<Record<string, string>> = {
  PROTECTED: '#1e8449',
  ALREADY_PROTECTED: '#117864',
  WOULD_PROTECT: '#58d68d',
  SKIPPED: '#e67e22',
  DEFERRED: '#8e44ad',
  FAILED: '#c0392b',
  ROLLED_BACK: '#566573',
  PENDING: '#f1c40f',
};
export const SKIP_COLOUR = '#d35400';
export const COVERAGE_COLOUR = '#2874a6';

const e = escapeHtml;

interface Bar {
  label: string;
  value: number;
  colour: string;
  title: string;
}

/** A horizontal bar chart. */
function barChart(id: string, title: string, bars: readonly Bar[]): string {
  const rowHeight = 26;
  const labelWidth = 230;
  const barWidth = 420;
  const height = Math.max(1, bars.length) * rowHeight + 10;
  const max = Math.max(1, ...bars.map((b) => b.value));
  const rows = bars.map((bar, i) => {
    const y = 5 + i * rowHeight;
    const w = Math.max(2, Math.round((bar.value / max) * barWidth));
    return [
      `<text x="${labelWidth - 8}" y="${y + 17}" text-anchor="end">${e(bar.label)}</text>`,
      `<rect x="${labelWidth}" y="${y + 3}" width="${w}" height="${rowHeight - 8}" fill="${bar.colour}"><title>${e(bar.title)}</title></rect>`,
      `<text x="${labelWidth + w + 6}" y="${y + 17}">${bar.value}</text>`,
    ].join('');
  });
  const empty = bars.length === 0 ? `<text x="10" y="20">none</text>` : '';
  return `<figure><figcaption>${e(title)}</figcaption><svg id="${id}" role="img" aria-label="${e(title)}" width="${labelWidth + barWidth + 60}" height="${height}" viewBox="0 0 ${labelWidth + barWidth + 60} ${height}">${rows.join('')}${empty}</svg></figure>`;
}

/** Coverage over the last runs: one column per run (share protected), oldest left. */
function coverageChart(model: ReportModel): string {
  const points = model.coverage;
  const columnWidth = 46;
  const chartHeight = 160;
  const width = Math.max(1, points.length) * columnWidth + 50;
  const columns = points.map((p, i) => {
    const h = Math.max(2, Math.round(p.share * chartHeight));
    const x = 40 + i * columnWidth;
    return `<rect x="${x}" y="${10 + chartHeight - h}" width="${columnWidth - 12}" height="${h}" fill="${COVERAGE_COLOUR}"><title>${e(`${p.runId}: ${p.protected}/${p.total} protected (${percent(p.share)})`)}</title></rect><text x="${x}" y="${chartHeight + 26}">${i + 1}</text>`;
  });
  const axis = `<line x1="36" y1="10" x2="36" y2="${chartHeight + 10}" stroke="#888"/><text x="0" y="18">100%</text><text x="8" y="${chartHeight + 10}">0%</text>`;
  return `<figure><figcaption>Coverage ($LATEST protected) over the last ${points.length} run(s), oldest first</figcaption><svg id="coverage-chart" role="img" aria-label="coverage over the last runs" width="${width}" height="${chartHeight + 36}" viewBox="0 0 ${width} ${chartHeight + 36}">${axis}${columns.join('')}</svg></figure>`;
}

const STYLE = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1b1b1b;max-width:1200px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#555}.charts{display:flex;flex-wrap:wrap;gap:24px}figure{margin:0}figcaption{font-weight:600;margin-bottom:4px}
svg text{font:12px system-ui,sans-serif;fill:#333}table{border-collapse:collapse;width:100%}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f4f6f7;cursor:pointer;user-select:none}th[aria-sort=ascending]::after{content:" \\25B2"}
th[aria-sort=descending]::after{content:" \\25BC"}td.num{text-align:right}pre{white-space:pre-wrap;margin:0;font:inherit}
.team{margin:12px 0}.team h3{font-size:15px;margin:0 0 4px}ul{margin:4px 0 4px 18px;padding:0}
`;

/** Sorts the table on a header click; numbers numerically. Runs from file:// (inline, allowed by the CSP). */
const SCRIPT = `
document.querySelectorAll('table.sortable th').forEach(function (th, index) {
  th.addEventListener('click', function () {
    var table = th.closest('table'), body = table.tBodies[0];
    var ascending = th.getAttribute('aria-sort') !== 'ascending';
    table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[index].textContent, y = b.cells[index].textContent;
      var nx = Number(x), ny = Number(y);
      var c = (!isNaN(nx) && !isNaN(ny) && x !== '' && y !== '') ? nx - ny : x.localeCompare(y);
      return ascending ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
`;

export function reportHtml(model: ReportModel, generatedAt: string): string {
  const outcomeBars: Bar[] = Object.entries(model.outcomes).map(([outcome, count]) => ({
    label: outcome,
    value: count,
    colour: OUTCOME_COLOURS[outcome] ?? '#7f8c8d',
    title: `${outcome}: ${count}`,
  }));
  const skipBars: Bar[] = model.skips.map((s) => ({
    label: s.reason,
    value: s.count,
    colour: SKIP_COLOUR,
    title: `${s.reason}: ${s.message}`,
  }));
  const skipsTable = model.skips
    .map(
      (s) =>
        `<tr><td>${e(s.reason)}</td><td class="num">${s.count}</td><td>${e(s.message)}</td><td>${e(s.remediation)}</td><td>${e(s.functions.join(', '))}</td></tr>`,
    )
    .join('');
  const teams = model.teams
    .filter((t) => t.functions.length > 0)
    .map((t) => {
      const items = t.functions
        .map(
          (row) =>
            `<li><strong>${e(row.functionName)}</strong> (${e(row.outcome)})<ul>${row.fixes.map((f) => `<li>${e(fixLine(f))}</li>`).join('')}${row.fixes.length === 0 && row.detail !== undefined ? `<li>${e(row.detail)}</li>` : ''}</ul></li>`,
        )
        .join('');
      return `<div class="team"><h3>${e(t.team)}: ${t.functions.length} of ${t.total} function(s) need a change</h3><ul>${items}</ul></div>`;
    })
    .join('');
  const warnings = model.warnings
    .map((w) => `<tr><td>${e(w.warning)}</td><td>${e(w.message)}</td><td>${e(w.functions.join(', '))}</td></tr>`)
    .join('');
  const changes = model.changes
    .map((c) => `<tr><td>${e(c.functionName)}</td><td>${e(c.from ?? '(new)')}</td><td>${e(c.to)}</td></tr>`)
    .join('');
  const functions = model.functions
    .map(
      (row) =>
        `<tr><td>${e(row.functionName)}</td><td>${e(row.owner)}</td><td>${e(row.outcome)}</td><td>${e(row.reasons.join(', '))}</td><td>${e(row.warnings.join(', '))}</td><td><pre>${e(row.fixes.map(fixLine).join('\n'))}</pre></td></tr>`,
    )
    .join('');
  const events = model.runEvents.map((ev) => `<p>${e(`${ev.outcome}: ${ev.detail}`)}</p>`).join('');
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${e(`Zero-Impact Protect report: run ${model.runId}`)}</title><style>${STYLE}</style></head>
<body>
<h1>Zero-Impact Protect: run ${e(model.runId)}</h1>
<p class="meta">Mode ${e(model.mode)}; started ${e(model.startedAt)}; account ${e(model.account ?? 'unknown')}, region ${e(model.region ?? 'unknown')}; ${model.total} functions; generated ${e(generatedAt)}.</p>
${events}
<div class="charts">
${barChart('outcomes-chart', 'Outcomes', outcomeBars)}
${barChart('skips-chart', 'Skip reasons', skipBars)}
${coverageChart(model)}
</div>
<h2>Skipped, by reason</h2>
<table><thead><tr><th>Reason</th><th>Count</th><th>Gate</th><th>What to change</th><th>Functions</th></tr></thead><tbody>${skipsTable}</tbody></table>
<h2>By owner team</h2>${teams.length > 0 ? teams : '<p>Nothing to change.</p>'}
<h2>Warnings</h2>${warnings.length > 0 ? `<table><thead><tr><th>Warning</th><th>Meaning</th><th>Functions</th></tr></thead><tbody>${warnings}</tbody></table>` : '<p>None.</p>'}
<h2>Changed in this run</h2>${changes.length > 0 ? `<table><thead><tr><th>Function</th><th>Before</th><th>Now</th></tr></thead><tbody>${changes}</tbody></table>` : '<p>Nothing.</p>'}
<h2>Functions</h2>
<table class="sortable" id="functions"><thead><tr><th>Function</th><th>Owner</th><th>Outcome</th><th>Reasons</th><th>Warnings</th><th>What to change</th></tr></thead><tbody>${functions}</tbody></table>
<script>${SCRIPT}</script>
</body></html>
`;
}
