// Draws the opinion desk's charts from the figures each page embeds with json_script: the
// sentiment trend, the district map of warnings, and a warning's level and indicator history.
// Text from the server only ever reaches the page as ECharts canvas text or escaped tooltip HTML.
(function () {
  "use strict";
  const charts = [];
  const read = (id) => {
    const node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  };
  const make = (id) => {
    const node = document.getElementById(id);
    if (!node) return null;
    const chart = echarts.init(node, null, { renderer: "canvas" });
    charts.push(chart);
    return chart;
  };
  const escape = (value) => String(value == null ? "" : value).replace(/[&<>"']/g, (c) => (
    { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));

  function drawTrend(data) {
    const chart = make("chart-trend");
    if (!chart) return;
    chart.setOption({
      tooltip: { trigger: "axis" },
      legend: { top: 0 },
      grid: { left: 60, right: 60, top: 36, bottom: 60 },
      dataZoom: [{ type: "inside" }, { type: "slider", height: 18, bottom: 8 }],
      xAxis: { type: "category", data: data.days },
      yAxis: [
        { type: "value", name: data.labels.posts },
        { type: "value", name: "%", min: 0, max: 100, splitLine: { show: false } },
      ],
      series: [
        { name: data.labels.posts, type: "bar", data: data.posts, itemStyle: { color: "#2f6fb0" } },
        { name: data.labels.voices, type: "bar", data: data.voices, barGap: "-100%",
          itemStyle: { color: "#8fb8de" } },
        { name: data.labels.negative_share, type: "line", yAxisIndex: 1, data: data.negative_share,
          connectNulls: false, showSymbol: false, itemStyle: { color: "#d7263d" } },
      ],
    });
  }

  function drawMap(data) {
    const node = document.getElementById("chart-map");
    const located = data.districts.filter((d) => d.polygon);
    if (!node || !located.length) return;
    const mapName = "opinion-" + data.city.code;
    echarts.registerMap(mapName, {
      type: "FeatureCollection",
      features: located.map((d) => ({ type: "Feature", properties: { name: d.code }, geometry: d.polygon })),
    });
    const byCode = Object.fromEntries(data.districts.map((d) => [d.code, d]));
    const chart = make("chart-map");
    chart.setOption({
      tooltip: {
        trigger: "item",
        formatter: (p) => {
          const d = byCode[p.name];
          if (!d) return "";
          return escape(d.name) + "<br>" + escape(data.labels.level) + ": " + escape(d.level_name) +
            "<br>" + escape(data.labels.warnings) + ": " + escape(d.warnings);
        },
      },
      series: [{
        type: "map", map: mapName, roam: true, selectedMode: false,
        label: { show: true, formatter: (p) => (byCode[p.name] ? byCode[p.name].name : "") },
        itemStyle: { borderColor: "#fff", borderWidth: 1 },
        emphasis: { label: { show: true }, itemStyle: { areaColor: null, borderColor: "#14213d", borderWidth: 2 } },
        data: located.map((d) => ({ name: d.code, value: d.level || 0, itemStyle: { areaColor: d.colour } })),
      }],
    });
    chart.on("click", (p) => {
      if (byCode[p.name]) window.location.search = "?area=" + encodeURIComponent(p.name);
    });
  }

  function drawHistory(data) {
    // the level as a height: I (most severe) on top, "closed" at the bottom
    const height = (level) => (level ? 5 - level : 0);
    const levelOf = { 4: 1, 3: 2, 2: 3, 1: 4 };
    const levels = make("chart-levels");
    if (levels) {
      levels.setOption({
        tooltip: { trigger: "axis", formatter: (ps) => {
          const p = ps[0];
          const level = levelOf[p.value];
          return escape(p.name) + "<br>" + escape(level ? data.roman[level] : data.labels.closed);
        } },
        grid: { left: 60, right: 24, top: 24, bottom: 30 },
        xAxis: { type: "category", data: data.at },
        yAxis: { type: "value", min: 0, max: 4, interval: 1,
                 axisLabel: { formatter: (v) => (levelOf[v] ? data.roman[levelOf[v]] : data.labels.closed) } },
        series: [{
          type: "line", step: "end", symbolSize: 10, lineStyle: { color: "#8a97a6" },
          data: data.levels.map((level) => ({
            value: height(level), itemStyle: { color: level ? data.colours[level] : "#8a97a6" },
          })),
        }],
      });
    }
    const indicators = make("chart-indicators");
    if (indicators && data.series.length) {
      // one indicator at a time: their scales differ by orders of magnitude
      const selected = Object.fromEntries(data.series.map((s, i) => [s.name, i === 0]));
      indicators.setOption({
        tooltip: { trigger: "axis" },
        legend: { top: 0, type: "scroll", selectedMode: "single", selected: selected },
        grid: { left: 70, right: 20, top: 40, bottom: 30 },
        xAxis: { type: "category", data: data.at },
        yAxis: { type: "value", scale: true },
        series: data.series.map((s) => ({ name: s.name, type: "line", data: s.values, connectNulls: true })),
      });
    }
  }

  const trend = read("opinion-trend-data");
  if (trend) drawTrend(trend);
  const map = read("opinion-map-data");
  if (map) drawMap(map);
  const history = read("opinion-warning-data");
  if (history) drawHistory(history);

  window.addEventListener("resize", () => charts.forEach((c) => c.resize()));
  document.body.dataset.chartsReady = "1";
})();
