// The page imports uPlot as './uplot.js': the admin server serves node_modules/uplot/dist/uPlot.esm.js
// beside the page's own script (no bundler, no CDN). This gives that import uPlot's own types.
import uPlot from 'uplot';
export default uPlot;
