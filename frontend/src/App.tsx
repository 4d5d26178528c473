import { AppShell, Burger, Button, Center, Group, Loader, NavLink, Select, Text, Title } from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import { useQueryClient } from "@tanstack/react-query";
import { lazy, Suspense, useEffect } from "react";
import { Link, Navigate, Route, Routes, useLocation, useNavigate, useParams } from "react-router-dom";
import { api } from "./api/client";
import { LoginPage, SignupPage } from "./pages/AuthPages";
import { useMfaStatus } from "./pages/MfaStatus";
import { NewOrganizationPage } from "./pages/NewOrganizationPage";
import { BILLING_ROLES, CLUSTER_WRITERS, useMe } from "./session";

// Each of these pages loads when first opened: the first screen loads only the shell and the
// overview (no charts: its sparkline is plain SVG).
const OverviewPage = lazy(() => import("./pages/OverviewPage").then((m) => ({ default: m.OverviewPage })));
const ClustersPage = lazy(() => import("./pages/ClustersPage").then((m) => ({ default: m.ClustersPage })));
const AwsPage = lazy(() => import("./pages/AwsPage").then((m) => ({ default: m.AwsPage })));
const BillingPage = lazy(() => import("./pages/BillingPage").then((m) => ({ default: m.BillingPage })));
const ClusterPage = lazy(() => import("./pages/ClusterPage").then((m) => ({ default: m.ClusterPage })));
const OrganizationPage = lazy(() => import("./pages/OrganizationPage").then((m) => ({ default: m.OrganizationPage })));
const PortalPage = lazy(() => import("./pages/PortalPage").then((m) => ({ default: m.PortalPage })));
// One's account, and the pages the emailed links open (docs/identity.md).
const AccountPage = lazy(() => import("./pages/AccountPage").then((m) => ({ default: m.AccountPage })));
const AccountMenu = lazy(() => import("./pages/AccountMenu").then((m) => ({ default: m.AccountMenu })));
const EmailVerificationBanner = lazy(() => import("./pages/AccountBanner").then((m) => ({ default: m.EmailVerificationBanner })));
const ForgotPasswordPage = lazy(() => import("./pages/AccountRecoveryPages").then((m) => ({ default: m.ForgotPasswordPage })));
const ResetPasswordPage = lazy(() => import("./pages/AccountRecoveryPages").then((m) => ({ default: m.ResetPasswordPage })));
const VerifyEmailPage = lazy(() => import("./pages/AccountRecoveryPages").then((m) => ({ default: m.VerifyEmailPage })));
const SsoLinkPage = lazy(() => import("./pages/AccountRecoveryPages").then((m) => ({ default: m.SsoLinkPage })));
// The only page of a member held to setting up two-factor sign-in (their organization requires it).
const MfaSetupRequiredPage = lazy(() => import("./pages/MfaSetup").then((m) => ({ default: m.MfaSetupRequiredPage })));
const loading = (
  <Center h="100vh">
    <Loader aria-label="Loading" />
  </Center>
);

export function App() {
  const me = useMe();
  // Asked beside "me", not after it: signed out, it fails, and nothing waits on it.
  const mfa = useMfaStatus();
  const location = useLocation();
  if (me.isLoading || (me.data && !mfa.data && mfa.isFetching)) {
    return (
      <Center h="100vh">
        <Loader aria-label="Loading" />
      </Center>
    );
  }
  if (!me.data) {
    return (
      <Suspense fallback={loading}>
        <Routes>
          <Route path="/signup" element={<SignupPage />} />
          <Route path="/forgot" element={<ForgotPasswordPage />} />
          <Route path="/reset/:uid/:token" element={<ResetPasswordPage />} />
          <Route path="/verify-email/:token" element={<VerifyEmailPage />} />
          <Route path="/sso/link/:token" element={<SsoLinkPage />} />
          <Route path="*" element={location.pathname === "/login" ? <LoginPage /> : <Navigate to="/login" replace />} />
        </Routes>
      </Suspense>
    );
  }
  if (mfa.data?.setup_required) {
    return (
      <Suspense fallback={loading}>
        <Routes>
          <Route path="/mfa/setup" element={<MfaSetupRequiredPage />} />
          <Route path="*" element={<Navigate to="/mfa/setup" replace />} />
        </Routes>
      </Suspense>
    );
  }
  const first = me.data.organizations[0];
  return (
    <Routes>
      <Route path="/reset/:uid/:token" element={<Suspense fallback={loading}><ResetPasswordPage /></Suspense>} />
      {/* Where a member held by "require two-factor sign-in" stands when the setup is done: on to
          the console (the setup page's own navigation may come after this table took over). */}
      <Route path="/mfa/setup" element={<Navigate to="/" replace />} />
      <Route path="/account" element={<Shell><AccountPage /></Shell>} />
      <Route path="/verify-email/:token" element={<Shell><VerifyEmailPage signedIn /></Shell>} />
      <Route path="/sso/link/:token" element={<Shell><SsoLinkPage signedIn /></Shell>} />
      <Route path="/orgs/new" element={<Shell><NewOrganizationPage /></Shell>} />
      <Route path="/orgs/:slug/*" element={<Shell><OrganizationRoutes /></Shell>} />
      <Route path="*" element={<Navigate to={first ? `/orgs/${first.slug}/overview` : "/orgs/new"} replace />} />
    </Routes>
  );
}

