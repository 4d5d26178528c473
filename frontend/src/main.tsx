import "@mantine/core/styles.css";
import "@mantine/charts/styles.css";
import { createTheme, MantineProvider } from "@mantine/core";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import React from "react";
import ReactDOM from "react-dom/client";
import { BrowserRouter } from "react-router-dom";
import { App } from "./App";

// A chart's tooltip, hidden, stays where it was last shown: once the screen narrows (a phone
// turned upright) it would widen the page. Each chart clips it sideways.
const chart = { styles: { root: { overflowX: "clip" } } };
const theme = createTheme({
  components: {
    // A badge is never narrower than its word: in a table squeezed on a phone, "online" would
    // otherwise be cut to "onl…" (the table scrolls sideways instead).
    Badge: { styles: { root: { minWidth: "max-content" } } },
    AreaChart: chart,
    BarChart: chart,
    CompositeChart: chart,
    LineChart: chart,
  },
});

const queries = new QueryClient({ defaultOptions: { queries: { retry: 1, refetchOnWindowFocus: false } } });

ReactDOM.createRoot(document.getElementById("root")!).render(
  <React.StrictMode>
    <MantineProvider theme={theme} defaultColorScheme="auto">
      <QueryClientProvider client={queries}>
        <BrowserRouter basename="/console">
          <App />
        </BrowserRouter>
      </QueryClientProvider>
    </MantineProvider>
  </React.StrictMode>,
);
