import { defineConfig } from "vitest/config";
import react from "@vitejs/plugin-react";

// Django serves the build: assets under /static/console/ (WhiteNoise), pages under /console/.
export default defineConfig({
  plugins: [react()],
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
