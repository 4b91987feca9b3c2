// Draws the case's area boundary and, when known, the reported point.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("case-map-data").textContent);
  if (!data.polygon) return;
  echarts.registerMap("case-area", { type: "FeatureCollection", features: [
    { type: "Feature", properties: { name: data.name }, geometry: data.polygon }] });
  const chart = echarts.init(document.getElementById("case-map"));
  const series = [{ type: "map", map: "case-area", label: { show: true },
                    itemStyle: { areaColor: "#e0f3f8" }, data: [{ name: data.name, value: 1 }] }];
  const option = { geo: { map: "case-area", roam: true }, series: [] };
  if (data.point) {
    option.series.push({ type: "effectScatter", coordinateSystem: "geo", symbolSize: 12,
                         itemStyle: { color: "#b3261e" }, data: [data.point] });
  }
  option.series.push(...series.map((s) => ({ ...s, geoIndex: 0 })));
  chart.setOption(option);
  document.body.dataset.mapReady = "1";
})();
