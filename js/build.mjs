// Bundle the annotator front end into manet_widget/static/ (widget.js + widget.css).
import * as esbuild from "esbuild";

const watch = process.argv.includes("--watch");
const options = {
  entryPoints: [{ in: "js/widget.ts", out: "widget" }, { in: "js/widget.css", out: "widget" }],
  outdir: "manet_widget/static",
  bundle: true,
  format: "esm",
  target: ["es2020"],
  minify: !watch,
  sourcemap: watch ? "inline" : false,
  logLevel: "info",
};

if (watch) {
  const context = await esbuild.context(options);
  await context.watch();
} else {
  await esbuild.build(options);
}
