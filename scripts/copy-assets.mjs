// Copies the built front-end libraries from node_modules into the Django static dir, so the
// platform serves them itself and works on an air-gapped intranet.
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const target = join(root, "src/civicpulse/web/static/vendor");
const assets = {
  "echarts.min.js": "node_modules/echarts/dist/echarts.min.js",
  "htmx.min.js": "node_modules/htmx.org/dist/htmx.min.js",
};

mkdirSync(target, { recursive: true });
for (const [name, source] of Object.entries(assets)) {
  copyFileSync(join(root, source), join(target, name));
  console.log(`assets: ${source} -> src/civicpulse/web/static/vendor/${name}`);
}
