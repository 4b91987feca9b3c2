// Draws a dataset's quality history (overall and per dimension, one point per version) from the
// figures the page embeds with json_script. Names reach the page only as ECharts canvas text.
(function () {
  "use strict";
  const source = document.getElementById("catalog-quality-data");
  const node = document.getElementById("chart-quality");
  if (!source || !node || typeof echarts === "undefined") return;
  const data = JSON.parse(source.textContent);
  const percent = (v) => (v == null ? null : Math.round(v * 10000) / 100);
  const chart = echarts.init(node, null, { renderer: "canvas" });
  chart.setOption({
    tooltip: { trigger: "axis", valueFormatter: (v) => (v == null ? "—" : v + "%") },
    legend: { top: 0 },
    grid: { left: 50, right: 24, top: 40, bottom: 30 },
    xAxis: { type: "category", data: data.versions },
    yAxis: { type: "value", min: 0, max: 100, axisLabel: { formatter: "{value}%" } },
    series: data.series.map((s) => ({
      name: s.name,
      type: "line",
      data: s.data.map(percent),
      connectNulls: false,
      lineStyle: { width: s.key === "overall" ? 3 : 1.5 },
      symbolSize: s.key === "overall" ? 8 : 5,
    })),
  });
  window.addEventListener("resize", () => chart.resize());
})();
