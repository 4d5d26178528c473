import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// Django serves the build: assets under /static/console/ (WhiteNoise), pages under /console/.
export default defineConfig({
  plugins: [react()],
  base: "/static/console/",
  build: { outDir: "dist", emptyOutDir: true },
  server: { proxy: { "/api": "http://127.0.0.1:8000" } },
});
