// A sparkline drawn as a few SVG lines: the overview is the first page a signed-in user sees, and
// the charts library (recharts, about 110 kB gzipped) would more than double what it loads.
import { useMantineTheme } from "@mantine/core";

export type SparklineSeries = { label: string; values: number[]; color: string };

/** Lines over the same x axis (one point per value), scaled to the largest value of all. Read by
 * screen readers as its `label`, which should say what the lines show in words. */
export function Sparkline({ series, label, height = 48 }: { series: SparklineSeries[]; label: string; height?: number }) {
  const theme = useMantineTheme();
  const width = 240;
  const points = Math.max(...series.map((s) => s.values.length), 2);
  const top = Math.max(1, ...series.flatMap((s) => s.values));
  const x = (i: number) => (i / (points - 1)) * width;
  const y = (v: number) => height - 2 - (v / top) * (height - 4);
  const colorOf = (name: string) => theme.colors[name]?.[6] ?? name;
  return (
    <svg role="img" aria-label={label} viewBox={`0 0 ${width} ${height}`} preserveAspectRatio="none" width="100%" height={height} style={{ display: "block" }}>
      <title>{label}</title>
      <line x1={0} x2={width} y1={height - 1} y2={height - 1} stroke="currentColor" strokeOpacity={0.15} />
      {series.map((s, index) => (
        <polyline
          key={s.label}
          data-series={s.label}
          fill={index === 0 ? colorOf(s.color) : "none"}
          fillOpacity={index === 0 ? 0.12 : 0}
          stroke={colorOf(s.color)}
          strokeWidth={1.5}
          vectorEffect="non-scaling-stroke"
          points={[
            ...(index === 0 ? [`0,${height - 1}`] : []),
            ...s.values.map((v, i) => `${x(i)},${y(v)}`),
            ...(index === 0 ? [`${x(s.values.length - 1)},${height - 1}`] : []),
          ].join(" ")}
        />
      ))}
    </svg>
  );
}
