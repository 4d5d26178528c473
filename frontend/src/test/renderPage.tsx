// Render a page at a console address, as the console does (Mantine, a fresh query cache, the
// router), for pages that read the address (useParams); the query cache is handed back too.
import { MantineProvider } from "@mantine/core";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render } from "@testing-library/react";
import type { ReactElement } from "react";
import { MemoryRouter, Route, Routes, useLocation } from "react-router-dom";

/** Where the router is now, for tests to read: a hidden element holding the path. */
function Address() {
  return <output data-testid="address" hidden>{useLocation().pathname}</output>;
}

/** `element` at `url`; with `route` (such as "/orgs/:slug/settings") its parameters are read from
 * the address, without, the element routes on its own (App). */
export function renderPage(element: ReactElement, { url, route }: { url: string; route?: string }) {
  const queries = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  const view = render(
    <MantineProvider>
      <QueryClientProvider client={queries}>
        <MemoryRouter initialEntries={[url]}>
          {route ? (
            <Routes>
              <Route path={route} element={element} />
            </Routes>
          ) : (
            element
          )}
          <Address />
        </MemoryRouter>
      </QueryClientProvider>
    </MantineProvider>,
  );
  return { ...view, queries };
}