function OrganizationRoutes() {
  return (
    <Routes>
      <Route path="overview" element={<OverviewPage />} />
      <Route path="clusters" element={<ClustersPage />} />
      <Route path="clusters/:clusterId" element={<ClusterPage />} />
      <Route path="billing" element={<BillingPage />} />
      <Route path="portal" element={<PortalPage />} />
      <Route path="settings" element={<OrganizationPage />} />
      <Route path="aws" element={<AwsPage />} />
      <Route path="*" element={<Navigate to="overview" replace />} />
    </Routes>
  );
}

const LAST_ORGANIZATION = "console:last-organization";

function Shell({ children }: { children: React.ReactNode }) {
  const me = useMe();
  const navigate = useNavigate();
  const queries = useQueryClient();
  const { slug } = useParams();
  const location = useLocation();
  const [navigationOpen, navigation] = useDisclosure(false);
  // Following a link on a phone folds the navigation away again.
  useEffect(() => navigation.close(), [location.pathname]);
  const organizations = me.data?.organizations ?? [];
  const opened = organizations.find((o) => o.slug === slug);
  useEffect(() => {
    if (opened) sessionStorage.setItem(LAST_ORGANIZATION, opened.slug);
  }, [opened?.slug]);
  // Pages of one's own (account, a new organization) keep the organization last open in the
  // header and the navigation, rather than an empty picker and menu.
  const current =
    slug === undefined ? (organizations.find((o) => o.slug === sessionStorage.getItem(LAST_ORGANIZATION)) ?? organizations[0]) : opened;
  const logout = async () => {
    await api.POST("/api/v1/auth/logout/");
    queries.setQueryData(["me"], null);
    navigate("/login");
  };
  return (
    <AppShell header={{ height: 56 }} navbar={{ width: 220, breakpoint: "sm", collapsed: { mobile: !navigationOpen } }} padding="md">
      <AppShell.Header>
        <Group h="100%" px="md" justify="space-between" wrap="nowrap">
          <Group gap="xs" wrap="nowrap">
            {/* On a phone the navigation folds away behind this button. */}
            <Burger opened={navigationOpen} onClick={navigation.toggle} hiddenFrom="sm" size="sm" aria-label={navigationOpen ? "Close navigation" : "Open navigation"} />
            <Title order={4} visibleFrom="xs">
              Gateway Cloud
            </Title>
          </Group>
          <Group wrap="nowrap" gap="xs">
            <Select
              w={{ base: 150, sm: 220 }}
              aria-label="Organization"
              placeholder="Organization"
              data={[
                ...organizations.map((o) => ({ value: o.slug, label: o.name })),
                { value: "__new__", label: "+ New organization" },
              ]}
              value={current?.slug ?? null}
              // Picking the organization already shown still opens it (from one's account page,
              // say): the picker never clears, and every pick navigates.
              allowDeselect={false}
              onOptionSubmit={(value) => navigate(value === "__new__" ? "/orgs/new" : `/orgs/${value}/overview`)}
            />
            <Text size="sm" c="dimmed" visibleFrom="md">
              {me.data?.user.email}
            </Text>
            <Suspense fallback={null}>
              <AccountMenu email={me.data?.user.email ?? ""} />
            </Suspense>
            <Button variant="subtle" onClick={logout}>
              Log out
            </Button>
          </Group>
        </Group>
      </AppShell.Header>
      <AppShell.Navbar p="xs">
        {current &&
          [
            { to: "overview", label: "Overview", shown: true },
            { to: "clusters", label: "Clusters", shown: true },
            { to: "portal", label: "Developer portal", shown: current.role !== "billing" },
            { to: "settings", label: "Organization", shown: true },
            { to: "aws", label: "Deploy to AWS", shown: CLUSTER_WRITERS.includes(current.role) },
            { to: "billing", label: "Billing", shown: BILLING_ROLES.includes(current.role) },
          ]
            .filter((item) => item.shown)
            .map((item) => {
              const to = `/orgs/${current.slug}/${item.to}`;
              const active = location.pathname === to || location.pathname.startsWith(`${to}/`);
              return <NavLink key={item.to} component={Link} to={to} label={item.label} active={active} aria-current={active ? "page" : undefined} />;
            })}
      </AppShell.Navbar>
      <AppShell.Main>
        <Suspense fallback={null}>
          <EmailVerificationBanner />
        </Suspense>
        <Suspense fallback={<Loader aria-label="Loading the page" />}>{children}</Suspense>
      </AppShell.Main>
    </AppShell>
  );
}
