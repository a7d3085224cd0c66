/**
 * The latency chart: cumulative distribution of per-member latency (log-scale x), one curve
 * per path, and next to it the throughput ramp (offered vs delivered signups/s). Plain SVG,
 * no dependencies.
 */
export interface Curve {
  label: string;
  color: string;
  samplesMs: number[];
}

export interface RampSeries {
  label: string;
  color: string;
  steps: { offered: number; delivered: number; sustained: boolean }[];
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function latencyChart(title: string, curves: Curve[], ramps: RampSeries[]): string {
  const W = 1100;
  const H = 460;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`,
  ];

  // ---- left: CDF, log x from 10 ms to the largest sample
  const L = { x: 70, y: 50, w: 560, h: 340 };
  const all = curves.flatMap((c) => c.samplesMs).filter((v) => v > 0);
  const minX = 10;
  const maxX = Math.max(1000, 10 ** Math.ceil(Math.log10(Math.max(...all, 1000))));
  const sx = (ms: number): number => L.x + ((Math.log10(Math.max(minX, ms)) - Math.log10(minX)) / (Math.log10(maxX) - Math.log10(minX))) * L.w;
  const sy = (f: number): number => L.y + L.h - f * L.h;
  out.push(`<text x="${L.x + L.w / 2}" y="${L.y - 8}" text-anchor="middle" font-weight="bold">Commit → SFMC accepted, per member (CDF)</text>`);
  for (let d = minX; d <= maxX; d *= 10) {
    for (const m of [1, 2, 5]) {
      const v = d * m;
      if (v > maxX) break;
      const x = sx(v);
      out.push(`<line x1="${x}" y1="${L.y}" x2="${x}" y2="${L.y + L.h}" stroke="${m === 1 ? '#ccc' : '#eee'}"/>`);
      if (m === 1 || m === 5) out.push(`<text x="${x}" y="${L.y + L.h + 16}" text-anchor="middle">${v >= 1000 ? `${v / 1000} s` : `${v} ms`}</text>`);
    }
  }
  for (const f of [0, 0.25, 0.5, 0.75, 0.95, 0.99]) {
    out.push(
      `<line x1="${L.x}" y1="${sy(f)}" x2="${L.x + L.w}" y2="${sy(f)}" stroke="${[0.5, 0.95, 0.99].includes(f) ? '#bbb' : '#eee'}" ${[0.95, 0.99].includes(f) ? 'stroke-dasharray="4 3"' : ''}/>`,
    );
    const dy = f === 0.99 ? -1 : f === 0.95 ? 8 : 4; // p95 and p99 sit 4 % apart: keep their labels apart
    out.push(
      `<text x="${L.x - 6}" y="${sy(f) + dy}" text-anchor="end">${f === 0.95 || f === 0.99 ? `p${Math.round(f * 100)}` : `${Math.round(f * 100)}%`}</text>`,
    );
  }
  out.push(`<rect x="${L.x}" y="${L.y}" width="${L.w}" height="${L.h}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${L.x + L.w / 2}" y="${L.y + L.h + 34}" text-anchor="middle">latency (log scale)</text>`);
  curves.forEach((c, ci) => {
    const s = [...c.samplesMs].sort((a, b) => a - b);
    if (s.length === 0) return;
    const step = Math.max(1, Math.floor(s.length / 600));
    const pts: string[] = [];
    for (let i = 0; i < s.length; i += step) pts.push(`${sx(s[i] as number).toFixed(1)},${sy((i + 1) / s.length).toFixed(1)}`);
    pts.push(`${sx(s[s.length - 1] as number).toFixed(1)},${sy(1).toFixed(1)}`);
    out.push(`<polyline fill="none" stroke="${c.color}" stroke-width="2" points="${pts.join(' ')}"/>`);
    out.push(
      `<rect x="${L.x + 10}" y="${L.y + 30 + ci * 18}" width="14" height="4" fill="${c.color}"/><text x="${L.x + 30}" y="${L.y + 36 + ci * 18}">${esc(c.label)}</text>`,
    );
  });

  // ---- right: ramp, offered vs delivered
  const R = { x: 730, y: 50, w: 340, h: 340 };
  const maxRate = Math.max(100, ...ramps.flatMap((r) => r.steps.flatMap((s) => [s.offered, s.delivered])));
  const top = Math.ceil(maxRate / 500) * 500;
  const rx = (v: number): number => R.x + (v / top) * R.w;
  const ry = (v: number): number => R.y + R.h - (v / top) * R.h;
  out.push(`<text x="${R.x + R.w / 2}" y="${R.y - 8}" text-anchor="middle" font-weight="bold">Throughput ramp: delivered vs offered</text>`);
  for (let v = 0; v <= top; v += top / 5) {
    out.push(
      `<line x1="${rx(v)}" y1="${R.y}" x2="${rx(v)}" y2="${R.y + R.h}" stroke="#eee"/><text x="${rx(v)}" y="${R.y + R.h + 16}" text-anchor="middle">${v}</text>`,
    );
    out.push(
      `<line x1="${R.x}" y1="${ry(v)}" x2="${R.x + R.w}" y2="${ry(v)}" stroke="#eee"/><text x="${R.x - 6}" y="${ry(v) + 4}" text-anchor="end">${v}</text>`,
    );
  }
  out.push(`<line x1="${rx(0)}" y1="${ry(0)}" x2="${rx(top)}" y2="${ry(top)}" stroke="#999" stroke-dasharray="4 3"/>`);
  out.push(`<rect x="${R.x}" y="${R.y}" width="${R.w}" height="${R.h}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${R.x + R.w / 2}" y="${R.y + R.h + 34}" text-anchor="middle">offered signups/s (inserted)</text>`);
  out.push(`<text transform="translate(${R.x - 44},${R.y + R.h / 2}) rotate(-90)" text-anchor="middle">delivered to SFMC /s</text>`);
  ramps.forEach((r, ri) => {
    const pts = r.steps.map((s) => `${rx(s.offered).toFixed(1)},${ry(s.delivered).toFixed(1)}`);
    out.push(`<polyline fill="none" stroke="${r.color}" stroke-width="2" points="${pts.join(' ')}"/>`);
    for (const s of r.steps)
      out.push(
        `<circle cx="${rx(s.offered)}" cy="${ry(s.delivered)}" r="4" fill="${s.sustained ? r.color : 'white'}" stroke="${r.color}" stroke-width="2"/>`,
      );
    out.push(
      `<rect x="${R.x + 10}" y="${R.y + 10 + ri * 18}" width="14" height="4" fill="${r.color}"/><text x="${R.x + 30}" y="${R.y + 16 + ri * 18}">${esc(r.label)}</text>`,
    );
  });
  out.push(`<text x="${R.x + 10}" y="${R.y + 16 + ramps.length * 18}" fill="#555">filled = lag bounded, open = not</text>`);
  out.push('</svg>');
  return out.join('\n');
}
