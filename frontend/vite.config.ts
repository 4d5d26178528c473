import { gzipSync } from "node:zlib";
import { defineConfig, type Plugin } from "vitest/config";
import react from "@vitejs/plugin-react";
import type { Rollup } from "vite";

// What `index.html` loads before the first page draws: its entry script and the chunks that
// entry imports statically (Vite preloads them), summed gzipped, and printed after every build
// with what each lazily loaded page adds to it (its own chunk and the shared chunks it imports
// that the first page did not load). The first page must stay under FIRST_PAGE_LIMIT_KB.
const FIRST_PAGE_LIMIT_KB = 150;

function firstPageSize(): Plugin {
  return {
    name: "first-page-size",
    apply: "build",
    generateBundle(_options, bundle) {
      const chunks = Object.values(bundle).filter((item): item is Rollup.OutputChunk => item.type === "chunk");
      const byName = new Map(chunks.map((chunk) => [chunk.fileName, chunk]));
      const gzipKb = (code: string) => gzipSync(code).length / 1000;
      // A chunk with every chunk it imports statically, which the browser loads with it.
      const closure = (start: Rollup.OutputChunk) => {
        const loaded = new Set<string>();
        const queue = [start.fileName];
        while (queue.length) {
          const name = queue.pop() as string;
          if (loaded.has(name)) continue;
          loaded.add(name);
          queue.push(...(byName.get(name)?.imports ?? []));
        }
        return loaded;
      };
      const sum = (names: Iterable<string>) => [...names].reduce((total, name) => total + gzipKb(byName.get(name)?.code ?? ""), 0);
      const entry = chunks.find((chunk) => chunk.isEntry);
      if (!entry) return;
      const first = closure(entry);
      const total = sum(first);
      const lines: string[] = [];
      for (const chunk of chunks.filter((item) => item.isDynamicEntry)) {
        const added = [...closure(chunk)].filter((name) => !first.has(name));
        lines.push(`  page ${chunk.name}: ${sum(added).toFixed(1)} kB (its own chunk ${gzipKb(chunk.code).toFixed(1)} kB)`);
      }
      const css = Object.values(bundle).filter((item) => item.type === "asset" && item.fileName.endsWith(".css"));
      const cssKb = css.reduce((kb, item) => kb + (item.type === "asset" ? gzipKb(String(item.source)) : 0), 0);
      const verdict = total <= FIRST_PAGE_LIMIT_KB ? "within" : "OVER";
      console.log(
        `\nfirst page: ${total.toFixed(1)} kB of JS gzipped (${verdict} ${FIRST_PAGE_LIMIT_KB} kB), ` +
          `${cssKb.toFixed(1)} kB of CSS; what each page adds when first opened:\n${lines.sort().join("\n")}\n`,
      );
    },
  };
}

// React, the router and TanStack Query change less often than the console: cached apart from it.
// Mantine and the charts are left to Rollup, which puts in the first page only the components the
// shell and the sign-in pages use, and in each lazily loaded page (or a chunk such pages share)
// the rest: one Mantine chunk would load every component of every page up front.
const LIBRARIES = /\/node_modules\/(react|react-dom|scheduler|react-router|react-router-dom|@remix-run\/router|@tanstack\/[^/]+)\//;

// Django serves the build: assets under /static/console/ (WhiteNoise), pages under /console/.
export default defineConfig({
  plugins: [react(), firstPageSize()],
  base: "/static/console/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    rollupOptions: {
      output: {
        manualChunks: (id) => (LIBRARIES.test(id) ? "react" : undefined),
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
