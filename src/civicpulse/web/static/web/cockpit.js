// Draws the cockpit's charts from the figures the page embeds (no extra requests), and lets a
// click on the map or a bar drill down to that area.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("cockpit-data").textContent);
  const drill = (code) => { if (code) window.location.search = "?area=" + encodeURIComponent(code); };
  const byName = Object.fromEntries(data.children.map((c) => [c.name, c]));
  const charts = [];
  const make = (id) => { const c = echarts.init(document.getElementById(id), null, { renderer: "canvas" }); charts.push(c); return c; };

  const features = data.children.filter((c) => c.polygon).map((c) => ({
    type: "Feature", properties: { name: c.name }, geometry: c.polygon,
  }));
  if (features.length) {
    echarts.registerMap("area-" + data.area.code, { type: "FeatureCollection", features: features });
    const counts = data.children.map((c) => c.count);
    const map = make("chart-map");
    map.setOption({
      tooltip: { trigger: "item" },
      visualMap: { min: Math.min(...counts), max: Math.max(...counts, 1), calculable: true,
                   inRange: { color: ["#e0f3f8", "#fdae61", "#d73027"] }, left: 0, bottom: 0 },
      series: [{ type: "map", map: "area-" + data.area.code, roam: true,
                 label: { show: data.children.length <= 6 },
                 data: data.children.map((c) => ({ name: c.name, value: c.count })) }],
    });
    map.on("click", (p) => drill(byName[p.name] && byName[p.name].code));
  }

  const bars = make("chart-children");
  bars.setOption({
    tooltip: {}, grid: { left: 110, right: 20, top: 10, bottom: 30 },
    xAxis: { type: "value" },
    yAxis: { type: "category", inverse: true, data: data.children.map((c) => c.name) },
    series: [{ type: "bar", data: data.children.map((c) => c.count), itemStyle: { color: "#2f6fb0" } }],
  });
  bars.on("click", (p) => drill(data.children[p.dataIndex].code));

  make("chart-trend").setOption({
    tooltip: { trigger: "axis" }, grid: { left: 60, right: 20, top: 20, bottom: 30 },
    xAxis: { type: "category", data: data.months },
    yAxis: { type: "value" },
    series: [{ type: "line", smooth: true, areaStyle: { opacity: 0.15 }, data: data.trend }],
  });

  make("chart-top").setOption({
    tooltip: { trigger: "item" },
    series: [{ type: "pie", radius: ["35%", "70%"],
               data: data.top.map((t) => ({ name: t.name, value: t.count })) }],
  });

  window.addEventListener("resize", () => charts.forEach((c) => c.resize()));
  document.body.dataset.chartsReady = "1";
})();
