import { gzipSync } from "node:zlib";
import { defineConfig, type Plugin } from "vitest/config";
import react from "@vitejs/plugin-react";

// What `index.html` loads before the first page draws: its entry script and the chunks that
// entry imports statically (Vite preloads them), summed gzipped, and printed after every build
// with each lazily loaded page's own size. The first page must stay under FIRST_PAGE_LIMIT_KB.
const FIRST_PAGE_LIMIT_KB = 150;

function firstPageSize(): Plugin {
  return {
    name: "first-page-size",
    apply: "build",
    generateBundle(_options, bundle) {
      const chunks = Object.values(bundle).filter((item) => item.type === "chunk");
      const gzipKb = (code: string) => gzipSync(code).length / 1000;
      const entry = chunks.find((chunk) => chunk.isEntry);
      if (!entry) return;
      const first = new Set<string>([entry.fileName]);
      const queue = [...entry.imports];
      while (queue.length) {
        const name = queue.pop() as string;
        if (first.has(name)) continue;
        first.add(name);
        const chunk = chunks.find((item) => item.fileName === name);
        if (chunk) queue.push(...chunk.imports);
      }
      const css = Object.values(bundle).filter((item) => item.type === "asset" && item.fileName.endsWith(".css"));
      let total = 0;
      const lines: string[] = [];
      for (const chunk of chunks) {
        const size = gzipKb(chunk.code);
        if (first.has(chunk.fileName)) total += size;
        else if (chunk.isDynamicEntry) lines.push(`  page ${chunk.name}: ${size.toFixed(1)} kB`);
      }
      const cssKb = css.reduce((sum, item) => sum + (item.type === "asset" ? gzipKb(String(item.source)) : 0), 0);
      const verdict = total <= FIRST_PAGE_LIMIT_KB ? "within" : "OVER";
      console.log(
        `\nfirst page: ${total.toFixed(1)} kB of JS gzipped (${verdict} ${FIRST_PAGE_LIMIT_KB} kB), ` +
          `${cssKb.toFixed(1)} kB of CSS; each page loaded later:\n${lines.sort().join("\n")}\n`,
      );
    },
  };
}

// Django serves the build: assets under /static/console/ (WhiteNoise), pages under /console/.
export default defineConfig({
  plugins: [react(), firstPageSize()],
  base: "/static/console/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    rollupOptions: {
      output: {
        // The libraries change less often than the console: cached apart from it. Charts load
        // only with the pages that draw them.
        manualChunks: {
          react: ["react", "react-dom", "react-router-dom", "@tanstack/react-query"],
          mantine: ["@mantine/core", "@mantine/hooks"],
          charts: ["@mantine/charts", "recharts"],
        },
      },
    },
  },
  server: { proxy: { "/api": "http://127.0.0.1:8000" } },
  test: {
    environment: "jsdom",
    setupFiles: ["./src/test/setup.ts"],
    include: ["src/**/*.test.tsx", "src/**/*.test.ts"],
  },
});
