/** A small SVG line chart of loss curves (no dependencies): one polyline per series. */
export interface Series {
  name: string;
  color: string;
  points: { x: number; y: number }[];
}

export function lossChartSvg(title: string, series: Series[]): string {
  const W = 640, H = 360, L = 56, R = 16, T = 36, B = 44;
  const all = series.flatMap((s) => s.points);
  const xMax = Math.max(1, ...all.map((p) => p.x)), yMax = Math.max(1e-9, ...all.map((p) => p.y)) * 1.05;
  const sx = (x: number) => L + (x / xMax) * (W - L - R), sy = (y: number) => H - B - (y / yMax) * (H - T - B);
  const ticks = (max: number, n: number) => Array.from({ length: n + 1 }, (_, i) => (max * i) / n);
  const esc = (s: string) => s.replace(/[<&>]/g, (c) => ({ "<": "&lt;", "&": "&amp;", ">": "&gt;" })[c]!);
  const lines = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>`,
    `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="black"/>`,
    `<line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="black"/>`,
    ...ticks(xMax, 5).map((x) =>
      `<text x="${sx(x).toFixed(1)}" y="${H - B + 16}" text-anchor="middle">${Math.round(x)}</text>`
    ),
    ...ticks(yMax, 4).map((y) =>
      `<text x="${L - 6}" y="${(sy(y) + 4).toFixed(1)}" text-anchor="end">${y.toFixed(2)}</text>`
    ),
    `<text x="${(L + W - R) / 2}" y="${H - 8}" text-anchor="middle">iteration</text>`,
    `<text x="14" y="${(T + H - B) / 2}" text-anchor="middle" transform="rotate(-90 14 ${
      (T + H - B) / 2
    })">loss</text>`,
    ...series.map((s) =>
      `<polyline fill="none" stroke="${s.color}" stroke-width="1.5" points="${
        s.points.map((p) => `${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(" ")
      }"/>`
    ),
    ...series.map((s, i) =>
      `<g><line x1="${W - R - 150}" y1="${T + 8 + 18 * i}" x2="${W - R - 126}" y2="${
        T + 8 + 18 * i
      }" stroke="${s.color}" stroke-width="2"/>` +
      `<text x="${W - R - 120}" y="${T + 12 + 18 * i}">${esc(s.name)}</text></g>`
    ),
    "</svg>",
  ];
  return lines.join("\n") + "\n";
}
